// What every engine call that decodes shares (engine.cpp, scorer.cpp, generator.cpp).
#pragma once

#include <atomic>

#include "engine.h"
#include "llama.h"
#include "llama_log.h"

namespace pyllmattr {

// Clears the KV cache and publishes the call's control to the abort callback
// when a call starts, and undoes both when it ends, however it ends: a failed
// or aborted decode may leave part of a batch in the cache. llama.cpp's log
// lines of the call go to the call's own sink (llama_log.h).
struct CallScope {
    LogScope log;
    llama_context * ctx;
    std::atomic<const CallControl *> & active;
    CallScope(llama_context * c, std::atomic<const CallControl *> & a, const CallControl & control)
        : ctx(c), active(a) {
        llama_memory_clear(llama_get_memory(ctx), false);
        active.store(&control);
    }
    ~CallScope() {
        active.store(nullptr);
        llama_memory_clear(llama_get_memory(ctx), false);
    }
    CallScope(const CallScope &) = delete;
    CallScope & operator=(const CallScope &) = delete;
};

// KV cells one wave may use. Every token of a wave attends over (and masks) all cells up to
// the highest one in use, and on a CPU several sequences per decode buy no throughput, so a
// wave gets the cells of its longest sequence, or the first 256 (llama.cpp pads the attended
// range to 256 cells, so short sequences share them for free). Leave-one-out, SmolLM2 Q4_1,
// 2 threads (bench/probes/wave_size.py): 110 tokens 21.1 s with 1 leaf per wave vs 25.9 s with
// 8; 250 tokens 26.1 vs 32.1 s; 32 tokens 2.32 s with 8 vs 2.66 s with 1. The same holds
// without flash attention (the exact layout), where every query attends over all of them.
constexpr int32_t kFreeWaveCells = 256;

inline int32_t wave_cells(const Pairs & pairs) {
    const auto longest = static_cast<int32_t>(pairs.longest_full());
    return longest > kFreeWaveCells ? longest : kFreeWaveCells;
}

inline void check_cancel(const CallControl & control) {
    if (control.cancel != nullptr && control.cancel->load()) {
        throw Cancelled();
    }
}

}  // namespace pyllmattr
