// The fuzz targets (tests/fuzz/fuzz_targets.h) over the regression corpus: every input a fuzzer
// or a hostile-input test ever found troublesome (tests/fuzz/regression/<target>/), each of
// which must end in a result or a kiln::Error, under the fuzzing limits.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "kiln/tensor.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

TEST(FuzzRegression, EveryCorpusInputEndsInAResultOrAKilnError) {
  fuzz::SetFuzzingLimits();
  const fs::path root = testutil::SourceDir() / "tests" / "fuzz" / "regression";
  ASSERT_TRUE(fs::is_directory(root)) << root;
  int inputs = 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    const fuzz::Target* target = fuzz::FindTarget(dir.path().filename().string());
    ASSERT_NE(target, nullptr) << "no fuzz target for corpus directory " << dir.path();
    for (const auto& file : fs::directory_iterator(dir.path())) {
      std::ifstream in(file.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        target->run({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
      } catch (const std::exception& e) {
        ADD_FAILURE() << file.path() << ": an exception other than kiln::Error escaped: " << e.what();
      }
      ++inputs;
    }
  }
  SetMaxTensorBytes(0);
  SetMaxModelBytes(0);
  EXPECT_GT(inputs, 0) << "the regression corpus is empty";
}

}  // namespace
}  // namespace kiln
