#include "exact_stream.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "llama.h"

namespace pyllmattr {

ExactStream::ExactStream(llama_context * ctx, const StreamConfig & config, const ExactRules & rules,
                         const ExactSeqs & seqs, KvRestorer & kv, int32_t n_ctx, int32_t n_swa,
                         const std::vector<OutputRequest> & requests, std::vector<double> & scores,
                         DecodeStream::DecodeFn decode, DecodeStream::DecodedFn on_decoded)
    : ctx_(ctx), config_(config), rules_(rules), seqs_(seqs), kv_(kv), n_ctx_(n_ctx), n_swa_(n_swa),
      requests_(requests), scores_(scores), decode_(std::move(decode)), on_decoded_(std::move(on_decoded)),
      batch_(config.n_batch, seqs.keeper + seqs.count()) {}

void ExactStream::run_wave(const Wave & wave, const WaveLayout & layout,
                           const std::vector<KvRestorer::Blob> & kept, int32_t kept_len) {
    llama_memory_t mem = llama_get_memory(ctx_);
    llama_memory_clear(mem, false);  // cells are taken from 0 on, in order
    cursor_ = 0;
    scratch_pos_ = 0;
    for (const auto & piece : kept) {
        kv_.restore(piece, 0, seqs_.keeper, seqs_.keeper + 1, true);
    }
    cursor_ = kept_len;  // the kept prefix: cell = position
    for (const LeafLayout & leaf : layout.leaves) {
        if (leaf.keeper_len > 0) {
            llama_memory_seq_cp(mem, seqs_.keeper, leaf.slot, 0, leaf.keeper_len);
        }
    }
    for (const LeafLayout & leaf : layout.leaves) {
        if (leaf.begin >= 0) {
            lay_out_leaf(wave, layout, leaf);
        }
    }
    flush(true);
}

void ExactStream::lay_out_leaf(const Wave & wave, const WaveLayout & layout, const LeafLayout & leaf) {
    const auto & em = wave.emissions;
    const int32_t block = rules_.block;
    bool first = true;
    for (int32_t e = leaf.begin; e < leaf.end;) {
        // A segment: the leaf's rows up to the next block boundary.
        const int32_t seg_end = std::min(leaf.end, e + block - em[e].pos % block);
        int32_t seg_outputs = 0;
        for (int32_t i = e; i < seg_end; ++i) {
            seg_outputs += em[i].n_requests > 0 ? 1 : 0;
        }
        if (first) {
            start_leaf(leaf, seg_outputs);
            first = false;
        } else if (static_cast<int32_t>(outputs_.size()) + seg_outputs > max_outputs()) {
            // The segment starts a block: after a padded decode it starts a fresh cell block.
            flush(true);
            align();
        }
        for (int32_t i = e; i < seg_end; ++i) {
            if (batch_.size() == config_.n_batch) {
                flush(false);  // a full batch needs no padding, so the leaf continues in place
            }
            push(em[i], layout.slot_end[i]);
        }
        e = seg_end;
    }
}

void ExactStream::start_leaf(const LeafLayout & leaf, int32_t first_outputs) {
    if (leaf.in_place) {
        // The wave's first leaf continues the kept prefix's cells (nothing before it).
        if (cursor_ != leaf.start || batch_.size() != 0) {
            throw std::logic_error("exact layout: the kept prefix is not where its leaf continues (pyllmattr bug)");
        }
        return;
    }
    const bool stall = leaf.has_copy() && pending_needs(leaf.slot, leaf.copy_source, leaf.start);
    if (stall || static_cast<int32_t>(outputs_.size()) + first_outputs > max_outputs()) {
        flush(true);
    }
    reserve_rows();
    align();
    if (leaf.has_copy()) {
        const int32_t source = leaf.copy_source >= 0 ? leaf.copy_source : seqs_.keeper;
        const int32_t n = leaf.start - leaf.copy_begin;
        kv_.restore(kv_.capture(source, leaf.copy_begin, leaf.start), n, leaf.slot, leaf.copy_end, true);
        cursor_ += n;
    }
}

void ExactStream::push(const Emission & e, int32_t slot_end) {
    const bool wants_logits = e.n_requests > 0;
    const int32_t index = batch_.add(e.token, e.pos, e.slot_begin, slot_end, wants_logits);
    if (wants_logits) {
        outputs_.emplace_back(index, &e);
    }
    pending_.push_back({e.slot_begin, slot_end, e.pos});
    ++unreserved_;
}

void ExactStream::reserve_rows() {
    kv_.fill(unreserved_, seqs_.hole);
    cursor_ += unreserved_;
    reserved_ += unreserved_;
    unreserved_ = 0;
}

void ExactStream::align() {
    const auto gap = static_cast<int32_t>((rules_.block - cursor_ % rules_.block) % rules_.block);
    kv_.fill(gap, seqs_.filler);
    cursor_ += gap;
}

bool ExactStream::pending_needs(int32_t slot, int32_t source, int32_t before) const {
    // A leaf's copy must see its earlier rows in memory (llama.cpp wants a sequence's rows to
    // continue its cells), and its source cells must be computed.
    for (const Row & r : pending_) {
        if (slot >= r.slot_begin && slot < r.slot_end) {
            return true;
        }
        if (source >= r.slot_begin && source < r.slot_end && r.pos < before) {
            return true;
        }
    }
    return false;
}

void ExactStream::flush(bool pad) {
    const int32_t real = batch_.size();
    if (real == 0) {
        return;
    }
    int32_t rows = pad ? std::max(rules_.row_min, round_up(real, rules_.row_mult)) : real;
    for (int32_t i = real; i < rows; ++i) {
        batch_.add(config_.scratch_token, scratch_pos_++, seqs_.scratch, seqs_.scratch + 1, false);
    }
    rows = pad_outputs(rows);
    if (cursor_ + unreserved_ + (rows - real) > n_ctx_) {
        throw std::logic_error("exact layout: a wave outgrew the context (pyllmattr bug)");
    }
    if (reserved_ > 0) {
        llama_memory_seq_rm(llama_get_memory(ctx_), seqs_.hole, -1, -1);
    }
    decode_(batch_.get(), rules_.row_mult, [this](int32_t begin, int32_t end) { collect(begin, end); });
    pin_decoded();
    cursor_ += unreserved_ + (rows - real);
    reserved_ = unreserved_ = 0;
    n_padding_ += rows - real;
    batch_.clear();
    outputs_.clear();
    pending_.clear();
    on_decoded_(real);
}

int32_t ExactStream::pad_outputs(int32_t rows) {
    // llama.cpp runs the last layer's feed-forward and the output matrix on the rows that
    // return logits only: their count must follow the row rules too. Other rows of the
    // decode (scratch rows first) return logits nobody reads.
    const auto wanted = static_cast<int32_t>(outputs_.size());
    if (wanted == 0) {
        return rows;
    }
    int32_t missing = std::max(rules_.row_min, round_up(wanted, rules_.row_mult)) - wanted;
    llama_batch & b = batch_.get();
    for (int32_t i = rows - 1; i >= 0 && missing > 0; --i) {
        if (!b.logits[i]) {
            b.logits[i] = 1;
            --missing;
        }
    }
    while (missing > 0 || rows % rules_.row_mult != 0) {  // too few rows: more scratch rows
        if (batch_.full()) {
            throw std::logic_error("exact layout: no room for the padding of a decode (pyllmattr bug)");
        }
        batch_.add(config_.scratch_token, scratch_pos_++, seqs_.scratch, seqs_.scratch + 1, missing > 0);
        missing -= missing > 0 ? 1 : 0;
        ++rows;
    }
    return rows;
}

void ExactStream::pin_decoded() {
    // Sliding-window caches reuse cells of one sequence that fell out of its window: give
    // every decoded cell a second sequence so that nothing moves until the wave ends.
    if (n_swa_ <= 0) {
        return;
    }
    llama_memory_t mem = llama_get_memory(ctx_);
    std::vector<bool> seen(static_cast<size_t>(seqs_.keeper + seqs_.count()), false);
    seen[seqs_.scratch] = true;
    llama_memory_seq_cp(mem, seqs_.scratch, seqs_.pin, -1, -1);
    for (const Row & r : pending_) {
        for (int32_t s = r.slot_begin; s < r.slot_end; ++s) {
            if (!seen[s]) {
                seen[s] = true;
                llama_memory_seq_cp(mem, s, seqs_.pin, -1, -1);
            }
        }
    }
}

void ExactStream::collect(int32_t begin, int32_t end) {
    ++n_decode_calls_;
    for (const auto & [index, e] : outputs_) {
        if (index >= begin && index < end) {
            fill_logprobs(llama_get_logits_ith(ctx_, index - begin), config_.n_vocab,
                          &requests_[e->first_request], e->n_requests, scores_);
        }
    }
}

}  // namespace pyllmattr
