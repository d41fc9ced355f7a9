// The exact layout's checks without Python, for a CPU that this machine can only emulate
// (bench/arm/check_arm.sh builds it for aarch64 and runs it under qemu-user).
//
// Links pyllmattr's engine (csrc/, which has no Python in it) with a static llama.cpp and
// prints one JSON object: llama.cpp's system info, the block and rules the self-check
// chose, whether the self-check with half that block fails (so the width is not a guess),
// and tests/test_exact.py's two checks: prefix-shared leave-one-out against scoring one by
// one, and a sequence alone against the same sequence in other slots of a batch, bit for bit.
//
// Usage: exact_check MODEL.gguf [N_THREADS]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine.h"
#include "llama.h"

using pyllmattr::Engine;
using pyllmattr::Strategy;
using pyllmattr::Token;

namespace {

const char * kPrompt =
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing "
    "golf on weekends, reading history books, and cooking Italian food for his";
const char * kTarget = " wife and two kids.";

std::vector<std::vector<double>> rows(const pyllmattr::ScoreResult & r) {
    std::vector<std::vector<double>> out;
    for (size_t i = 0; i + 1 < r.offsets.size(); ++i) {
        out.emplace_back(r.logprobs.begin() + r.offsets[i], r.logprobs.begin() + r.offsets[i + 1]);
    }
    return out;
}

// Largest |a - b| over two score tables of the same shape, and whether all are equal bit for bit.
struct Diff {
    double max_abs = 0.0;
    bool identical = true;
};

Diff compare(const std::vector<double> & a, const std::vector<double> & b) {
    Diff d;
    d.identical = a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        d.max_abs = std::fmax(d.max_abs, std::fabs(a[i] - b[i]));
    }
    return d;
}

std::vector<double> score_one(Engine & e, const std::vector<Token> & s, const std::vector<Token> & target) {
    return rows(e.score({s}, target, Strategy::kIndependent, {}))[0];
}

}  // namespace

int main(int argc, char ** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf [N_THREADS]\n", argv[0]);
        return 2;
    }
    pyllmattr::EngineOptions options;
    options.n_ctx = 2048;
    options.n_threads = argc > 2 ? std::atoi(argv[2]) : 2;
    options.layout = pyllmattr::Layout::kExact;  // as load_gguf gives on the CPU
    Engine engine(argv[1], options);

    const pyllmattr::ExactRules rules = engine.exact_rules();  // runs the self-check
    const bool verified = engine.exact_verified();
    const bool half_passes = engine.exact_self_check({rules.block / 2, rules.row_mult, rules.row_min});

    const std::vector<Token> prompt = engine.tokenize(kPrompt, true, false);
    const std::vector<Token> target = engine.tokenize(kTarget, false, false);

    // Prefix-shared leave-one-out against one by one (tests/test_exact.py).
    std::vector<std::vector<Token>> loo{prompt};
    for (size_t i = 1; i < prompt.size(); i += 3) {
        auto s = prompt;
        s.erase(s.begin() + static_cast<long>(i));
        loo.push_back(s);
    }
    const auto shared = engine.score(loo, target, Strategy::kTrie, {});
    std::vector<double> by_one;
    for (const auto & s : loo) {
        const auto r = score_one(engine, s, target);
        by_one.insert(by_one.end(), r.begin(), r.end());
    }
    const Diff loo_diff = compare(shared.logprobs, by_one);

    // The prompt alone and in slots 0, 3 and last of a batch of other sequences.
    std::vector<std::vector<Token>> others;
    for (size_t i = 0; i < prompt.size(); i += 4) {
        auto s = prompt;
        s.erase(s.begin() + static_cast<long>(i));
        others.push_back(s);
    }
    const std::vector<double> alone = score_one(engine, prompt, target);
    Diff slot_diff;
    for (size_t slot : {size_t{0}, size_t{3}, others.size()}) {
        auto mixed = others;
        mixed.insert(mixed.begin() + static_cast<long>(slot), prompt);
        const Diff d = compare(rows(engine.score(mixed, target, Strategy::kTrie, {}))[slot], alone);
        slot_diff.max_abs = std::fmax(slot_diff.max_abs, d.max_abs);
        slot_diff.identical = slot_diff.identical && d.identical;
    }

    std::string info = llama_print_system_info();
    for (auto & c : info) {
        c = c == '"' ? '\'' : c;
    }
    std::printf(
        "{\"system_info\": \"%s\", \"block\": %d, \"row_mult\": %d, \"row_min\": %d, \"verified\": %s,\n"
        " \"half_block_self_check_passes\": %s,\n"
        " \"loo\": {\"n\": %zu, \"n_decoded\": %lld, \"n_trie\": %lld, \"identical\": %s, \"max_abs\": %g},\n"
        " \"slots\": {\"identical\": %s, \"max_abs\": %g}}\n",
        info.c_str(), rules.block, rules.row_mult, rules.row_min, verified ? "true" : "false",
        half_passes ? "true" : "false", loo.size(), static_cast<long long>(shared.stats.n_decoded),
        static_cast<long long>(shared.stats.n_trie), loo_diff.identical ? "true" : "false", loo_diff.max_abs,
        slot_diff.identical ? "true" : "false", slot_diff.max_abs);
    return verified && !half_passes && loo_diff.identical && slot_diff.identical ? 0 : 1;
}
