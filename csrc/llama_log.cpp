// llama.cpp log routing: quiet by default, but the last warnings and errors are
// kept so that exceptions can say what llama.cpp complained about.
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>

#include "llama.h"

namespace pyllmattr {
namespace {

std::mutex g_log_mutex;
std::deque<std::string> g_recent;
std::string g_line;
ggml_log_level g_line_level = GGML_LOG_LEVEL_NONE;
bool g_verbose = false;
constexpr size_t kKeptLines = 8;

void on_log(ggml_log_level level, const char * text, void * /*user_data*/) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    if (g_verbose) {
        fputs(text, stderr);
    }
    if (level != GGML_LOG_LEVEL_CONT) {
        g_line_level = level;
    }
    g_line += text;
    if (g_line.empty() || g_line.back() != '\n') {
        return;
    }
    if (g_line_level == GGML_LOG_LEVEL_ERROR || g_line_level == GGML_LOG_LEVEL_WARN) {
        g_line.pop_back();
        g_recent.push_back(g_line);
        if (g_recent.size() > kKeptLines) {
            g_recent.pop_front();
        }
    }
    g_line.clear();
}

}  // namespace

void install_llama_log() {
    llama_log_set(on_log, nullptr);
}

void set_llama_verbose(bool verbose) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_verbose = verbose;
}

std::string recent_llama_errors() {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    std::string joined;
    for (const auto & line : g_recent) {
        joined += "\n  llama.cpp: " + line;
    }
    g_recent.clear();
    return joined;
}

}  // namespace pyllmattr
