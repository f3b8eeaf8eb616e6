#include "backend/cuda/cuda_engine.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "backend/cuda/cubin_cache.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/matmul_siblings.h"
#include "backend/cuda/precision_rewrite.h"
#include "backend/cuda/preparation_lock.h"
#include "backend/cuda/quantized_conv.h"
#include "backend/cuda/timing_cache.h"
#include "backend/layer_profiler.h"
#include "common/ordered_work.h"
#include "ir/graph_util.h"
#include "ir/ops/elementwise_ops.h"
#include "ir/passes/pass.h"

namespace kiln::backend::cuda {
namespace {

constexpr size_t kMaxFusedSteps = 64;
constexpr size_t kMaxFusedInputs = 16;

std::vector<Shape> ProfileShapes(const Profile& p) {
  std::vector<Shape> s;
  for (const InputRange& r : p.inputs) s.push_back(r.max);
  return s;
}

// Concat along `axis`: each input is `outer` blocks of its extent along the axis times the inner
// size; one strided 2-D copy per input places them in the output.
void LaunchConcat(std::span<const Tensor> inputs, int64_t axis, Tensor& out, cudaStream_t stream) {
  const int rank = out.rank();
  if (axis < 0) axis += rank;
  int64_t outer = 1, inner = DTypeSize(out.dtype());
  for (int d = 0; d < rank; ++d) {
    if (d < axis) outer *= out.dim(d);
    if (d > axis) inner *= out.dim(d);
  }
  const size_t out_pitch = static_cast<size_t>(out.dim(static_cast<int>(axis)) * inner);
  size_t offset = 0;
  for (const Tensor& in : inputs) {
    const size_t width = static_cast<size_t>(in.dim(static_cast<int>(axis)) * inner);
    if (width > 0 && outer > 0)
      Check(cudaMemcpy2DAsync(static_cast<char*>(out.raw_data()) + offset, out_pitch, in.raw_data(), width, width,
                              static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, stream),
            "cudaMemcpy2DAsync (Concat)");
    offset += width;
  }
}

// The elementwise kernel of no ops: copies its input, walked with any strides (a transpose) or
// broadcast (BroadcastTo).
std::unique_ptr<EltwiseKernel> CopyKernel(DType dtype, GpuArch arch) {
  EltwiseProgram copy;
  copy.inputs = {dtype};
  return std::make_unique<EltwiseKernel>(std::move(copy), arch);
}

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string s;
  for (const std::string& p : parts) s += (s.empty() ? "" : sep) + p;
  return s;
}

}  // namespace

// CUDA events around every step of one run, for the active LayerProfiler.
// The stream is held (a host function waits) until every step is queued: otherwise a step's time
// would include the host's work before its launch whenever the GPU is not ahead (the first
// steps, memory pool growth), where a run from a CUDA graph has none.
class StepTimer {
 public:
  StepTimer(size_t steps, cudaStream_t stream) : stream_(stream), marks_(steps + 1, nullptr) {
    for (cudaEvent_t& e : marks_) Check(cudaEventCreate(&e), "cudaEventCreate (profile)");
    Check(cudaLaunchHostFunc(stream_, &StepTimer::Hold, &queued_), "cudaLaunchHostFunc (profile)");
    Check(cudaEventRecord(marks_[0], stream_), "cudaEventRecord (profile)");
  }
  ~StepTimer() {
    Release();
    cudaStreamSynchronize(stream_);  // the host function reads queued_
    for (cudaEvent_t e : marks_)
      if (e) cudaEventDestroy(e);
  }
  // Lets the held stream run.
  void Release() { queued_.store(true); }
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;
  void Done(size_t step) { Check(cudaEventRecord(marks_[step + 1], stream_), "cudaEventRecord (profile)"); }
  // Waits for the run and gives step i's milliseconds.
  std::vector<double> Milliseconds() {
    Release();
    Check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (profile)");
    std::vector<double> ms;
    for (size_t i = 0; i + 1 < marks_.size(); ++i) {
      float t = 0;
      Check(cudaEventElapsedTime(&t, marks_[i], marks_[i + 1]), "cudaEventElapsedTime (profile)");
      ms.push_back(t);
    }
    return ms;
  }

 private:
  // Runs on CUDA's host thread; never calls CUDA. A launch path that synchronizes with the stream
  // would wait for it, so the hold ends by itself after two seconds.
  static void CUDART_CB Hold(void* queued) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!static_cast<std::atomic<bool>*>(queued)->load() && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
  }

  cudaStream_t stream_;
  std::vector<cudaEvent_t> marks_;
  std::atomic<bool> queued_{false};
};

bool IsViewOp(const std::string& op) {
  return op == "Reshape" || op == "Squeeze" || op == "ExpandDims" || op == "Identity";
}
bool IsLayoutOp(const std::string& op) { return op == "Transpose" || op == "Concat"; }

// Whether `add` is an Add of `v` and the result of a convolution that nothing else reads: the
// convolution's step absorbs it (BuildSteps), reading `v` as its residual, unless another step
// already runs it (`absorbed`). That convolution must come after v's producer in `position`
// (node id -> topological index), so that v's storage is decided when its step is built.
bool IsResidualAddOfConv(const ir::Graph& g, const std::vector<std::vector<ir::NodeId>>& consumers,
                         const std::set<ir::NodeId>& absorbed, const std::vector<size_t>& position,
                         const ir::Node& add, ir::ValueId v) {
  if (add.op != "Add" || add.inputs.size() != 2 || add.inputs[0] == add.inputs[1] || absorbed.count(add.id))
    return false;
  const ir::ValueId other = add.inputs[0] == v ? add.inputs[1] : add.inputs[0];
  const ir::NodeId producer = g.value(other).producer;
  if (producer == ir::kNoNode || ir::IsGraphOutput(g, other)) return false;
  const ir::Node& conv = g.node(producer);
  const ir::NodeId v_producer = g.value(v).producer;
  if (v_producer == ir::kNoNode ||
      position[static_cast<size_t>(producer)] <= position[static_cast<size_t>(v_producer)])
    return false;
  return (conv.op == "Conv2D" || conv.op == "DepthwiseConv2D") && conv.outputs[0] == other &&
         consumers[static_cast<size_t>(other)].size() == 1 && ir::SameShape(g.value(other).shape, g.value(v).shape) &&
         g.value(other).dtype == g.value(v).dtype;
}

// The quantization a convolution's result can be written in: when every reader is a convolution
// marked quantized (quantized_conv.h) reading it as its input, all in one format and quantizing it
// alike by a product, and (int8) the saturation at -128 cannot differ from the readers' lower
// bound (-128, or a ReLU before). Float8 saturates at +-448 as the readers' rounding does.
// With `residual_readers`, 8-bit results may also be read by residual Adds of other convolutions
// (at least one reader must be quantized): those add the 8-bit value times its scale, as
// TensorRT's INT8 and FP8 residual connections do (the sum then sees the quantized value, not
// the float one). `relu`: the writer's values are non-negative, or it clamps to the readers' bounds itself.
std::optional<std::pair<QuantizeParams, ir::QuantFormat>> QuantizedOutputFor(
    const ir::Graph& g, const std::vector<std::vector<ir::NodeId>>& consumers, const std::set<ir::NodeId>& absorbed,
    const std::vector<size_t>& position, ir::ValueId v, bool relu, bool residual_readers,
    std::optional<ir::QuantFormat> engine_format) {
  const auto& readers = consumers[static_cast<size_t>(v)];
  if (readers.empty() || ir::IsGraphOutput(g, v)) return std::nullopt;
  std::optional<std::pair<QuantizeParams, ir::QuantFormat>> common;
  bool residual_seen = false;
  const auto agree = [&](const std::pair<QuantizeParams, ir::QuantFormat>& q) {
    return !common || (common->second == q.second && common->first.inv_scale == q.first.inv_scale &&
                       common->first.qmin == q.first.qmin);
  };
  for (ir::NodeId r : readers) {
    const ir::Node& reader = g.node(r);
    if (residual_readers && IsResidualAddOfConv(g, consumers, absorbed, position, reader, v)) {
      residual_seen = true;
      continue;
    }
    const std::optional<QuantizedConv> quant = reader.op == "Conv2D" ? ReadQuantizedConv(reader) : std::nullopt;
    if (!quant || reader.inputs[0] != v || std::count(reader.inputs.begin(), reader.inputs.end(), v) != 1) return std::nullopt;
    const QuantizeParams& p = quant->input;
    if (p.divisor != 0) return std::nullopt;
    if (quant->format == ir::QuantFormat::kInt8 && (p.qmax != 127 || !(p.qmin == -128 || (relu && p.qmin <= 0))))
      return std::nullopt;
    if (!agree({p, quant->format})) return std::nullopt;
    common = {p, quant->format};
  }
  // E4M3 residuals too, as TensorRT's FP8 residual connections: the sum sees each block input
  // rounded to 3 mantissa bits (up to 1/16 relative), which trained networks absorb (the FP8
  // engines' top-1 on held-out data, docs/testing.md), and the block input is written once in
  // one byte instead of in float16 plus a quantized copy.
  // Read only as residuals: stored in the engine's 8-bit format when calibration gave the
  // convolution's result a range. E4M3 only from an fp8 convolution (a float convolution writing
  // E4M3 is a combination no library kernel here was checked for); int8 from any.
  if (residual_seen && !common) {
    const ir::Node* producer = g.Producer(v);
    const double amax = producer ? producer->attrs.GetOr<double>(ir::kCalibratedOutputAmax, 0.0) : 0.0;
    if (!(amax > 0) || !std::isfinite(amax) || !engine_format) return std::nullopt;
    const std::optional<QuantizedConv> own = ReadQuantizedConv(*producer);
    const bool fp8 = *engine_format == ir::QuantFormat::kFloat8E4M3;
    if (own ? own->format != *engine_format : fp8) return std::nullopt;
    QuantizeParams p;
    p.scale = static_cast<float>(amax / (fp8 ? 448.0 : 127.0));
    p.inv_scale = 1.0f / p.scale;
    p.divisor = 0;
    p.qmin = fp8 ? -448 : -128;
    p.qmax = fp8 ? 448 : 127;
    common = {p, fp8 ? ir::QuantFormat::kFloat8E4M3 : ir::QuantFormat::kInt8};
  }
  return common;
}

CudaEngine::CudaEngine(const ir::Graph& segment, Profile profile, const CompileOptions& options, int device)
    : graph_(ir::CloneGraph(segment)),
      profile_(std::move(profile)),
      device_(device),
      use_graphs_(options.cuda_graphs),
      quantized_by_timing_(options.quantized_by_timing),
      quantized_format_(options.precision == Precision::kINT8  ? std::optional{ir::QuantFormat::kInt8}
                        : options.precision == Precision::kFP8 ? std::optional{ir::QuantFormat::kFloat8E4M3}
                                                               : std::nullopt) {
  if (profile_.inputs.size() != graph_.inputs().size())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("the profile has {} inputs, the segment {}",
                                                         profile_.inputs.size(), graph_.inputs().size()));
  // Repeated computations (an exporter's per-layer copies of the attention mask) are merged.
  // Layer norms fuse before narrowing, so that their epsilon keeps its float32 value (BERT's
  // 1e-12 is 0 in float16) and their statistics are computed in float32 whatever the storage.
  ir::PassPipeline fusion;
  fusion.Add(ir::MakeCommonSubexpressionElimination());
  fusion.Add(ir::MakeLayerNormFusion());
  fusion.Add(ir::MakeGeluFusion());
  // INT8 and FP8: quantized convolutions are marked to run cuDNN's 8-bit kernels (while the graph
  // is still float32, so their scales are exact).
  if (options.precision == Precision::kINT8) fusion.Add(MakeQuantizedConvPass(ir::QuantFormat::kInt8));
  if (options.precision == Precision::kFP8) fusion.Add(MakeQuantizedConvPass(ir::QuantFormat::kFloat8E4M3));
  if (options.precision == Precision::kINT8 || options.precision == Precision::kFP8)
    fusion.Add(MakeImplicitQuantizationForFloatReadersPass());
  fusion.Add(ir::MakeDeadCodeElimination());
  fusion.Run(graph_);
  if (options.precision == Precision::kFP16 || options.precision == Precision::kBF16) {
    NarrowFloat32(graph_, options.precision == Precision::kFP16 ? DType::kFloat16 : DType::kBFloat16);
    precision_ = options.precision;
  } else if (options.precision == Precision::kINT8 || options.precision == Precision::kFP8) {
    // As TensorRT's INT8 and FP8 modes (which TF-TRT sets with FP16): what does not run 8-bit
    // kernels runs FP16 (the FP8 quantize-dequantize steps too: E4M3 values are exact in FP16).
    NarrowFloat32(graph_, DType::kFloat16);
    precision_ = Precision::kFP16;
  } else if (options.precision != Precision::kFP32) {
    precision_note_ = fmt::format("{} was requested; the CUDA backend has no {} kernels yet, so the engine runs FP32",
                                  PrecisionName(options.precision), PrecisionName(options.precision));
  }
  // Convolutions and pooling run channels-last (tensor cores want NHWC); layout changes sink
  // and cancel so that a channels-first model changes layout only at the segment's edges.
  ir::PassPipeline layout;
  layout.Add(ir::MakeChannelsLast());
  layout.Add(ir::MakeTransposeSinking());
  layout.Add(ir::MakeDeadCodeElimination());
  layout.Run(graph_);
  DeviceScope scope(device_);
  // Long builds (tactic timing: seconds per convolution network) say where they are, every few
  // seconds once the first second has passed.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_report = start;
  bool reported = false;
  const int64_t cache_hits = ProcessTimingCache().hits(), cache_misses = ProcessTimingCache().misses();
  auto report = [&](const std::string& what) {
    const Clock::time_point now = Clock::now();
    if (!options.progress || now - start < std::chrono::seconds(1) || (reported && now - last_report < std::chrono::seconds(3)))
      return;
    last_report = now;
    reported = true;
    options.progress(fmt::format("{} ({:.0f} s)", what, std::chrono::duration<double>(now - start).count()));
  };
  {
    CubinRecorder recorder;  // the kernels this engine uses, for Serialize
    // cuDNN (or cuBLASLt, for sibling products) may refuse a fused graph for the profile's
    // shapes: then the steps are built again with fewer fusions (GELU epilogues first, then int8
    // pooling, int8 residuals, 8-bit outputs, sibling products, attention and residual Adds): a
    // quantized engine keeps its 8-bit outputs where only its int8 residuals are refused.
    const LibraryFusions choices[] = {
        {true, true, true, true, true, true, true},       {true, true, true, false, true, true, true},
        {true, true, true, false, true, true, false},     {true, true, true, false, true, false, false},
        {true, true, true, false, false, false, false},   {true, true, false, false, false, false, false},
        {true, false, false, false, false, false, false}, {false, false, false, false, false, false, false}};
    // Steps whose cuDNN plans compile kernels are prepared side by side (preparation_lock.h), on
    // up to 8 of the threads the options allow: each compiles one plan at a time, and a step has
    // up to 8 candidate plans.
    const int build_threads =
        std::min(8, options.num_threads > 0 ? options.num_threads
                                            : std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
    // Retries are logged with the tactics: each one builds and times the engine's kernels again.
    auto retry = [&](const std::string& why) {
      const std::string line = fmt::format("{}; building with fewer fusions", why);
      LogTacticNote(fmt::format("engine build: {} ({:.1f} s into the build)\n", line,
                                std::chrono::duration<double>(Clock::now() - start).count()));
      if (options.progress) options.progress(line);
    };
    for (size_t i = options.cuda_gelu_epilogue ? 0 : 1; i < std::size(choices); ++i) {
      steps_.clear();
      constants_.clear();
      const Clock::time_point steps_start = Clock::now();
      try {
        BuildSteps(ArchOf(device_), choices[i]);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kUnavailable || i + 1 == std::size(choices)) throw;
        retry(e.what());
        continue;
      }
      LogTacticNote(fmt::format("engine build: {} steps (kernels compiled or loaded) in {:.2f} s\n", steps_.size(),
                                std::chrono::duration<double>(Clock::now() - steps_start).count()));
      const bool last = i + 1 == std::size(choices) || !UsesLibraryFusions(steps_);
      // The profile's largest shapes must fit the segment (and give every value a shape).
      const auto specialized = SpecializedFor(ProfileShapes(profile_));
      const auto& shapes = specialized->spec.shapes;
      for (const Step& s : steps_)
        if (!shapes[static_cast<size_t>(s.output)])
          throw Error(ErrorCode::kInvalidArgument,
                      fmt::format("node '{}': its output shape is not known for the profile {}", s.nodes.back(),
                                  profile_.ToString()));
      // Convolution and attention plans are built and timed now, for the profile's largest shapes.
      try {
        PrepareLibraryPlans(shapes, build_threads, report);
        break;
      } catch (const Error& e) {
        if (last) throw;
        retry(fmt::format("a library refused a fused step ({})", e.what()));
      }
    }
    cubins_ = recorder.Take();
  }
  if (options.precision == Precision::kINT8 || options.precision == Precision::kFP8) SettleQuantized(options.precision);
  ProcessTimingCache().Flush();  // the tactics this build chose, for the next build of these shapes
  if (reported)
    options.progress(fmt::format("kernels chosen in {:.1f} s: {} tactic problems timed, {} from the timing cache {}",
                                 std::chrono::duration<double>(Clock::now() - start).count(),
                                 ProcessTimingCache().misses() - cache_misses, ProcessTimingCache().hits() - cache_hits,
                                 ProcessTimingCache().file().empty() ? "(in memory)" : ProcessTimingCache().file().string()));
}

void CudaEngine::SettleQuantized(Precision requested) {
  const char* kind = requested == Precision::kINT8 ? "int8" : "fp8";
  const std::string name(PrecisionName(requested));
  std::vector<std::string> refused;
  std::string reason;
  int marked = 0;
  for (const Step& s : steps_) {
    if (s.kind != Step::Kind::kConv || !s.conv->quantized_format()) continue;
    ++marked;
    if (s.conv->runs_quantized()) {
      quantized_layers_.push_back(s.nodes.front());
    } else {
      refused.push_back(s.nodes.front());
      if (reason.empty()) reason = s.conv->quantized_refusal();
    }
  }
  std::map<std::string, int> products;  // of them, run by cuBLASLt's or CUTLASS's kernels
  for (const Step& s : steps_)
    if (s.kind == Step::Kind::kConv)
      if (std::string library = s.conv->quantized_library(); !library.empty()) ++products[library];
  // "cuDNN kernels", or "kernels (N cuDNN, M cutlass)" when other libraries run some.
  std::string libraries = "cuDNN kernels";
  if (!products.empty()) {
    int others = 0;
    for (const auto& [library, count] : products) others += count;
    std::vector<std::string> parts;
    if (static_cast<int>(quantized_layers_.size()) > others)
      parts.push_back(fmt::format("{} cuDNN", static_cast<int>(quantized_layers_.size()) - others));
    for (const auto& [library, count] : products) parts.push_back(fmt::format("{} {}", count, library));
    libraries = fmt::format("kernels ({})", fmt::join(parts, ", "));
  }
  const std::string rest = fmt::format(
      "the other steps run FP16 (quantize-dequantize steps included; matrix products have no {} GPU kernels yet)", kind);
  if (!quantized_layers_.empty()) {
    precision_ = requested;
    precision_note_ =
        refused.empty()
            ? fmt::format("{} convolution(s) run {} {}; {}", quantized_layers_.size(), kind, libraries, rest)
            : fmt::format("{} convolution(s) run {} {}, {} FP16 on their dequantized input ({}; the first: {}); {}",
                          quantized_layers_.size(), kind, libraries, refused.size(), fmt::join(refused, ", "), reason,
                          rest);
  } else if (marked > 0) {
    precision_note_ = fmt::format("{} requested; none of the engine's quantized convolutions runs {} kernels (the "
                                  "first: {}), engine runs FP16 with the quantize-dequantize steps: {}",
                                  name, kind, reason, fmt::join(refused, ", "));
  } else {
    precision_note_ = fmt::format("{} requested; no convolution of the engine has a quantized input and {}-grid filter "
                                  "(the only {} GPU kernels yet), engine runs FP16 with the graph's quantize-dequantize "
                                  "steps",
                                  name, kind, kind);
  }
}

bool CudaEngine::UsesLibraryFusions(const std::vector<Step>& steps) {
  return std::any_of(steps.begin(), steps.end(), [](const Step& s) {
    return s.kind == Step::Kind::kAttention || s.kind == Step::Kind::kMatMulGelu ||
           (s.kind == Step::Kind::kConv && (s.inputs.size() > 1 || s.conv->writes_quantized())) || !s.group_outputs.empty();
  });
}

void CudaEngine::PrepareLibraryPlans(const std::vector<std::optional<Shape>>& shapes, int threads,
                                     const std::function<void(const std::string&)>& report) const {
  std::vector<const Step*> library_steps;
  for (const Step& s : steps_)
    if (s.kind == Step::Kind::kConv || s.kind == Step::Kind::kMatMul || s.kind == Step::Kind::kAttention ||
        s.kind == Step::Kind::kMatMulGelu)
      library_steps.push_back(&s);
  const size_t count = library_steps.size();
  using Clock = std::chrono::steady_clock;
  const Clock::time_point all_start = Clock::now();
  std::vector<double> seconds(count, 0.0);  // each written by the one thread preparing its step
  CubinRecorder* recorder = CubinRecorder::Active();
  RunInOrderOnThreads(
      count, threads,
      [&](size_t k) {
        CubinRecorderBinding binding(recorder);
        DeviceScope scope(device_);
        const Clock::time_point step_start = Clock::now();
        PreparationLock preparing;
        PrepareLibraryPlan(*library_steps[k], shapes);
        seconds[k] = std::chrono::duration<double>(Clock::now() - step_start).count();
      },
      [&](size_t k) {
        report(fmt::format("choosing library kernels: step {}/{} ({}, '{}')", k + 1, count,
                           KernelName(*library_steps[k]), library_steps[k]->nodes.back()));
      });
  // How long each step's plan choice took (building and timing candidates, and waiting for the
  // lock while other steps timed theirs), for the tactic log.
  std::vector<size_t> slowest(count);
  for (size_t i = 0; i < count; ++i) slowest[i] = i;
  std::sort(slowest.begin(), slowest.end(), [&](size_t a, size_t b) { return seconds[a] > seconds[b]; });
  std::string text =
      fmt::format("engine build: kernels of {} library steps chosen in {:.2f} s ({} at a time); the slowest:\n", count,
                  std::chrono::duration<double>(Clock::now() - all_start).count(),
                  std::min(count, static_cast<size_t>(std::max(threads, 1))));
  for (size_t i = 0; i < slowest.size() && i < 10; ++i)
    text += fmt::format("  {:8.3f} s  {}  {}\n", seconds[slowest[i]], KernelName(*library_steps[slowest[i]]),
                        Join(library_steps[slowest[i]]->nodes, "+"));
  LogTacticNote(text);
}

void CudaEngine::PrepareLibraryPlan(const Step& s, const std::vector<std::optional<Shape>>& shapes) const {
  auto shape = [&](ir::ValueId v) -> const Shape& { return *shapes[static_cast<size_t>(v)]; };
  if (s.kind == Step::Kind::kConv) s.conv->Prepare(shape(s.inputs[0]), shape(s.output));
  if (s.kind == Step::Kind::kMatMul && !s.group_outputs.empty()) {
    const auto [a, out] = SiblingShapes(s, shape(s.inputs[0]), shape(s.output));
    s.matmul->Prepare(a, s.group_weights.shape(), out);
  } else if (s.kind == Step::Kind::kMatMul) {
    s.matmul->Prepare(shape(s.inputs[0]), shape(s.inputs[1]), shape(s.output));
  }
  if (s.kind == Step::Kind::kMatMulGelu) s.matmul_gelu->Prepare(shape(s.inputs[0]));
  if (s.kind == Step::Kind::kAttention) {
    s.attention->CheckShapes(shapes);
    s.attention->Prepare(shape(s.inputs[0]), shape(s.inputs[1]), shape(s.inputs[2]),
                         s.inputs.size() > 3 ? &shape(s.inputs[3]) : nullptr, shape(s.output));
  }
}

void CudaEngine::BuildSteps(GpuArch arch, LibraryFusions fusions) {
  const ir::Graph& g = graph_;
  const auto consumers = g.Consumers();
  const auto& services = Services(device_);

  struct Group {
    EltwiseProgram program;
    std::vector<ir::ValueId> inputs;
    std::map<ir::ValueId, int> local;  // graph value -> program value
    ir::ValueId output = ir::kNoValue;
    std::vector<std::string> nodes;
    std::vector<int64_t> perm;  // a Transpose of the result runs in the same kernel
  };
  std::vector<std::pair<size_t, Step>> placed;  // (topological position, step)
  std::vector<Group> groups;
  std::vector<int> group_step(g.num_values(), -1);  // value -> index in placed of the group producing it
  std::vector<int> step_group;                      // placed index -> group index or -1

  std::set<ir::NodeId> absorbed;  // nodes another step runs (a ReLU after a convolution)
  // Convolution results stored in 8 bits for their 8-bit readers, with their quantization.
  std::map<ir::ValueId, std::pair<QuantizeParams, ir::QuantFormat>> quantized_values;
  host_nodes_ = HostNodes(g);
  std::vector<bool> host_value(g.num_values(), false);
  const std::vector<ir::NodeId> order = g.TopologicalOrder();
  std::vector<size_t> position(g.nodes().size(), 0);  // node id -> index in `order`
  for (size_t pos = 0; pos < order.size(); ++pos) position[static_cast<size_t>(order[pos])] = pos;
  // A LayerNorm reading the sum of two tensors, which nothing else reads, adds them itself (the
  // transformer's "add & norm"): the Add runs inside the LayerNorm step.
  std::map<ir::NodeId, const ir::Node*> norm_residual;  // LayerNorm -> the Add it runs
  for (ir::NodeId id : order) {
    const ir::Node& n = g.node(id);
    if (n.op != "LayerNorm" || host_nodes_[static_cast<size_t>(id)]) continue;
    const ir::Node* add = g.Producer(n.inputs[0]);
    if (!add || add->op != "Add" || add->inputs.size() != 2 || host_nodes_[static_cast<size_t>(add->id)] ||
        consumers[static_cast<size_t>(n.inputs[0])].size() != 1 || ir::IsGraphOutput(g, n.inputs[0]))
      continue;
    // The operands' shapes need not be provably equal: the step adds broadcasting operands on
    // its own when their shapes differ at run time.
    const ir::Value& a = g.value(add->inputs[0]);
    const ir::Value& b = g.value(add->inputs[1]);
    if (a.dtype != b.dtype || a.dtype != g.value(n.inputs[0]).dtype || a.constant || b.constant) continue;
    norm_residual.emplace(id, add);
    absorbed.insert(add->id);
  }
  // Attention patterns run as one cuDNN SDPA step, placed at the pattern's last node.
  std::map<ir::NodeId, AttentionMatch> attention_at;
  if (fusions.attention && HaveCudnn()) {
    for (AttentionMatch& m : FindAttention(g, consumers)) {
      const bool on_host = std::any_of(m.nodes.begin(), m.nodes.end(),
                                       [&](ir::NodeId id) { return host_nodes_[static_cast<size_t>(id)]; });
      if (on_host) continue;
      ir::NodeId last = m.nodes.front();
      for (ir::NodeId id : m.nodes)
        if (position[static_cast<size_t>(id)] > position[static_cast<size_t>(last)]) last = id;
      for (ir::NodeId id : m.nodes)
        if (id != last) absorbed.insert(id);
      attention_at.emplace(last, std::move(m));
    }
  }
  auto upload = [&](const Tensor& host) {
    Tensor dev = services.allocator().AllocateTensor(host.dtype(), host.shape());
    if (host.byte_size() > 0)
      Check(cudaMemcpy(dev.raw_data(), host.raw_data(), host.byte_size(), cudaMemcpyHostToDevice),
            "cudaMemcpy (constant)");
    return dev;
  };
  // Sibling products run as one batched product, placed at the first of them (their inputs, the
  // shared left operand and constants, are ready there).
  if (fusions.siblings) {
    auto eligible = [&](ir::NodeId id) { return !host_nodes_[static_cast<size_t>(id)] && !absorbed.count(id); };
    for (MatMulSiblings& group : FindMatMulSiblings(g, consumers, eligible)) {
      Step s;
      s.kind = Step::Kind::kMatMul;
      s.inputs = {group.left};
      s.group_outputs = group.outputs;
      s.output = group.outputs.front();
      size_t first = order.size();
      for (size_t i = 0; i < group.products.size(); ++i) {
        const ir::Node* product = group.products[i];
        first = std::min(first, position[static_cast<size_t>(product->id)]);
        s.nodes.push_back(product->name);
        absorbed.insert(product->id);
        if (!group.biases.empty()) {
          s.nodes.push_back(group.biases[i]->name);
          absorbed.insert(group.biases[i]->id);
        }
      }
      s.matmul = std::make_unique<MatMulKernel>(*group.products[0], g.value(group.left).dtype, !group.biases.empty(),
                                                /*bias_per_batch=*/true);
      s.group_weights = upload(group.weights);
      if (!group.biases.empty()) s.group_bias = upload(group.bias);
      placed.emplace_back(first, std::move(s));
      step_group.push_back(-1);
    }
  }
  for (size_t pos = 0; pos < order.size(); ++pos) {
    if (absorbed.count(order[pos])) continue;
    const ir::Node& n = g.node(order[pos]);
    if (host_nodes_[static_cast<size_t>(n.id)]) {  // computed per input shapes, no step
      for (ir::ValueId v : n.outputs) host_value[static_cast<size_t>(v)] = true;
      continue;
    }
    if (auto at = attention_at.find(n.id); at != attention_at.end()) {
      const AttentionMatch& m = at->second;
      Step s;
      s.kind = Step::Kind::kAttention;
      s.inputs = {m.q.value, m.k.value, m.v.value};
      if (m.bias != ir::kNoValue) s.inputs.push_back(m.bias);
      s.output = m.out.value;
      std::vector<ir::NodeId> in_order = m.nodes;
      std::sort(in_order.begin(), in_order.end(), [&](ir::NodeId a, ir::NodeId b) {
        return position[static_cast<size_t>(a)] < position[static_cast<size_t>(b)];
      });
      for (ir::NodeId id : in_order) s.nodes.push_back(g.node(id).name);
      s.attention = std::make_unique<AttentionKernel>(m, g.value(m.q.value).dtype, n.name, device_);
      placed.emplace_back(pos, std::move(s));
      step_group.push_back(-1);
      continue;
    }
    if (n.op == "Constant") {
      constants_.emplace_back(n.outputs[0], upload(n.attrs.Get<Tensor>("value")));
      continue;
    }
    const ir::elementwise::OpInfo* info = ir::elementwise::FindOp(n.op);
    if (info || n.op == "Cast" || n.op == "Select") {
      // Join the group producing one of the inputs when this node is that value's only reader.
      int joined = -1;
      for (ir::ValueId v : n.inputs) {
        const int at = group_step[static_cast<size_t>(v)];
        if (at < 0 || consumers[static_cast<size_t>(v)].size() != 1 || ir::IsGraphOutput(g, v)) continue;
        const Group& grp = groups[static_cast<size_t>(step_group[static_cast<size_t>(at)])];
        if (grp.output == v && grp.program.steps.size() < kMaxFusedSteps &&
            grp.inputs.size() + n.inputs.size() <= kMaxFusedInputs) {
          joined = at;
          break;
        }
      }
      if (joined < 0) {
        placed.emplace_back(pos, Step{});
        step_group.push_back(static_cast<int>(groups.size()));
        groups.emplace_back();
        joined = static_cast<int>(placed.size()) - 1;
      }
      Group& grp = groups[static_cast<size_t>(step_group[static_cast<size_t>(joined)])];
      EltwiseStep es;
      es.op = info;
      if (info) {
        es.param = ir::elementwise::ParamOf(*info, n.attrs);
      } else if (n.op == "Cast") {
        es.cast_to = n.attrs.Type("to");
        es.truncate = n.attrs.GetOr<bool>("truncate", false);
      }
      for (ir::ValueId v : n.inputs) {
        if (grp.local.count(v)) continue;
        // A new program input: inputs are numbered before step results, which move up by one.
        const int index = static_cast<int>(grp.inputs.size());
        for (auto& [value, local] : grp.local)
          if (local >= index) ++local;
        for (EltwiseStep& s : grp.program.steps)
          for (int& a : s.args)
            if (a >= index) ++a;
        grp.inputs.push_back(v);
        grp.program.inputs.push_back(g.value(v).dtype);
        const Tensor* scalar = g.ConstantOf(v);
        grp.program.uniform.push_back(scalar && scalar->num_elements() == 1);  // read once per thread
        grp.local.emplace(v, index);
      }
      for (ir::ValueId v : n.inputs) es.args.push_back(grp.local.at(v));
      grp.program.steps.push_back(std::move(es));
      grp.local[n.outputs[0]] = static_cast<int>(grp.inputs.size() + grp.program.steps.size()) - 1;
      grp.output = n.outputs[0];
      grp.nodes.push_back(n.name);
      placed[static_cast<size_t>(joined)].first = pos;  // the group runs where its last node is
      group_step[static_cast<size_t>(n.outputs[0])] = joined;
      continue;
    }
    Step s;
    s.inputs = n.inputs;
    s.output = n.outputs.at(0);
    s.nodes = {n.name};
    size_t step_pos = pos;  // where the step runs: after the last node it absorbs
    if (n.op == "MatMul" || n.op == "BatchMatMul") {
      s.kind = Step::Kind::kMatMul;
      // An Add of a constant vector along the product's columns (a layer's bias) that is the
      // product's only reader runs in cuBLASLt's epilogue.
      const ir::Node* add = nullptr;
      if (n.inputs.size() == 2) {
        const auto& readers = consumers[static_cast<size_t>(s.output)];
        if (readers.size() == 1 && !ir::IsGraphOutput(g, s.output) && !absorbed.count(readers[0]) &&
            g.node(readers[0]).op == "Add") {
          const ir::Node& candidate = g.node(readers[0]);
          const ir::ValueId other = candidate.inputs[0] == s.output ? candidate.inputs[1] : candidate.inputs[0];
          if (IsColumnBias(g, other, s.output)) {
            add = &candidate;
            s.inputs.push_back(other);
          }
        }
      }
      if (add) {
        s.output = add->outputs[0];
        s.nodes.push_back(add->name);
        absorbed.insert(add->id);
        step_pos = std::max(step_pos, position[static_cast<size_t>(add->id)]);
      }
      // A Gelu that is the only reader of the product (and its bias) runs in a cuDNN product's
      // epilogue: the activated result is written once.
      const ir::Node* gelu = nullptr;
      const ir::ValueId bias = add || n.inputs.size() > 2 ? s.inputs.back() : ir::kNoValue;
      if (fusions.gelu && HaveCudnn() && !ir::IsGraphOutput(g, s.output)) {
        const auto& readers = consumers[static_cast<size_t>(s.output)];
        if (readers.size() == 1 && !absorbed.count(readers[0]) && g.node(readers[0]).op == "Gelu" &&
            !MatMulGeluUnsupported(g, n, bias))
          gelu = &g.node(readers[0]);
      }
      if (gelu) {
        s.kind = Step::Kind::kMatMulGelu;
        s.matmul_gelu = std::make_unique<MatMulGeluKernel>(g, n, bias, device_);
        s.inputs.resize(1);
        s.output = gelu->outputs[0];
        s.nodes.push_back(gelu->name);
        absorbed.insert(gelu->id);
        step_pos = std::max(step_pos, position[static_cast<size_t>(gelu->id)]);
      } else {
        s.matmul = std::make_unique<MatMulKernel>(n, g.value(n.inputs[0]).dtype, add != nullptr);
      }
    } else if (IsViewOp(n.op)) {
      s.kind = Step::Kind::kView;
      s.inputs.resize(1);
    } else if (n.op == "Conv2D" || n.op == "DepthwiseConv2D") {
      // What follows the convolution runs inside its cuDNN graph when it is the only reader: an
      // Add of another tensor of the same shape (a residual), then a Relu.
      auto sole_reader = [&](ir::ValueId v) -> const ir::Node* {
        const auto& readers = consumers[static_cast<size_t>(v)];
        // A node another step already runs (both convolutions of a residual block read the Add)
        // is not taken twice.
        if (readers.size() != 1 || ir::IsGraphOutput(g, v) || absorbed.count(readers[0])) return nullptr;
        return &g.node(readers[0]);
      };
      ConvEpilogue epilogue;
      ir::ValueId residual = ir::kNoValue;
      const ir::Node* next = sole_reader(s.output);
      if (fusions.residual && next && next->op == "Add" && next->inputs.size() == 2) {
        const ir::ValueId other = next->inputs[0] == s.output ? next->inputs[1] : next->inputs[0];
        if (other != s.output && ir::SameShape(g.value(other).shape, g.value(s.output).shape) &&
            g.value(other).dtype == g.value(s.output).dtype && !g.ConstantOf(other)) {
          residual = other;
          epilogue.residual = true;
        }
      }
      // A result with a calibrated range leaves the Add to the other convolution when that
      // one comes later and could absorb it: this result's 8-bit storage is then decided before
      // that step is built, and read there as its 8-bit residual.
      if (epilogue.residual && fusions.quantized_output && fusions.quantized_residual &&
          n.attrs.Has(ir::kCalibratedOutputAmax)) {
        const ir::Node* later = g.Producer(residual);
        if (later && (later->op == "Conv2D" || later->op == "DepthwiseConv2D") &&
            position[static_cast<size_t>(later->id)] > pos && consumers[static_cast<size_t>(residual)].size() == 1 &&
            !ir::IsGraphOutput(g, residual) && !host_nodes_[static_cast<size_t>(later->id)]) {
          epilogue.residual = false;
          residual = ir::kNoValue;
        }
      }
      const auto absorb = [&](const ir::Node* reader) {
        s.output = reader->outputs[0];
        s.nodes.push_back(reader->name);
        absorbed.insert(reader->id);
        step_pos = std::max(step_pos, position[static_cast<size_t>(reader->id)]);
      };
      if (epilogue.residual) {
        absorb(next);
        next = sole_reader(s.output);
      }
      if (next && next->op == "Relu") {
        epilogue.relu = true;
        absorb(next);
      }
      if (epilogue.residual) {
        if (auto stored = quantized_values.find(residual); stored != quantized_values.end()) {
          epilogue.residual_scale = stored->second.first.scale;
          epilogue.residual_format = stored->second.second;
        }
      }
      if (fusions.quantized_output) {
        if (const auto out = QuantizedOutputFor(g, consumers, absorbed, position, s.output, epilogue.relu,
                                                fusions.quantized_residual && fusions.residual, quantized_format_)) {
          epilogue.quantized_output = out->first;
          epilogue.output_format = out->second;
          s.output_dtype = StoredDType(out->second);
          quantized_values.emplace(s.output, *out);
        }
      }
      s.kind = Step::Kind::kConv;
      s.conv = std::make_unique<ConvKernel>(g, n, device_, epilogue, quantized_values.count(n.inputs[0]) > 0,
                                            quantized_by_timing_);
      s.inputs.resize(1);
      if (epilogue.residual) s.inputs.push_back(residual);
    } else if (n.op == "MaxPool" || n.op == "AvgPool") {
      s.kind = Step::Kind::kPool;
      // A MaxPool read only by 8-bit convolutions quantizes its result for them (it clamps to
      // their int8 bounds itself; E4M3 saturates as their rounding does): they then run no
      // quantize kernel of their own.
      std::optional<QuantizeParams> quantized;
      ir::QuantFormat format = ir::QuantFormat::kInt8;
      if (fusions.quantized_pool && n.op == "MaxPool") {
        if (const auto out = QuantizedOutputFor(g, consumers, absorbed, position, s.output, /*relu=*/true,
                                                fusions.quantized_residual && fusions.residual, quantized_format_)) {
          quantized = out->first;
          format = out->second;
          s.output_dtype = StoredDType(format);
          quantized_values.emplace(s.output, *out);
        }
      }
      s.pool = std::make_unique<PoolKernel>(g, n, arch, quantized, format);
    } else if (IsRowOp(n.op)) {
      s.kind = Step::Kind::kRow;
      s.row = std::make_unique<RowKernel>(g, n, arch);
      s.inputs.resize(1);
    } else if (n.op == "LayerNorm") {
      s.kind = Step::Kind::kNorm;
      auto residual = norm_residual.find(n.id);
      s.norm = std::make_unique<LayerNormKernel>(g, n, residual != norm_residual.end(), device_, arch);
      if (residual != norm_residual.end()) {
        s.inputs.erase(s.inputs.begin());
        s.inputs.insert(s.inputs.begin(), residual->second->inputs.begin(), residual->second->inputs.end());
        s.nodes.insert(s.nodes.begin(), residual->second->name);
      }
    } else if (n.op == "Transpose") {
      s.kind = Step::Kind::kTranspose;
      s.perm = g.ConstantOf(n.inputs[1])->ToInt64Vector();
      const int64_t rank = static_cast<int64_t>(s.perm.size());
      for (int64_t& p : s.perm) p = p < 0 ? p + rank : p;
      // A chain of elementwise ops on one tensor (a model input's conversion to float16) that
      // only this Transpose reads writes its result transposed: one pass over the tensor.
      const ir::ValueId x = n.inputs[0];
      if (const int at = group_step[static_cast<size_t>(x)];
          at >= 0 && consumers[static_cast<size_t>(x)].size() == 1 && !ir::IsGraphOutput(g, x)) {
        Group& grp = groups[static_cast<size_t>(step_group[static_cast<size_t>(at)])];
        if (grp.output == x && grp.perm.empty() && grp.inputs.size() == 1 &&
            ir::SameShape(g.value(grp.inputs[0]).shape, g.value(x).shape) &&
            g.value(x).shape.rank_known && static_cast<size_t>(g.value(x).shape.rank()) == s.perm.size()) {
          grp.perm = s.perm;
          grp.output = s.output;
          grp.nodes.push_back(n.name);
          placed[static_cast<size_t>(at)].first = pos;
          continue;
        }
      }
      s.eltwise = CopyKernel(g.value(n.inputs[0]).dtype, arch);
      s.inputs.resize(1);
    } else if (n.op == "Slice" || n.op == "StridedSlice" || n.op == "Reverse") {
      s.kind = Step::Kind::kSlice;
      s.slice_op = n.op;
      s.slice_params.assign(n.inputs.begin() + 1, n.inputs.end());
      for (ir::ValueId v : s.slice_params)
        if (!g.ConstantOf(v) && !host_value[static_cast<size_t>(v)])
          throw Error(ErrorCode::kInvalidArgument,
                      fmt::format("node '{}' ({}): input '{}' is neither a constant nor computed from shapes", n.name,
                                  n.op, g.value(v).name));
      if (n.op == "StridedSlice") s.slice_masks = ir::array::StridedSliceMasksOf(n.attrs);
      s.eltwise = CopyKernel(g.value(n.inputs[0]).dtype, arch);
      s.inputs.resize(1);
    } else if (n.op == "Gather") {
      s.kind = Step::Kind::kGather;
      s.gather = std::make_unique<GatherKernel>(g, n, arch);
      s.inputs.resize(2);
    } else if (n.op == "BroadcastTo") {
      s.kind = Step::Kind::kBroadcast;
      s.eltwise = CopyKernel(g.value(n.inputs[0]).dtype, arch);
      s.inputs.resize(1);
    } else if (n.op == "Concat") {
      s.kind = Step::Kind::kConcat;
      s.axis = g.ConstantOf(n.inputs.back())->IntAt(0);
      s.inputs.pop_back();
    } else {
      throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' ({}) has no CUDA kernel", n.name, n.op));
    }
    placed.emplace_back(step_pos, std::move(s));
    step_group.push_back(-1);
  }
  for (size_t i = 0; i < placed.size(); ++i) {
    if (step_group[i] < 0) continue;
    Group& grp = groups[static_cast<size_t>(step_group[i])];
    Step& s = placed[i].second;
    s.kind = grp.perm.empty() ? Step::Kind::kEltwise : Step::Kind::kTranspose;
    s.perm = grp.perm;
    s.inputs = grp.inputs;
    s.output = grp.output;
    s.nodes = grp.nodes;
    s.eltwise = std::make_unique<EltwiseKernel>(std::move(grp.program), arch);
  }
  std::stable_sort(placed.begin(), placed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& p : placed) steps_.push_back(std::move(p.second));
  // An 8-bit value is read only where it was decided to be: as a quantized convolution's input
  // or as a residual added times its scale.
  for (const Step& step : steps_)
    for (size_t i = 0; i < step.inputs.size(); ++i) {
      if (!quantized_values.count(step.inputs[i])) continue;
      const bool expected = step.kind == Step::Kind::kConv && ((i == 0 && step.conv->quantized_format()) ||
                                                               (i == 1 && step.conv->reads_quantized_residual()));
      if (!expected)  // the engine is built again with fewer fusions (CudaEngine's constructor)
        throw Error(ErrorCode::kUnavailable,
                    fmt::format("step '{}' would read the 8-bit value '{}' as a float", Join(step.nodes, "+"),
                                g.value(step.inputs[i]).name));
    }

  // Host values that kernels read, or that are outputs, get device copies per input shapes.
  std::set<ir::ValueId> uploaded;
  for (const Step& step : steps_)
    for (ir::ValueId v : step.inputs)
      if (host_value[static_cast<size_t>(v)]) uploaded.insert(v);
  for (ir::ValueId v : g.outputs())
    if (host_value[static_cast<size_t>(v)]) uploaded.insert(v);
  uploaded_.assign(uploaded.begin(), uploaded.end());

  // Intermediates are released after their last reader (graph outputs are kept).
  std::vector<int> last_reader(g.num_values(), -1);
  for (size_t i = 0; i < steps_.size(); ++i)
    for (ir::ValueId v : steps_[i].inputs) last_reader[static_cast<size_t>(v)] = static_cast<int>(i);
  for (size_t i = 0; i < steps_.size(); ++i) {
    const std::vector<ir::ValueId> written =
        steps_[i].group_outputs.empty() ? std::vector<ir::ValueId>{steps_[i].output} : steps_[i].group_outputs;
    for (ir::ValueId v : written) {
      if (ir::IsGraphOutput(g, v) || last_reader[static_cast<size_t>(v)] < 0) continue;
      steps_[static_cast<size_t>(last_reader[static_cast<size_t>(v)])].release.push_back(v);
    }
  }
}

std::shared_ptr<const CudaEngine::Specialized> CudaEngine::MakeSpecialized(const std::vector<Shape>& input_shapes,
                                                                           cudaStream_t stream) const {
  auto made = std::make_shared<Specialized>();
  made->spec = Specialize(graph_, host_nodes_, input_shapes);
  for (ir::ValueId v : uploaded_) {
    const Tensor& host = made->spec.host_values[static_cast<size_t>(v)];
    // Kept by the cache for the engine's lifetime, so a synchronous copy into pool memory; an
    // uncached one is stream-ordered (pageable host memory is staged before the call returns).
    Tensor dev = stream ? Tensor(host.dtype(), host.shape(), AllocateOnStream(device_, host.byte_size(), stream))
                        : Services(device_).allocator().AllocateTensor(host.dtype(), host.shape());
    if (host.byte_size() > 0) {
      if (stream)
        Check(cudaMemcpyAsync(dev.raw_data(), host.raw_data(), host.byte_size(), cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync (host value)");
      else
        Check(cudaMemcpy(dev.raw_data(), host.raw_data(), host.byte_size(), cudaMemcpyHostToDevice),
              "cudaMemcpy (host value)");
    }
    made->device_values.emplace_back(v, std::move(dev));
  }
  return made;
}

std::shared_ptr<const CudaEngine::Specialized> CudaEngine::SpecializedFor(const std::vector<Shape>& input_shapes,
                                                                          cudaStream_t stream) const {
  // Entries are never dropped: in-flight kernels may read their device copies.
  constexpr size_t kMaxSpecializations = 256;
  std::lock_guard<std::mutex> lock(specialized_mu_);
  auto it = specialized_.find(input_shapes);
  if (it != specialized_.end()) return it->second;
  if (specialized_.size() >= kMaxSpecializations && stream) return MakeSpecialized(input_shapes, stream);
  DeviceScope scope(device_);
  auto made = MakeSpecialized(input_shapes, nullptr);
  std::const_pointer_cast<Specialized>(made)->cached = true;
  return specialized_.emplace(input_shapes, std::move(made)).first->second;
}

std::vector<DType> CudaEngine::output_dtypes() const {
  std::vector<DType> d;
  for (ir::ValueId v : graph_.outputs()) d.push_back(graph_.value(v).dtype);
  return d;
}

std::shared_ptr<const CudaEngine::Specialized> CudaEngine::Covered(const std::vector<Shape>& input_shapes,
                                                                   cudaStream_t stream) const {
  if (!profile_.Covers(input_shapes)) {
    std::string got;
    for (const Shape& s : input_shapes) got += (got.empty() ? "" : ";") + ShapeToString(s);
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("input shapes {} are outside the engine's profile {}", got, profile_.ToString()));
  }
  return SpecializedFor(input_shapes, stream);
}

std::vector<Shape> CudaEngine::OutputShapesOf(const std::vector<std::optional<Shape>>& shapes) const {
  std::vector<Shape> out;
  for (size_t i = 0; i < graph_.outputs().size(); ++i) {
    const auto& s = shapes[static_cast<size_t>(graph_.outputs()[i])];
    if (!s)
      throw Error(ErrorCode::kUnimplemented,
                  fmt::format("the shape of output '{}' is not known before the run", graph_.output_names()[i]));
    out.push_back(*s);
  }
  return out;
}

std::vector<Shape> CudaEngine::OutputShapes(std::span<const Shape> input_shapes) const {
  return OutputShapesOf(Covered(std::vector<Shape>(input_shapes.begin(), input_shapes.end()))->spec.shapes);
}

void CudaEngine::Enqueue(std::span<const Tensor> inputs, std::span<Tensor> outputs, Stream& stream) const {
  const Device dev{DeviceKind::kCuda, device_};
  if (stream.device() != dev)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("a {} engine was queued on a {} stream", dev.ToString(), stream.device().ToString()));
  if (inputs.size() != graph_.inputs().size() || outputs.size() != graph_.outputs().size())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the engine takes {} inputs and {} outputs, got {} and {}", graph_.inputs().size(),
                            graph_.outputs().size(), inputs.size(), outputs.size()));
  std::vector<Shape> in_shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const DType want = graph_.value(graph_.inputs()[i]).dtype;
    if (t.dtype() != want || t.device() != dev)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("input '{}': expected {} on {}, got {} on {}", graph_.input_names()[i], DTypeName(want),
                              dev.ToString(), DTypeName(t.dtype()), t.device().ToString()));
    in_shapes.push_back(t.shape());
  }
  DeviceScope scope(device_);
  auto s = static_cast<cudaStream_t>(stream.native_handle());
  const auto specialized = Covered(in_shapes, s);
  const std::vector<Shape> out_shapes = OutputShapesOf(specialized->spec.shapes);
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].device() != dev || outputs[i].shape() != out_shapes[i] ||
        outputs[i].dtype() != graph_.value(graph_.outputs()[i]).dtype)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("output '{}': expected {} {} on {}", graph_.output_names()[i],
                              DTypeName(graph_.value(graph_.outputs()[i]).dtype), ShapeToString(out_shapes[i]),
                              dev.ToString()));

  LayerProfiler* profiler = ActiveLayerProfiler();
  // Graph replay for runs seen before (not while profiling: the profile times steps one by one).
  const bool default_stream = s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread;
  std::shared_ptr<CapturedGraph> graph;
  if (use_graphs_ && !profiler && !default_stream && specialized->cached) {
    GraphKey key;
    for (const Tensor& t : inputs) key.buffers.push_back(t.raw_data());
    for (const Tensor& t : outputs) key.buffers.push_back(t.raw_data());
    key.shapes = std::move(in_shapes);
    constexpr size_t kMaxGraphs = 16;
    std::unique_lock<std::mutex> lock(graphs_mu_);
    auto it = graphs_.find(key);
    if (it == graphs_.end() && graphs_.size() < kMaxGraphs)
      it = graphs_.emplace(std::move(key), std::make_shared<CapturedGraph>()).first;
    if (it != graphs_.end()) {
      CapturedGraph& g = *it->second;
      if (g.exec) {
        const cudaGraphExec_t exec = g.exec;
        lock.unlock();
        Check(cudaGraphLaunch(exec, s), "cudaGraphLaunch");
        return;
      }
      // The first run of these buffers runs launch by launch: it creates the libraries' plans
      // and workspaces, which must not happen during a capture.
      if (!g.uncapturable && !g.capturing && ++g.eager_runs > 1) {
        g.capturing = true;
        graph = it->second;
      }
    }
  }
  if (graph) {
    bool captured = false;
    try {
      captured = CaptureAndLaunch(*graph, *specialized, inputs, outputs, s);
    } catch (...) {
      std::lock_guard<std::mutex> lock(graphs_mu_);
      graph->capturing = false;
      graph->uncapturable = true;
      throw;
    }
    std::lock_guard<std::mutex> lock(graphs_mu_);
    graph->capturing = false;
    graph->uncapturable = !captured;
    if (captured) return;
  }
  if (!profiler) {
    EnqueueSteps(*specialized, inputs, outputs, s);
    return;
  }
  StepTimer timer(steps_.size(), s);
  EnqueueSteps(*specialized, inputs, outputs, s, &timer);
  const std::vector<double> ms = timer.Milliseconds();
  const auto& shapes = specialized->spec.shapes;
  for (size_t i = 0; i < steps_.size(); ++i)
    if (steps_[i].kind != Step::Kind::kView)
      profiler->Add(Join(steps_[i].nodes, "+"), KernelName(steps_[i]),
                    fmt::format("{} {}", DTypeName(steps_[i].output_dtype != DType::kInvalid ? steps_[i].output_dtype
                                                                          : graph_.value(steps_[i].output).dtype),
                                ShapeToString(*shapes[static_cast<size_t>(steps_[i].output)])),
                    ms[i]);
}

CudaEngine::CapturedGraph::~CapturedGraph() {
  if (exec) cudaGraphExecDestroy(exec);
}

bool CudaEngine::CaptureAndLaunch(CapturedGraph& captured, const Specialized& specialized,
                                  std::span<const Tensor> inputs, std::span<Tensor> outputs, cudaStream_t s) const {
  // Thread-local mode: other threads' unrelated CUDA calls do not invalidate this capture.
  Check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  cudaGraph_t graph = nullptr;
  try {
    EnqueueSteps(specialized, inputs, outputs, s);
  } catch (...) {
    cudaStreamEndCapture(s, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  const cudaError_t ended = cudaStreamEndCapture(s, &graph);
  if (ended != cudaSuccess || !graph) {
    cudaGetLastError();  // an invalidated capture: the caller runs launch by launch
    if (graph) cudaGraphDestroy(graph);
    return false;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (made != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  const cudaError_t launched = cudaGraphLaunch(exec, s);
  if (launched != cudaSuccess) {
    cudaGraphExecDestroy(exec);
    Check(launched, "cudaGraphLaunch");
  }
  std::lock_guard<std::mutex> lock(graphs_mu_);
  captured.exec = exec;
  return true;
}

size_t CudaEngine::graphs_captured() const {
  std::lock_guard<std::mutex> lock(graphs_mu_);
  size_t n = 0;
  for (const auto& [key, g] : graphs_) n += g->exec != nullptr;
  return n;
}

void CudaEngine::EnqueueSteps(const Specialized& specialized, std::span<const Tensor> inputs,
                              std::span<Tensor> outputs, cudaStream_t s, StepTimer* timer) const {
  const std::vector<std::optional<Shape>>& shapes = specialized.spec.shapes;
  std::vector<Tensor> values(graph_.num_values());
  for (const auto& [v, t] : specialized.device_values) values[static_cast<size_t>(v)] = t;
  for (size_t i = 0; i < inputs.size(); ++i) values[static_cast<size_t>(graph_.inputs()[i])] = inputs[i];
  for (const auto& [v, t] : constants_) values[static_cast<size_t>(v)] = t;
  std::map<ir::ValueId, size_t> output_at;  // the first output naming each value is written in place
  for (size_t i = 0; i < graph_.outputs().size(); ++i) output_at.try_emplace(graph_.outputs()[i], i);

  for (size_t index = 0; index < steps_.size(); ++index) {
    const Step& step = steps_[index];
    const Shape& shape = *shapes[static_cast<size_t>(step.output)];
    const DType dtype = step.output_dtype != DType::kInvalid ? step.output_dtype : graph_.value(step.output).dtype;
    std::vector<Tensor> in;
    for (ir::ValueId v : step.inputs) in.push_back(values[static_cast<size_t>(v)]);
    Tensor out;
    if (!step.group_outputs.empty()) {
      // Sibling products: one batched product into one buffer, each result a view of its part.
      const auto [a_shape, all_shape] = SiblingShapes(step, in[0].shape(), shape);
      const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
      auto buffer = AllocateOnStream(device_, bytes * step.group_outputs.size(), s);
      Tensor all(dtype, all_shape, buffer);
      std::vector<Tensor> args = {in[0].Reshaped(a_shape), step.group_weights};
      if (step.group_bias.num_elements() > 0) args.push_back(step.group_bias);
      step.matmul->Launch(args, all, s);
      for (size_t i = 0; i < step.group_outputs.size(); ++i)
        values[static_cast<size_t>(step.group_outputs[i])] = Tensor(dtype, shape, buffer, i * bytes);
      for (ir::ValueId v : step.release) values[static_cast<size_t>(v)] = Tensor();
      if (timer) timer->Done(index);
      continue;
    }
    if (step.kind == Step::Kind::kView) {
      out = in[0].Reshaped(shape);
    } else {
      auto at = output_at.find(step.output);
      if (at != output_at.end())
        out = outputs[at->second];
      else
        out = Tensor(dtype, shape,
                     AllocateOnStream(device_, static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype), s));
      switch (step.kind) {
        case Step::Kind::kEltwise:
          step.eltwise->Launch(in, out, s);
          break;
        case Step::Kind::kMatMul:
          step.matmul->Launch(in, out, s);
          break;
        case Step::Kind::kRow:
          step.row->Launch(in[0], out, s);
          break;
        case Step::Kind::kTranspose:
          step.eltwise->LaunchPermuted(in[0], step.perm, out, s);
          break;
        case Step::Kind::kConcat:
          LaunchConcat(in, step.axis, out, s);
          break;
        case Step::Kind::kSlice: {
          const ir::array::StridedCopyGeometry g = SliceGeometryOf(step, in[0].shape(), specialized.spec);
          int64_t first = 0, stride = 1;
          for (size_t d = g.begin.size(); d-- > 0;) {
            first += g.begin[d] * stride;
            stride *= in[0].dim(static_cast<int>(d));
          }
          step.eltwise->LaunchStrided(in[0], first, g.step, g.sizes, out, s);
          break;
        }
        case Step::Kind::kConv:
          step.conv->Launch(in[0], in.size() > 1 ? &in[1] : nullptr, out, s);
          break;
        case Step::Kind::kPool:
          step.pool->Launch(in[0], out, s);
          break;
        case Step::Kind::kGather:
          step.gather->Launch(in[0], in[1], out, s);
          break;
        case Step::Kind::kBroadcast:
          step.eltwise->Launch(in, out, s);
          break;
        case Step::Kind::kMatMulGelu:
          step.matmul_gelu->Launch(in[0], out, s);
          break;
        case Step::Kind::kAttention:
          step.attention->CheckShapes(shapes);
          step.attention->Launch(in[0], in[1], in[2], in.size() > 3 ? &in[3] : nullptr, out, s);
          break;
        case Step::Kind::kNorm: {
          const size_t params = step.norm->residual() ? 2 : 1;
          step.norm->Launch(in[0], step.norm->residual() ? &in[1] : nullptr,
                            in.size() > params ? &in[params] : nullptr, in.size() > params + 1 ? &in[params + 1] : nullptr,
                            out, s);
          break;
        }
        case Step::Kind::kView:
          break;
      }
    }
    values[static_cast<size_t>(step.output)] = std::move(out);
    for (ir::ValueId v : step.release) values[static_cast<size_t>(v)] = Tensor();
    if (timer) timer->Done(index);
  }
  // Outputs not written in place: graph inputs, constants, views, repeated outputs.
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& v = values[static_cast<size_t>(graph_.outputs()[i])];
    if (v.raw_data() == outputs[i].raw_data() || outputs[i].byte_size() == 0) continue;
    Check(cudaMemcpyAsync(outputs[i].raw_data(), v.raw_data(), outputs[i].byte_size(), cudaMemcpyDeviceToDevice, s),
          "cudaMemcpyAsync (output)");
  }
  Check(cudaGetLastError(), "kernel launch");
}

std::string CudaEngine::Serialize() const { return std::string(kEnginePayloadMagic) + EncodeCubins(cubins_); }

std::pair<Shape, Shape> CudaEngine::SiblingShapes(const Step& step, const Shape& left, const Shape& result) {
  const int64_t k = left.back(), n = result.back();
  const int64_t rows = k > 0 ? NumElements(left) / k : 0;
  return {Shape{1, rows, k}, Shape{static_cast<int64_t>(step.group_outputs.size()), rows, n}};
}

std::string CudaEngine::KernelName(const Step& s) {
  switch (s.kind) {
    case Step::Kind::kEltwise: return fmt::format("nvrtc elementwise ({} ops)", s.nodes.size());
    case Step::Kind::kMatMul:
      return s.group_outputs.empty() ? std::string("cublasLt") : fmt::format("cublasLt ({} products)", s.group_outputs.size());
    case Step::Kind::kView: return "view";
    case Step::Kind::kRow: return "nvrtc row";
    case Step::Kind::kTranspose:
      return s.eltwise->program().steps.empty() ? std::string("nvrtc transpose")
                                                 : fmt::format("nvrtc transpose ({} ops)", s.eltwise->program().steps.size());
    case Step::Kind::kSlice: return "nvrtc slice";
    case Step::Kind::kConcat: return "copies";
    case Step::Kind::kConv: {
      const std::string eight_bit_io = fmt::format("{}{}", s.conv->reads_quantized_residual() ? ", 8-bit residual" : "",
                                                   s.conv->writes_quantized() ? ", 8-bit out" : "");
      if (!s.conv->quantized_format()) return eight_bit_io.empty() ? "cudnn" : fmt::format("cudnn ({})", eight_bit_io.substr(2));
      const std::string library = s.conv->quantized_library();
      return fmt::format("{} {}{}", library.empty() ? "cudnn" : library,
                         s.conv->runs_quantized() ? QuantFormatName(*s.conv->quantized_format())
                                                  : fmt::format("float ({} refused)", QuantFormatName(*s.conv->quantized_format())),
                         eight_bit_io);
    }
    case Step::Kind::kPool: return s.pool->quantized() ? "nvrtc pool, 8-bit out" : "nvrtc pool";
    case Step::Kind::kGather: return "nvrtc gather";
    case Step::Kind::kBroadcast: return "nvrtc broadcast";
    case Step::Kind::kAttention: return "cudnn attention";
    case Step::Kind::kMatMulGelu: return "cudnn matmul+gelu";
    case Step::Kind::kNorm: return s.norm->residual() ? "nvrtc add+layernorm" : "nvrtc layernorm";
  }
  return "?";
}

ir::array::StridedCopyGeometry CudaEngine::SliceGeometryOf(const Step& step, const Shape& x,
                                                           const Specialization& spec) const {
  std::vector<std::vector<int64_t>> params;
  for (ir::ValueId v : step.slice_params) {
    const Tensor* c = graph_.ConstantOf(v);
    params.push_back(c ? c->ToInt64Vector() : spec.host_values[static_cast<size_t>(v)].ToInt64Vector());
  }
  ir::array::StridedCopyGeometry g;
  std::string err;
  if (step.slice_op == "Slice")
    err = ir::array::SliceGeometry(x, params.at(0), params.at(1), &g);
  else if (step.slice_op == "StridedSlice")
    err = ir::array::StridedSliceGeometry(x, params.at(0), params.at(1), params.at(2), step.slice_masks, &g);
  else
    err = ir::array::ReverseGeometry(x, params.at(0), &g);
  if (!err.empty())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' ({}): {}", step.nodes.at(0), step.slice_op, err));
  return g;
}

std::vector<CudaEngine::StepInfo> CudaEngine::steps() const {
  std::vector<StepInfo> info;
  for (const Step& s : steps_) info.push_back({Join(s.nodes, "+"), KernelName(s)});
  return info;
}

}  // namespace kiln::backend::cuda
