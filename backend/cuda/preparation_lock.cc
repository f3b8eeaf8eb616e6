#include "backend/cuda/preparation_lock.h"

namespace kiln::backend::cuda {
namespace {

std::mutex& PreparationMutex() {
  static std::mutex mutex;
  return mutex;
}

thread_local PreparationLock* held_lock = nullptr;

}  // namespace

PreparationLock::PreparationLock() : lock_(PreparationMutex()) { held_lock = this; }

PreparationLock::~PreparationLock() { held_lock = nullptr; }

OutsidePreparationLock::OutsidePreparationLock() : held_(held_lock) {
  if (held_ && held_->lock_.owns_lock()) {
    held_->lock_.unlock();
  } else {
    held_ = nullptr;
  }
}

OutsidePreparationLock::~OutsidePreparationLock() {
  if (held_) held_->lock_.lock();
}

}  // namespace kiln::backend::cuda
