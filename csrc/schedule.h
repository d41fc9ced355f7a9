// Decode schedule for scoring many (prompt, target) pairs.
//
// Pair i is scored as the full sequence `prompts[i] + targets[i]`. The schedule
// dedupes these full sequences, sorts them (lexicographic order is a
// depth-first walk of their prefix trie) and splits the sorted run into waves.
// A wave decodes the trie nodes that its leaves need and that are not in the KV
// cache yet; each node is one token assigned to every KV sequence (one per
// leaf) below it, so a shared prefix is decoded once, whether it is a prompt
// shared by several targets or a prefix shared by several prompts. Between
// waves only the path shared with the next wave is kept, which bounds live KV
// cells by the context size.
//
// This file knows nothing about llama.cpp: it only plans.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace pyllmattr {

using Token = int32_t;

// How the scorer may reuse KV cache contents.
enum class Strategy {
    kTrie,            // share prefixes within and across waves
    kTriePerWave,     // share within a wave; every wave starts from an empty cache
    kIndependent,     // every sequence decoded alone, nothing shared
};

const char * strategy_name(Strategy strategy);

// Length of the common prefix of two token sequences.
int32_t common_prefix(const std::vector<Token> & a, const std::vector<Token> & b);  // "trie", "trie-per-wave", "independent"

// One output request: the log-prob of `token` at this node, stored at
// scores[index] (a pair's offset plus the target position).
struct OutputRequest {
    int64_t index;
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

// The pairs to score: targets.size() == prompts.size() (pair i: prompts[i] +
// targets[i]), or 1 (one target after every prompt).
struct Pairs {
    const std::vector<std::vector<Token>> & prompts;
    const std::vector<std::vector<Token>> & targets;

    size_t size() const { return prompts.size(); }
    const std::vector<Token> & target(size_t i) const { return targets.size() == 1 ? targets[0] : targets[i]; }
    size_t full_length(size_t i) const { return prompts[i].size() + target(i).size(); }
    size_t longest_full() const {
        size_t longest = 0;
        for (size_t i = 0; i < size(); ++i) {
            longest = full_length(i) > longest ? full_length(i) : longest;
        }
        return longest;
    }
};

struct Plan {
    std::vector<int32_t> unique_of_input;  // input pair -> unique pair (row)
    std::vector<int32_t> input_of_unique;  // unique pair -> one input pair
    std::vector<int32_t> input_of_leaf;    // leaf (distinct full sequence) -> one input pair
    std::vector<int64_t> row_offset;       // unique pair -> its scores' offset (n_unique + 1 entries)
    std::vector<Wave> waves;
    std::vector<OutputRequest> requests;
    int64_t n_emitted = 0;    // tokens the plan decodes
    int64_t n_trie = 0;       // distinct prefixes: the minimum any scorer must decode
    int64_t n_naive = 0;      // sum of full lengths: what scoring one by one decodes
    int32_t n_unique = 0;     // distinct pairs (identical prompt and target)
    int32_t n_leaves = 0;     // distinct full sequences
};

struct PlanLimits {
    int32_t max_cells;   // KV cells available (the context size)
    int32_t max_slots;   // leaves per wave (KV sequence ids, the keeper excluded)
    // Extra cells a leaf may take (padding rows), given the most target tokens of a
    // pair on it; none when empty.
    std::function<int32_t(int32_t n_target)> leaf_overhead = {};
    int32_t share_block = 1;    // share prefixes only in whole blocks of this many tokens
    bool heavy_first = false;   // visit the trie's largest subtrees first (layout.h)
};

// Builds the plan. There must be at least one pair and every full sequence must
// fit in `limits.max_cells` (the caller validates).
Plan make_plan(const Pairs & pairs, Strategy strategy, const PlanLimits & limits);

}  // namespace pyllmattr
