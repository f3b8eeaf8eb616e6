// RunInOrderOnThreads (common/ordered_work.h): every item once, indices taken in order, progress
// on the calling thread, and the failure that running the items in order would have given.
#include "common/ordered_work.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kiln {
namespace {

using namespace std::chrono_literals;

TEST(OrderedWork, RunsEveryItemOnceAndReportsOnTheCallingThread) {
  for (int threads : {1, 3, 8}) {
    std::vector<std::atomic<int>> runs(50);
    const std::thread::id caller = std::this_thread::get_id();
    std::vector<size_t> reported;
    RunInOrderOnThreads(
        runs.size(), threads, [&](size_t k) { ++runs[k]; },
        [&](size_t k) {
          EXPECT_EQ(std::this_thread::get_id(), caller);
          reported.push_back(k);
        });
    for (size_t k = 0; k < runs.size(); ++k)
      EXPECT_EQ(runs[k].load(), 1) << "item " << k << ", " << threads << " threads";
    ASSERT_FALSE(reported.empty());
    for (size_t i = 1; i < reported.size(); ++i) EXPECT_LT(reported[i - 1], reported[i]);
    EXPECT_LT(reported.back(), runs.size());
  }
  RunInOrderOnThreads(
      0, 4, [](size_t) { FAIL() << "no items"; }, [](size_t) { FAIL() << "no items"; });
}

TEST(OrderedWork, OneThreadRunsTheItemsInOrder) {
  std::vector<size_t> order;
  RunInOrderOnThreads(
      10, 1, [&](size_t k) { order.push_back(k); }, [](size_t) {});
  ASSERT_EQ(order.size(), 10u);
  for (size_t k = 0; k < order.size(); ++k) EXPECT_EQ(order[k], k);
}

TEST(OrderedWork, TheLowestFailingItemsExceptionIsRethrownEvenIfAnotherFailedFirst) {
  // Item 2 fails last in time; item 7 (if it is taken at all) fails at once.
  std::atomic<int> ran{0};
  try {
    RunInOrderOnThreads(
        40, 4,
        [&](size_t k) {
          ++ran;
          if (k == 2) {
            std::this_thread::sleep_for(50ms);
            throw std::runtime_error("item 2");
          }
          if (k == 7) throw std::runtime_error("item 7");
        },
        [](size_t) {});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "item 2");
  }
  EXPECT_GE(ran.load(), 3);  // items 0-2 at least
}

TEST(OrderedWork, AFailureStopsTakingNewItems) {
  std::atomic<int> ran{0};
  EXPECT_THROW(RunInOrderOnThreads(
                   1000, 1,
                   [&](size_t k) {
                     ++ran;
                     if (k == 5) throw std::runtime_error("item 5");
                   },
                   [](size_t) {}),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 6);
}

TEST(OrderedWork, AProgressCallbackThatThrowsStopsTheWorkAndIsRethrownAfterIt) {
  std::atomic<int> running{0}, ran{0};
  try {
    RunInOrderOnThreads(
        200, 3,
        [&](size_t) {
          ++running;
          std::this_thread::sleep_for(1ms);
          ++ran;
          --running;
        },
        [](size_t) { throw std::invalid_argument("progress"); });
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "progress");
  }
  EXPECT_EQ(running.load(), 0) << "returned while items were running";
  EXPECT_LE(ran.load(), 200);
}

}  // namespace
}  // namespace kiln
