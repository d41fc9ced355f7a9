// Decode schedule for scoring many token sequences against one target.
//
// Every sequence is scored as `sequence + target`. The schedule dedupes these
// full sequences, sorts them (lexicographic order is a depth-first walk of
// their prefix trie) and splits the sorted run into waves. A wave decodes the
// trie nodes that its leaves need and that are not in the KV cache yet; each
// node is one token assigned to every KV sequence (one per leaf) below it, so
// a shared prefix is decoded once. Between waves only the path shared with the
// next wave is kept, which bounds live KV cells by the context size.
//
// This file knows nothing about llama.cpp: it only plans.
#pragma once

#include <cstdint>
#include <vector>

namespace pyllmattr {

using Token = int32_t;

// How the scorer may reuse KV cache contents.
enum class Strategy {
    kTrie,            // share prefixes within and across waves
    kTriePerWave,     // share within a wave; every wave starts from an empty cache
    kIndependent,     // every sequence decoded alone, nothing shared
};

// One output request: the log-prob of `token` at this node, stored at
// scores[row][col].
struct OutputRequest {
    int32_t row;  // index into unique full sequences
    int32_t col;  // target position
    Token token;
};

// One token to decode.
struct Emission {
    Token token;
    int32_t pos;
    int32_t slot_begin;  // KV sequence ids [slot_begin, slot_end) share this token
    int32_t slot_end;
    int32_t first_request;  // requests[first_request, first_request + n_requests)
    int32_t n_requests;
};

// Before a wave's tokens are decoded, slot `slot` receives the first `length`
// positions of the kept prefix.
struct PrefixCopy {
    int32_t slot;
    int32_t length;
};

struct Wave {
    std::vector<PrefixCopy> copies;
    std::vector<Emission> emissions;
    int32_t keep_length = 0;  // prefix of the last leaf to keep for the next wave
    int32_t last_slot = 0;    // slot of the wave's last leaf
};

struct Plan {
    std::vector<int32_t> unique_of_input;  // input sequence -> unique row
    std::vector<int32_t> input_of_unique;  // unique row -> one input sequence
    std::vector<Wave> waves;
    std::vector<OutputRequest> requests;
    int64_t n_emitted = 0;    // tokens the plan decodes
    int64_t n_trie = 0;       // distinct prefixes: the minimum any scorer must decode
    int64_t n_naive = 0;      // sum of full lengths: what scoring one by one decodes
    int32_t n_unique = 0;
};

struct PlanLimits {
    int32_t max_cells;   // KV cells available (the context size)
    int32_t max_slots;   // leaves per wave (KV sequence ids, the keeper excluded)
    int32_t leaf_overhead = 0;  // extra cells a leaf may take (padding rows)
    int32_t share_block = 1;    // share prefixes only in whole blocks of this many tokens
    bool heavy_first = false;   // visit the trie's largest subtrees first (layout.h)
};

// Builds the plan. `sequences` must be non-empty and every full sequence must
// fit in `limits.max_cells` (the caller validates).
Plan make_plan(const std::vector<std::vector<Token>> & sequences,
               const std::vector<Token> & target,
               Strategy strategy,
               const PlanLimits & limits);

}  // namespace pyllmattr
