// Engine::score with deterministic=true: the exact layout (layout.h, exact_stream.h), and
// the self-check that verifies its rules on the loaded model at first use.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>

#include "batch.h"
#include "engine_call.h"
#include "engine.h"
#include "exact_stream.h"
#include "kv_restore.h"
#include "llama.h"

namespace pyllmattr {

namespace {

// Cells a padded decode may add (scratch rows, then fillers to the next block).
int32_t flush_cells(const ExactRules & r) { return std::max(r.row_min, r.row_mult) + r.block; }

// Cells the padded decodes of a wave of `slots` leaves may add beyond what the plan counts:
// one flush before each leaf's copy at most, one each time a decode's outputs are full, and
// the wave's last one.
int32_t wave_reserve(const ExactRules & rules, int32_t slots, int32_t n_target, int32_t n_outputs) {
    const int32_t output_flushes = (slots * n_target) / std::max(1, n_outputs - rules.block) + 1;
    return (slots + output_flushes + 1) * flush_cells(rules);
}

int32_t longest_target(const Pairs & pairs) {
    size_t longest = 0;
    for (const auto & t : pairs.targets) {
        longest = std::max(longest, t.size());
    }
    return static_cast<int32_t>(longest);
}

// The SIMD width of the softmax and f16 matrix kernels of llama.cpp's CPU back end, from
// the features it was built with (llama_print_system_info); the self-check verifies it.
int32_t cpu_block() {
    const std::string info = llama_print_system_info();
    if (info.find("AVX512 = 1") != std::string::npos) {
        return 16;
    }
    if (info.find("AVX2 = 1") != std::string::npos || info.find("AVX = 1") != std::string::npos ||
        info.find("NEON = 1") != std::string::npos) {
        return 8;
    }
    return 64;
}

const CallControl kQuiet{};

// The slot (or -1: the kept prefix) whose cells hold positions [0, length) of `slot`.
int32_t prefix_holder(const WaveLayout & layout, const std::vector<const std::vector<Token> *> & fulls,
                      int32_t slot, int32_t length) {
    std::vector<bool> has_cells(fulls.size(), false);
    for (const LeafLayout & leaf : layout.leaves) {
        has_cells[leaf.slot] = leaf.begin >= 0;
    }
    int32_t running = std::numeric_limits<int32_t>::max();
    for (int32_t j = slot; j >= 0; --j) {
        if (j < slot) {
            running = std::min(running, common_prefix(*fulls[j], *fulls[j + 1]));
        }
        if (running < length) {
            break;
        }
        if (has_cells[j]) {
            return j;
        }
    }
    return -1;
}

}  // namespace

ExactSeqs Engine::exact_seqs() const {
    const int32_t b = options_.max_branches;
    return {b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6};
}

ScoreResult Engine::score_exact(const Pairs & pairs, bool named_pairs, Strategy strategy, const CallControl & control,
                                const ExactRules & rules, int32_t max_slots, bool verified) {
    const auto started = std::chrono::steady_clock::now();
    const int32_t leaf_overhead = 2 * (rules.block - 1);
    const int32_t n_outputs = options_.n_outputs;
    check_fits(pairs, named_pairs, [&](int32_t n_target) {
        return leaf_overhead + wave_reserve(rules, 1, n_target, n_outputs);
    });
    // Unverified rules, and memories that cannot drop part of a sequence: score one by one,
    // which is what "alone" means, so the guarantee holds either way.
    if (!verified || is_recurrent() || !supports_partial_memory()) {
        strategy = Strategy::kIndependent;
    }
    // Fewer leaves per wave when a small context cannot hold the padding of many (one
    // always fits: check_fits).
    const int32_t n_target = longest_target(pairs);
    const auto longest = static_cast<int32_t>(pairs.longest_full());
    while (max_slots > 1 &&
           options_.n_ctx + plan_slack_ - wave_reserve(rules, max_slots, n_target, n_outputs) < longest + leaf_overhead) {
        --max_slots;
    }
    const int32_t reserve = wave_reserve(rules, max_slots, n_target, n_outputs);
    const int32_t max_cells = std::min(options_.n_ctx - reserve, wave_cells(pairs));
    PlanLimits limits{max_cells + plan_slack_, max_slots, [leaf_overhead](int32_t) { return leaf_overhead; }, 1,
                      true};
    const Plan plan = make_plan(pairs, strategy, limits);

    CallScope scope(ctx_, active_control_, control);
    const ExactSeqs seqs = exact_seqs();
    std::vector<double> unique_scores(static_cast<size_t>(plan.row_offset.back()),
                                      std::numeric_limits<double>::quiet_NaN());
    ScoreStats stats;
    const StreamConfig config{options_.n_batch, options_.n_outputs, true, seqs.scratch,
                              bos() >= 0 ? bos() : 0, n_vocab()};
    ExactStream stream(
        ctx_, config, rules, seqs, *kv_, options_.n_ctx, n_swa(), plan.requests, unique_scores,
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

    std::vector<KvRestorer::Blob> kept;
    int32_t kept_len = 0;
    int32_t first_leaf = 0;
    std::vector<std::vector<Token>> fulls;
    std::vector<const std::vector<Token> *> wave_fulls;
    for (const Wave & wave : plan.waves) {
        const int32_t n_slots = wave.last_slot + 1;
        fulls.assign(n_slots, {});
        wave_fulls.assign(n_slots, nullptr);
        for (int32_t s = 0; s < n_slots; ++s) {
            const auto input = static_cast<size_t>(plan.input_of_leaf[first_leaf + s]);
            fulls[s] = pairs.prompts[input];
            fulls[s].insert(fulls[s].end(), pairs.target(input).begin(), pairs.target(input).end());
            wave_fulls[s] = &fulls[s];
        }
        const WaveLayout layout = layout_wave(wave, wave_fulls, kept_len, rules.block);
        stream.run_wave(wave, layout, kept, kept_len);
        kept_len = wave.keep_length;
        kept.clear();
        if (kept_len > 0) {
            const int32_t holder = prefix_holder(layout, wave_fulls, wave.last_slot, kept_len);
            kept = stream.save_prefix(holder >= 0 ? holder : seqs.keeper, kept_len);
        }
        first_leaf += n_slots;
    }

    stats.n_decode_calls = stream.n_decode_calls();
    stats.n_padding = stream.n_padding();
    stats.strategy = strategy;
    return gather_inputs(pairs, plan, unique_scores, stats, started);
}

// ---------------------------------------------------------------- self-check

const ExactRules & Engine::exact_rules() {
    std::lock_guard<std::mutex> lock(mutex_);
    check_open();
    if (exact_state_ < 0) {
        calibrate_exact();
    }
    return exact_rules_;
}

bool Engine::exact_verified() {
    exact_rules();
    return exact_state_ == 1;
}

bool Engine::exact_self_check(const ExactRules & rules) {
    std::lock_guard<std::mutex> lock(mutex_);
    check_open();
    if (exact_state_ < 0) {
        calibrate_exact();
    }
    return run_self_check(rules);
}

std::vector<ExactRules> Engine::exact_candidates() const {
    // The CPU's width with few padding rows first; then the probe's wide rows; then 64-cell
    // blocks (a multiple of every SIMD width llama.cpp uses).
    const int32_t block = cpu_block();
    const int32_t swa = n_swa();
    std::vector<ExactRules> candidates;
    for (const ExactRules & candidate : {ExactRules{block, 4, 16}, ExactRules{block, 16, 64}, ExactRules{64, 16, 64}}) {
        // A branch copies less than a block, which a sliding window must hold whole (the
        // self-check catches window kinds that need more).
        if (swa > 0 && swa < candidate.block) {
            continue;
        }
        candidates.push_back(candidate);
    }
    return candidates;
}

void Engine::prepare_exact() {
    // Filler cells are copies of one computed cell: compute one.
    CallScope scope(ctx_, active_control_, kQuiet);
    const ExactSeqs seqs = exact_seqs();
    Batch batch(1, seqs.keeper + seqs.count());
    batch.add(bos() >= 0 ? bos() : 0, 0, seqs.scratch, seqs.scratch + 1, false);
    decode(batch.get(), 1, [](int32_t, int32_t) {});
    kv_->build_stock(seqs.scratch, 0, seqs.hole);
}

void Engine::calibrate_exact() {
    const auto started = std::chrono::steady_clock::now();
    prepare_exact();
    exact_state_ = 0;
    exact_rules_ = kUnverifiedRules;
    for (const ExactRules & candidate : exact_candidates()) {
        if (run_self_check(candidate)) {
            exact_rules_ = candidate;
            exact_state_ = 1;
            break;
        }
    }
    exact_check_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

bool Engine::adopt_exact_rules(const ExactRules & rules, bool verified) {
    std::lock_guard<std::mutex> lock(mutex_);
    LogScope log;
    check_open();
    if (options_.layout != Layout::kExact || exact_state_ >= 0) {
        return false;  // not the exact layout, or its rules are already settled
    }
    // Only an outcome this engine's own check could have reached: a verified candidate,
    // or the unverified fallback (which scores one by one).
    const auto same = [&rules](const ExactRules & r) {
        return r.block == rules.block && r.row_mult == rules.row_mult && r.row_min == rules.row_min;
    };
    const std::vector<ExactRules> candidates = exact_candidates();
    if (verified ? std::none_of(candidates.begin(), candidates.end(), same) : !same(kUnverifiedRules)) {
        return false;
    }
    prepare_exact();
    exact_rules_ = rules;
    exact_state_ = verified ? 1 : 0;
    exact_check_seconds_ = 0.0;
    return true;
}

ExactOutcome Engine::exact_outcome() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {exact_state_, exact_rules_, exact_check_seconds_};
}

namespace {
constexpr int32_t kSelfCheckMinTokens = 64;
}  // namespace

bool Engine::run_self_check(const ExactRules & rules) {
    // Leave-one-out over a prompt of 2.5 blocks and at least kSelfCheckMinTokens, and the prompt with a second target:
    // branch points inside a block, on a block boundary and near the end, waves of three leaves (the kept prefix is restored
    // between them), decodes of several row and output counts holding several leaves; every
    // score must equal the sequence's alone.
    static const char * kText =
        " The committee met on a cold morning in early March to review the annual budget, the new "
        "library and the plans for the river park. After a long debate about costs, schools, roads "
        "and taxes, the members agreed to meet again in April with better numbers.";
    std::vector<Token> body = tokenize(kText, false, false);
    if (body.empty()) {
        return false;
    }
    // At least 64 tokens: on a short prompt the attention's sums over the cache are too short
    // for the CPU's wide kernels to change the order they add in, so rules that are not exact
    // passed (4-cell blocks on an AVX2 build, with 16 tokens; measured failing from 40 tokens).
    const int32_t length = std::max(2 * rules.block + rules.block / 2 + 6, kSelfCheckMinTokens);
    std::vector<Token> prompt;
    if (add_bos() && bos() >= 0) {
        prompt.push_back(bos());
    }
    while (static_cast<int32_t>(prompt.size()) < length) {
        prompt.push_back(body[prompt.size() % body.size()]);
    }
    std::vector<Token> target;
    for (size_t i = 1; i <= 5; ++i) {
        target.push_back(body[i % body.size()]);
    }
    std::vector<std::vector<Token>> sequences{prompt};
    for (int32_t cut : {3, rules.block - 1, rules.block + rules.block / 2 - 1, 2 * rules.block, length - 2}) {
        auto s = prompt;
        s.erase(s.begin() + cut);
        sequences.push_back(std::move(s));
    }
    sequences.emplace_back(prompt.begin(), prompt.begin() + 5);  // alone: a decode padded to row_min
    std::vector<std::vector<Token>> targets(sequences.size(), target);
    // The full prompt again with another target: a prompt shared by two targets branches
    // where the targets differ.
    sequences.push_back(prompt);
    targets.emplace_back(target.rbegin(), target.rend());
    const Pairs pairs{sequences, targets};
    const ScoreResult shared = score_exact(pairs, false, Strategy::kTrie, kQuiet, rules, 3, true);
    const ScoreResult alone = score_exact(pairs, false, Strategy::kIndependent, kQuiet, rules, 3, true);
    return std::memcmp(shared.logprobs.data(), alone.logprobs.data(), shared.logprobs.size() * sizeof(double)) == 0;
}

}  // namespace pyllmattr
