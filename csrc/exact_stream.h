// Executes the exact layout (layout.h) of a plan's waves on llama.cpp: restores the kept
// prefix, copies and fillers (kv_restore.h) and decodes the rows, so that every row lands in
// the cell the layout gives it. The cache is empty at the start of every wave and cells are
// taken in order, so a running count (`cursor_`) is the next free cell. Rows added to the
// batch before a restore get placeholder cells, freed just before the decode, which then
// fills them in row order. Only a flush that is not forced by a full batch pads the decode
// (scratch rows) to the row count the rules require; fillers then realign the next block.
#pragma once

#include <cstdint>
#include <vector>

#include "batch.h"
#include "decode_stream.h"
#include "kv_restore.h"
#include "layout.h"

struct llama_context;

namespace pyllmattr {

// KV sequences the exact layout uses besides the leaves' slots.
struct ExactSeqs {
    int32_t keeper;   // the prefix kept from the previous wave
    int32_t scratch;  // padding rows
    int32_t filler;   // alignment fillers
    int32_t hole;     // placeholders of rows not decoded yet
    int32_t temp_src, temp_dst, pin;  // for KvRestorer
    int32_t count() const { return 7; }
};

class ExactStream {
  public:
    ExactStream(llama_context * ctx, const StreamConfig & config, const ExactRules & rules,
                const ExactSeqs & seqs, KvRestorer & kv, int32_t n_ctx, int32_t n_swa,
                const std::vector<OutputRequest> & requests, std::vector<double> & scores,
                DecodeStream::DecodeFn decode, DecodeStream::DecodedFn on_decoded);

    // Lays out and decodes one wave from an empty cache; `kept` holds the `kept_len` first
    // positions of the wave's first leaf (from save_prefix on the previous wave).
    void run_wave(const Wave & wave, const WaveLayout & layout, const std::vector<KvRestorer::Blob> & kept,
                  int32_t kept_len);
    // Positions [0, length) of `slot`, for the next wave (call before it starts).
    std::vector<KvRestorer::Blob> save_prefix(int32_t slot, int32_t length) {
        return kv_.capture_pieces(slot, 0, length);
    }

    int64_t n_padding() const { return n_padding_; }
    int64_t n_decode_calls() const { return n_decode_calls_; }

  private:
    struct Row {
        int32_t slot_begin, slot_end, pos;
    };

    void lay_out_leaf(const Wave & wave, const WaveLayout & layout, const LeafLayout & leaf);
    void start_leaf(const LeafLayout & leaf, int32_t first_outputs);
    void push(const Emission & e, int32_t slot_end);
    void reserve_rows();  // placeholders for the rows added since the last restore
    void align();         // fillers up to the next block boundary
    void flush(bool pad);
    int32_t pad_outputs(int32_t rows);  // returns the batch's new row count
    void pin_decoded();
    bool pending_needs(int32_t slot, int32_t source, int32_t before) const;
    // Requested logit rows per decode, leaving room for their padding (pad_outputs).
    int32_t max_outputs() const { return config_.n_outputs - rules_.row_mult; }
    void collect(int32_t begin, int32_t end);

    llama_context * ctx_;
    StreamConfig config_;
    ExactRules rules_;
    ExactSeqs seqs_;
    KvRestorer & kv_;
    int32_t n_ctx_, n_swa_;
    const std::vector<OutputRequest> & requests_;
    std::vector<double> & scores_;
    DecodeStream::DecodeFn decode_;
    DecodeStream::DecodedFn on_decoded_;
    Batch batch_;
    std::vector<std::pair<int32_t, const Emission *>> outputs_;
    std::vector<Row> pending_;
    int64_t cursor_ = 0;     // the next free cell, once the unreserved rows are placed
    int32_t unreserved_ = 0;  // rows at the end of the batch without a placeholder (they go at cursor_)
    int32_t reserved_ = 0;    // placeholder cells of rows in the batch
    int32_t scratch_pos_ = 0;
    int64_t n_padding_ = 0;
    int64_t n_decode_calls_ = 0;
};

}  // namespace pyllmattr
