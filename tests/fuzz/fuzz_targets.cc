#include "tests/fuzz/fuzz_targets.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend/reference/kernel.h"
#include "common/crc32c.h"
#include "common/little_endian.h"
#include "convert/engine_file.h"
#include "convert/kiln_file.h"
#include "frontend/tf/bundle_reader.h"
#include "kiln/error.h"
#include "kiln/model.h"
#include "kiln/npy.h"
#include "kiln/tensor.h"

namespace kiln::fuzz {

std::vector<uint8_t> ResealContainer(std::span<const uint8_t> data) {
  std::vector<uint8_t> b(data.begin(), data.end());
  const uint64_t size = b.size();
  auto u32 = [&](uint64_t at) { return LoadLittleEndian<uint32_t>(reinterpret_cast<const char*>(b.data() + at)); };
  auto put32 = [&](uint64_t at, uint32_t v) {
    for (int k = 0; k < 4; ++k) b[at + static_cast<uint64_t>(k)] = static_cast<uint8_t>(v >> (8 * k));
  };
  if (size < 16) return b;
  uint64_t at = 16 + uint64_t{u32(12)};  // past the header
  if (at + 4 > size) return b;
  const uint32_t count = u32(at);
  at += 4;
  std::vector<std::pair<uint64_t, uint64_t>> sections;  // (where its checksum is, payload length)
  for (uint32_t i = 0; i < count; ++i) {
    if (at + 4 > size) return b;
    at += 4 + uint64_t{u32(at)};  // the name
    if (at + 12 > size) return b;
    const uint64_t length = LoadLittleEndian<uint64_t>(reinterpret_cast<const char*>(b.data() + at));
    sections.emplace_back(at + 8, length);
    at += 12;
  }
  const uint64_t table_end = at;
  if (table_end + 4 > size) return b;
  uint64_t payload = table_end + 4;
  for (const auto& [crc_at, length] : sections) {
    if (length > size - payload) break;
    put32(crc_at, crc32c::Mask(crc32c::Value(b.data() + payload, static_cast<size_t>(length))));
    payload += length;
  }
  put32(table_end, crc32c::Mask(crc32c::Value(b.data(), static_cast<size_t>(table_end))));
  return b;
}

namespace {

namespace fs = std::filesystem;

// A fresh directory under the system's temporary directory, removed with the object.
class Scratch {
 public:
  Scratch() {
    static std::atomic<uint64_t> counter{0};
    dir_ = fs::temp_directory_path() /
           ("kiln-fuzz-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const fs::path& dir() const { return dir_; }
  fs::path Write(const std::string& name, std::span<const uint8_t> data) const {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    return path;
  }

 private:
  fs::path dir_;
};

// Runs `fn`; a kiln::Error is a clean refusal.
template <typename Fn>
void Clean(Fn&& fn) {
  try {
    fn();
  } catch (const Error&) {
  }
}

// Loads the model at `path`, imports each signature and runs it once on zeros (unknown dims 1):
// everything a `kiln run` of the file does.
void LoadAndRun(const std::string& path) {
  std::unique_ptr<Model> model = LoadModel(path);
  for (const std::string& key : model->signature_keys()) {
    Clean([&] {
      const Signature& sig = model->signature(key);
      std::map<std::string, Tensor> inputs;
      for (const TensorSpec& spec : sig.inputs()) {
        Shape shape;
        for (int64_t d : spec.dims) shape.push_back(d < 0 ? 1 : d);
        inputs[spec.name] = Tensor(spec.dtype, shape);
      }
      sig.Run(inputs);
    });
  }
}

void Npy(std::span<const uint8_t> data) {
  Scratch s;
  const fs::path path = s.Write("x.npy", data);
  Clean([&] { ReadNpy(path.string()); });
}

void Onnx(std::span<const uint8_t> data) {
  Scratch s;
  const fs::path path = s.Write("model.onnx", data);
  Clean([&] { LoadAndRun(path.string()); });
}

void SavedModelPb(std::span<const uint8_t> data) {
  Scratch s;
  s.Write("model/saved_model.pb", data);
  Clean([&] { LoadAndRun((s.dir() / "model").string()); });
}

void TensorBundleIndex(std::span<const uint8_t> data) {
  Scratch s;
  s.Write("variables.index", data);
  // A data file for the entries to point into: 4 KiB of a repeating pattern.
  std::vector<uint8_t> shard(4096);
  for (size_t i = 0; i < shard.size(); ++i) shard[i] = static_cast<uint8_t>(i * 131);
  s.Write("variables.data-00000-of-00001", shard);
  Clean([&] {
    tf::BundleReader reader((s.dir() / "variables").string());
    for (const std::string& key : reader.Keys()) Clean([&] { reader.Read(key); });
  });
}

void KilnFile(std::span<const uint8_t> data) {
  Scratch s;
  const fs::path path = s.Write("model.kiln", data);
  Clean([&] { convert::ReadKilnFile(path.string()); });
  Clean([&] { LoadAndRun(path.string()); });
}

void KilnFileResealed(std::span<const uint8_t> data) { KilnFile(ResealContainer(data)); }

void EngineFile(std::span<const uint8_t> data) {
  Clean([&] {
    convert::ReadEngineFile(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), "fuzz input");
  });
}

void EngineFileResealed(std::span<const uint8_t> data) { EngineFile(ResealContainer(data)); }

}  // namespace

const std::vector<Target>& Targets() {
  static const std::vector<Target> targets = {
      {"npy", Npy},
      {"onnx", Onnx},
      {"saved_model_pb", SavedModelPb},
      {"tensor_bundle_index", TensorBundleIndex},
      {"kiln_file", KilnFile},
      {"engine_file", EngineFile},
      {"kiln_file_resealed", KilnFileResealed},
      {"engine_file_resealed", EngineFileResealed},
  };
  return targets;
}

const Target* FindTarget(std::string_view name) {
  for (const Target& t : Targets())
    if (t.name == name) return &t;
  return nullptr;
}

void SetFuzzingLimits() {
  SetMaxTensorBytes(size_t{64} << 20);
  SetMaxModelBytes(size_t{256} << 20);
  reference::SetMaxLoopIterations(10000);
}

}  // namespace kiln::fuzz
