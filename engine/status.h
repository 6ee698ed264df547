// status.h - the engine's error type. Every fallible call returns a Status; no exceptions cross
// the engine's public surfaces. The message says what is wrong and where, for a human to read.
#pragma once

#include <sstream>
#include <string>
#include <utility>

namespace fm {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

  // Prepends context, e.g. "node 3 (conv2d 'conv1'): " + "stride must be >= 1".
  Status& Prefix(const std::string& context) {
    if (failed_) message_ = context + message_;
    return *this;
  }

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

// Builds a message from any streamable pieces: Errorf("got ", n, " dims").
template <typename... Args>
Status Errorf(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return Status::Error(out.str());
}

#define FM_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::fm::Status fm_status_ = (expr);        \
    if (!fm_status_.ok()) return fm_status_; \
  } while (0)

}  // namespace fm
