// llama.cpp's log, routed per call: quiet unless verbose, and the warnings and
// errors logged while an engine call runs are kept for that call's exception
// messages only, so one model's complaints never appear in another's.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace pyllmattr {

// The llama.cpp lines one call collected (the last few warnings and errors).
class LogSink {
  public:
    void add(int level, const char * text);
    std::string take();  // the kept lines, each as "\n  llama.cpp: ...", then forgets them

  private:
    std::mutex mutex_;
    std::deque<std::string> recent_;
    std::string line_;
    int line_level_ = 0;
};

// While alive, llama.cpp lines logged on this thread go to this call's sink. An
// inner scope (a call made by another call on the same thread) keeps the outer sink.
class LogScope {
  public:
    LogScope();
    ~LogScope();
    LogScope(const LogScope &) = delete;
    LogScope & operator=(const LogScope &) = delete;

  private:
    LogSink sink_;
    bool installed_ = false;
};

// This thread's call's recent llama.cpp warnings and errors, for an exception
// message ("" outside a LogScope); forgets them.
std::string recent_llama_errors();
void install_llama_log();
void set_llama_verbose(bool verbose);

}  // namespace pyllmattr
