#pragma once

#include <cstdint>
#include <string>

namespace pyllmattr {

// The weight types a GGUF copy can be converted to: llama_ftype's values
// (quantize.cpp checks them against llama.h). Q8_0 and F16 are near-lossless for
// a Q4/Q5 source; Q4_0 trades fidelity for the fastest CPU kernel.
enum class FileType : int32_t { kF16 = 1, kQ4_0 = 2, kQ8_0 = 7 };

// Writes a copy of the GGUF model at `input` to `output` with its weights converted to
// `type` by llama.cpp's own quantizer (already-quantized weights are dequantized
// first). Throws std::runtime_error with llama.cpp's recent errors when it fails.
void quantize_model(const std::string & input, const std::string & output, FileType type, int32_t n_threads);

}  // namespace pyllmattr
