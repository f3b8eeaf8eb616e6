// Engine builds choose the library kernels of several steps at once (CudaEngine's
// PrepareLibraryPlans). A step's preparation runs under one process-wide lock, so that timed runs
// never overlap on the device and the timing cache, the tactic log and the kernels' own state
// stay single-threaded, and releases it only while cuDNN builds execution plans: its
// runtime-fusion engines compile a kernel per plan (up to seconds), and that compilation is what
// runs in parallel (each kernel has a cuDNN handle of its own, as cuDNN requires of threads).
#pragma once

#include <mutex>

namespace kiln::backend::cuda {

// Holds the preparation lock on this thread while it lives (not re-entrant: one per thread).
class PreparationLock {
 public:
  PreparationLock();
  ~PreparationLock();
  PreparationLock(const PreparationLock&) = delete;
  PreparationLock& operator=(const PreparationLock&) = delete;

 private:
  std::unique_lock<std::mutex> lock_;
  friend class OutsidePreparationLock;
};

// Releases the lock this thread holds through a PreparationLock while it lives, and takes it
// again after (nothing when this thread holds none: a kernel preparing a new shape at run time).
class OutsidePreparationLock {
 public:
  OutsidePreparationLock();
  ~OutsidePreparationLock();
  OutsidePreparationLock(const OutsidePreparationLock&) = delete;
  OutsidePreparationLock& operator=(const OutsidePreparationLock&) = delete;

 private:
  PreparationLock* held_;
};

}  // namespace kiln::backend::cuda
