#include "quantize.h"

#include <stdexcept>

#include "llama.h"
#include "llama_log.h"

namespace pyllmattr {

static_assert(static_cast<int>(FileType::kF16) == LLAMA_FTYPE_MOSTLY_F16 &&
                  static_cast<int>(FileType::kQ4_0) == LLAMA_FTYPE_MOSTLY_Q4_0 &&
                  static_cast<int>(FileType::kQ8_0) == LLAMA_FTYPE_MOSTLY_Q8_0,
              "FileType must mirror llama_ftype");

void quantize_model(const std::string & input, const std::string & output, FileType type, int32_t n_threads) {
    LogScope log;
    llama_backend_init();  // idempotent; the quantizer may run before any model was loaded
    auto params = llama_model_quantize_default_params();
    params.ftype = static_cast<llama_ftype>(type);
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
