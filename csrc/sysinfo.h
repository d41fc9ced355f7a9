// What llama.cpp was built with and what it finds on this machine: its system info line
// (CPU features), ggml's version, the back ends compiled in and their devices. For
// `pyllmattr doctor` and for the key of the self-check's disk cache.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace pyllmattr {

struct BackendDevice {
    std::string name;         // e.g. "CPU", "CUDA0", "Metal"
    std::string description;  // e.g. the CPU or GPU model
    std::string type;         // "cpu", "gpu", "igpu", "accel", "meta"
    std::string backend;      // the registry that provides it, e.g. "CPU", "CUDA"
    size_t memory_free = 0;
    size_t memory_total = 0;
};

struct SystemInfo {
    std::string llama_system_info;  // llama_print_system_info()
    std::string ggml_version;
    std::string ggml_commit;
    bool gpu_offload = false;       // llama_supports_gpu_offload()
    std::vector<std::string> backends;
    std::vector<BackendDevice> devices;
};

SystemInfo system_info();

}  // namespace pyllmattr
