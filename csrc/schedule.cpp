#include "schedule.h"

#include "layout.h"

#include <algorithm>
#include <numeric>

namespace pyllmattr {
namespace {

int32_t common_prefix(const std::vector<Token> & a, const std::vector<Token> & b) {
    const size_t n = std::min(a.size(), b.size());
    size_t i = 0;
    while (i < n && a[i] == b[i]) {
        ++i;
    }
    return static_cast<int32_t>(i);
}

// Full sequences (sequence + target), deduplicated unless every input must be
// scored on its own. Fills the index maps of `plan`.
std::vector<std::vector<Token>> unique_full_sequences(
        const std::vector<std::vector<Token>> & sequences,
        const std::vector<Token> & target, bool dedupe, Plan & plan) {
    const int32_t n = static_cast<int32_t>(sequences.size());
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    if (dedupe) {
        // Sorting the prompts sorts the full sequences too: they share a suffix.
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
            return sequences[a] < sequences[b];
        });
    }
    std::vector<std::vector<Token>> full;
    plan.unique_of_input.assign(n, -1);
    for (int32_t i : order) {
        if (!dedupe || full.empty() || sequences[i] != sequences[plan.input_of_unique.back()]) {
            std::vector<Token> seq = sequences[i];
            seq.insert(seq.end(), target.begin(), target.end());
            full.push_back(std::move(seq));
            plan.input_of_unique.push_back(i);
        }
        plan.unique_of_input[i] = static_cast<int32_t>(full.size()) - 1;
        plan.n_naive += static_cast<int64_t>(sequences[i].size() + target.size());
    }
    plan.n_unique = static_cast<int32_t>(full.size());
    return full;
}

// Reorders the unique rows (a depth-first order) into `order`, keeping the index maps.
void reorder_unique(std::vector<std::vector<Token>> & full, const std::vector<int32_t> & order, Plan & plan) {
    std::vector<std::vector<Token>> moved(full.size());
    std::vector<int32_t> input_of_unique(full.size()), new_row(full.size());
    for (size_t i = 0; i < order.size(); ++i) {
        moved[i] = std::move(full[order[i]]);
        input_of_unique[i] = plan.input_of_unique[order[i]];
        new_row[order[i]] = static_cast<int32_t>(i);
    }
    full = std::move(moved);
    plan.input_of_unique = std::move(input_of_unique);
    for (int32_t & row : plan.unique_of_input) {
        row = new_row[row];
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

}  // namespace

Plan make_plan(const std::vector<std::vector<Token>> & sequences,
               const std::vector<Token> & target,
               Strategy strategy,
               const PlanLimits & limits) {
    Plan plan;
    const bool sharing = strategy != Strategy::kIndependent;
    auto full = unique_full_sequences(sequences, target, sharing, plan);
    if (sharing && limits.heavy_first) {
        reorder_unique(full, heavy_first_order(full), plan);
    }
    const int32_t n = plan.n_unique;

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
            const int64_t fresh = static_cast<int64_t>(full[end].size()) - s + limits.leaf_overhead;
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
    const int32_t n_target = static_cast<int32_t>(target.size());
    pending.reserve(static_cast<size_t>(n) * n_target);
    for (int32_t leaf = 0; leaf < n; ++leaf) {
        const int32_t prompt_len = static_cast<int32_t>(full[leaf].size()) - n_target;
        for (int32_t j = 0; j < n_target; ++j) {
            const int32_t p = prompt_len - 1 + j;
            int32_t owner = leaf;
            while (p < start[owner]) {
                --owner;
            }
            pending.push_back({leaf_wave[owner], leaf_base[owner] + (p - start[owner]),
                               {leaf, j, target[j]}});
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
