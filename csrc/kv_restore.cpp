#include "kv_restore.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "llama.h"

namespace pyllmattr {

std::string recent_llama_errors();

namespace {

constexpr int32_t kStockLevels = 9;  // up to 256 cells per stock blob

// Pieces a sliding-window cache saves whole: `piece` positions, aligned to multiples of it,
// with `piece` at most half the window (standard, symmetric and chunked windows alike).
int32_t piece_size(int32_t n_swa) {
    if (n_swa <= 0) {
        return 1 << 30;
    }
    int32_t piece = 1;
    while (piece * 2 <= std::min(256, n_swa / 2)) {
        piece *= 2;
    }
    return piece;
}

}  // namespace

KvRestorer::KvRestorer(llama_context * ctx, int32_t temp_src, int32_t temp_dst, int32_t pin, int32_t n_swa)
    : ctx_(ctx), temp_src_(temp_src), temp_dst_(temp_dst), pin_(pin), n_swa_(n_swa) {}

KvRestorer::Blob KvRestorer::capture(int32_t seq, int32_t p0, int32_t p1) {
    llama_memory_t mem = llama_get_memory(ctx_);
    llama_memory_seq_cp(mem, seq, temp_src_, p0, p1);
    Blob blob(llama_state_seq_get_size(ctx_, temp_src_));
    const size_t n = llama_state_seq_get_data(ctx_, blob.data(), blob.size(), temp_src_);
    llama_memory_seq_rm(mem, temp_src_, -1, -1);
    if (n == 0 || n != blob.size()) {
        throw std::runtime_error("llama.cpp could not save KV cells (llama_state_seq_get_data)" +
                                 recent_llama_errors());
    }
    return blob;
}

std::vector<KvRestorer::Blob> KvRestorer::capture_pieces(int32_t seq, int32_t p0, int32_t p1) {
    const int32_t piece = piece_size(n_swa_);
    std::vector<Blob> pieces;
    for (int32_t a = p0; a < p1;) {
        const int32_t b = std::min(p1, (a / piece + 1) * piece);
        pieces.push_back(capture(seq, a, b));
        a = b;
    }
    return pieces;
}

void KvRestorer::restore(const Blob & blob, int32_t n_cells, int32_t dest_begin, int32_t dest_end, bool pin) {
    llama_memory_t mem = llama_get_memory(ctx_);
    // set_data first empties its destination sequence: restore into a temporary one.
    if (llama_state_seq_set_data(ctx_, blob.data(), blob.size(), temp_dst_) != blob.size()) {
        // The only way a blob saved from this context fails to load back is a full cache.
        throw std::runtime_error("llama.cpp found no free KV cache cells to restore " + std::to_string(n_cells) +
                                 " cells into (llama_state_seq_set_data): the context of " +
                                 std::to_string(llama_n_ctx(ctx_)) +
                                 " cells is full. Load the model with a larger n_ctx or a smaller max_branches" +
                                 recent_llama_errors());
    }
    for (int32_t s = dest_begin; s < dest_end; ++s) {
        llama_memory_seq_cp(mem, temp_dst_, s, -1, -1);
    }
    if (pin && n_swa_ > 0) {
        llama_memory_seq_cp(mem, temp_dst_, pin_, -1, -1);
    }
    llama_memory_seq_rm(mem, temp_dst_, -1, -1);
    n_restored_ += n_cells;
}

void KvRestorer::fill(int32_t n, int32_t seq) {
    if (n <= 0) {
        return;
    }
    if (stock_.empty()) {
        throw std::logic_error("exact layout: filler stock not built (pyllmattr bug)");
    }
    const int32_t top = static_cast<int32_t>(stock_.size()) - 1;
    while (n >= (1 << top)) {
        restore(stock_[top], 1 << top, seq, seq + 1, false);
        n -= 1 << top;
    }
    for (int32_t level = top; level >= 0; --level) {
        if (n & (1 << level)) {
            restore(stock_[level], 1 << level, seq, seq + 1, false);
        }
    }
}

void KvRestorer::build_stock(int32_t seq, int32_t pos, int32_t scratch_seq) {
    llama_memory_t mem = llama_get_memory(ctx_);
    stock_.clear();
    stock_.push_back(capture(seq, pos, pos + 1));
    // A level of 2^k cells is built beside the source cell: a small context caps the levels.
    const auto n_ctx = static_cast<int64_t>(llama_n_ctx(ctx_));
    for (int32_t level = 1; level < kStockLevels && (int64_t{1} << level) + 1 <= n_ctx; ++level) {
        // Two copies of the previous level under one sequence, saved as one blob.
        const int32_t n = 1 << (level - 1);
        restore(stock_.back(), n, scratch_seq, scratch_seq + 1, false);
        restore(stock_.back(), n, scratch_seq, scratch_seq + 1, false);
        stock_.push_back(capture(scratch_seq, pos, pos + 1));
        llama_memory_seq_rm(mem, scratch_seq, -1, -1);
    }
    n_restored_ = 0;
}

}  // namespace pyllmattr
