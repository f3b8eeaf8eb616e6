// Tactic choices remembered across engine builds and processes: which cuBLASLt algorithm or
// cuDNN execution plan was fastest for one problem on one GPU and library version. A build that
// finds its problem here skips the timing (and, for cuDNN, building the other candidates), so a
// second build of the same shapes takes seconds and picks the same kernels as the first.
//
// Keys are built by the kernels and name everything the choice depends on (the GPU, the
// library's version, the problem's dtypes, shapes and fusions); a choice is only a hint, checked
// against the candidates the library offers now, so a stale or edited file can cost a re-timing
// but never select something the library did not propose.
//
// The file is text, one "KEY<TAB>CHOICE" line per entry after a header line, and is rewritten
// atomically (merged with what other processes wrote since) when an engine build recorded
// something new. Malformed lines are skipped; a file over kMaxTimingCacheBytes is ignored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kiln::backend::cuda {

inline constexpr uintmax_t kMaxTimingCacheBytes = uintmax_t{16} << 20;
inline constexpr size_t kMaxTimingCacheLine = 4096;

class TimingCache {
 public:
  // `file` empty: entries live in memory only. The file is read on first use.
  explicit TimingCache(std::filesystem::path file);

  // The choice recorded for `key`, or nullopt. Counts a hit or a miss.
  std::optional<std::string> Find(const std::string& key);
  // Records (or replaces) the choice for `key`; tabs and line breaks in either become spaces.
  void Record(const std::string& key, const std::string& choice);
  // Writes the entries recorded since the last flush to the file, merged with its current
  // content. A file that cannot be written gives one warning on stderr and memory-only caching
  // from then on (never an error: the cache only saves time).
  void Flush();

  const std::filesystem::path& file() const { return file_; }
  int64_t hits() const;
  int64_t misses() const;

 private:
  void LoadLocked();

  std::filesystem::path file_;
  mutable std::mutex mu_;
  bool loaded_ = false;
  bool writable_ = true;
  std::map<std::string, std::string> entries_;
  std::set<std::string> unsaved_;
  int64_t hits_ = 0, misses_ = 0;
};

// Where the process's cache lives: $KILN_TIMING_CACHE when set ("off" or empty: memory only),
// else $XDG_CACHE_HOME/kiln/cuda-timing-cache, else $HOME/.cache/kiln/cuda-timing-cache.
std::filesystem::path DefaultTimingCachePath();

// The current CUDA device as keys name it: "NVIDIA H200 sm_90 132SMs".
std::string TacticDeviceKey();

// The cache every kernel of this process uses (DefaultTimingCachePath, read once).
TimingCache& ProcessTimingCache();

// One timed tactic candidate, as the tactic log shows it.
struct TacticTiming {
  std::string candidate;     // the library's name for it (a cuDNN plan, a cuBLASLt algorithm)
  double microseconds = -1;  // per run; negative: it did not run
};

// When $KILN_TACTIC_LOG names a file ("-": stderr), appends the timings of one tactic choice to
// it: the problem's key, then one line per candidate with its time, the chosen one marked. This
// is how a user (or a benchmark) sees why a kernel was picked and how close the others were.
void LogTacticTimings(const std::string& key, const std::vector<TacticTiming>& timings, size_t chosen);

// Appends `text` (whole lines) to the same log: where an engine build spent its time, and why it
// was built again with fewer fusions.
void LogTacticNote(const std::string& text);

}  // namespace kiln::backend::cuda
