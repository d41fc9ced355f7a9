#pragma once

#include <cstdint>
#include <string>

namespace pyllmattr {

// Writes a copy of the GGUF model at `input` to `output` with its weights converted to the
// llama_ftype `ftype` by llama.cpp's own quantizer (already-quantized weights are dequantized
// first). Throws std::runtime_error with llama.cpp's recent errors when it fails.
void quantize_model(const std::string & input, const std::string & output, int32_t ftype, int32_t n_threads);

}  // namespace pyllmattr
