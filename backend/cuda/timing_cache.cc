#include "backend/cuda/timing_cache.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string_view>
#include <system_error>

#include "backend/cuda/cuda_check.h"
#include "common/atomic_file.h"
#include "kiln/error.h"

namespace kiln::backend::cuda {
namespace {

constexpr std::string_view kHeader = "# kiln CUDA timing cache v1: KEY<TAB>CHOICE per line\n";

std::string Clean(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return out;
}

// The entries of `file` (none when it is missing, not a regular file, too large or unreadable).
std::map<std::string, std::string> ReadEntries(const std::filesystem::path& file) {
  std::map<std::string, std::string> entries;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return entries;
  const uintmax_t size = std::filesystem::file_size(file, ec);
  if (ec || size > kMaxTimingCacheBytes) return entries;
  std::ifstream in(file, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.size() > kMaxTimingCacheLine) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 == line.size()) continue;
    if (line.find('\t', tab + 1) != std::string::npos) continue;
    entries[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return entries;
}

}  // namespace

TimingCache::TimingCache(std::filesystem::path file) : file_(std::move(file)) {}

void TimingCache::LoadLocked() {
  if (loaded_) return;
  loaded_ = true;
  if (file_.empty()) return;
  // Entries recorded before the first read win over the file's.
  for (auto& [key, choice] : ReadEntries(file_)) entries_.emplace(key, std::move(choice));
}

std::optional<std::string> TimingCache::Find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  LoadLocked();
  auto it = entries_.find(Clean(key));
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second;
}

void TimingCache::Record(const std::string& key, const std::string& choice) {
  std::lock_guard<std::mutex> lock(mu_);
  LoadLocked();
  const std::string k = Clean(key);
  entries_[k] = Clean(choice);
  unsaved_.insert(k);
}

void TimingCache::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_.empty() || unsaved_.empty() || !writable_) return;
  // Another process may have added entries since this one read the file: keep them.
  std::map<std::string, std::string> merged = ReadEntries(file_);
  for (const std::string& key : unsaved_) merged[key] = entries_[key];
  std::string text(kHeader);
  for (const auto& [key, choice] : merged) {
    const std::string line = fmt::format("{}\t{}\n", key, choice);
    if (line.size() <= kMaxTimingCacheLine && text.size() + line.size() <= kMaxTimingCacheBytes) text += line;
  }
  try {
    std::error_code ec;
    if (file_.has_parent_path()) std::filesystem::create_directories(file_.parent_path(), ec);
    WriteFileAtomically(file_, {text});
    unsaved_.clear();
  } catch (const Error& e) {
    writable_ = false;
    std::cerr << fmt::format(
        "kiln: warning: the CUDA timing cache is not saved ({}); set KILN_TIMING_CACHE to "
        "another file, or to 'off'\n",
        e.what());
  }
}

int64_t TimingCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

int64_t TimingCache::misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

std::filesystem::path DefaultTimingCachePath() {
  if (const char* env = std::getenv("KILN_TIMING_CACHE")) {
    const std::string value = env;
    if (value.empty() || value == "off") return {};
    return value;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::filesystem::path(xdg) / "kiln" / "cuda-timing-cache";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".cache" / "kiln" / "cuda-timing-cache";
  return {};
}

std::string TacticDeviceKey() {
  int device = 0;
  Check(cudaGetDevice(&device), "cudaGetDevice");
  static std::mutex mu;
  static std::map<int, std::string> keys;  // cudaGetDeviceProperties is slow enough to matter per problem
  std::lock_guard<std::mutex> lock(mu);
  std::string& key = keys[device];
  if (key.empty()) {
    cudaDeviceProp prop{};
    Check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    key = fmt::format("{} sm_{}{} {}SMs", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  }
  return key;
}

TimingCache& ProcessTimingCache() {
  static TimingCache cache(DefaultTimingCachePath());
  return cache;
}

void LogTacticTimings(const std::string& key, const std::vector<TacticTiming>& timings, size_t chosen) {
  const char* env = std::getenv("KILN_TACTIC_LOG");
  if (!env || !*env) return;
  std::string text = fmt::format("tactic {}\n", key);
  for (size_t i = 0; i < timings.size(); ++i) {
    const TacticTiming& t = timings[i];
    text += t.microseconds < 0
                ? fmt::format("  {}   (did not run) {}\n", i == chosen ? '*' : ' ', t.candidate)
                : fmt::format("  {} {:10.2f} us  {}\n", i == chosen ? '*' : ' ', t.microseconds, t.candidate);
  }
  LogTacticNote(text);
}

void LogTacticNote(const std::string& text) {
  const char* env = std::getenv("KILN_TACTIC_LOG");
  if (!env || !*env) return;
  static std::mutex mu;  // whole entries, even from engines built on several threads
  std::lock_guard<std::mutex> lock(mu);
  if (std::string_view(env) == "-") {
    std::fputs(text.c_str(), stderr);
    return;
  }
  if (std::FILE* f = std::fopen(env, "a")) {
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
}

}  // namespace kiln::backend::cuda
