#include "quantize.h"

#include <stdexcept>

#include "engine.h"  // recent_llama_errors
#include "llama.h"

namespace pyllmattr {

void quantize_model(const std::string & input, const std::string & output, int32_t ftype, int32_t n_threads) {
    llama_backend_init();  // idempotent; the quantizer may run before any model was loaded
    auto params = llama_model_quantize_default_params();
    params.ftype = static_cast<llama_ftype>(ftype);
    params.nthread = n_threads;
    params.allow_requantize = true;  // shipped GGUFs are already quantized
    params.quantize_output_tensor = true;
    const uint32_t status = llama_model_quantize(input.c_str(), output.c_str(), &params);
    if (status != 0) {
        throw std::runtime_error("llama.cpp could not convert '" + input + "' (llama_model_quantize returned " +
                                 std::to_string(status) + ")" + recent_llama_errors());
    }
}

}  // namespace pyllmattr
