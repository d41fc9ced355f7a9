// Engine::generate: greedy or sampled continuation of a prompt.
#include <algorithm>
#include <memory>

#include "batch.h"
#include "engine.h"
#include "engine_call.h"
#include "llama.h"

namespace pyllmattr {

namespace {

struct SamplerDeleter {
    void operator()(llama_sampler * s) const { llama_sampler_free(s); }
};
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerDeleter>;

SamplerPtr make_sampler(const GenerateOptions & o) {
    SamplerPtr chain(llama_sampler_chain_init(llama_sampler_chain_default_params()));
    if (o.temperature <= 0.0f) {
        llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
        return chain;
    }
    if (o.top_k > 0) {
        llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(o.top_k));
    }
    if (o.top_p < 1.0f) {
        llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(o.top_p, 1));
    }
    llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(o.temperature));
    llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(o.seed));
    return chain;
}

}  // namespace

std::vector<Token> Engine::generate(const std::vector<Token> & prompt, const GenerateOptions & options,
                                    const CallControl & control) {
    std::lock_guard<std::mutex> lock(mutex_);
    check_open();
    if (prompt.empty()) {
        throw std::invalid_argument("generate: the prompt is empty");
    }
    if (options.max_new_tokens < 0) {
        throw std::invalid_argument("generate: max_new_tokens must be >= 0");
    }
    if (prompt.size() >= static_cast<size_t>(options_.n_ctx)) {
        throw std::invalid_argument("generate: the prompt (" + std::to_string(prompt.size()) +
                                    " tokens) fills the context of " + std::to_string(options_.n_ctx) +
                                    "; load the model with a larger n_ctx");
    }
    check_tokens(prompt, "generate");
    CallScope scope(ctx_, active_control_, control);
    const auto no_rows = [](int32_t, int32_t) {};
    SamplerPtr sampler = make_sampler(options);
    Batch batch(options_.n_batch, 1);

    auto n_prompt = static_cast<int32_t>(prompt.size());
    for (int32_t begin = 0; begin < n_prompt; begin += options_.n_batch) {
        batch.clear();
        const int32_t end = std::min(n_prompt, begin + options_.n_batch);
        for (int32_t p = begin; p < end; ++p) {
            batch.add(prompt[p], p, 0, 1, p == n_prompt - 1);
        }
        decode(batch.get(), 1, no_rows);
        check_cancel(control);
    }
    std::vector<Token> generated;
    int32_t pos = n_prompt;
    while (static_cast<int32_t>(generated.size()) < options.max_new_tokens) {
        const Token token = llama_sampler_sample(sampler.get(), ctx_, -1);
        if (options.stop_at_eog && is_eog(token)) {
            break;
        }
        generated.push_back(token);
        if (static_cast<int32_t>(generated.size()) == options.max_new_tokens || pos >= options_.n_ctx) {
            break;
        }
        batch.clear();
        batch.add(token, pos++, 0, 1, true);
        decode(batch.get(), 1, no_rows);
        check_cancel(control);
        if (control.progress &&
            !control.progress(static_cast<int64_t>(generated.size()), options.max_new_tokens)) {
            throw Cancelled();
        }
    }
    return generated;
}

}  // namespace pyllmattr
