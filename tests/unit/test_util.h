// Helpers every kind of unit test uses: where the source tree is, scratch directories, whole-file
// reads and writes, expecting a kiln::Error by its code and message, attribute maps and tensor
// values as plain vectors.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "ir/attr.h"
#include "kiln/error.h"
#include "kiln/tensor.h"

namespace kiln::testutil {

// The source tree: $KILN_SOURCE_DIR when set (ctest sets it), else three levels above this header.
inline std::filesystem::path SourceDir() {
  if (const char* env = std::getenv("KILN_SOURCE_DIR"); env && *env) return env;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

// A new, empty directory under the system temp directory, unique to this process and call (tests
// of one binary may run in parallel processes under ctest). The caller removes it.
inline std::filesystem::path FreshTempDir(const std::string& prefix) {
  static int counter = 0;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFileBytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Expects `fn` to throw a kiln::Error (of any code) whose message holds every one of `words`.
template <typename Fn>
void ExpectErrorMessage(Fn&& fn, const std::vector<std::string>& words, const std::string& context = "") {
  try {
    fn();
    ADD_FAILURE() << "expected an error " << context;
  } catch (const Error& e) {
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos)
          << "'" << w << "' not in: " << e.what() << " " << context;
  }
}

// Expects `fn` to throw a kiln::Error with `code` whose message holds every one of `words`.
template <typename Fn>
void ExpectError(Fn&& fn, ErrorCode code, const std::vector<std::string>& words, const std::string& context = "") {
  try {
    fn();
    ADD_FAILURE() << "expected an error (" << ErrorCodeName(code) << ") " << context;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what() << " " << context;
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos)
          << "'" << w << "' not in: " << e.what() << " " << context;
  }
}

// An attribute map written inline: Attrs({{"axis", int64_t{1}}, {"keep_dims", true}}).
inline ir::AttrMap Attrs(std::initializer_list<std::pair<std::string, ir::AttrValue>> list) {
  ir::AttrMap m;
  for (const auto& [k, v] : list) m.Set(k, v);
  return m;
}

// The values of a tensor as doubles / int64s, for EXPECT_EQ on vectors.
inline std::vector<double> Doubles(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.num_elements(); ++i) v.push_back(t.DoubleAt(i));
  return v;
}
inline std::vector<int64_t> Ints(const Tensor& t) { return t.ToInt64Vector(); }

// ||got - want|| / ||want|| over all elements (the denominator kept off zero).
inline double RelativeL2Error(const Tensor& got, const Tensor& want) {
  double err = 0, norm = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double d = got.DoubleAt(i) - want.DoubleAt(i);
    err += d * d;
    norm += want.DoubleAt(i) * want.DoubleAt(i);
  }
  return std::sqrt(err / std::max(norm, 1e-300));
}

}  // namespace kiln::testutil
