// Loading a SavedModel and running its signatures.
//
//   auto model = kiln::LoadModel("/models/resnet50");
//   const kiln::Signature& sig = model->signature("serving_default");
//   std::map<std::string, kiln::Tensor> out = sig.Run({{"input_1", image}});
//
// Signatures are imported on first use. Signature::Run is const and safe to call from many
// threads at once.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

// A signature input or output: name, dtype and shape (-1 for unknown dims).
struct TensorSpec {
  std::string name;
  DType dtype = DType::kInvalid;
  bool rank_known = false;
  std::vector<int64_t> dims;
  // For an integer input whose values index a table (a Gather's indices, such as token ids into
  // an embedding): every value must be below this, the smallest such table's size. -1 where
  // Kiln sees no such use (for a converted model, uses inside engines are not seen).
  int64_t index_limit = -1;
  std::string ShapeString() const;  // "[?,224,224,3]" or "<unknown rank>"
};

// What a signature's engines did so far (all zero for a model that was not converted).
struct RunStats {
  int64_t engines_built = 0;   // compiled in this process (at run time)
  int64_t engines_loaded = 0;  // deserialized from the converted model's engine files
  int64_t engine_runs = 0;     // engine-node executions that ran an engine
  int64_t native_runs = 0;     // engine-node executions that fell back to the native segment
};

// Caller-owned memory for one signature input or output (Signature::RunWithBuffers).
//
//   std::vector<float> image(1 * 224 * 224 * 3), logits(1000);
//   kiln::BufferBinding in{"input_1", kiln::DType::kFloat32, {1, 224, 224, 3}, image.data(),
//                          image.size() * sizeof(float)};
//   kiln::BufferBinding out{"predictions", kiln::DType::kFloat32, {}, logits.data(),
//                           logits.size() * sizeof(float)};
//   sig.RunWithBuffers({&in, 1}, {&out, 1});   // out.shape is now {1, 1000}
//
// Inputs: `shape` is the input's shape; `data` points at `size_bytes` bytes, C order, aligned to
// the element size. The input memory is used in place (never copied) and never written; it must
// stay valid and unchanged until RunWithBuffers returns. Outputs: `shape` is ignored on entry and
// set to the output's actual shape; the result is written to `data` (at most size_bytes bytes).
// An output computed by an engine is written there directly (no copy); others are copied once.
// Output memory must not overlap any input's or another output's. DT_STRING is not supported.
// `device` says where `data` lives: the host, or a GPU (kiln/device.h allocates there). A
// signature converted for that device reads device inputs in place and its engines write device
// outputs in place (zero-copy); otherwise device memory is copied to or from the host once.
// kNotFound / kUnavailable naming the binding for a device this machine or build does not have.
struct BufferBinding {
  std::string name;
  DType dtype = DType::kInvalid;
  Shape shape;
  void* data = nullptr;
  size_t size_bytes = 0;
  Device device{};
};

// Per-call options of Signature::Run and RunWithBuffers.
struct RunOptions {
  // Set to true (from any thread) to stop the run: it ends with kCancelled at the next node it
  // starts (a loop checks before each iteration; an engine already running finishes first).
  const std::atomic<bool>* cancel = nullptr;
  // Run only: outputs the signature's engines compute on its device (input_device(): a GPU, for a
  // model converted for one) are returned in that device's memory instead of being copied to the
  // host (each output in memory of its own). On a host signature this changes nothing.
  bool outputs_on_device = false;
};

class Signature {
 public:
  virtual ~Signature() = default;
  virtual const std::string& key() const = 0;
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  // Runs the signature. Every input must be given, by name, with the signature's dtype and a
  // compatible shape; errors (kInvalidArgument) name the input and what was expected.
  virtual std::map<std::string, Tensor> Run(const std::map<std::string, Tensor>& inputs) const = 0;
  std::map<std::string, Tensor> Run(const std::map<std::string, Tensor>& inputs, const RunOptions& options) const;
  // Runs the signature on caller-owned memory (see BufferBinding). Every input must be bound
  // once; outputs may be any subset of the signature's outputs (each at most once; the others are
  // computed and dropped). Thread-safe like Run. kInvalidArgument naming the binding for: an
  // unknown, missing or repeated name; a dtype other than the signature's; a null `data`; an input
  // `shape` the signature does not accept or `size_bytes` smaller than it needs; an output buffer
  // smaller than the result (the message says how many bytes are needed, and the binding's
  // `shape` is set to the output's shape, so the caller can grow the buffer and retry; the other
  // outputs' memory may have been written); data not aligned to the element size; output memory
  // overlapping an input's or another output's. kUnimplemented for DT_STRING.
  void RunWithBuffers(std::span<const BufferBinding> inputs, std::span<BufferBinding> outputs) const;
  void RunWithBuffers(std::span<const BufferBinding> inputs, std::span<BufferBinding> outputs,
                      const RunOptions& options) const;
  // Number of IR nodes the signature runs (after optimization passes).
  virtual size_t num_nodes() const = 0;
  virtual RunStats stats() const { return {}; }
  // Where the signature's engines run (the host unless it was converted for a GPU): inputs there
  // are read in place by Run and RunWithBuffers, and outputs bound there are written in place;
  // memory on other devices is copied to or from the host.
  virtual Device input_device() const { return {}; }

 protected:
  // Run with caller memory for some outputs (by output name): an output the signature can
  // compute in place is returned as a tensor viewing its buffer; the others as fresh tensors
  // that RunWithBuffers copies. The default computes everything in fresh memory.
  virtual std::map<std::string, Tensor> RunInto(const std::map<std::string, Tensor>& inputs,
                                                const std::map<std::string, std::shared_ptr<Buffer>>& output_buffers) const {
    return Run(inputs);
  }
};

struct LoadOptions {
  std::vector<std::string> tags{"serve"};
  bool verify_ir = true;  // run the IR verifier after every pass
  // Where engine messages go (fallbacks, rebuilds, engine files that cannot be used); stderr when unset.
  std::function<void(const std::string&)> log;
  // GPU engines replay CUDA graphs of repeated runs (same buffers and shapes): far fewer kernel
  // launches per run. False runs every kernel launch by launch (kiln bench --cuda-graph off).
  bool cuda_graphs = true;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const std::string& dir() const = 0;
  virtual std::vector<std::string> signature_keys() const = 0;
  // Imports the signature on first use (kNotFound listing the keys when it does not exist).
  virtual const Signature& signature(const std::string& key = "serving_default") const = 0;
};

// Reads DIR/saved_model.pb for the meta graph tagged `options.tags`. Variables are read when a
// signature that uses them is imported. A converted SavedModel (Converter::save) or a .kiln file
// (Converter::save_kiln_file, `kiln build`; recognised by its magic bytes or the .kiln extension)
// loads its saved engines instead of rebuilding them.
std::unique_ptr<Model> LoadModel(const std::string& dir, const LoadOptions& options = {});

}  // namespace kiln
