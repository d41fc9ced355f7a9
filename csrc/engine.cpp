#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

#include "decode_stream.h"
#include "llama.h"

namespace pyllmattr {

namespace {

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

}  // namespace
// ---------------------------------------------------------------- lifecycle

Engine::Engine(const std::string & path, const EngineOptions & options, const InterruptFn & interrupted)
    : options_(options) {
    init_backend_once();
    auto params = llama_model_default_params();
    params.n_gpu_layers = options.n_gpu_layers;
    params.progress_callback = keep_loading;
    params.progress_callback_user_data = const_cast<InterruptFn *>(&interrupted);
    model_ = llama_model_load_from_file(path.c_str(), params);
    if (model_ == nullptr) {
        const std::string log = recent_llama_errors();
        if (interrupted && interrupted()) {
            throw Cancelled();
        }
        throw std::invalid_argument(load_failure(path, log));
    }
    owns_model_ = true;
    create_context();
}

Engine::Engine(llama_model * borrowed, const EngineOptions & options) : options_(options) {
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
    const int32_t n_seq = options_.max_branches + 1;  // + the keeper sequence
    options_.n_outputs = std::max({options_.n_outputs, n_seq, 1});
    options_.n_outputs = std::min(options_.n_outputs, std::max(options_.n_batch, n_seq));
    if (options_.deterministic) {
        if (options_.flash_attn == 0) {
            close();
            throw std::invalid_argument(
                "deterministic scoring needs flash attention; use flash_attn='auto' or 'on'");
        }
        options_.flash_attn = 1;
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
    if (options_.deterministic) {
        options_.n_batch = options_.n_batch / kAlign * kAlign;
        if (options_.n_batch < kAlign) {
            close();
            throw std::invalid_argument("deterministic scoring needs n_ctx >= " + std::to_string(kAlign));
        }
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

// ---------------------------------------------------------------- vocabulary

std::vector<Token> Engine::tokenize(const std::string & text, bool add_special, bool parse_special) const {
    check_open();
    const auto len = static_cast<int32_t>(text.size());
    std::vector<Token> tokens(text.size() + 8);
    int32_t n = llama_tokenize(vocab_, text.data(), len, tokens.data(),
                               static_cast<int32_t>(tokens.size()), add_special, parse_special);
    if (n < 0 && n != std::numeric_limits<int32_t>::min()) {
        tokens.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab_, text.data(), len, tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, parse_special);
    }
    if (n < 0) {
        throw std::invalid_argument("text is too long to tokenize");
    }
    tokens.resize(static_cast<size_t>(n));
    return tokens;
}

std::string Engine::detokenize(const std::vector<Token> & tokens, bool remove_special,
                               bool unparse_special) const {
    check_open();
    check_tokens(tokens, "detokenize");
    std::string text(tokens.size() * 8 + 16, '\0');
    const auto n_tok = static_cast<int32_t>(tokens.size());
    int32_t n = llama_detokenize(vocab_, tokens.data(), n_tok, text.data(),
                                 static_cast<int32_t>(text.size()), remove_special, unparse_special);
    if (n < 0) {
        text.resize(static_cast<size_t>(-n));
        n = llama_detokenize(vocab_, tokens.data(), n_tok, text.data(),
                             static_cast<int32_t>(text.size()), remove_special, unparse_special);
    }
    if (n < 0) {
        throw std::runtime_error("llama_detokenize failed with code " + std::to_string(n));
    }
    text.resize(static_cast<size_t>(n));
    return text;
}

std::string Engine::token_piece(Token token, bool special) const {
    check_open();
    check_tokens({token}, "token_piece");
    std::string piece(64, '\0');
    int32_t n = llama_token_to_piece(vocab_, token, piece.data(), static_cast<int32_t>(piece.size()), 0, special);
    if (n < 0) {  // the piece is -n bytes long
        piece.resize(static_cast<size_t>(-n));
        n = llama_token_to_piece(vocab_, token, piece.data(), static_cast<int32_t>(piece.size()), 0, special);
    }
    if (n < 0) {
        throw std::runtime_error("llama_token_to_piece failed with code " + std::to_string(n));
    }
    piece.resize(static_cast<size_t>(n));
    return piece;
}

void Engine::check_tokens(const std::vector<Token> & tokens, const std::string & what) const {
    const int32_t n_vocab = llama_vocab_n_tokens(vocab_);
    for (Token t : tokens) {
        if (t < 0 || t >= n_vocab) {
            throw std::invalid_argument(what + ": token id " + std::to_string(t) +
                                        " is outside this model's vocabulary [0, " +
                                        std::to_string(n_vocab) + ")");
        }
    }
}

// ---------------------------------------------------------------- metadata

// Every accessor checks that the model is open: after close() its pointers dangle.
int32_t Engine::n_vocab() const { check_open(); return llama_vocab_n_tokens(vocab_); }
int32_t Engine::n_ctx_train() const { check_open(); return llama_model_n_ctx_train(model_); }
int32_t Engine::n_swa() const { check_open(); return llama_model_n_swa(model_); }
bool Engine::is_recurrent() const {
    check_open();
    return llama_model_is_recurrent(model_) || llama_model_is_hybrid(model_);
}
Token Engine::bos() const { check_open(); return llama_vocab_bos(vocab_); }
Token Engine::eos() const { check_open(); return llama_vocab_eos(vocab_); }
bool Engine::add_bos() const { check_open(); return llama_vocab_get_add_bos(vocab_); }
bool Engine::is_eog(Token token) const {
    check_open();
    check_tokens({token}, "is_eog");
    return llama_vocab_is_eog(vocab_, token);
}

std::string Engine::meta(const std::string & key) const {
    check_open();
    const int32_t n = llama_model_meta_val_str(model_, key.c_str(), nullptr, 0);
    if (n < 0) {
        return "";
    }
    std::string value(static_cast<size_t>(n) + 1, '\0');
    llama_model_meta_val_str(model_, key.c_str(), value.data(), value.size());
    value.resize(static_cast<size_t>(n));
    return value;
}

std::string Engine::description() const {
    check_open();
    char buf[256];
    llama_model_desc(model_, buf, sizeof(buf));
    return buf;
}

std::string Engine::flash_attn_mode() const {
    return llama_flash_attn_type_name(static_cast<llama_flash_attn_type>(options_.flash_attn));
}

Strategy Engine::sharing_strategy() const {
    if (is_recurrent()) {
        return Strategy::kIndependent;  // a recurrent state cannot be shared by position
    }
    if (n_swa() > 0) {
        // A sliding-window cache may reuse cells of a kept prefix that lie outside
        // the window of the sequence that owns them: never keep prefixes across waves.
        return Strategy::kTriePerWave;
    }
    return Strategy::kTrie;
}

uintptr_t llama_symbol_address() {
    return reinterpret_cast<uintptr_t>(&llama_model_n_params);
}

}  // namespace pyllmattr
