// The engine backend interface. A backend says which IR nodes it supports, compiles a segment
// (an IR subgraph) for an optimization profile into an Engine, and serializes / deserializes
// engines. Engines read inputs and write caller-owned outputs on their backend's device, in
// the order of a Stream; the runtime moves tensors between devices with the backend's
// DeviceServices. Backends register themselves by name (RegisterBackend).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/device.h"
#include "ir/graph.h"
#include "kiln/precision.h"
#include "kiln/tensor.h"

namespace kiln::backend {

// The shapes one engine accepts: per segment input, min/opt/max (inclusive) per dim.
struct InputRange {
  Shape min, opt, max;
  bool operator==(const InputRange&) const = default;
};

struct Profile {
  std::vector<InputRange> inputs;
  // True when every shape lies within [min, max] dim by dim (ranks must match).
  bool Covers(const std::vector<Shape>& shapes) const;
  // "[4-8,128-384];[4-8,128-384]" (a dim with min == max prints once).
  std::string ToString() const;
  bool operator==(const Profile&) const = default;
};

struct CompileOptions {
  Precision precision = Precision::kFP32;
  size_t max_workspace_bytes = size_t{1} << 30;
  // CPU threads: the CPU backend's kernels; the CUDA backend's engine builds (up to 8, compiling
  // cuDNN plans side by side). 0: all hardware threads.
  int num_threads = 0;
  // GPU engines capture a run into a CUDA graph once they have seen the same input and output
  // buffers and shapes twice, and replay it from then on (one launch instead of one per kernel).
  bool cuda_graphs = true;
  // GPU engines run a product followed by an exact GELU as one cuDNN graph (matmul_act_kernel.h).
  // Off by default: on an H200 it measured slower than cuBLASLt plus the elementwise GELU kernel
  // for BERT-base at batch 32 (docs/benchmarks.md).
  bool cuda_gelu_epilogue = false;
  // INT8/FP8 GPU engines time each quantized convolution's 8-bit plan against its float plan
  // (same dequantized values) and keep the faster, as TensorRT's INT8 mode picks per layer; false:
  // 8-bit wherever the library has a kernel (TensorRT's OBEY_PRECISION_CONSTRAINTS).
  bool quantized_by_timing = true;
  // Where a long build says what it is doing (a line at a time, a few seconds apart); empty:
  // silent. Backends report only builds that take more than a second or so.
  std::function<void(const std::string&)> progress;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const Profile& profile() const = 0;
  // The precision the engine actually computes in (may be higher than requested when the
  // device cannot honour it: e.g. FP16 on a CPU without FP16 arithmetic runs FP32).
  virtual Precision precision() const = 0;
  // Why the requested precision was not honoured; empty when it was.
  virtual std::string precision_note() const = 0;
  // The layers (node names) that compute with 8-bit operands (int8, or float8 in FP8 engines);
  // empty when none do.
  virtual std::vector<std::string> quantized_layers() const { return {}; }
  // The device whose memory the engine reads its inputs from and writes its outputs to.
  virtual Device device() const { return {}; }
  // One dtype per segment output.
  virtual std::vector<DType> output_dtypes() const = 0;
  // The output shapes for input shapes covered by profile(); kInvalidArgument for shapes the
  // profile does not cover or that do not fit the segment.
  virtual std::vector<Shape> OutputShapes(std::span<const Shape> input_shapes) const = 0;
  // Queues the engine on `stream` (a stream of device()): reads `inputs`, writes `outputs`,
  // which the caller owns and allocated on device() with output_dtypes() and the shapes
  // OutputShapes gives. Outputs must not overlap inputs or each other. Inputs and outputs must
  // stay alive until the stream is synchronized. Thread-safe: concurrent calls use separate
  // execution contexts.
  virtual void Enqueue(std::span<const Tensor> inputs, std::span<Tensor> outputs, Stream& stream) const = 0;
  // Allocates the outputs with `services` (the engine's device) and runs synchronously.
  std::vector<Tensor> Execute(std::span<const Tensor> inputs, const DeviceServices& services = HostServices()) const;
  // Backend-specific payload (the engine file header is added by convert/engine_file).
  virtual std::string Serialize() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu", "cuda"
  // Device or ISA the engines are built for, e.g. "x86-64 avx2 fma" or "NVIDIA H100 sm_90";
  // engines built for another device are rebuilt.
  virtual std::string device() const = 0;
  // Why the backend cannot run this node (nullopt when it can).
  virtual std::optional<std::string> Unsupported(const ir::Graph& graph, const ir::Node& node) const = 0;
  virtual std::unique_ptr<Engine> Compile(const ir::Graph& segment, const Profile& profile,
                                          const CompileOptions& options) const = 0;
  // kDataLoss / kInvalidArgument for a payload this backend cannot load.
  virtual std::unique_ptr<Engine> Deserialize(const ir::Graph& segment, const Profile& profile,
                                              const CompileOptions& options, std::string_view payload) const = 0;
  // The services of the device the engines run on (the host's unless overridden).
  virtual const DeviceServices& device_services() const { return HostServices(); }
};

using BackendFactory = std::function<std::unique_ptr<Backend>()>;

// Called once per backend from a static initialiser in the backend's library.
void RegisterBackend(std::string name, BackendFactory factory);
// The registered backends' names, sorted.
std::vector<std::string> BackendNames();
// The backend registered under `device` ("cpu", ...). kInvalidArgument naming the registered
// backends otherwise.
std::unique_ptr<Backend> MakeBackend(std::string_view device);

// Device services by device, for code that holds a tensor and must reach its device (copies,
// allocations) without naming a backend. A backend whose engines run on a device kind registers
// the lookup of that kind's services once, next to RegisterBackend.
using DeviceServicesLookup = std::function<const DeviceServices&(int index)>;
void RegisterDeviceServices(DeviceKind kind, DeviceServicesLookup lookup);
// HostServices() for the host; the registered lookup's answer otherwise (its errors, e.g.
// kNotFound for an index past the device count). kUnavailable when this build has no backend
// for that kind of device.
const DeviceServices& ServicesOf(Device device);

}  // namespace kiln::backend
