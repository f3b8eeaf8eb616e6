// The lock under which CUDA engine builds prepare their library steps side by side
// (backend/cuda/preparation_lock.h), and the cubin recorder their worker threads record into.
// These need no GPU; the GPU suite builds every engine through them.
#ifdef KILN_WITH_CUDA

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "backend/cuda/cubin_cache.h"
#include "backend/cuda/preparation_lock.h"

namespace kiln {
namespace {

using backend::cuda::CubinRecorder;
using backend::cuda::CubinRecorderBinding;
using backend::cuda::OutsidePreparationLock;
using backend::cuda::PreparationLock;
using namespace std::chrono_literals;

// Takes the lock on a thread of its own; the future is ready once it holds it.
std::future<void> TakeLockOnAnotherThread(std::promise<void>& release, std::thread& thread) {
  auto taken = std::make_shared<std::promise<void>>();
  std::future<void> result = taken->get_future();
  std::shared_future<void> released = release.get_future().share();
  thread = std::thread([taken, released] {
    PreparationLock lock;
    taken->set_value();
    released.wait();
  });
  return result;
}

TEST(CudaPreparationLock, OutsideTheLockAnotherThreadPreparesAndAfterItTheLockIsHeldAgain) {
  std::promise<void> release_first, release_second;
  std::thread first, second;
  {
    PreparationLock held;
    {
      const OutsidePreparationLock compiling;
      std::future<void> taken = TakeLockOnAnotherThread(release_first, first);
      ASSERT_EQ(taken.wait_for(10s), std::future_status::ready) << "the lock was not released while compiling";
      release_first.set_value();
      first.join();
    }
    // Held again: another thread waits for it.
    std::future<void> taken = TakeLockOnAnotherThread(release_second, second);
    EXPECT_EQ(taken.wait_for(200ms), std::future_status::timeout) << "the lock was not taken back after compiling";
    release_second.set_value();
  }
  second.join();
}

TEST(CudaPreparationLock, OutsideWithoutTheLockDoesNothing) {
  { const OutsidePreparationLock compiling; }  // a kernel preparing a shape at run time
  std::promise<void> release;
  std::thread other;
  std::future<void> taken = TakeLockOnAnotherThread(release, other);
  EXPECT_EQ(taken.wait_for(10s), std::future_status::ready);
  release.set_value();
  other.join();
}

TEST(CudaCubinRecorder, WorkerThreadsRecordIntoTheBuildersRecorder) {
  CubinRecorder recorder;
  EXPECT_EQ(CubinRecorder::Active(), &recorder);
  std::thread worker([&recorder] {
    EXPECT_EQ(CubinRecorder::Active(), nullptr);
    {
      CubinRecorderBinding binding(&recorder);
      EXPECT_EQ(CubinRecorder::Active(), &recorder);
      CubinRecorder::Active()->Record("kernel source", {9, 0}, "cubin bytes");
      CubinRecorder::Active()->Record("kernel source", {9, 0}, "cubin bytes");  // once per source
    }
    EXPECT_EQ(CubinRecorder::Active(), nullptr);
  });
  worker.join();
  const auto entries = recorder.Take();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].source, "kernel source");
  EXPECT_EQ(entries[0].cubin, "cubin bytes");
}

}  // namespace
}  // namespace kiln

#endif
