// Engine::score and Engine::score_pairs: executing decode plans on the context.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "batch.h"
#include "decode_stream.h"
#include "engine.h"
#include "engine_call.h"
#include "llama.h"

namespace pyllmattr {

namespace {

const CallControl kNoControl{};

// Removing a whole sequence cannot fail on any memory type (llama.h); a false here
// would leave stale cells that later waves attend to, so refuse to go on.
void remove_sequence(llama_memory_t mem, int32_t seq) {
    if (!llama_memory_seq_rm(mem, seq, -1, -1)) {
        throw std::runtime_error("llama.cpp could not free KV sequence " + std::to_string(seq) +
                                 " (llama_memory_seq_rm); this is a pyllmattr bug, please report it" +
                                 recent_llama_errors());
    }
}

}  // namespace

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

// Does the memory support removing part of a sequence? Recurrent states and
// some cache types do not; the scorer then never shares prefixes.
bool Engine::supports_partial_memory() {
    if (partial_memory_ < 0) {
        CallScope scope(ctx_, active_control_, kNoControl);
        Batch batch(2, 1);
        const Token t = bos() >= 0 ? bos() : 0;
        batch.add(t, 0, 0, 1, false);
        batch.add(t, 1, 0, 1, true);
        decode(batch.get(), 2, [](int32_t, int32_t) {});
        partial_memory_ = llama_memory_seq_rm(llama_get_memory(ctx_), 0, 1, -1) ? 1 : 0;
    }
    return partial_memory_ == 1;
}

namespace {

// "score: sequence 3" or "score_pairs: pair 3", for messages about one input.
std::string input_name(bool pairs, size_t i) {
    return std::string(pairs ? "score_pairs: pair " : "score: sequence ") + std::to_string(i);
}

}  // namespace

void Engine::check_fits(const Pairs & pairs, bool named_pairs, const std::function<int32_t(int32_t)> & overhead) const {
    if (pairs.size() == 0) {
        throw std::invalid_argument(named_pairs ? "score_pairs: no pairs to score" : "score: no sequences to score");
    }
    if (pairs.targets.size() != 1 && pairs.targets.size() != pairs.size()) {
        throw std::invalid_argument("score_pairs: " + std::to_string(pairs.size()) + " sequences but " +
                                    std::to_string(pairs.targets.size()) +
                                    " targets; give one target per sequence");
    }
    for (size_t i = 0; i < pairs.targets.size(); ++i) {
        if (pairs.targets[i].empty()) {
            throw std::invalid_argument(
                named_pairs ? input_name(true, i) + ": the target is empty; give at least one target token"
                            : "score: the target is empty; give at least one target token");
        }
        check_tokens(pairs.targets[i], named_pairs ? input_name(true, i) + " (target)" : "score (target)");
    }
    for (size_t i = 0; i < pairs.size(); ++i) {
        const auto & seq = pairs.prompts[i];
        const std::string name = input_name(named_pairs, i);
        if (seq.empty()) {
            throw std::invalid_argument(name + " is empty; every sequence needs at least one token "
                                               "(for example BOS)");
        }
        const size_t n_target = pairs.target(i).size();
        const int32_t extra = overhead ? overhead(static_cast<int32_t>(n_target)) : 0;
        if (seq.size() + n_target + static_cast<size_t>(extra) > static_cast<size_t>(options_.n_ctx)) {
            throw std::invalid_argument(
                name + (named_pairs ? "'s sequence plus its target is " : " plus the target is ") +
                std::to_string(seq.size() + n_target) + " tokens, more than the context of " +
                std::to_string(options_.n_ctx) +
                (extra > 0 ? " holds with deterministic padding (" + std::to_string(extra) + " cells)"
                           : std::string()) +
                "; load the model with a larger n_ctx (it was trained on " +
                std::to_string(n_ctx_train()) + ") or shorten the prompt");
        }
        check_tokens(seq, named_pairs ? name : "score");
    }
}

ScoreResult Engine::score(const std::vector<std::vector<Token>> & sequences,
                          const std::vector<Token> & target, Strategy strategy, const CallControl & control) {
    const std::vector<std::vector<Token>> targets{target};
    return run_scoring({sequences, targets}, false, strategy, control);
}

ScoreResult Engine::score_pairs(const std::vector<std::vector<Token>> & sequences,
                                const std::vector<std::vector<Token>> & targets, Strategy strategy,
                                const CallControl & control) {
    if (targets.size() != sequences.size()) {
        throw std::invalid_argument("score_pairs: " + std::to_string(sequences.size()) + " sequences but " +
                                    std::to_string(targets.size()) +
                                    " targets; give one target per sequence");
    }
    return run_scoring({sequences, targets}, true, strategy, control);
}

ScoreResult Engine::run_scoring(const Pairs & pairs, bool named_pairs, Strategy strategy,
                                const CallControl & control) {
    std::lock_guard<std::mutex> lock(mutex_);
    LogScope log;
    check_open();
    if (options_.layout == Layout::kExact) {  // scorer_exact.cpp
        if (exact_state_ < 0) {
            calibrate_exact();
        }
        return score_exact(pairs, named_pairs, strategy, control, exact_rules_, options_.max_branches,
                           exact_state_ == 1);
    }
    const auto started = std::chrono::steady_clock::now();
    const bool flash64 = options_.layout == Layout::kFlash64;  // else the fast layout
    const int32_t n_outputs = options_.n_outputs;
    std::function<int32_t(int32_t)> leaf_overhead;
    if (flash64) {
        leaf_overhead = [n_outputs](int32_t n_target) { return flash64_overhead_per_leaf(n_target, n_outputs); };
    }
    std::function<int32_t(int32_t)> fits_overhead;  // a wave's final flush pads up to kAlign more
    if (flash64) {
        fits_overhead = [&](int32_t n_target) { return leaf_overhead(n_target) + kAlign; };
    }
    check_fits(pairs, named_pairs, fits_overhead);

    // Never share more than this model's memory allows; the flash64 layout needs an
    // empty cache at every wave.
    strategy = std::max(strategy, sharing_strategy());
    if (flash64) {
        strategy = std::max(strategy, Strategy::kTriePerWave);
    }
    if (strategy != Strategy::kIndependent && !supports_partial_memory()) {
        strategy = Strategy::kIndependent;
    }
    int32_t max_cells = options_.n_ctx - (flash64 ? kAlign : 0);
    if (!flash64) {  // flash64 waves restart from an empty cache: their layout is fixed
        max_cells = std::min(max_cells, wave_cells(pairs));
    }
    const PlanLimits limits{max_cells + plan_slack_, options_.max_branches, leaf_overhead,
                            flash64 ? kAlign : 1};
    const Plan plan = make_plan(pairs, strategy, limits);

    CallScope scope(ctx_, active_control_, control);
    llama_memory_t mem = llama_get_memory(ctx_);
    const int32_t keeper = options_.max_branches;  // also the scratch sequence of padding rows
    std::vector<double> unique_scores(static_cast<size_t>(plan.row_offset.back()),
                                      std::numeric_limits<double>::quiet_NaN());
    ScoreStats stats;
    const StreamConfig config{options_.n_batch, options_.n_outputs, flash64, keeper,
                              bos() >= 0 ? bos() : 0, n_vocab()};
    DecodeStream stream(
        ctx_, config, plan.requests, unique_scores,
        [this](llama_batch & b, int32_t granularity, const RowsDecodedFn & on_rows) {
            decode(b, granularity, on_rows);
        },
        [&](int64_t real_rows) {
            stats.n_decoded += real_rows;
            check_cancel(control);
            if (control.progress && !control.progress(stats.n_decoded, plan.n_emitted)) {
                throw Cancelled();
            }
        });

    for (const Wave & wave : plan.waves) {
        if (flash64) {
            llama_memory_clear(mem, false);  // cells are then assigned from 0, in row order
        }
        for (const PrefixCopy & copy : wave.copies) {
            llama_memory_seq_cp(mem, keeper, copy.slot, 0, copy.length);
        }
        for (const Emission & e : wave.emissions) {
            stream.push(e);
        }
        stream.finish_wave();
        // Keep only the prefix the next wave shares, under the keeper sequence.
        remove_sequence(mem, keeper);
        if (wave.keep_length > 0) {
            llama_memory_seq_cp(mem, wave.last_slot, keeper, 0, wave.keep_length);
        }
        for (int32_t slot = 0; slot <= wave.last_slot; ++slot) {
            remove_sequence(mem, slot);
        }
    }

    stats.n_decode_calls = stream.n_decode_calls();
    stats.n_padding = stream.n_padding();
    stats.strategy = strategy;
    return gather_inputs(pairs, plan, unique_scores, stats, started);
}

// The scores of every input pair (duplicates included), in input order, and the call's
// stats completed with the plan's counts and the time since `started`.
ScoreResult Engine::gather_inputs(const Pairs & pairs, const Plan & plan, const std::vector<double> & unique_scores,
                                  ScoreStats stats, std::chrono::steady_clock::time_point started) {
    stats.n_trie = plan.n_trie;
    stats.n_naive = plan.n_naive;
    stats.n_unique = plan.n_unique;
    stats.n_waves = static_cast<int64_t>(plan.waves.size());
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ScoreResult result;
    result.stats = stats;
    result.offsets.resize(pairs.size() + 1, 0);
    for (size_t i = 0; i < pairs.size(); ++i) {
        result.offsets[i + 1] = result.offsets[i] + static_cast<int64_t>(pairs.target(i).size());
    }
    result.logprobs.resize(static_cast<size_t>(result.offsets.back()));
    for (size_t i = 0; i < pairs.size(); ++i) {
        const auto row = static_cast<size_t>(plan.unique_of_input[i]);
        const int64_t from = plan.row_offset[row];
        std::copy(unique_scores.begin() + from, unique_scores.begin() + plan.row_offset[row + 1],
                  result.logprobs.begin() + result.offsets[i]);
    }
    return result;
}

}  // namespace pyllmattr
