// The fuzz targets (tests/fuzz/fuzz_targets.h) over the regression corpus: every input a fuzzer
// or a hostile-input test ever found troublesome (tests/fuzz/regression/<target>/), each of
// which must end in a result or a kiln::Error, under the fuzzing limits.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "convert/kiln_file.h"
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

// Resealing recomputes what a mutation broke and nothing else: a valid file comes back unchanged,
// and a file with a flipped payload byte is refused for its checksum before and not after.
TEST(FuzzRegression, ResealingGetsMutationsPastTheChecksums) {
  const fs::path file = testutil::SourceDir() / "tests" / "fuzz" / "regression" / "kiln_file_resealed" / "demo.kiln";
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000u) << file;
  auto span = [](const std::string& s) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  const std::vector<uint8_t> same = fuzz::ResealContainer(span(bytes));
  EXPECT_EQ(std::string(same.begin(), same.end()), bytes);
  bytes[bytes.size() * 6 / 10] ^= 0x5a;
  const fs::path dir = testutil::FreshTempDir("reseal");
  const fs::path raw = dir / "raw.kiln", resealed = dir / "resealed.kiln";
  std::ofstream(raw, std::ios::binary) << bytes;
  const std::vector<uint8_t> fixed = fuzz::ResealContainer(span(bytes));
  std::ofstream(resealed, std::ios::binary)
      .write(reinterpret_cast<const char*>(fixed.data()), static_cast<std::streamsize>(fixed.size()));
  testutil::ExpectError([&] { convert::ReadKilnFile(raw.string()); }, ErrorCode::kDataLoss, {"checksum"});
  try {
    convert::ReadKilnFile(resealed.string());
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kiln
