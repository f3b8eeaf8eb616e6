// The CUDA backend's timing cache (backend/cuda/timing_cache.h): the file round trip, merging
// with other processes' entries, hostile and broken files, and where the file lives. These need
// no GPU; the GPU suite checks that a second engine build takes every tactic from the cache
// (cuda_backend_test.cc, SecondBuildTakesEveryTacticFromTheTimingCache).
#ifdef KILN_WITH_CUDA

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "backend/cuda/timing_cache.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using backend::cuda::TimingCache;
using testutil::FreshTempDir;

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

TEST(CudaTimingCache, ChoicesPersistAcrossInstancesOfOneFile) {
  const auto dir = FreshTempDir("kiln_timing_cache");
  const auto file = dir / "sub" / "dir" / "cache";  // directories are created on flush
  {
    TimingCache cache(file);
    EXPECT_FALSE(cache.Find("cublasLt | H200 | m1"));
    cache.Record("cublasLt | H200 | m1", "00ab");
    cache.Record("cudnn | H200 | conv x1", "eng0_k2=3");
    EXPECT_EQ(cache.Find("cublasLt | H200 | m1"), "00ab");
    EXPECT_EQ(cache.hits(), 1);
    EXPECT_EQ(cache.misses(), 1);
    cache.Flush();
  }
  TimingCache again(file);
  EXPECT_EQ(again.Find("cublasLt | H200 | m1"), "00ab");
  EXPECT_EQ(again.Find("cudnn | H200 | conv x1"), "eng0_k2=3");
  EXPECT_FALSE(again.Find("cudnn | H200 | conv x2"));
  std::filesystem::remove_all(dir);
}

TEST(CudaTimingCache, FlushKeepsWhatAnotherProcessWroteMeanwhile) {
  const auto dir = FreshTempDir("kiln_timing_cache");
  const auto file = dir / "cache";
  TimingCache first(file), second(file);
  EXPECT_FALSE(first.Find("a"));  // both have read the (missing) file
  EXPECT_FALSE(second.Find("a"));
  first.Record("a", "1");
  first.Flush();
  second.Record("b", "2");
  second.Record("a", "3");  // the later writer's choice wins for a key both timed
  second.Flush();
  TimingCache reader(file);
  EXPECT_EQ(reader.Find("a"), "3");
  EXPECT_EQ(reader.Find("b"), "2");
  std::filesystem::remove_all(dir);
}

TEST(CudaTimingCache, TabsAndLineBreaksInKeysOrChoicesCannotForgeEntries) {
  const auto dir = FreshTempDir("kiln_timing_cache");
  const auto file = dir / "cache";
  {
    TimingCache cache(file);
    cache.Record("gpu\tname\nforged\tvalue", "x\ny");
    cache.Flush();
  }
  TimingCache reader(file);
  EXPECT_FALSE(reader.Find("forged"));
  EXPECT_EQ(reader.Find("gpu name forged value"), "x y");
  std::filesystem::remove_all(dir);
}

TEST(CudaTimingCache, MalformedLinesAreSkipped) {
  const auto dir = FreshTempDir("kiln_timing_cache");
  const auto file = dir / "cache";
  WriteText(file,
            "# comment\n"
            "good\tchoice\n"
            "no tab here\n"
            "\tempty key\n"
            "empty choice\t\n"
            "two\ttabs\there\n" +
                std::string(backend::cuda::kMaxTimingCacheLine + 1, 'k') + "\tlong\n" + "last\twithout newline");
  TimingCache cache(file);
  EXPECT_EQ(cache.Find("good"), "choice");
  EXPECT_EQ(cache.Find("last"), "without newline");
  EXPECT_FALSE(cache.Find("no tab here"));
  EXPECT_FALSE(cache.Find(""));
  EXPECT_FALSE(cache.Find("empty choice"));
  EXPECT_FALSE(cache.Find("two"));
  std::filesystem::remove_all(dir);
}

TEST(CudaTimingCache, OversizedFilesAndNonRegularFilesAreIgnored) {
  const auto dir = FreshTempDir("kiln_timing_cache");
  const auto big = dir / "big";
  {
    std::ofstream out(big, std::ios::binary);
    out << "key\tchoice\n";
    out.seekp(static_cast<std::streamoff>(backend::cuda::kMaxTimingCacheBytes));  // sparse: nothing written
    out << "\n";
  }
  TimingCache oversized(big);
  EXPECT_FALSE(oversized.Find("key"));
  TimingCache directory(dir);  // a directory is not a cache file: read as empty, never written
  EXPECT_FALSE(directory.Find("key"));
  directory.Record("key", "choice");
  testing::internal::CaptureStderr();
  directory.Flush();
  directory.Flush();  // warns once
  const std::string warnings = testing::internal::GetCapturedStderr();
  EXPECT_NE(warnings.find("the CUDA timing cache is not saved"), std::string::npos) << warnings;
  EXPECT_EQ(warnings.find("not saved", warnings.find("not saved") + 1), std::string::npos) << warnings;
  EXPECT_EQ(directory.Find("key"), "choice");  // still cached in memory
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  std::filesystem::remove_all(dir);
}

TEST(CudaTimingCache, MemoryOnlyCacheWritesNothing) {
  TimingCache cache{std::filesystem::path()};
  cache.Record("k", "v");
  cache.Flush();
  EXPECT_EQ(cache.Find("k"), "v");
}

TEST(CudaTimingCache, TheDefaultFileFollowsTheEnvironment) {
  struct Restore {
    std::string name;
    std::optional<std::string> value;
    explicit Restore(std::string n) : name(std::move(n)) {
      if (const char* v = std::getenv(name.c_str())) value = v;
    }
    ~Restore() {
      if (value)
        setenv(name.c_str(), value->c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  } cache_env("KILN_TIMING_CACHE"), xdg("XDG_CACHE_HOME"), home("HOME");
  setenv("KILN_TIMING_CACHE", "/tmp/x/tactics", 1);
  EXPECT_EQ(backend::cuda::DefaultTimingCachePath(), "/tmp/x/tactics");
  setenv("KILN_TIMING_CACHE", "off", 1);
  EXPECT_TRUE(backend::cuda::DefaultTimingCachePath().empty());
  unsetenv("KILN_TIMING_CACHE");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(backend::cuda::DefaultTimingCachePath(), "/xdg/kiln/cuda-timing-cache");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(backend::cuda::DefaultTimingCachePath(), "/home/u/.cache/kiln/cuda-timing-cache");
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
