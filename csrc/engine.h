// The scoring engine: one GGUF model, one llama.cpp context, and the scorer
// that executes decode plans (schedule.h) on them. No Python here; the
// bindings convert types, release the GIL and map exceptions.
//
// Errors: std::invalid_argument for bad input (-> ValueError), Cancelled when
// the caller cancels, std::runtime_error for llama.cpp failures.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "layout.h"
#include "llama_log.h"
#include "schedule.h"

struct llama_model;
struct llama_context;
struct llama_vocab;
struct llama_batch;

namespace pyllmattr {

class Cancelled : public std::runtime_error {
  public:
    Cancelled() : std::runtime_error("cancelled") {}
};

// Called after every decode with (tokens decoded so far, tokens to decode).
// Returning false cancels. May throw to abort (e.g. a pending KeyboardInterrupt).
using ProgressFn = std::function<bool(int64_t, int64_t)>;

// Polled while llama.cpp computes, from its compute thread: true aborts the
// running decode (and the call, with Cancelled). Must not throw; the caller
// rate-limits it (the bindings check for Ctrl-C here).
using InterruptFn = std::function<bool()>;

// How the caller of a long call watches it and stops it.
struct CallControl {
    ProgressFn progress;                          // after every decode
    const std::atomic<bool> * cancel = nullptr;   // polled between graph nodes
    InterruptFn interrupted;                      // polled between graph nodes
};

// Called after rows [begin, end) of a batch were decoded, while their logits
// are available (at index - begin).
using RowsDecodedFn = std::function<void(int32_t begin, int32_t end)>;

// llama_flash_attn_type's values (engine.cpp checks them against llama.h).
enum class FlashAttn : int32_t { kAuto = -1, kOff = 0, kOn = 1 };

// How scoring lays sequences out in decodes and KV cells (docs/numerics.md). One name per
// layout from here to Python: _core.Layout, pyllmattr.models.exactness.Layout.
enum class Layout : int32_t {
    kFast = 0,     // flash attention as llama.cpp chooses, token-level prefix sharing; scores
                   // depend on the batch (attributions measure a noise floor)
    kExact = 1,    // flash attention off, cells placed in SIMD-width blocks (layout.h,
                   // scorer_exact.cpp): batch-invariant; the default on the CPU back end
    kFlash64 = 2,  // the 0.1 batch-invariant layout: flash attention, 64-row decodes and 64-cell
                   // tiles (decode_stream.h); kept for benchmarks only (pyllmattr._bench)
};

struct EngineOptions {
    int32_t n_ctx = 4096;
    int32_t n_batch = 512;        // tokens per llama_decode
    int32_t n_outputs = 64;       // logit rows per llama_decode (bounds logit memory)
    int32_t max_branches = 8;     // leaves per wave (KV sequences); at most 255
    int32_t n_threads = 0;        // 0: hardware concurrency
    int32_t n_gpu_layers = 0;
    FlashAttn flash_attn = FlashAttn::kAuto;
    bool kv_f32 = false;          // keep the KV cache in f32 instead of f16
    Layout layout = Layout::kFast;  // kExact forces flash attention off, kFlash64 on
};

struct ScoreStats {
    int64_t n_decoded = 0;
    int64_t n_trie = 0;
    int64_t n_naive = 0;
    int64_t n_decode_calls = 0;
    int64_t n_waves = 0;
    int64_t n_padding = 0;  // scratch rows decoded to keep the layout batch-invariant
    int32_t n_unique = 0;
    double seconds = 0.0;
    Strategy strategy = Strategy::kTrie;  // what the call used
};

struct ScoreResult {
    std::vector<double> logprobs;  // every input's scores, concatenated
    std::vector<int64_t> offsets;  // input i's scores are logprobs[offsets[i], offsets[i + 1])
    ScoreStats stats;
};

struct ChatMessage {
    std::string role;     // "system", "user", "assistant"
    std::string content;
};

struct GenerateOptions {
    int32_t max_new_tokens = 25;
    float temperature = 0.0f;  // 0: greedy
    int32_t top_k = 0;         // 0: off
    float top_p = 1.0f;        // 1: off
    uint32_t seed = 0xFFFFFFFFu;
    bool stop_at_eog = true;
};

class KvRestorer;
struct ExactSeqs;

// The rules exact calls use when the self-check failed for every candidate: they then
// score every sequence alone, exact by definition.
inline constexpr ExactRules kUnverifiedRules{64, 16, 64};

// What the exact layout's rules are on an engine, without settling them.
struct ExactOutcome {
    int state = -1;            // -1 not settled yet, 0 the self-check failed, 1 verified
    ExactRules rules{};
    double check_seconds = 0;  // the self-check's time in this process (0: adopted, or not run)
};

class Engine {
  public:
    // Loads a GGUF file. Throws std::invalid_argument when it cannot be loaded, and
    // Cancelled when `interrupted` (polled while loading) returns true.
    Engine(const std::string & path, const EngineOptions & options, const InterruptFn & interrupted = {});
    // Uses a model loaded elsewhere in this process (e.g. by llama-cpp-python);
    // the caller keeps it alive for the engine's lifetime.
    Engine(llama_model * borrowed, const EngineOptions & options);
    ~Engine();
    Engine(const Engine &) = delete;
    Engine & operator=(const Engine &) = delete;

    void close();
    bool closed() const;

    std::vector<Token> tokenize(const std::string & text, bool add_special, bool parse_special) const;
    std::string detokenize(const std::vector<Token> & tokens, bool remove_special, bool unparse_special) const;
    std::string token_piece(Token token, bool special) const;

    // log p(target[j] | sequence, target[:j]) for every sequence and j.
    ScoreResult score(const std::vector<std::vector<Token>> & sequences,
                      const std::vector<Token> & target, Strategy strategy, const CallControl & control);
    // log p(targets[i][j] | sequences[i], targets[i][:j]) for every pair i and j: the
    // trie spans prompt + target, so a prompt with several targets is decoded once.
    ScoreResult score_pairs(const std::vector<std::vector<Token>> & sequences,
                            const std::vector<std::vector<Token>> & targets, Strategy strategy,
                            const CallControl & control);

    std::vector<Token> generate(const std::vector<Token> & prompt, const GenerateOptions & options,
                                const CallControl & control);

    // Exact scoring (Layout::kExact; scorer_exact.cpp). The layout rules are checked on
    // this model the first time they are needed: a self-check scores sequences alone and
    // prefix-shared and compares the results bit for bit.
    const ExactRules & exact_rules();
    bool exact_verified();  // the self-check passed (false: exact calls score one by one)
    // For tests: the self-check with given rules (does not change the engine's rules).
    bool exact_self_check(const ExactRules & rules);
    // Takes a known outcome of the self-check on this model and machine (a disk cache)
    // instead of running it. Refused (false) when the rules are already settled, the
    // engine does not use the exact layout, or the outcome is not one the check can reach.
    bool adopt_exact_rules(const ExactRules & rules, bool verified);
    ExactOutcome exact_outcome() const;  // never runs the self-check

    // The GGUF file's chat template ("" when it has none), and a conversation rendered
    // with it (or with `tmpl`, a template text or a built-in name such as "chatml");
    // add_assistant ends the text with the opening of an assistant turn.
    std::string chat_template() const;
    std::string apply_chat_template(const std::vector<ChatMessage> & messages, bool add_assistant,
                                    const std::string & tmpl) const;

    // The strategy `share_prefix=true` resolves to for this model's memory type.
    Strategy sharing_strategy() const;

    int32_t n_vocab() const;
    int32_t n_ctx() const { return options_.n_ctx; }
    int32_t n_ctx_train() const;
    int32_t n_swa() const;
    bool is_recurrent() const;
    Token bos() const;
    Token eos() const;
    bool add_bos() const;
    bool is_eog(Token token) const;
    std::string meta(const std::string & key) const;  // "" when absent
    std::string description() const;
    // The options in effect: as given, then adjusted to what llama.cpp and the
    // layout allow (n_ctx, n_batch, n_outputs, flash_attn, n_threads).
    const EngineOptions & options() const { return options_; }

  private:
    friend struct EngineTesting;

    void create_context();
    void check_open() const;
    void check_tokens(const std::vector<Token> & tokens, const std::string & what) const;
    bool supports_partial_memory();
    // Decodes `batch`; when llama.cpp finds no free KV cells it retries in halves (sizes
    // multiples of `granularity`) before giving up. Throws Cancelled or std::runtime_error.
    void decode(llama_batch & batch, int32_t granularity, const RowsDecodedFn & on_rows);
    void decode_rows(llama_batch & batch, int32_t begin, int32_t end, int32_t granularity,
                     const RowsDecodedFn & on_rows);
    // Every pair is non-empty and fits the context with `overhead(its target length)`
    // cells to spare; messages name "score_pairs: pair i" or "score: sequence i".
    void check_fits(const Pairs & pairs, bool named_pairs, const std::function<int32_t(int32_t)> & overhead) const;
    ScoreResult run_scoring(const Pairs & pairs, bool named_pairs, Strategy strategy, const CallControl & control);
    static ScoreResult gather_inputs(const Pairs & pairs, const Plan & plan, const std::vector<double> & unique_scores,
                                     ScoreStats stats, std::chrono::steady_clock::time_point started);
    // The exact layout (scorer_exact.cpp); the caller holds the lock.
    ScoreResult score_exact(const Pairs & pairs, bool named_pairs, Strategy strategy, const CallControl & control,
                            const ExactRules & rules, int32_t max_slots, bool verified);
    void calibrate_exact();
    void prepare_exact();  // the filler cells every exact wave copies
    std::vector<ExactRules> exact_candidates() const;
    bool run_self_check(const ExactRules & rules);
    ExactSeqs exact_seqs() const;

    llama_model * model_ = nullptr;
    bool owns_model_ = false;
    llama_context * ctx_ = nullptr;
    const llama_vocab * vocab_ = nullptr;
    EngineOptions options_;
    // The running call's control, polled by llama.cpp's abort callback.
    std::atomic<const CallControl *> active_control_{nullptr};
    int partial_memory_ = -1;  // -1 unknown, 0/1: can the cache drop part of a sequence?
    int32_t plan_slack_ = 0;   // EngineTesting only
    ExactRules exact_rules_{};
    int exact_state_ = -1;  // -1 not checked yet, 0 the self-check failed, 1 verified
    double exact_check_seconds_ = 0.0;
    std::shared_ptr<KvRestorer> kv_;
    mutable std::mutex mutex_;  // one call at a time per context
};

// Test-only hooks, bound as _core.testing; nothing else calls them.
struct EngineTesting {
    // Lets the planner use `cells` more KV cells than the context has, which makes
    // llama_decode really run out of cells and exercises the recovery from it.
    static void set_plan_slack(Engine & engine, int32_t cells) { engine.plan_slack_ = cells; }
};

// Address of a libllama function as this extension resolved it: compared with
// llama-cpp-python's to prove both use one libllama before sharing a model.
uintptr_t llama_symbol_address();

}  // namespace pyllmattr
