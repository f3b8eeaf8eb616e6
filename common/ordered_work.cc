#include "common/ordered_work.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace kiln {

void RunInOrderOnThreads(size_t count, int threads, const std::function<void(size_t)>& work,
                         const std::function<void(size_t)>& started) {
  std::mutex mutex;  // guards everything below but the callbacks
  std::condition_variable changed;
  size_t taken = 0, finished = 0;
  bool stop = false;
  std::vector<std::exception_ptr> failures(count);
  auto worker = [&] {
    for (;;) {
      size_t k = 0;
      {
        std::lock_guard<std::mutex> lock(mutex);
        // Indices are taken in order, so every index before a failed one has been taken.
        if (stop || taken == count) return;
        k = taken++;
      }
      changed.notify_all();
      std::exception_ptr failure;
      try {
        work(k);
      } catch (...) {
        failure = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        failures[k] = failure;
        stop = stop || failure;
        ++finished;
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> pool;
  const size_t wanted = std::min(count, static_cast<size_t>(std::max(threads, 1)));
  try {
    for (size_t i = 0; i < wanted; ++i) pool.emplace_back(worker);
  } catch (const std::system_error&) {
    // Fewer threads than asked for (possibly none): the ones started, or this thread, do it all.
  }
  std::exception_ptr progress_failure;
  if (pool.empty()) {
    if (count > 0) started(0);
    worker();  // takes every index (until one fails)
  } else {
    std::unique_lock<std::mutex> lock(mutex);
    size_t reported = 0;
    for (;;) {
      if (taken > reported && !progress_failure) {
        reported = taken;
        lock.unlock();
        try {
          started(reported - 1);
        } catch (...) {
          progress_failure = std::current_exception();
        }
        lock.lock();
        if (progress_failure) stop = true;
      }
      if (finished == taken && (stop || taken == count)) break;
      changed.wait_for(lock, std::chrono::milliseconds(500));
    }
  }
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& failure : failures)
    if (failure) std::rethrow_exception(failure);
  if (progress_failure) std::rethrow_exception(progress_failure);
}

}  // namespace kiln
