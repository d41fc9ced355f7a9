#include "layout.h"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <utility>

namespace pyllmattr {
namespace {

int32_t floor_to(int32_t n, int32_t block) { return n / block * block; }

// Emissions come leaf by leaf; a leaf's run has consecutive positions from its start.
std::vector<std::pair<int32_t, int32_t>> leaf_runs(const Wave & wave) {
    std::vector<std::pair<int32_t, int32_t>> runs;
    const auto n = static_cast<int32_t>(wave.emissions.size());
    for (int32_t e = 0; e < n;) {
        const int32_t begin = e;
        while (e < n && wave.emissions[e].slot_begin == wave.emissions[begin].slot_begin) {
            ++e;
        }
        runs.emplace_back(begin, e);
    }
    return runs;
}

// Slots that share the cell of an emission: those that share its whole block (a leaf that
// shares only part of the block gets a copy of that part instead).
void share_whole_blocks(const Wave & wave, const std::pair<int32_t, int32_t> & run, int32_t block,
                        std::vector<int32_t> & slot_end) {
    const auto & em = wave.emissions;
    const int32_t len = em[run.second - 1].pos + 1;
    for (int32_t i = run.first; i < run.second; ++i) {
        const int32_t last = floor_to(em[i].pos, block) + block - 1;  // the block's last position
        slot_end[i] = last < len ? em[i + (last - em[i].pos)].slot_end : em[i].slot_begin + 1;
    }
}

// The nearest leaf before `slot` that holds positions [0, start) of it, or -1 for the kept prefix.
int32_t copy_source(const std::vector<int32_t> & lcp, const std::vector<bool> & has_cells, int32_t slot,
                    int32_t start, int32_t kept) {
    int32_t running = INT32_MAX;
    for (int32_t j = slot - 1; j >= 0; --j) {
        running = std::min(running, lcp[j + 1]);
        if (running < start) {
            break;
        }
        if (has_cells[j]) {
            return j;
        }
    }
    if (start <= kept && running >= start) {
        return -1;
    }
    throw std::logic_error("exact layout: no cells hold the prefix of a branch (pyllmattr bug)");
}

}  // namespace

WaveLayout layout_wave(const Wave & wave, const std::vector<const std::vector<Token> *> & fulls,
                       int32_t kept, int32_t block) {
    const int32_t n_slots = wave.last_slot + 1;
    std::vector<int32_t> lcp(n_slots, 0);  // with the previous slot; slot 0: with the kept prefix
    lcp[0] = kept;
    for (int32_t k = 1; k < n_slots; ++k) {
        lcp[k] = common_prefix(*fulls[k - 1], *fulls[k]);
    }
    WaveLayout out;
    out.slot_end.resize(wave.emissions.size());
    const auto runs = leaf_runs(wave);
    std::vector<bool> has_cells(n_slots, false);
    for (const auto & run : runs) {
        share_whole_blocks(wave, run, block, out.slot_end);
        has_cells[wave.emissions[run.first].slot_begin] = true;
    }
    const bool first_in_place = kept > 0 && has_cells[0];
    const int32_t kept_block = floor_to(kept, block);
    int32_t with_first = INT32_MAX;  // common prefix of slot k with slot 0
    for (int32_t k = 0, r = 0; k < n_slots; ++k) {
        if (k > 0) {
            with_first = std::min(with_first, lcp[k]);
        }
        const bool shares_first_block = first_in_place && (k == 0 || with_first >= kept_block + block);
        LeafLayout leaf;
        leaf.slot = k;
        leaf.keeper_len = shares_first_block ? kept : floor_to(std::min(with_first, kept), block);
        if (!has_cells[k]) {
            // Fully shared (a prefix of an earlier leaf): nothing of its own to lay out,
            // but it still sees the kept blocks it shares.
            leaf.begin = leaf.end = -1;
            if (leaf.keeper_len > 0) {
                out.leaves.push_back(leaf);
            }
            continue;
        }
        const auto [begin, end] = runs[r++];
        leaf.begin = begin;
        leaf.end = end;
        leaf.start = wave.emissions[begin].pos;
        leaf.in_place = k == 0 && first_in_place;
        leaf.copy_begin = leaf.in_place ? leaf.start : floor_to(leaf.start, block);
        leaf.copy_end = k + 1;
        if (leaf.has_copy()) {
            leaf.copy_source = copy_source(lcp, has_cells, k, leaf.start, kept);
            const int32_t last = leaf.copy_begin + block - 1;  // the copied block's last position
            if (last < wave.emissions[end - 1].pos + 1) {
                leaf.copy_end = out.slot_end[begin + (last - leaf.start)];
            }
        }
        out.leaves.push_back(leaf);
    }
    return out;
}

std::vector<int32_t> heavy_first_order(const std::vector<std::vector<Token>> & sequences) {
    // Subtrees are contiguous ranges of a depth-first order; split each range by the token
    // at its branching depth, and visit the larger parts first (an explicit stack: tries of
    // long prompts are deep).
    struct Range {
        int32_t begin, end, depth;
    };
    std::vector<int32_t> order;
    order.reserve(sequences.size());
    std::vector<Range> stack{{0, static_cast<int32_t>(sequences.size()), 0}};
    while (!stack.empty()) {
        Range r = stack.back();
        stack.pop_back();
        if (r.end - r.begin == 1) {
            order.push_back(r.begin);
            continue;
        }
        const int32_t depth = std::max(r.depth, common_prefix(sequences[r.begin], sequences[r.end - 1]));
        std::vector<Range> parts;
        for (int32_t i = r.begin; i < r.end;) {
            const int32_t begin = i;
            const bool ended = static_cast<int32_t>(sequences[i].size()) <= depth;
            ++i;
            while (i < r.end && !ended && static_cast<int32_t>(sequences[i].size()) > depth &&
                   sequences[i][depth] == sequences[begin][depth]) {
                ++i;
            }
            parts.push_back({begin, i, depth + 1});
        }
        // Largest first; the stack pops the last pushed, so push in reverse.
        std::stable_sort(parts.begin(), parts.end(), [](const Range & a, const Range & b) {
            return a.end - a.begin > b.end - b.begin;
        });
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
            stack.push_back(*it);
        }
    }
    return order;
}

}  // namespace pyllmattr
