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

inline void check_cancel(const CallControl & control) {
    if (control.cancel != nullptr && control.cancel->load()) {
        throw Cancelled();
    }
}

}  // namespace pyllmattr
