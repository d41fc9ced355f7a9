#include "llama_log.h"

#include <atomic>
#include <cstdio>

#include "llama.h"

namespace pyllmattr {
namespace {

constexpr size_t kKeptLines = 8;
std::atomic<bool> g_verbose{false};
thread_local LogSink * t_sink = nullptr;

void on_log(ggml_log_level level, const char * text, void * /*user_data*/) {
    if (g_verbose.load()) {
        static std::mutex print_mutex;
        std::lock_guard<std::mutex> lock(print_mutex);
        fputs(text, stderr);
    }
    // Lines logged outside an engine call (or on llama.cpp's worker threads) belong
    // to no call's message.
    if (t_sink != nullptr) {
        t_sink->add(static_cast<int>(level), text);
    }
}

}  // namespace

void LogSink::add(int level, const char * text) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (level != GGML_LOG_LEVEL_CONT) {
        line_level_ = level;
    }
    line_ += text;
    if (line_.empty() || line_.back() != '\n') {
        return;
    }
    if (line_level_ == GGML_LOG_LEVEL_ERROR || line_level_ == GGML_LOG_LEVEL_WARN) {
        line_.pop_back();
        recent_.push_back(line_);
        if (recent_.size() > kKeptLines) {
            recent_.pop_front();
        }
    }
    line_.clear();
}

std::string LogSink::take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string joined;
    for (const auto & line : recent_) {
        joined += "\n  llama.cpp: " + line;
    }
    recent_.clear();
    return joined;
}

LogScope::LogScope() {
    if (t_sink == nullptr) {
        t_sink = &sink_;
        installed_ = true;
    }
}

LogScope::~LogScope() {
    if (installed_) {
        t_sink = nullptr;
    }
}

std::string recent_llama_errors() {
    return t_sink == nullptr ? std::string() : t_sink->take();
}

void install_llama_log() {
    llama_log_set(on_log, nullptr);
}

void set_llama_verbose(bool verbose) {
    g_verbose.store(verbose);
}

}  // namespace pyllmattr
