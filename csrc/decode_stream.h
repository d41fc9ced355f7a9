// Feeds a wave's emissions to llama_decode in batches and collects log-probs, in the
// fast layout or the flash64 one (Layout in engine.h; the exact layout has its own
// stream, exact_stream.h).
//
// The flash64 layout (0.1's deterministic scoring, kept for benchmarks) makes every
// token's arithmetic independent of what else is decoded with it, on llama.cpp's CPU
// backend with flash attention on:
// - every decode has a multiple of kAlign rows (at least kAlign), so flash
//   attention always takes its tiled path and no weight kernel sees a
//   remainder tile;
// - every token lands in a KV cell congruent to its position modulo kAlign,
//   so flash attention groups and orders its keys exactly as when the sequence
//   is decoded alone from an empty cache (the tiles are kAlign cells wide).
// The plan shares prefixes only in whole kAlign-token blocks, so no tile mixes
// cells of a shared prefix with cells of a branch.
// Padding rows are scratch tokens of a sequence nothing else attends to. Cells
// are assigned sequentially from an empty cache, so a row's cell is its index
// in the wave's stream; the caller clears the cache before every wave.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "batch.h"
#include "schedule.h"

struct llama_context;

namespace pyllmattr {

// Flash attention's KV tile on the CPU backend: the flash64 layout's alignment, and the
// decode granularity of both batch-invariant layouts (the exact layout's blocks divide it).
constexpr int32_t kAlign = 64;

struct StreamConfig {
    int32_t n_batch;
    int32_t n_outputs;      // logit rows per decode
    bool flash64;           // the flash64 layout's padding and cell placement (else: fast)
    int32_t scratch_seq;    // KV sequence of the padding rows
    Token scratch_token;
    int32_t n_vocab;
};

class DecodeStream {
  public:
    // Decodes a batch, possibly in several pieces whose sizes are multiples of the
    // granularity, calling back after each piece while its logits are available.
    using DecodeFn = std::function<void(llama_batch &, int32_t granularity,
                                        const std::function<void(int32_t begin, int32_t end)> &)>;
    using DecodedFn = std::function<void(int64_t real_rows)>;

    DecodeStream(llama_context * ctx, const StreamConfig & config, const std::vector<OutputRequest> & requests,
                 std::vector<double> & scores, DecodeFn decode, DecodedFn on_decoded);

    void push(const Emission & e);
    void finish_wave();  // decode what is pending and restart the cell count

    int64_t n_padding() const { return n_padding_; }
    int64_t n_decode_calls() const { return n_decode_calls_; }

  private:
    void align_to(int32_t pos);  // scratch rows until the next row's cell ≡ pos (mod kAlign)
    void add_scratch_row();
    void flush();
    void collect(int32_t begin, int32_t end);  // log-probs of outputs in rows [begin, end)

    llama_context * ctx_;
    StreamConfig config_;
    const std::vector<OutputRequest> & requests_;
    std::vector<double> & scores_;
    DecodeFn decode_;
    DecodedFn on_decoded_;
    Batch batch_;
    std::vector<std::pair<int32_t, const Emission *>> outputs_;
    int64_t cell_ = 0;          // the KV cell the next row lands in
    int32_t scratch_pos_ = 0;
    int64_t real_rows_ = 0;     // rows of the pending batch that are not padding
    int64_t n_padding_ = 0;
    int64_t n_decode_calls_ = 0;
};

int32_t round_up(int64_t n, int32_t to);

// Writes log-softmax(logits)[req.token] to out[req.index] for every request.
void fill_logprobs(const float * logits, int32_t n_vocab, const OutputRequest * requests,
                   int32_t n_requests, std::vector<double> & out);

// Padding cells a leaf adds in the flash64 layout, at most (placement, and its share of the
// flushes forced by the output limit), given the most target tokens of a pair on it;
// a wave's final flush adds up to kAlign more.
int32_t flash64_overhead_per_leaf(int32_t n_target, int32_t n_outputs);

}  // namespace pyllmattr
