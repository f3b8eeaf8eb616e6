#include "tests/fuzz/fuzz_targets.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "backend/reference/kernel.h"
#include "convert/engine_file.h"
#include "convert/kiln_file.h"
#include "frontend/tf/bundle_reader.h"
#include "kiln/error.h"
#include "kiln/model.h"
#include "kiln/npy.h"
#include "kiln/tensor.h"

namespace kiln::fuzz {
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

void EngineFile(std::span<const uint8_t> data) {
  Clean([&] {
    convert::ReadEngineFile(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), "fuzz input");
  });
}

}  // namespace

const std::vector<Target>& Targets() {
  static const std::vector<Target> targets = {
      {"npy", Npy},
      {"onnx", Onnx},
      {"saved_model_pb", SavedModelPb},
      {"tensor_bundle_index", TensorBundleIndex},
      {"kiln_file", KilnFile},
      {"engine_file", EngineFile},
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
