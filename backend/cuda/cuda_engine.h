// The CUDA engine: one segment compiled for one GPU and one profile. Built once: constants are
// uploaded to device memory, chains of elementwise ops become one generated kernel each
// (NVRTC), matrix products cuBLASLt calls, and shape-only ops (Reshape, Squeeze, ExpandDims,
// Identity) views of their input. Enqueue only queues work on the caller's CUDA stream;
// intermediates come from the device's stream-ordered memory pool and go back to it after
// their last reader is queued.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/attention_kernel.h"
#include "backend/cuda/conv_kernel.h"
#include "backend/cuda/cubin_cache.h"
#include "backend/cuda/eltwise_kernel.h"
#include "backend/cuda/gather_kernel.h"
#include "backend/cuda/host_values.h"
#include "backend/cuda/matmul_act_kernel.h"
#include "backend/cuda/matmul_kernel.h"
#include "backend/cuda/norm_kernel.h"
#include "backend/cuda/pool_kernel.h"
#include "backend/cuda/row_kernel.h"
#include "ir/ops/array_common.h"

namespace kiln::backend::cuda {

// Ops that only reshape: their output is a view of input 0. Their target may be computed on the
// host (host_values.h).
bool IsViewOp(const std::string& op);
// Transpose and Concat, whose permutation or axis must be constant.
bool IsLayoutOp(const std::string& op);

// The first line of a serialized CUDA engine (Serialize); the cubins follow it.
inline constexpr std::string_view kEnginePayloadMagic = "kiln-cuda-engine 2\n";

class StepTimer;  // CUDA events around each step, for the layer profile (cuda_engine.cc)

class CudaEngine final : public Engine {
 public:
  CudaEngine(const ir::Graph& segment, Profile profile, const CompileOptions& options, int device);
  const Profile& profile() const override { return profile_; }
  Precision precision() const override { return precision_; }
  std::string precision_note() const override { return precision_note_; }
  std::vector<std::string> quantized_layers() const override { return quantized_layers_; }
  Device device() const override { return {DeviceKind::kCuda, device_}; }
  std::vector<DType> output_dtypes() const override;
  std::vector<Shape> OutputShapes(std::span<const Shape> input_shapes) const override;
  void Enqueue(std::span<const Tensor> inputs, std::span<Tensor> outputs, Stream& stream) const override;
  // "kiln-cuda-engine 2", a newline, and the engine's compiled kernels (EncodeCubins).
  std::string Serialize() const override;

  struct StepInfo {
    std::string nodes;   // the IR nodes the step runs, "a+b+c" for a fused chain
    std::string kernel;  // "nvrtc eltwise (3 ops)", "cublasLt MatMul", "view"
  };
  std::vector<StepInfo> steps() const;
  // CUDA graphs captured so far (one per set of buffers and shapes seen twice).
  size_t graphs_captured() const;

 private:
  struct Step {
    enum class Kind { kEltwise, kMatMul, kView, kRow, kTranspose, kConcat, kConv, kPool, kGather, kBroadcast, kNorm, kAttention, kMatMulGelu, kSlice };
    Kind kind = Kind::kView;
    std::vector<ir::ValueId> inputs;
    ir::ValueId output = ir::kNoValue;
    DType output_dtype = DType::kInvalid;  // the output's stored dtype when it is not the graph's (int8, E4M3 bytes)
    std::vector<std::string> nodes;
    std::unique_ptr<EltwiseKernel> eltwise;
    std::unique_ptr<MatMulKernel> matmul;
    std::unique_ptr<RowKernel> row;
    std::unique_ptr<ConvKernel> conv;
    std::unique_ptr<PoolKernel> pool;
    std::unique_ptr<GatherKernel> gather;
    std::unique_ptr<LayerNormKernel> norm;  // inputs: x, [residual], [scale, [bias]]
    std::unique_ptr<AttentionKernel> attention;  // inputs: q, k, v, [bias]
    std::unique_ptr<MatMulGeluKernel> matmul_gelu;  // inputs: x (weights and bias are the kernel's)
    // Sibling products (matmul_siblings.h) run as one strided-batched product writing one
    // buffer: group_outputs[i] is product i's value (after its bias), stored at offset
    // i * its size; inputs[0] is the shared left operand; group_weights [G, k, n] and
    // group_bias [G, n] are the stacked constants.
    std::vector<ir::ValueId> group_outputs;
    Tensor group_weights, group_bias;
    std::vector<int64_t> perm;         // Transpose
    // Slice, StridedSlice, Reverse: the op, its begin/size/end/strides/axis inputs (constants or
    // host values) and StridedSlice's masks; inputs[0] is the sliced tensor.
    std::string slice_op;
    std::vector<ir::ValueId> slice_params;
    ir::array::StridedSliceMasks slice_masks;
    int64_t axis = 0;                  // Concat (may be negative)
    std::vector<ir::ValueId> release;  // values last read by this step
  };

  // The engine for one set of input shapes: every value's shape, the values computed on the
  // host, and device copies of those that kernels or outputs read.
  struct Specialized {
    Specialization spec;
    std::vector<std::pair<ir::ValueId, Tensor>> device_values;
    bool cached = false;  // kept for the engine's lifetime (a transient one's copies die with the run)
  };

  // A run's buffers and shapes, which a captured graph replays exactly.
  struct GraphKey {
    std::vector<const void*> buffers;  // inputs, then outputs
    std::vector<Shape> shapes;         // inputs
    auto operator<=>(const GraphKey&) const = default;
  };
  struct CapturedGraph {
    int eager_runs = 0;      // runs before capture
    bool capturing = false;  // one thread captures; the others run launch by launch meanwhile
    bool uncapturable = false;
    cudaGraphExec_t exec = nullptr;
    ~CapturedGraph();
  };

  // A sibling-product step's operand shapes for the batched product: the left operand as
  // [1, rows, k] and the result as [G, rows, n], given the left operand's and one result's shape.
  static std::pair<Shape, Shape> SiblingShapes(const Step& step, const Shape& left, const Shape& result);
  // What runs a step, as steps() and the layer profile name it.
  static std::string KernelName(const Step& s);
  // What a slice step copies out of an input of shape `x`, for the specialization's host values.
  ir::array::StridedCopyGeometry SliceGeometryOf(const Step& step, const Shape& x, const Specialization& spec) const;
  // Fusions that run in cuDNN graphs, which cuDNN may refuse for a shape: the engine then builds
  // its steps again without them.
  struct LibraryFusions {
    bool residual = true;   // a convolution absorbs the Add of a residual tensor
    bool attention = true;  // attention patterns run as one fused SDPA (attention_match.h)
    bool siblings = true;   // sibling products run as one batched product (matmul_siblings.h)
    bool gelu = true;       // a product followed by a Gelu runs as one cuDNN graph (matmul_act_kernel.h)
    bool quantized_output = true;  // a convolution read only by 8-bit convolutions writes 8 bits (conv_kernel.h)
    // ... and (int8) one also read as the residual of other convolutions (TensorRT's INT8 residuals)
    bool quantized_residual = true;
    bool quantized_pool = true;  // a MaxPool read only by int8 convolutions writes int8 (pool_kernel.h)
  };
  void BuildSteps(GpuArch arch, LibraryFusions fusions);
  // Whether any step runs a fusion of LibraryFusions.
  static bool UsesLibraryFusions(const std::vector<Step>& steps);
  // Builds (and times) the plans of the convolution, attention and matrix product steps for
  // these shapes, `threads` steps at a time (preparation_lock.h: only cuDNN's plan compilation
  // overlaps); `report` hears, on this thread, which step is being prepared. A failure is the
  // one of the first failing step in step order, as if the steps had been prepared one by one.
  void PrepareLibraryPlans(const std::vector<std::optional<Shape>>& shapes, int threads,
                           const std::function<void(const std::string&)>& report) const;
  // The same for one step.
  void PrepareLibraryPlan(const Step& s, const std::vector<std::optional<Shape>>& shapes) const;
  // The specialization for these input shapes (cached for the first kMaxSpecializations sets of
  // shapes; later ones are computed per call, their device copies made on `stream`).
  std::shared_ptr<const Specialized> SpecializedFor(const std::vector<Shape>& input_shapes,
                                                    cudaStream_t stream = nullptr) const;
  // SpecializedFor, after checking that the profile covers the input shapes (kInvalidArgument).
  std::shared_ptr<const Specialized> Covered(const std::vector<Shape>& input_shapes, cudaStream_t stream = nullptr) const;
  // The outputs' shapes among `shapes` (kUnimplemented where only the run can tell).
  std::vector<Shape> OutputShapesOf(const std::vector<std::optional<Shape>>& shapes) const;
  std::shared_ptr<const Specialized> MakeSpecialized(const std::vector<Shape>& input_shapes, cudaStream_t stream) const;
  // Queues every step (launch by launch) and the copies of outputs not written in place.
  void EnqueueSteps(const Specialized& specialized, std::span<const Tensor> inputs, std::span<Tensor> outputs,
                    cudaStream_t stream, StepTimer* timer = nullptr) const;
  // Captures EnqueueSteps into a graph and launches it; false (nothing queued) when the stream
  // cannot be captured, e.g. because another library synchronized during the capture.
  // After the steps are built: INT8 (FP8) when some convolution runs int8 (fp8) kernels, and
  // which do not.
  void SettleQuantized(Precision requested);
  bool CaptureAndLaunch(CapturedGraph& graph, const Specialized& specialized, std::span<const Tensor> inputs,
                        std::span<Tensor> outputs, cudaStream_t stream) const;

  ir::Graph graph_;
  Profile profile_;
  int device_ = 0;
  Precision precision_ = Precision::kFP32;
  std::string precision_note_;
  std::vector<std::string> quantized_layers_;  // convolutions that run cuDNN's 8-bit kernels
  std::vector<std::pair<ir::ValueId, Tensor>> constants_;  // on the device
  std::vector<Step> steps_;
  std::vector<CubinEntry> cubins_;        // every generated kernel's cubin (Serialize)
  std::vector<bool> host_nodes_;          // by node id: computed on the host (host_values.h)
  std::vector<ir::ValueId> uploaded_;     // host values that kernels or the outputs read

  bool use_graphs_ = true;
  bool quantized_by_timing_ = true;  // CompileOptions::quantized_by_timing
  std::optional<ir::QuantFormat> quantized_format_;  // INT8 / FP8 engines: their 8-bit format
  mutable std::mutex graphs_mu_;
  mutable std::map<GraphKey, std::shared_ptr<CapturedGraph>> graphs_;

  mutable std::mutex specialized_mu_;
  mutable std::map<std::vector<Shape>, std::shared_ptr<const Specialized>> specialized_;
};

}  // namespace kiln::backend::cuda
