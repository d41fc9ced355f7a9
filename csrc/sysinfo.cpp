#include "sysinfo.h"

#include <utility>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

namespace pyllmattr {
namespace {

std::string text(const char * s) { return s != nullptr ? s : ""; }

std::string type_name(enum ggml_backend_dev_type type) {
    switch (type) {
        case GGML_BACKEND_DEVICE_TYPE_CPU:
            return "cpu";
        case GGML_BACKEND_DEVICE_TYPE_GPU:
            return "gpu";
        case GGML_BACKEND_DEVICE_TYPE_IGPU:
            return "igpu";
        case GGML_BACKEND_DEVICE_TYPE_ACCEL:
            return "accel";
        default:
            return "other";
    }
}

}  // namespace

SystemInfo system_info() {
    // As before loading a model (idempotent); the back-end registry fills itself on first use.
    llama_backend_init();
    SystemInfo info;
    info.llama_system_info = text(llama_print_system_info());
    info.ggml_version = text(ggml_version());
    info.ggml_commit = text(ggml_commit());
    info.gpu_offload = llama_supports_gpu_offload();
    for (size_t i = 0; i < ggml_backend_reg_count(); ++i) {
        info.backends.push_back(text(ggml_backend_reg_name(ggml_backend_reg_get(i))));
    }
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        BackendDevice d;
        d.name = text(ggml_backend_dev_name(dev));
        d.description = text(ggml_backend_dev_description(dev));
        d.type = type_name(ggml_backend_dev_type(dev));
        d.backend = text(ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev)));
        ggml_backend_dev_memory(dev, &d.memory_free, &d.memory_total);
        info.devices.push_back(std::move(d));
    }
    return info;
}

}  // namespace pyllmattr
