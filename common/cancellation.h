// Cancelling a run from another thread (RunOptions::cancel). The API installs the caller's flag
// for the calling thread while a run lasts; the executors check it before each node, so a long
// native graph or a loop stops at the next node it starts.
#pragma once

#include <atomic>
#include <string_view>

namespace kiln {

// Makes `flag` (may be null: no cancellation) the calling thread's cancellation flag until the
// scope ends; scopes nest (a run inside a run keeps the outer flag when given none).
class CancellationScope {
 public:
  explicit CancellationScope(const std::atomic<bool>* flag);
  ~CancellationScope();
  CancellationScope(const CancellationScope&) = delete;
  CancellationScope& operator=(const CancellationScope&) = delete;

 private:
  const std::atomic<bool>* previous_;
};

// The calling thread's flag (null when none), for work handed to other threads.
const std::atomic<bool>* CurrentCancellationFlag();

// Whether the calling thread's flag is set (cheap: one thread-local read when there is none).
bool CancellationRequested();
// kCancelled: "the run was cancelled before WHERE".
[[noreturn]] void ThrowCancelled(std::string_view where);

}  // namespace kiln
