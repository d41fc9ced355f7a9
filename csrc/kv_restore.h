// Places KV cells without computing them, through llama.cpp's sequence state API
// (llama_state_seq_get_data / set_data): a restored cell takes the next free cell from the
// cache's head, like a decoded row, so restores and decodes together lay out the cache in
// the order they run. The exact layout (layout.h) uses it for copies of computed cells
// (the partial block a branch shares, the prefix kept between waves) and for cells that
// only fill space (block alignment gaps, and placeholders that reserve cells for the rows
// of a decode until it runs).
#pragma once

#include <cstdint>
#include <vector>

struct llama_context;

namespace pyllmattr {

class KvRestorer {
  public:
    using Blob = std::vector<uint8_t>;

    // temp_src / temp_dst: KV sequences used only inside a call; pin: a sequence added to
    // every restored cell of a sliding-window model, so that llama.cpp never reuses it.
    KvRestorer(llama_context * ctx, int32_t temp_src, int32_t temp_dst, int32_t pin, int32_t n_swa);

    // The cells of `seq` at positions [p0, p1), in cell order.
    Blob capture(int32_t seq, int32_t p0, int32_t p1);
    // The same, in pieces that a sliding-window cache saves whole (it skips cells outside
    // the window of the saved sequence's last position).
    std::vector<Blob> capture_pieces(int32_t seq, int32_t p0, int32_t p1);
    // Restores `blob` (of `n_cells` cells) into the next free cells, assigned to sequences
    // [dest_begin, dest_end).
    void restore(const Blob & blob, int32_t n_cells, int32_t dest_begin, int32_t dest_end, bool pin);
    // `n` cells, all at one position, assigned to `seq`: space fillers and placeholders
    // (one position: a sliding-window cache never considers them out of its window).
    void fill(int32_t n, int32_t seq);

    // Builds the filler stock from the cell of `seq` at position `pos` (uses `scratch_seq`).
    void build_stock(int32_t seq, int32_t pos, int32_t scratch_seq);
    bool has_stock() const { return !stock_.empty(); }

    int64_t n_restored() const { return n_restored_; }

  private:
    llama_context * ctx_;
    int32_t temp_src_, temp_dst_, pin_, n_swa_;
    std::vector<Blob> stock_;  // stock_[i]: 2^i cells at one position
    int64_t n_restored_ = 0;
};

}  // namespace pyllmattr
