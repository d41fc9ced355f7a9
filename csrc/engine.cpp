// The engine's lifecycle (loading, the llama.cpp context) and its decode with
// recovery from a full KV cache. Vocabulary and metadata: vocab.cpp; chat
// templates: chat.cpp; scoring: scorer.cpp; generation: generator.cpp.
#include "engine.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "decode_stream.h"
#include "engine_call.h"
#include "exact_stream.h"
#include "kv_restore.h"
#include "llama.h"

namespace pyllmattr {

namespace {

static_assert(static_cast<int>(FlashAttn::kAuto) == LLAMA_FLASH_ATTN_TYPE_AUTO &&
                  static_cast<int>(FlashAttn::kOff) == LLAMA_FLASH_ATTN_TYPE_DISABLED &&
                  static_cast<int>(FlashAttn::kOn) == LLAMA_FLASH_ATTN_TYPE_ENABLED,
              "FlashAttn must mirror llama_flash_attn_type");

void init_backend_once() {
    static std::once_flag once;
    std::call_once(once, [] { llama_backend_init(); });
}

// llama.cpp's abort callback: polled between graph nodes while a decode runs.
bool abort_requested(void * data) {
    const CallControl * control = static_cast<const std::atomic<const CallControl *> *>(data)->load();
    if (control == nullptr) {
        return false;
    }
    if (control->cancel != nullptr && control->cancel->load()) {
        return true;
    }
    return control->interrupted && control->interrupted();
}

// llama.cpp's load progress callback: returning false stops loading.
bool keep_loading(float /*progress*/, void * data) {
    const auto * interrupted = static_cast<const InterruptFn *>(data);
    return !(*interrupted && (*interrupted)());
}

// Turns llama.cpp's complaint about a file it could not load into advice.
std::string load_failure(const std::string & path, const std::string & log) {
    const std::string arch_marker = "unknown model architecture: ";
    const size_t at = log.find(arch_marker);
    if (at != std::string::npos) {
        const size_t begin = at + arch_marker.size();
        const std::string arch = log.substr(begin, log.find('\n', begin) - begin);
        return "'" + path + "' is a model of architecture " + arch +
               ", which the llama.cpp in this installation does not support; use a GGUF of a "
               "supported architecture, or a newer llama-cpp-python and pyllmattr built against it" +
               log;
    }
    if (log.find("not within the file bounds") != std::string::npos ||
        log.find("failed to read") != std::string::npos) {
        return "'" + path + "' is truncated or corrupt (its data ends early); download or "
               "convert it again and compare its size or checksum with the original" + log;
    }
    return "llama.cpp could not load '" + path +
           "' as a GGUF model (corrupt, truncated, or an architecture this llama.cpp build does "
           "not know); check the file, or run with verbose=True to see llama.cpp's log" + log;
}

// Rows [begin, end) of `batch` as a batch of their own (llama_batch holds pointers).
llama_batch slice(const llama_batch & batch, int32_t begin, int32_t end) {
    llama_batch view = batch;
    view.n_tokens = end - begin;
    view.token += begin;
    view.pos += begin;
    view.n_seq_id += begin;
    view.seq_id += begin;
    view.logits += begin;
    return view;
}

}  // namespace

// ---------------------------------------------------------------- lifecycle

Engine::Engine(const std::string & path, const EngineOptions & options, const InterruptFn & interrupted)
    : options_(options) {
    LogScope log;  // llama.cpp's complaints while loading belong to this load
    init_backend_once();
    auto params = llama_model_default_params();
    params.n_gpu_layers = options.n_gpu_layers;
    params.progress_callback = keep_loading;
    params.progress_callback_user_data = const_cast<InterruptFn *>(&interrupted);
    model_ = llama_model_load_from_file(path.c_str(), params);
    if (model_ == nullptr) {
        const std::string lines = recent_llama_errors();
        if (interrupted && interrupted()) {
            throw Cancelled();
        }
        throw std::invalid_argument(load_failure(path, lines));
    }
    owns_model_ = true;
    create_context();
}

Engine::Engine(llama_model * borrowed, const EngineOptions & options) : options_(options) {
    LogScope log;
    init_backend_once();
    if (borrowed == nullptr) {
        throw std::invalid_argument("the llama_cpp.Llama object has no loaded model");
    }
    model_ = borrowed;
    create_context();
}

Engine::~Engine() { close(); }

void Engine::create_context() {
    vocab_ = llama_model_get_vocab(model_);
    if (options_.max_branches < 1 || options_.max_branches > 255) {
        close();
        throw std::invalid_argument("max_branches must be between 1 and 255");
    }
    if (options_.n_batch < 1 || options_.n_ctx < 8) {
        close();
        throw std::invalid_argument("n_batch must be >= 1 and n_ctx >= 8");
    }
    const bool exact = options_.layout == Layout::kExact;
    if (exact && options_.max_branches > 255 - ExactSeqs{}.count()) {
        close();
        throw std::invalid_argument("max_branches must be at most " + std::to_string(255 - ExactSeqs{}.count()) +
                                    " with deterministic scoring (it uses a few KV sequences of its own)");
    }
    // + the keeper sequence, or the exact layout's own sequences (exact_stream.h)
    const int32_t n_seq = options_.max_branches + (exact ? ExactSeqs{}.count() : 1);
    options_.n_outputs = std::max({options_.n_outputs, n_seq, 1});
    options_.n_outputs = std::min(options_.n_outputs, std::max(options_.n_batch, n_seq));
    if (exact) {
        if (options_.flash_attn == FlashAttn::kOn) {
            close();
            throw std::invalid_argument(
                "deterministic scoring runs without flash attention; use flash_attn='auto' or 'off'");
        }
        options_.flash_attn = FlashAttn::kOff;
        options_.n_batch = round_up(std::max(options_.n_batch, kAlign), kAlign);
        options_.n_outputs = std::max(options_.n_outputs, 2 * kAlign);  // a block and its padding fit
    } else if (options_.layout == Layout::kFlash64) {
        if (options_.flash_attn == FlashAttn::kOff) {
            close();
            throw std::invalid_argument(
                "the flash64 layout needs flash attention; use flash_attn='auto' or 'on'");
        }
        options_.flash_attn = FlashAttn::kOn;
        options_.n_batch = round_up(std::max(options_.n_batch, kAlign), kAlign);
    }
    if (options_.n_threads <= 0) {
        options_.n_threads = static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
    }
    auto cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(options_.n_ctx);
    cp.n_batch = static_cast<uint32_t>(options_.n_batch);
    cp.n_ubatch = static_cast<uint32_t>(options_.n_batch);
    cp.n_seq_max = static_cast<uint32_t>(n_seq);
    cp.n_outputs_max = static_cast<uint32_t>(options_.n_outputs);
    cp.n_threads = options_.n_threads;
    cp.n_threads_batch = options_.n_threads;
    cp.flash_attn_type = static_cast<llama_flash_attn_type>(options_.flash_attn);
    cp.kv_unified = true;
    if (options_.kv_f32) {
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
    }
    cp.swa_full = true;
    cp.no_perf = true;
    cp.abort_callback = abort_requested;
    cp.abort_callback_data = &active_control_;
    ctx_ = llama_init_from_model(model_, cp);
    if (ctx_ == nullptr) {
        const std::string why = recent_llama_errors();
        close();
        throw std::runtime_error("llama.cpp could not create a context (n_ctx=" +
                                 std::to_string(options_.n_ctx) + "); try a smaller n_ctx" + why);
    }
    options_.n_ctx = static_cast<int32_t>(llama_n_ctx(ctx_));
    // llama.cpp caps the batch at the context size and asserts (aborting the process) on
    // a larger batch: build batches no larger than what it kept.
    options_.n_batch = std::min(options_.n_batch, static_cast<int32_t>(llama_n_batch(ctx_)));
    if (options_.layout != Layout::kFast) {  // both batch-invariant layouts decode whole blocks
        options_.n_batch = options_.n_batch / kAlign * kAlign;
        if (options_.n_batch < kAlign) {
            close();
            throw std::invalid_argument("deterministic scoring needs n_ctx >= " + std::to_string(kAlign));
        }
    }
    if (exact) {
        const ExactSeqs seqs = exact_seqs();
        kv_ = std::make_shared<KvRestorer>(ctx_, seqs.temp_src, seqs.temp_dst, seqs.pin, n_swa());
    }
}

void Engine::close() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ctx_ != nullptr) {
        llama_free(ctx_);
        ctx_ = nullptr;
    }
    if (model_ != nullptr && owns_model_) {
        llama_model_free(model_);
    }
    model_ = nullptr;
    vocab_ = nullptr;  // owned by the model
}

bool Engine::closed() const { return ctx_ == nullptr; }

void Engine::check_open() const {
    if (ctx_ == nullptr) {
        throw std::invalid_argument("this model has been closed; load it again");
    }
}

// ---------------------------------------------------------------- decoding

void Engine::decode(llama_batch & batch, int32_t granularity, const RowsDecodedFn & on_rows) {
    decode_rows(batch, 0, batch.n_tokens, granularity, on_rows);
}

// llama_decode's return codes (llama.h): 0 ok; 1 no KV slot, memory restored; 2 aborted and
// -1 invalid batch / < -1 fatal, processed ubatches possibly left in memory (the caller's
// CallScope clears it). Only 1 is worth a retry: a smaller batch needs fewer free cells.
void Engine::decode_rows(llama_batch & batch, int32_t begin, int32_t end, int32_t granularity,
                         const RowsDecodedFn & on_rows) {
    llama_batch view = slice(batch, begin, end);
    const int32_t rc = llama_decode(ctx_, view);
    if (rc == 0) {
        on_rows(begin, end);
        return;
    }
    if (rc == 2) {
        throw Cancelled();
    }
    const int32_t n = end - begin;
    const int32_t half = n / 2 / granularity * granularity;
    if (rc == 1 && half >= granularity) {
        // Rows are in causal order, so the second half may attend to the first.
        decode_rows(batch, begin, begin + half, granularity, on_rows);
        decode_rows(batch, begin + half, end, granularity, on_rows);
        return;
    }
    if (rc == 1) {
        recent_llama_errors();  // drop llama.cpp's "failed to find a memory slot" lines: said below
        throw std::runtime_error(
            "llama_decode found no free KV cache cells (code 1) even for a batch of " +
            std::to_string(n) + " token" + (n == 1 ? "" : "s") +
            ", after retrying with smaller batches: the context of " + std::to_string(options_.n_ctx) +
            " cells is full. Load the model with a larger n_ctx or a smaller max_branches");
    }
    throw std::runtime_error(
        "llama_decode failed with code " + std::to_string(rc) +
        (rc == -1 ? " (llama.cpp rejected the batch as invalid; this is a pyllmattr bug, please report it)"
                  : " (fatal error in llama.cpp's compute graph; the model stays usable, but check the "
                    "back end, e.g. memory on a GPU)") +
        recent_llama_errors());
}

uintptr_t llama_symbol_address() {
    return reinterpret_cast<uintptr_t>(&llama_model_n_params);
}

}  // namespace pyllmattr
