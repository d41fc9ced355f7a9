// Python bindings: type conversion, GIL release, progress/cancel plumbing and
// exception mapping. All logic lives in the engine.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "engine.h"
#include "quantize.h"
#include "sysinfo.h"

namespace py = pybind11;
using namespace pyllmattr;

namespace {

struct CancelFlag {
    std::atomic<bool> flag{false};
};

// Calls the Python progress callback (if any) with the GIL held, and turns a
// pending KeyboardInterrupt into an exception that unwinds the engine call.
ProgressFn python_progress(const py::object & callback) {
    const py::object * cb = &callback;  // owned by the caller's frame for the whole call
    return [cb](int64_t done, int64_t total) {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) {
            throw py::error_already_set();
        }
        if (cb->is_none()) {
            return true;
        }
        py::object keep_going = (*cb)(done, total);
        return keep_going.is_none() || keep_going.cast<bool>();
    };
}

bool on_main_thread() {
    py::module_ threading = py::module_::import("threading");
    const py::object main_ident = threading.attr("main_thread")().attr("ident");
    const py::object my_ident = threading.attr("get_ident")();
    return main_ident.equal(my_ident);
}

// Ctrl-C while llama.cpp computes. Python only runs signal handlers on the main
// thread between bytecodes, and a single decode can take seconds, so while a
// call runs on the main thread the engine polls this from llama.cpp's abort
// callback: every kPeriod it takes the GIL and runs pending signal handlers.
// A handler's exception (KeyboardInterrupt) aborts the decode and is re-raised
// by rethrow_if_interrupted() once the engine has unwound.
class SignalWatch {
  public:
    SignalWatch() : active_(on_main_thread()) {}

    InterruptFn poll_fn() {
        if (!active_) {
            return {};  // signal handlers only run on the main thread
        }
        return [this] { return poll(); };
    }

    // With the GIL held, after the engine returned or threw.
    void rethrow_if_interrupted() {
        if (pending_) {
            pending_->restore();
            pending_.reset();
            throw py::error_already_set();
        }
    }

  private:
    static constexpr auto kPeriod = std::chrono::milliseconds(50);

    bool poll() {
        // Called from one compute thread at a time, never concurrently.
        const auto now = std::chrono::steady_clock::now();
        if (pending_ || now < next_poll_) {
            return pending_ != nullptr;
        }
        next_poll_ = now + kPeriod;
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) {
            pending_ = std::make_unique<py::error_already_set>();
            return true;
        }
        return false;
    }

    bool active_;
    std::chrono::steady_clock::time_point next_poll_{};
    std::unique_ptr<py::error_already_set> pending_;
};

const std::atomic<bool> * flag_of(CancelFlag * cancel) {
    return cancel == nullptr ? nullptr : &cancel->flag;
}

CallControl make_control(const py::object & progress, CancelFlag * cancel, SignalWatch & watch) {
    CallControl control;
    control.progress = python_progress(progress);
    control.cancel = flag_of(cancel);
    control.interrupted = watch.poll_fn();
    return control;
}

// Runs `work` without the GIL; a Cancelled caused by Ctrl-C becomes the KeyboardInterrupt.
template <typename Work>
auto run_released(SignalWatch & watch, Work && work) {
    try {
        py::gil_scoped_release release;
        return work();
    } catch (const Cancelled &) {
        watch.rethrow_if_interrupted();
        throw;
    }
}

py::array_t<double> to_array(const std::vector<double> & values, std::vector<py::ssize_t> shape) {
    py::array_t<double> array(shape);
    std::memcpy(array.mutable_data(), values.data(), values.size() * sizeof(double));
    return array;
}

// (scores (n, len(target)), stats).
py::tuple score(Engine & engine, const std::vector<std::vector<Token>> & sequences,
                const std::vector<Token> & target, Strategy strategy, const py::object & progress,
                CancelFlag * cancel) {
    SignalWatch watch;
    const CallControl control = make_control(progress, cancel, watch);
    ScoreResult result = run_released(watch, [&] { return engine.score(sequences, target, strategy, control); });
    const auto rows = static_cast<py::ssize_t>(sequences.size());
    const auto cols = static_cast<py::ssize_t>(target.size());
    return py::make_tuple(to_array(result.logprobs, {rows, cols}), result.stats);
}

// (flat scores, offsets, stats): pair i's scores are flat[offsets[i]:offsets[i + 1]].
py::tuple score_pairs(Engine & engine, const std::vector<std::vector<Token>> & sequences,
                      const std::vector<std::vector<Token>> & targets, Strategy strategy,
                      const py::object & progress, CancelFlag * cancel) {
    SignalWatch watch;
    const CallControl control = make_control(progress, cancel, watch);
    ScoreResult result =
        run_released(watch, [&] { return engine.score_pairs(sequences, targets, strategy, control); });
    py::array_t<int64_t> offsets(static_cast<py::ssize_t>(result.offsets.size()));
    std::memcpy(offsets.mutable_data(), result.offsets.data(), result.offsets.size() * sizeof(int64_t));
    const auto n = static_cast<py::ssize_t>(result.logprobs.size());
    return py::make_tuple(to_array(result.logprobs, {n}), offsets, result.stats);
}

py::list generate(Engine & e, const std::vector<Token> & prompt, const GenerateOptions & options,
                  const py::object & progress, CancelFlag * cancel) {
    SignalWatch watch;
    const CallControl control = make_control(progress, cancel, watch);
    return py::cast(run_released(watch, [&] { return e.generate(prompt, options, control); }));
}

void bind_types(py::module_ & m) {
    py::enum_<Strategy>(m, "Strategy", "How a scoring call may reuse the KV cache (csrc/schedule.h).")
        .value("trie", Strategy::kTrie)
        .value("trie_per_wave", Strategy::kTriePerWave)
        .value("independent", Strategy::kIndependent)
        .def_property_readonly("label", [](Strategy s) { return strategy_name(s); },
                               "The name users see: 'trie', 'trie-per-wave', 'independent'.");
    py::enum_<Layout>(m, "Layout",
                      "How scoring lays sequences out (csrc/engine.h; pyllmattr.models.exactness.Layout).")
        .value("fast", Layout::kFast)
        .value("exact", Layout::kExact)
        .value("flash64", Layout::kFlash64);
    py::enum_<FlashAttn>(m, "FlashAttn", "llama.cpp's flash attention choice.")
        .value("auto", FlashAttn::kAuto)
        .value("off", FlashAttn::kOff)
        .value("on", FlashAttn::kOn);
    py::enum_<FileType>(m, "FileType", "Weight types a GGUF copy can be converted to (llama_ftype).")
        .value("f16", FileType::kF16)
        .value("q4_0", FileType::kQ4_0)
        .value("q8_0", FileType::kQ8_0)
        .value("q4_k_m", FileType::kQ4_K_M);

    const EngineOptions d;
    py::class_<EngineOptions>(m, "EngineOptions", "How an Engine is set up (csrc/engine.h).")
        .def(py::init([](int32_t n_ctx, int32_t n_batch, int32_t n_outputs, int32_t max_branches,
                         int32_t n_threads, int32_t n_gpu_layers, FlashAttn flash_attn, bool kv_f32,
                         Layout layout) {
                 return EngineOptions{n_ctx,        n_batch,    n_outputs, max_branches, n_threads,
                                      n_gpu_layers, flash_attn, kv_f32,    layout};
             }),
             py::kw_only(), py::arg("n_ctx") = d.n_ctx, py::arg("n_batch") = d.n_batch,
             py::arg("n_outputs") = d.n_outputs, py::arg("max_branches") = d.max_branches,
             py::arg("n_threads") = d.n_threads, py::arg("n_gpu_layers") = d.n_gpu_layers,
             py::arg("flash_attn") = d.flash_attn, py::arg("kv_f32") = d.kv_f32,
             py::arg("layout") = d.layout)
        .def_readwrite("n_ctx", &EngineOptions::n_ctx)
        .def_readwrite("n_batch", &EngineOptions::n_batch)
        .def_readwrite("n_outputs", &EngineOptions::n_outputs)
        .def_readwrite("max_branches", &EngineOptions::max_branches)
        .def_readwrite("n_threads", &EngineOptions::n_threads)
        .def_readwrite("n_gpu_layers", &EngineOptions::n_gpu_layers)
        .def_readwrite("flash_attn", &EngineOptions::flash_attn)
        .def_readwrite("kv_f32", &EngineOptions::kv_f32)
        .def_readwrite("layout", &EngineOptions::layout);

    py::class_<ScoreStats>(m, "ScoreStats", "What one scoring call decoded (pyllmattr.ScoreStats converts it).")
        .def_readonly("n_decoded", &ScoreStats::n_decoded)
        .def_readonly("n_trie", &ScoreStats::n_trie)
        .def_readonly("n_naive", &ScoreStats::n_naive)
        .def_readonly("n_decode_calls", &ScoreStats::n_decode_calls)
        .def_readonly("n_waves", &ScoreStats::n_waves)
        .def_readonly("n_padding", &ScoreStats::n_padding)
        .def_readonly("n_unique", &ScoreStats::n_unique)
        .def_readonly("seconds", &ScoreStats::seconds)
        .def_readonly("strategy", &ScoreStats::strategy);

    const GenerateOptions g;
    py::class_<GenerateOptions>(m, "GenerateOptions", "How Engine.generate samples.")
        .def(py::init([](int32_t max_new_tokens, float temperature, int32_t top_k, float top_p, uint32_t seed,
                         bool stop_at_eog) {
                 return GenerateOptions{max_new_tokens, temperature, top_k, top_p, seed, stop_at_eog};
             }),
             py::kw_only(), py::arg("max_new_tokens") = g.max_new_tokens, py::arg("temperature") = g.temperature,
             py::arg("top_k") = g.top_k, py::arg("top_p") = g.top_p, py::arg("seed") = g.seed,
             py::arg("stop_at_eog") = g.stop_at_eog);
}

// Test-only hooks: _core.testing, wrapped by pyllmattr._testing.
void bind_testing(py::module_ & m) {
    py::module_ testing = m.def_submodule("testing", "Test-only hooks into the engine; not part of pyllmattr's API.");
    testing.def("set_plan_slack", &EngineTesting::set_plan_slack, py::arg("engine"), py::arg("cells"),
                "Let the planner overcommit the KV cache by `cells`.");
    testing.def(
        "plan_stats",
        [](const std::vector<std::vector<Token>> & sequences, const std::vector<std::vector<Token>> & targets,
           Strategy strategy, int32_t max_cells, int32_t max_slots) {
            if (sequences.empty() || targets.size() != sequences.size()) {
                throw std::invalid_argument("plan_stats: give one target per sequence");
            }
            const Plan plan = make_plan({sequences, targets}, strategy, {max_cells, max_slots});
            py::dict d;
            d["n_emitted"] = plan.n_emitted;
            d["n_trie"] = plan.n_trie;
            d["n_naive"] = plan.n_naive;
            d["n_unique"] = plan.n_unique;
            d["n_leaves"] = plan.n_leaves;
            d["n_waves"] = static_cast<int64_t>(plan.waves.size());
            return d;
        },
        py::arg("sequences"), py::arg("targets"), py::arg("strategy"), py::arg("max_cells"), py::arg("max_slots"),
        "What the planner would decode, without a model.");
    testing.def(
        "exact_self_check",
        [](Engine & e, int32_t block, int32_t row_mult, int32_t row_min) {
            py::gil_scoped_release release;
            return e.exact_self_check({block, row_mult, row_min});
        },
        py::arg("engine"), py::arg("block"), py::arg("row_mult"), py::arg("row_min"),
        "The exact layout's self-check with these rules (does not change the engine's).");
}

void bind_engine(py::module_ & m) {
    py::class_<Engine>(m, "Engine")
        .def(py::init([](const std::string & path, const EngineOptions & options) {
                 SignalWatch watch;  // Ctrl-C stops loading a large file
                 const InterruptFn interrupted = watch.poll_fn();
                 return run_released(watch, [&] { return std::make_unique<Engine>(path, options, interrupted); });
             }),
             py::arg("path"), py::arg("options"))
        .def_static(
            "from_model_pointer",
            [](uintptr_t pointer, const EngineOptions & options) {
                return std::make_unique<Engine>(reinterpret_cast<llama_model *>(pointer), options);
            },
            py::arg("pointer"), py::arg("options"))
        .def("close", &Engine::close, py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("closed", &Engine::closed)
        .def_property_readonly("options", &Engine::options, "The options in effect (after llama.cpp's limits).")
        .def("tokenize", &Engine::tokenize, py::arg("text"), py::arg("add_special"), py::arg("parse_special"))
        .def(
            "detokenize",
            [](const Engine & e, const std::vector<Token> & tokens, bool remove_special, bool unparse_special) {
                return py::bytes(e.detokenize(tokens, remove_special, unparse_special));
            },
            py::arg("tokens"), py::arg("remove_special"), py::arg("unparse_special"))
        .def(
            "token_piece",
            [](const Engine & e, Token token, bool special) { return py::bytes(e.token_piece(token, special)); },
            py::arg("token"), py::arg("special"))
        .def("score", &score, py::arg("sequences"), py::arg("target"), py::arg("strategy"), py::arg("progress"),
             py::arg("cancel"))
        .def("score_pairs", &score_pairs, py::arg("sequences"), py::arg("targets"), py::arg("strategy"),
             py::arg("progress"), py::arg("cancel"))
        .def("generate", &generate, py::arg("prompt"), py::arg("options"), py::arg("progress"), py::arg("cancel"))
        .def("meta", &Engine::meta, py::arg("key"))
        .def_property_readonly("chat_template", &Engine::chat_template)
        .def(
            "apply_chat_template",
            [](const Engine & e, const std::vector<std::pair<std::string, std::string>> & messages,
               bool add_assistant, const std::string & tmpl) {
                std::vector<ChatMessage> chat;
                for (const auto & [role, content] : messages) {
                    chat.push_back({role, content});
                }
                return py::bytes(e.apply_chat_template(chat, add_assistant, tmpl));
            },
            py::arg("messages"), py::arg("add_assistant"), py::arg("template"))
        .def("is_eog", &Engine::is_eog, py::arg("token"))
        .def_property_readonly("sharing_strategy", &Engine::sharing_strategy)
        .def_property_readonly("description", &Engine::description)
        .def_property_readonly("n_vocab", &Engine::n_vocab)
        .def_property_readonly("n_ctx", &Engine::n_ctx)
        .def_property_readonly("n_ctx_train", &Engine::n_ctx_train)
        .def_property_readonly("n_swa", &Engine::n_swa)
        .def_property_readonly("is_recurrent", &Engine::is_recurrent)
        .def_property_readonly("bos", &Engine::bos)
        .def_property_readonly("eos", &Engine::eos)
        .def_property_readonly("add_bos", &Engine::add_bos)
        // The exact layout's rules, checked on this model at first use (runs the self-check).
        .def_property_readonly("exact_verified",
                               [](Engine & e) {
                                   py::gil_scoped_release release;
                                   return e.exact_verified();
                               })
        .def_property_readonly("exact_block", [](Engine & e) {
            py::gil_scoped_release release;
            return e.exact_rules().block;
        })
        // The self-check's outcome without running it: None until settled, else
        // (verified, block, row_mult, row_min, seconds the check took in this process).
        .def_property_readonly("exact_outcome",
                               [](const Engine & e) -> py::object {
                                   // It waits for the engine's mutex, which a scoring call in
                                   // another thread holds while it waits for the GIL (progress,
                                   // cancellation): wait without the GIL.
                                   ExactOutcome o;
                                   {
                                       py::gil_scoped_release release;
                                       o = e.exact_outcome();
                                   }
                                   if (o.state < 0) {
                                       return py::none();
                                   }
                                   return py::make_tuple(o.state == 1, o.rules.block, o.rules.row_mult,
                                                         o.rules.row_min, o.check_seconds);
                               })
        .def(
            "adopt_exact_rules",
            [](Engine & e, int32_t block, int32_t row_mult, int32_t row_min, bool verified) {
                py::gil_scoped_release release;  // computes the filler cell: one small decode
                return e.adopt_exact_rules({block, row_mult, row_min}, verified);
            },
            py::arg("block"), py::arg("row_mult"), py::arg("row_min"), py::arg("verified"),
            "Use a cached outcome of the self-check instead of running it (False: refused).");
}

py::dict system_info_dict() {
    const SystemInfo info = system_info();
    py::dict d;
    d["system_info"] = info.llama_system_info;
    d["ggml_version"] = info.ggml_version;
    d["ggml_commit"] = info.ggml_commit;
    d["gpu_offload"] = info.gpu_offload;
    d["backends"] = info.backends;
    py::list devices;
    for (const BackendDevice & dev : info.devices) {
        py::dict item;
        item["name"] = dev.name;
        item["description"] = dev.description;
        item["type"] = dev.type;
        item["backend"] = dev.backend;
        item["memory_free"] = dev.memory_free;
        item["memory_total"] = dev.memory_total;
        devices.append(item);
    }
    d["devices"] = devices;
    return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "pyllmattr's scoring engine on llama.cpp (private; use the pyllmattr package)";
    install_llama_log();  // quiet unless verbose, each call's errors kept for its messages

    py::register_exception<Cancelled>(m, "Cancelled", PyExc_RuntimeError);
    py::class_<CancelFlag>(m, "CancelFlag")
        .def(py::init<>())
        .def("set", [](CancelFlag & c) { c.flag.store(true); })
        .def("clear", [](CancelFlag & c) { c.flag.store(false); })
        .def("is_set", [](const CancelFlag & c) { return c.flag.load(); });

    bind_types(m);
    bind_engine(m);
    bind_testing(m);
    m.def("quantize_model", &quantize_model, py::arg("input"), py::arg("output"), py::arg("type"),
          py::arg("n_threads"), py::call_guard<py::gil_scoped_release>());
    m.def("set_verbose", &set_llama_verbose, py::arg("verbose"));
    m.def("llama_symbol_address", &llama_symbol_address);
    m.def("system_info", &system_info_dict,
          "llama.cpp's system info line, ggml's version and commit, back ends and devices.");
    m.attr("EXACT_RULES_VERSION") = kExactRulesVersion;
}
