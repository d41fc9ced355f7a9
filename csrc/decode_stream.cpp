#include "decode_stream.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "llama.h"

namespace pyllmattr {

std::string recent_llama_errors();

// log-softmax of one logits row, at the requested tokens.
void fill_logprobs(const float * logits, int32_t n_vocab, const OutputRequest * requests,
                   int32_t n_requests, std::vector<double> & out) {
    if (logits == nullptr) {
        throw std::runtime_error("llama.cpp returned no logits for a requested output" +
                                 recent_llama_errors());
    }
    float max_logit = -std::numeric_limits<float>::infinity();
    for (int32_t v = 0; v < n_vocab; ++v) {
        max_logit = std::max(max_logit, logits[v]);
    }
    double sum = 0.0;
    for (int32_t v = 0; v < n_vocab; ++v) {
        sum += static_cast<double>(std::exp(logits[v] - max_logit));
    }
    // A NaN logit makes the sum NaN, a +inf logit the maximum: either way the
    // normalizer is not finite. A -inf logit alone is a legitimate log p = -inf.
    const double log_norm = static_cast<double>(max_logit) + std::log(sum);
    if (!std::isfinite(log_norm)) {
        throw std::runtime_error(
            "the model produced non-finite logits (NaN or +inf), so its log-probabilities are "
            "undefined; the GGUF file may be corrupt (try another download or quantization), "
            "or the model overflows in this precision (try kv_precision='f32')" +
            recent_llama_errors());
    }
    for (int32_t r = 0; r < n_requests; ++r) {
        const OutputRequest & req = requests[r];
        out[static_cast<size_t>(req.index)] = static_cast<double>(logits[req.token]) - log_norm;
    }
}

int32_t round_up(int64_t n, int32_t to) {
    return static_cast<int32_t>((n + to - 1) / to * to);
}

DecodeStream::DecodeStream(llama_context * ctx, const StreamConfig & config,
                           const std::vector<OutputRequest> & requests, std::vector<double> & scores,
                           DecodeFn decode, DecodedFn on_decoded)
    : ctx_(ctx), config_(config), requests_(requests), scores_(scores), decode_(std::move(decode)),
      on_decoded_(std::move(on_decoded)), batch_(config.n_batch, config.scratch_seq + 1) {}

void DecodeStream::push(const Emission & e) {
    align_to(e.pos);
    const bool wants_logits = e.n_requests > 0;
    if (wants_logits && static_cast<int32_t>(outputs_.size()) == config_.n_outputs) {
        flush();
        align_to(e.pos);  // the flush padded the decode
    }
    if (batch_.full()) {
        flush();
    }
    const int32_t index = batch_.add(e.token, e.pos, e.slot_begin, e.slot_end, wants_logits);
    if (wants_logits) {
        outputs_.emplace_back(index, &e);
    }
    ++cell_;
    ++real_rows_;
}

void DecodeStream::align_to(int32_t pos) {
    if (!config_.flash64) {
        return;
    }
    const auto n = static_cast<int32_t>(((pos - cell_) % kAlign + kAlign) % kAlign);
    for (int32_t i = 0; i < n; ++i) {
        if (batch_.full()) {
            flush();
        }
        add_scratch_row();
    }
}

void DecodeStream::add_scratch_row() {
    batch_.add(config_.scratch_token, scratch_pos_++, config_.scratch_seq, config_.scratch_seq + 1, false);
    ++cell_;
    ++n_padding_;
}

void DecodeStream::flush() {
    if (batch_.size() == 0) {
        return;
    }
    if (config_.flash64) {
        // Fill the decode up to a whole number of tiles (the batch capacity is one).
        const int32_t target_rows = std::max(kAlign, round_up(batch_.size(), kAlign));
        while (batch_.size() < target_rows) {
            add_scratch_row();
        }
    }
    // The flash64 layout stays whole tiles even when a full cache forces smaller decodes.
    decode_(batch_.get(), config_.flash64 ? kAlign : 1,
            [this](int32_t begin, int32_t end) { collect(begin, end); });
    const int64_t real = real_rows_;
    batch_.clear();
    outputs_.clear();
    real_rows_ = 0;
    on_decoded_(real);
}

void DecodeStream::collect(int32_t begin, int32_t end) {
    ++n_decode_calls_;
    for (const auto & [index, e] : outputs_) {
        if (index >= begin && index < end) {
            fill_logprobs(llama_get_logits_ith(ctx_, index - begin), config_.n_vocab,
                          &requests_[e->first_request], e->n_requests, scores_);
        }
    }
}

void DecodeStream::finish_wave() {
    flush();
    cell_ = 0;
    scratch_pos_ = 0;
}

int32_t flash64_overhead_per_leaf(int32_t n_target, int32_t n_outputs) {
    // Placement pads the leaf's first token by at most kAlign - 1 cells. A flush forced by
    // the output limit (one per n_outputs outputs, a leaf has n_target) pads the decode
    // and then re-pads the next token: at most 2 * (kAlign - 1) cells.
    const int32_t forced_share = (2 * (kAlign - 1) * n_target + n_outputs - 1) / n_outputs;
    return (kAlign - 1) + forced_share;
}

}  // namespace pyllmattr
