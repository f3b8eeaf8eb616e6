// The bundled demo model (models/demo: a small Keras 3 CNN, input `image` [?,28,28,1] float32,
// output `output_0`) as the converter and model API tests use it.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "kiln/model.h"
#include "kiln/tensor.h"
#include "tests/unit/test_util.h"

namespace kiln::demo_test {

inline std::string DemoDir() { return (testutil::SourceDir() / "models" / "demo").string(); }

// A batch of normally distributed images, the same for the same seed.
inline Tensor Image(int batch, uint64_t seed) {
  Tensor t(DType::kFloat32, {batch, 28, 28, 1});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = normal(rng);
  return t;
}

inline Tensor RunOnce(const Model& model, const Tensor& image) {
  return model.signature().Run({{"image", image}}).at("output_0");
}

// Expects every counter of `got` to be `want`'s.
inline void ExpectRunStats(const RunStats& got, const RunStats& want) {
  EXPECT_EQ(got.engines_built, want.engines_built);
  EXPECT_EQ(got.engines_loaded, want.engines_loaded);
  EXPECT_EQ(got.engine_runs, want.engine_runs);
  EXPECT_EQ(got.native_runs, want.native_runs);
}

}  // namespace kiln::demo_test
