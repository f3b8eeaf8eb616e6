// The layer profiler engines report step timings to (kiln bench --profile-layers).
#include "backend/layer_profiler.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(LayerProfiler, SumsRepeatedLayersAndKeepsFirstSeenOrder) {
  backend::LayerProfiler p;
  p.Add("b", "cublasLt", "float16 [8,8]", 1.0);
  p.Add("a", "nvrtc row", "float16 [8]", 0.5);
  p.Add("b", "cublasLt", "float16 [8,8]", 2.0);
  p.Add("b", "cublasLt", "float16 [4,8]", 4.0);  // another shape: its own entry
  const auto e = p.Entries();
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].layer, "b");
  EXPECT_DOUBLE_EQ(e[0].total_ms, 3.0);
  EXPECT_EQ(e[0].calls, 2);
  EXPECT_EQ(e[1].layer, "a");
  EXPECT_EQ(e[1].calls, 1);
  EXPECT_EQ(e[2].detail, "float16 [4,8]");
  EXPECT_DOUBLE_EQ(e[2].total_ms, 4.0);
}

TEST(LayerProfiler, NoneIsActiveUnlessSet) {
  EXPECT_EQ(backend::ActiveLayerProfiler(), nullptr);
  backend::LayerProfiler p;
  backend::SetActiveLayerProfiler(&p);
  EXPECT_EQ(backend::ActiveLayerProfiler(), &p);
  backend::SetActiveLayerProfiler(nullptr);
  EXPECT_EQ(backend::ActiveLayerProfiler(), nullptr);
}

}  // namespace
}  // namespace kiln
