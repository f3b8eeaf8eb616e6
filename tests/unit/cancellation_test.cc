// Cancelling a run (RunOptions::cancel): a set flag stops the run with kCancelled at the next node;
// without one, or after the run, nothing changes.
#include "common/cancellation.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "kiln/model.h"
#include "tests/unit/demo_model_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

TEST(Cancellation, ASetFlagStopsTheRunWithKCancelled) {
  auto model = LoadModel(demo_test::DemoDir());
  const Signature& sig = model->signature();
  const Tensor image = demo_test::Image(2, 1);
  std::atomic<bool> cancel{true};
  RunOptions options;
  options.cancel = &cancel;
  testutil::ExpectError(
      [&] {
        sig.Run({{"image", image}}, options);
      },
      ErrorCode::kCancelled, {"the run was cancelled before node"});
  // The flag belongs to that run only: the same thread runs normally afterwards.
  EXPECT_FALSE(CancellationRequested());
  const Tensor plain = sig.Run({{"image", image}}).at("output_0");
  cancel = false;
  const Tensor with_flag = sig.Run({{"image", image}}, options).at("output_0");
  ASSERT_EQ(plain.byte_size(), with_flag.byte_size());
  EXPECT_EQ(std::memcmp(plain.raw_data(), with_flag.raw_data(), plain.byte_size()), 0);
}

TEST(Cancellation, ScopesNestAndRestoreTheOuterFlag) {
  std::atomic<bool> outer{true}, inner{false};
  EXPECT_FALSE(CancellationRequested());
  {
    CancellationScope a(&outer);
    EXPECT_TRUE(CancellationRequested());
    {
      CancellationScope b(&inner);
      EXPECT_FALSE(CancellationRequested());
      CancellationScope none(nullptr);  // a run given no flag keeps the outer one
      EXPECT_FALSE(CancellationRequested());
    }
    EXPECT_TRUE(CancellationRequested());
    // Flags are per thread: another thread sees none.
    bool other = true;
    std::thread([&] { other = CancellationRequested(); }).join();
    EXPECT_FALSE(other);
  }
  EXPECT_FALSE(CancellationRequested());
}

}  // namespace
}  // namespace kiln
