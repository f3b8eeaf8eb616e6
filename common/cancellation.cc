#include "common/cancellation.h"

#include <fmt/format.h>

#include "kiln/error.h"

namespace kiln {
namespace {

thread_local const std::atomic<bool>* t_flag = nullptr;

}  // namespace

CancellationScope::CancellationScope(const std::atomic<bool>* flag) : previous_(t_flag) {
  if (flag) t_flag = flag;
}

CancellationScope::~CancellationScope() { t_flag = previous_; }

const std::atomic<bool>* CurrentCancellationFlag() { return t_flag; }

bool CancellationRequested() { return t_flag && t_flag->load(std::memory_order_relaxed); }

void ThrowCancelled(std::string_view where) {
  throw Error(ErrorCode::kCancelled, fmt::format("the run was cancelled before {}", where));
}

}  // namespace kiln
