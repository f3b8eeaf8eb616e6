// Kiln's error type. Every user-facing failure is a kiln::Error whose message names
// the thing at fault (file, node, input) and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace kiln {

enum class ErrorCode {
  kInvalidArgument,    // the caller passed something wrong (input name, shape, dtype, option)
  kNotFound,           // a file, tag, signature, node or variable does not exist
  kDataLoss,           // a file is truncated or its checksum does not match
  kUnimplemented,      // valid input that Kiln does not support (yet)
  kFailedPrecondition, // an API called in the wrong order
  kResourceExhausted,  // out of memory (host or device) or another limit reached
  kUnavailable,        // a device or driver that cannot be used right now
  kInternal,           // a bug in Kiln
  kCancelled,          // the caller cancelled the run (RunOptions::cancel)
};

const char* ErrorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace kiln
