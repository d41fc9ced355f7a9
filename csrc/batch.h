// RAII wrapper over llama_batch with multi-sequence tokens.
#pragma once

#include <cstdint>

#include "llama.h"

namespace pyllmattr {

class Batch {
  public:
    Batch(int32_t capacity, int32_t n_seq_max)
        : batch_(llama_batch_init(capacity, 0, n_seq_max)), capacity_(capacity) {
        batch_.n_tokens = 0;
    }
    ~Batch() { llama_batch_free(batch_); }
    Batch(const Batch &) = delete;
    Batch & operator=(const Batch &) = delete;

    void clear() { batch_.n_tokens = 0; }
    int32_t size() const { return batch_.n_tokens; }
    bool full() const { return batch_.n_tokens >= capacity_; }

    // Adds a token shared by KV sequences [seq_begin, seq_end); returns its index.
    int32_t add(int32_t token, int32_t pos, int32_t seq_begin, int32_t seq_end, bool output) {
        const int32_t i = batch_.n_tokens++;
        batch_.token[i] = token;
        batch_.pos[i] = pos;
        batch_.n_seq_id[i] = seq_end - seq_begin;
        for (int32_t s = seq_begin; s < seq_end; ++s) {
            batch_.seq_id[i][s - seq_begin] = s;
        }
        batch_.logits[i] = output ? 1 : 0;
        return i;
    }

    llama_batch & get() { return batch_; }

  private:
    llama_batch batch_;
    int32_t capacity_;
};

}  // namespace pyllmattr
