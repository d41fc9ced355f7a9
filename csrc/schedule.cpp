#include "schedule.h"

#include "layout.h"

#include <algorithm>
#include <numeric>

namespace pyllmattr {

int32_t common_prefix(const std::vector<Token> & a, const std::vector<Token> & b) {
    const size_t n = std::min(a.size(), b.size());
    size_t i = 0;
    while (i < n && a[i] == b[i]) {
        ++i;
    }
    return static_cast<int32_t>(i);
}

namespace {

// Token p of pair i's full sequence.
Token full_token(const Pairs & pairs, size_t i, size_t p) {
    const auto & prompt = pairs.prompts[i];
    return p < prompt.size() ? prompt[p] : pairs.target(i)[p - prompt.size()];
}

// Compares the full sequences of pairs a and b lexicographically (<0, 0, >0),
// without building them.
int compare_full(const Pairs & pairs, size_t a, size_t b) {
    const size_t len_a = pairs.full_length(a);
    const size_t len_b = pairs.full_length(b);
    const size_t n = std::min(len_a, len_b);
    for (size_t p = 0; p < n; ++p) {
        const Token x = full_token(pairs, a, p);
        const Token y = full_token(pairs, b, p);
        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return len_a == len_b ? 0 : (len_a < len_b ? -1 : 1);
}

// A distinct pair: which leaf (distinct full sequence) it reads, and where its
// target starts on it.
struct Row {
    int32_t leaf;
    int32_t prompt_len;
    int32_t n_target;
};

// The leaves (distinct full sequences, sorted unless every input must be scored
// on its own) and the distinct pairs on them. Fills the index maps of `plan`.
std::vector<std::vector<Token>> unique_full_sequences(const Pairs & pairs, bool dedupe, Plan & plan,
                                                      std::vector<Row> & rows) {
    const auto n = static_cast<int32_t>(pairs.size());
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    if (dedupe) {
        // Identical full sequences become neighbours, ordered by where their target starts.
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
            const int c = compare_full(pairs, a, b);
            return c != 0 ? c < 0 : pairs.prompts[a].size() < pairs.prompts[b].size();
        });
    }
    std::vector<std::vector<Token>> full;
    plan.unique_of_input.assign(n, -1);
    int32_t previous = -1;
    for (int32_t i : order) {
        plan.n_naive += static_cast<int64_t>(pairs.full_length(i));
        const auto prompt_len = static_cast<int32_t>(pairs.prompts[i].size());
        const bool same_full = dedupe && previous >= 0 && compare_full(pairs, previous, i) == 0;
        if (same_full && rows.back().prompt_len == prompt_len) {
            plan.unique_of_input[i] = static_cast<int32_t>(rows.size()) - 1;
            continue;
        }
        if (!same_full) {
            std::vector<Token> seq = pairs.prompts[i];
            const auto & target = pairs.target(i);
            seq.insert(seq.end(), target.begin(), target.end());
            full.push_back(std::move(seq));
            plan.input_of_leaf.push_back(i);
        }
        rows.push_back({static_cast<int32_t>(full.size()) - 1, prompt_len,
                        static_cast<int32_t>(pairs.target(i).size())});
        plan.input_of_unique.push_back(i);
        plan.unique_of_input[i] = static_cast<int32_t>(rows.size()) - 1;
        previous = i;
    }
    plan.n_unique = static_cast<int32_t>(rows.size());
    plan.n_leaves = static_cast<int32_t>(full.size());
    plan.row_offset.assign(rows.size() + 1, 0);
    for (size_t r = 0; r < rows.size(); ++r) {
        plan.row_offset[r + 1] = plan.row_offset[r] + rows[r].n_target;
    }
    return full;
}

// Reorders the leaves (a depth-first order) into `order`, keeping the rows on their leaves.
void reorder_leaves(std::vector<std::vector<Token>> & full, const std::vector<int32_t> & order, Plan & plan,
                    std::vector<Row> & rows) {
    std::vector<std::vector<Token>> moved(full.size());
    std::vector<int32_t> input_of_leaf(full.size()), new_index(full.size());
    for (size_t i = 0; i < order.size(); ++i) {
        moved[i] = std::move(full[order[i]]);
        input_of_leaf[i] = plan.input_of_leaf[order[i]];
        new_index[order[i]] = static_cast<int32_t>(i);
    }
    full = std::move(moved);
    plan.input_of_leaf = std::move(input_of_leaf);
    for (Row & row : rows) {
        row.leaf = new_index[row.leaf];
    }
}

// Emits leaf k's new tokens, positions [start, size). A token at position p is
// shared by the following leaves of the wave whose common prefix with leaf k
// is longer than p.
void emit_leaf(const std::vector<std::vector<Token>> & full, const std::vector<int32_t> & lcp,
               int32_t k, int32_t start, int32_t wave_first, int32_t wave_end, Wave & wave) {
    std::vector<int32_t> shared_len;  // shared_len[i]: common prefix of leaves k and k+1+i
    int32_t running = INT32_MAX;
    for (int32_t e = k + 1; e < wave_end; ++e) {
        running = std::min(running, lcp[e]);
        if (running <= start) {
            break;
        }
        shared_len.push_back(running);
    }
    const int32_t slot = k - wave_first;
    int32_t n_sharing = static_cast<int32_t>(shared_len.size());
    const int32_t size = static_cast<int32_t>(full[k].size());
    for (int32_t p = start; p < size; ++p) {
        while (n_sharing > 0 && shared_len[n_sharing - 1] <= p) {
            --n_sharing;
        }
        wave.emissions.push_back({full[k][p], p, slot, slot + 1 + n_sharing, 0, 0});
    }
}

// Extra cells each leaf may take: the overhead of its longest target.
std::vector<int32_t> leaf_overheads(const std::vector<Row> & rows, int32_t n_leaves, const PlanLimits & limits) {
    std::vector<int32_t> longest(n_leaves, 0);
    for (const Row & row : rows) {
        longest[row.leaf] = std::max(longest[row.leaf], row.n_target);
    }
    std::vector<int32_t> overhead(n_leaves, 0);
    if (limits.leaf_overhead) {
        for (int32_t k = 0; k < n_leaves; ++k) {
            overhead[k] = limits.leaf_overhead(longest[k]);
        }
    }
    return overhead;
}

}  // namespace

const char * strategy_name(Strategy strategy) {
    switch (strategy) {
        case Strategy::kTrie: return "trie";
        case Strategy::kTriePerWave: return "trie-per-wave";
        case Strategy::kIndependent: return "independent";
    }
    return "?";
}

Plan make_plan(const Pairs & pairs, Strategy strategy, const PlanLimits & limits) {
    Plan plan;
    const bool sharing = strategy != Strategy::kIndependent;
    std::vector<Row> rows;
    auto full = unique_full_sequences(pairs, sharing, plan, rows);
    if (sharing && limits.heavy_first) {
        reorder_leaves(full, heavy_first_order(full), plan, rows);
    }
    const int32_t n = plan.n_leaves;
    const std::vector<int32_t> overhead = leaf_overheads(rows, n, limits);

    std::vector<int32_t> lcp(n, 0);  // common prefix with the previous leaf
    for (int32_t k = 1; k < n && sharing; ++k) {
        lcp[k] = common_prefix(full[k - 1], full[k]);
    }
    for (int32_t k = 0; k < n; ++k) {
        plan.n_trie += static_cast<int64_t>(full[k].size()) - lcp[k];
        lcp[k] = lcp[k] / limits.share_block * limits.share_block;
    }

    // Where each leaf's emissions start, and where they sit in the plan.
    std::vector<int32_t> start(n), leaf_wave(n), leaf_base(n);
    const int32_t max_slots = sharing ? std::max(1, limits.max_slots) : 1;

    int32_t k = 0;
    while (k < n) {
        Wave wave;
        const int32_t first = k;
        const int32_t kept = strategy == Strategy::kTrie ? lcp[first] : 0;
        int64_t live = kept;
        int32_t end = first;
        while (end < n && end - first < max_slots) {
            const int32_t s = end == first ? kept : lcp[end];
            const int64_t fresh = static_cast<int64_t>(full[end].size()) - s + overhead[end];
            if (end > first && live + fresh > limits.max_cells) {
                break;
            }
            start[end] = s;
            live += fresh;
            ++end;
        }
        int32_t copy_len = kept;
        for (int32_t leaf = first; leaf < end; ++leaf) {
            if (leaf > first) {
                copy_len = std::min(copy_len, lcp[leaf]);
            }
            if (copy_len > 0) {
                wave.copies.push_back({leaf - first, copy_len});
            }
            leaf_wave[leaf] = static_cast<int32_t>(plan.waves.size());
            leaf_base[leaf] = static_cast<int32_t>(wave.emissions.size());
            emit_leaf(full, lcp, leaf, start[leaf], first, end, wave);
        }
        wave.last_slot = end - 1 - first;
        wave.keep_length = (strategy == Strategy::kTrie && end < n) ? lcp[end] : 0;
        plan.n_emitted += static_cast<int64_t>(wave.emissions.size());
        plan.waves.push_back(std::move(wave));
        k = end;
    }

    // Attach each requested log-prob to the emission that computes its node:
    // the latest leaf at or before this one whose emissions cover the position.
    struct Pending {
        int32_t wave, emission;
        OutputRequest request;
    };
    std::vector<Pending> pending;
    pending.reserve(static_cast<size_t>(plan.row_offset.back()));
    for (size_t r = 0; r < rows.size(); ++r) {
        const Row & row = rows[r];
        for (int32_t j = 0; j < row.n_target; ++j) {
            const int32_t p = row.prompt_len - 1 + j;
            int32_t owner = row.leaf;
            while (p < start[owner]) {
                --owner;
            }
            pending.push_back({leaf_wave[owner], leaf_base[owner] + (p - start[owner]),
                               {plan.row_offset[r] + j, full[row.leaf][p + 1]}});
        }
    }
    std::stable_sort(pending.begin(), pending.end(), [](const Pending & a, const Pending & b) {
        return a.wave != b.wave ? a.wave < b.wave : a.emission < b.emission;
    });
    plan.requests.reserve(pending.size());
    for (const Pending & item : pending) {
        Emission & e = plan.waves[item.wave].emissions[item.emission];
        if (e.n_requests == 0) {
            e.first_request = static_cast<int32_t>(plan.requests.size());
        }
        ++e.n_requests;
        plan.requests.push_back(item.request);
    }
    return plan;
}

}  // namespace pyllmattr
