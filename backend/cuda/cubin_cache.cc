#include "backend/cuda/cubin_cache.h"

#include <fmt/format.h>

#include <atomic>
#include <map>
#include <mutex>

#include "kiln/error.h"

namespace kiln::backend::cuda {
namespace {

constexpr uint32_t kMaxEntries = 1 << 16;

thread_local CubinRecorder* active_recorder = nullptr;
std::atomic<int64_t> compile_count{0};

struct Cache {
  std::mutex mutex;
  std::map<std::string, std::string> cubins;  // "sm_XY\n" + source -> cubin
};

Cache& TheCache() {
  static Cache cache;
  return cache;
}

std::string KeyOf(GpuArch arch, const std::string& source) { return arch.Name() + "\n" + source; }

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutBytes(std::string& out, const std::string& bytes) {
  PutU64(out, bytes.size());
  out += bytes;
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  uint64_t U64(const char* what) {
    Need(8, what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes_[at_ + i])) << (8 * i);
    at_ += 8;
    return v;
  }
  std::string Bytes(const char* what) {
    const uint64_t n = U64(what);
    Need(n, what);
    std::string s(bytes_.substr(at_, n));
    at_ += n;
    return s;
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  void Need(uint64_t n, const char* what) const {
    if (n > bytes_.size() - at_)
      throw Error(ErrorCode::kDataLoss,
                  fmt::format("the compiled kernels of a CUDA engine are truncated (reading {} at byte {} of {})", what,
                              at_, bytes_.size()));
  }
  std::string_view bytes_;
  size_t at_ = 0;
};

}  // namespace

std::string CubinFor(const std::string& source, const std::string& name, GpuArch arch) {
  const std::string key = KeyOf(arch, source);
  Cache& cache = TheCache();
  std::string cubin;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.cubins.find(key);
    if (it != cache.cubins.end()) cubin = it->second;
  }
  if (cubin.empty()) {
    cubin = CompileToCubin(source, name, arch);
    ++compile_count;
    std::lock_guard<std::mutex> lock(cache.mutex);
    cache.cubins.emplace(key, cubin);
  }
  if (active_recorder) active_recorder->Record(source, arch, cubin);
  return cubin;
}

void AddCubin(const CubinEntry& entry) {
  Cache& cache = TheCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.cubins.emplace(KeyOf(entry.arch, entry.source), entry.cubin);
}

int64_t NvrtcCompileCount() { return compile_count.load(); }

CubinRecorder::CubinRecorder() : previous_(active_recorder) { active_recorder = this; }
CubinRecorder::~CubinRecorder() { active_recorder = previous_; }

CubinRecorder* CubinRecorder::Active() { return active_recorder; }

std::vector<CubinEntry> CubinRecorder::Take() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::move(entries_);
}

CubinRecorderBinding::CubinRecorderBinding(CubinRecorder* recorder) : previous_(active_recorder) {
  active_recorder = recorder;
}
CubinRecorderBinding::~CubinRecorderBinding() { active_recorder = previous_; }

void CubinRecorder::Record(const std::string& source, GpuArch arch, const std::string& cubin) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const CubinEntry& e : entries_)
    if (e.arch.major == arch.major && e.arch.minor == arch.minor && e.source == source) return;
  entries_.push_back({arch, source, cubin});
}

std::string EncodeCubins(const std::vector<CubinEntry>& entries) {
  std::string out;
  PutU64(out, entries.size());
  for (const CubinEntry& e : entries) {
    PutU64(out, static_cast<uint64_t>(e.arch.major));
    PutU64(out, static_cast<uint64_t>(e.arch.minor));
    PutBytes(out, e.source);
    PutBytes(out, e.cubin);
  }
  return out;
}

std::vector<CubinEntry> DecodeCubins(std::string_view bytes) {
  Reader r(bytes);
  const uint64_t count = r.U64("the kernel count");
  if (count > kMaxEntries)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("a CUDA engine claims {} compiled kernels (at most {})", count, kMaxEntries));
  std::vector<CubinEntry> entries;
  for (uint64_t i = 0; i < count; ++i) {
    CubinEntry e;
    const uint64_t major = r.U64("an architecture"), minor = r.U64("an architecture");
    if (major > 1000 || minor > 1000)
      throw Error(ErrorCode::kDataLoss,
                  fmt::format("a CUDA engine's kernel {} names architecture {}.{}", i, major, minor));
    e.arch = {static_cast<int>(major), static_cast<int>(minor)};
    e.source = r.Bytes("a kernel's source");
    e.cubin = r.Bytes("a kernel's cubin");
    if (e.cubin.empty())
      throw Error(ErrorCode::kDataLoss, fmt::format("a CUDA engine's kernel {} has an empty cubin", i));
    entries.push_back(std::move(e));
  }
  if (!r.done()) throw Error(ErrorCode::kDataLoss, "a CUDA engine's compiled kernels are followed by unexpected bytes");
  return entries;
}

}  // namespace kiln::backend::cuda
