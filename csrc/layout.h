// The exact layout: where each token of a wave goes in the KV cache so that every
// sequence computes bit for bit as when it is decoded alone from an empty cache, on
// llama.cpp's CPU back end with flash attention off (docs/numerics.md has the evidence).
//
// Without flash attention a query's softmax sums its exponentials in chunks of `block`
// consecutive KV cells (one SIMD register, 16 floats with AVX-512) and the product with V
// accumulates cell c in SIMD lane c mod `block`; cells of other sequences are masked and
// add exact zeros. So a query computes as alone when every `block`-aligned run of its
// sequence's positions lies in one `block`-aligned run of cells at the same offsets
// (cell ≡ position mod block), in increasing position order; and the weight products
// compute each row on its own once a decode has a multiple of `row_mult` rows (at least
// `row_min`). Which cells the other sequences' tokens take does not matter.
//
// Hence: sequences share cells only in whole blocks. A branch that leaves a shared prefix
// inside a block gets a copy of that block's leading cells (their KV data, restored from a
// saved state, not recomputed) and continues in the same cell block. A branch starts on a
// block boundary; the cells a block leaves unused are taken by restored filler cells, not
// by decoded rows. This file only plans; exact_stream.* executes on llama.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "schedule.h"

namespace pyllmattr {

struct ExactRules {
    int32_t block = 16;     // cells per softmax chunk and V-product lane group
    int32_t row_mult = 16;  // decodes have a multiple of this many rows ...
    int32_t row_min = 16;   // ... and at least this many
};

// The version of the exact layout's rules, candidates and self-check. Outcomes of the
// self-check are cached on disk keyed by it (pyllmattr/models/selfcheck_cache.py): bump
// it whenever layout.*, exact_stream.*, kv_restore.* or scorer_exact.cpp change in a way
// that could change what the self-check finds or what the rules mean.
inline constexpr int32_t kExactRulesVersion = 2;  // 2: the self-check prompt is at least 64 tokens

// How one leaf (KV sequence) of a wave gets its cells, in cell order.
struct LeafLayout {
    int32_t slot = 0;
    int32_t begin = 0, end = 0;  // its emissions: wave.emissions[begin, end)
    int32_t start = 0;           // position of its first emission
    int32_t keeper_len = 0;      // positions [0, keeper_len) shared with the kept prefix
    int32_t copy_begin = 0;      // positions [copy_begin, start) restored from copy_source
    int32_t copy_source = -1;    // a slot holding those positions, or -1: the kept prefix
    int32_t copy_end = 0;        // slots [slot, copy_end) receive the copy
    bool in_place = false;       // continues the kept prefix's cells (no realignment)
    bool has_copy() const { return copy_begin < start; }
};

struct WaveLayout {
    std::vector<LeafLayout> leaves;     // leaves with emissions, in wave order
    std::vector<int32_t> slot_end;      // per emission: it is shared by slots [slot_begin, slot_end)
};

// `fulls` are the wave's full sequences by slot; `kept` positions of the first one are in
// the kept prefix (from the previous wave). The plan must share prefixes token by token
// (PlanLimits::share_block == 1).
WaveLayout layout_wave(const Wave & wave, const std::vector<const std::vector<Token> *> & fulls,
                       int32_t kept, int32_t block);

// A depth-first order of the trie of `sequences` (given in a depth-first order, e.g.
// sorted) that visits the child with the most leaves first. Leave-one-out then scores
// the full prompt first and every branch after it, so that each branch copies its
// partial block from cells that are already computed.
std::vector<int32_t> heavy_first_order(const std::vector<std::vector<Token>> & sequences);

}  // namespace pyllmattr
