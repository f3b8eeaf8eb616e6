#include "backend/cpu/cpu_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>

#include "ir/graph_util.h"
#include "backend/cpu/plan_serialization.h"
#include "backend/layer_profiler.h"
#include "backend/reference/kernel.h"
#include "ir/op_schema.h"
#include "ir/passes/pass.h"

namespace kiln::backend::cpu {

namespace {

std::vector<Shape> ProfileShapes(const Profile& p, bool max) {
  std::vector<Shape> s;
  for (const InputRange& r : p.inputs) s.push_back(max ? r.max : r.opt);
  return s;
}

}  // namespace

// Takes an execution context from the pool (or makes one) and gives it back afterwards.
class CpuEngine::Lease {
 public:
  explicit Lease(const CpuEngine& e) : engine_(e) {
    {
      std::lock_guard<std::mutex> lock(e.pool_mu_);
      if (!e.pool_.empty()) {
        ctx_ = std::move(e.pool_.back());
        e.pool_.pop_back();
      }
    }
    if (!ctx_) ctx_ = e.NewContext();
  }
  ~Lease() {
    ctx_->values.clear();
    ctx_->args.clear();
    ctx_->outs.clear();
    std::lock_guard<std::mutex> lock(engine_.pool_mu_);
    engine_.pool_.push_back(std::move(ctx_));
  }
  ExecContext& ctx() { return *ctx_; }

 private:
  const CpuEngine& engine_;
  std::unique_ptr<ExecContext> ctx_;
};

CpuEngine::CpuEngine(std::shared_ptr<const ir::Graph> graph, Profile profile, const CompileOptions& options,
                     std::vector<PassStat> pass_stats, uint64_t segment_hash, const CpuFeatures& cpu)
    : graph_(std::move(graph)),
      profile_(std::move(profile)),
      num_threads_(options.num_threads),
      precision_(ChoosePrecision(options.precision, cpu)),
      pass_stats_(std::move(pass_stats)),
      segment_hash_(segment_hash),
      env_(std::make_shared<KernelEnv>()) {
  env_->bf16_math = precision_.bf16_math;
  const ir::Graph& g = *graph_;
  if (profile_.inputs.size() != g.inputs().size())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the profile has {} inputs, the segment {}", profile_.inputs.size(), g.inputs().size()));
  OmpThreadLimit threads(num_threads_);

  // Steps and kernels.
  std::vector<int> step_of_node(g.nodes().size(), -1);
  for (ir::NodeId id : g.TopologicalOrder()) {
    const ir::Node& n = g.node(id);
    if (n.op == "Constant") {
      constants_.emplace_back(n.outputs[0], n.attrs.Get<Tensor>("value"));
      continue;
    }
    Step s;
    s.node = &n;
    s.def = FindCpuOp(n.op);
    if (s.def) {
      if (n.outputs.size() != 1 && !s.def->multi_output)
        throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}) must have one output", n.name, n.op));
      s.kernel = MakeKernel(g, n, env_);
    } else if (!reference::ReferenceKernels().Find(n.op)) {
      throw Error(ErrorCode::kUnimplemented, fmt::format("node '{}': no CPU kernel for op '{}'", n.name, n.op));
    }
    step_of_node[static_cast<size_t>(id)] = static_cast<int>(steps_.size());
    steps_.push_back(std::move(s));
  }

  // Shapes at the profile's max (the plan) and opt (primitives created ahead too).
  std::vector<std::optional<Shape>> max_shapes, opt_shapes;
  try {
    // Shape computations folded: Reshapes to computed targets get arena slots too.
    max_shapes = ir::SpecializeShapesFolding(g, ProfileShapes(profile_, true), reference::EvaluateNode);
    opt_shapes = ProfileShapes(profile_, false) == ProfileShapes(profile_, true) ? max_shapes
                                                                               : ir::SpecializeShapesFolding(g, ProfileShapes(profile_, false), reference::EvaluateNode);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("the profile {} does not fit the segment: {}", profile_.ToString(), e.what()));
  }
  for (Step& s : steps_) {
    if (!s.kernel) continue;
    for (const auto* shapes : {&opt_shapes, &max_shapes}) {
      std::vector<Shape> in;
      for (ir::ValueId v : s.node->inputs)
        if ((*shapes)[static_cast<size_t>(v)]) in.push_back(*(*shapes)[static_cast<size_t>(v)]);
      if (in.size() == s.node->inputs.size()) s.kernel->Prepare(in);
    }
    max_scratch_ = std::max(max_scratch_, s.kernel->scratchpad_bytes());
  }
  if (precision_.bf16_math) SettleBf16(DeviceString(cpu));
  SettleInt8(options.precision, cpu);
  // The plan (passes, steps and their kernels) on stderr, for looking into what an engine runs.
  if (const char* env = std::getenv("KILN_CPU_PLAN"); env && *env && std::string_view(env) != "0")
    std::fputs(Summary().c_str(), stderr);
  if (max_scratch_ > options.max_workspace_bytes)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the CPU engine needs {} bytes of oneDNN workspace (scratchpad and layout buffers), more than "
                            "max_workspace_bytes ({})", max_scratch_, options.max_workspace_bytes));

  // Memory plan: outputs of the backend's own kernels live in the arena (graph outputs excepted:
  // they are handed to the caller). Reference kernels allocate their outputs, which may alias
  // their inputs (Reshape, Identity, ...), so a slot stays alive while any value that may alias
  // it is still to be read.
  const size_t num_values = g.num_values();
  std::vector<bool> is_output(num_values, false);
  for (ir::ValueId v : g.outputs()) is_output[static_cast<size_t>(v)] = true;
  slot_.assign(num_values, -1);
  std::vector<std::vector<int>> roots(num_values);
  std::vector<int> last_read(num_values, -1);
  const int end = static_cast<int>(steps_.size());
  for (int pos = 0; pos < end; ++pos) {
    const Step& s = steps_[static_cast<size_t>(pos)];
    for (ir::ValueId in : s.node->inputs) {
      last_read[static_cast<size_t>(in)] = pos;
      for (int r : roots[static_cast<size_t>(in)]) requests_[static_cast<size_t>(r)].last = std::max(requests_[static_cast<size_t>(r)].last, pos);
    }
    for (ir::ValueId out : s.node->outputs) {
      const size_t o = static_cast<size_t>(out);
      if (s.kernel) {
        const auto& shape = max_shapes[o];
        if (is_output[o] || !shape) continue;
        slot_[o] = static_cast<int>(requests_.size());
        roots[o] = {slot_[o]};
        requests_.push_back({static_cast<size_t>(NumElements(*shape)) * DTypeSize(g.value(out).dtype), pos, pos});
      } else {
        std::vector<int> r;
        for (ir::ValueId in : s.node->inputs) r.insert(r.end(), roots[static_cast<size_t>(in)].begin(), roots[static_cast<size_t>(in)].end());
        std::sort(r.begin(), r.end());
        r.erase(std::unique(r.begin(), r.end()), r.end());
        roots[o] = std::move(r);
      }
    }
  }
  for (ir::ValueId out : g.outputs())
    for (int r : roots[static_cast<size_t>(out)]) requests_[static_cast<size_t>(r)].last = end;
  arena_ = PlanArena(requests_);
  for (size_t v = 0; v < num_values; ++v)
    if (last_read[v] >= 0 && !is_output[v]) steps_[static_cast<size_t>(last_read[v])].release.push_back(static_cast<ir::ValueId>(v));
  output_index_.assign(num_values, -1);
  for (size_t i = g.outputs().size(); i-- > 0;) output_index_[static_cast<size_t>(g.outputs()[i])] = static_cast<int>(i);

  pool_.push_back(NewContext());
}

CpuEngine::~CpuEngine() = default;

void CpuEngine::SettleBf16(const std::string& device) {
  std::vector<std::string> f32_steps;
  int unprepared = 0;
  for (const Step& s : steps_) {
    if (!s.kernel) continue;
    const auto p = s.kernel->primitive_precision();
    if (!p) continue;  // not a oneDNN kernel
    if (p->f32 > 0) f32_steps.push_back(s.node->name);
    else if (p->bf16 > 0) bf16_steps_.push_back(s.node->name);
    else ++unprepared;
  }
  const int total = static_cast<int>(bf16_steps_.size() + f32_steps.size()) + unprepared;
  if (bf16_steps_.empty()) {
    // Nothing computes in BF16: say so, and keep primitives made later (other shapes) f32 too.
    precision_.precision = Precision::kFP32;
    precision_.bf16_math = false;
    env_->bf16_math = false;
    if (total == 0)
      precision_.note = "BF16 requested; the engine has no convolution or matrix product (the steps that run BF16), engine runs FP32";
    else if (f32_steps.empty())
      precision_.note = "BF16 requested; no convolution / matrix-product primitive could be created for the profile's shapes, engine runs FP32";
    else
      precision_.note = fmt::format("BF16 requested; oneDNN has no BF16 kernel on this CPU ({}) for the engine's convolutions / matrix "
                                    "products ({}), engine runs FP32", device, fmt::join(f32_steps, ", "));
    return;
  }
  if (!f32_steps.empty())
    precision_.note = fmt::format("BF16 requested; {} of {} convolution / matrix-product steps run FP32 (oneDNN has no BF16 kernel on "
                                  "this CPU for their shapes): {}", f32_steps.size(), total, fmt::join(f32_steps, ", "));
}

void CpuEngine::SettleInt8(Precision requested, const CpuFeatures& cpu) {
  std::vector<std::string> float_steps;
  for (const Step& s : steps_) {
    if (!s.kernel) continue;
    const auto p = s.kernel->primitive_precision();
    if (!p) continue;  // not a convolution / matrix product
    if (s.kernel->int8()) int8_steps_.push_back(s.node->name);
    else float_steps.push_back(s.node->name);
  }
  if (!int8_steps_.empty()) {
    precision_.precision = Precision::kINT8;
    precision_.note = float_steps.empty() ? ""
                                          : fmt::format("{} convolution / matrix-product steps run INT8, {} in floating point (operands "
                                                        "without quantization ranges or off the int8 grid): {}",
                                                        int8_steps_.size(), float_steps.size(), fmt::join(float_steps, ", "));
  } else if (requested == Precision::kINT8 && !cpu.int8_dot_product) {
    precision_.note = fmt::format("INT8 requested; this CPU ({}) has no int8 dot-product instructions (VNNI / AMX), where oneDNN's "
                                  "int8 kernels lose precision: the quantize-dequantize steps run in FP32 kernels (INT8 accuracy, FP32 "
                                  "speed)", DeviceString(cpu));
  } else if (requested == Precision::kINT8) {
    precision_.note = float_steps.empty() ? "INT8 requested; the engine has no convolution or matrix product (the steps that run INT8), engine runs FP32"
                                       : "INT8 requested; no convolution / matrix product of the engine has quantized operands, engine runs FP32";
  }
}

std::unique_ptr<ExecContext> CpuEngine::NewContext() const {
  auto ctx = std::make_unique<ExecContext>(env_->engine);
  ctx->arena = AllocateHostBuffer(arena_.arena_bytes);
  if (max_scratch_ > 0) ctx->scratch = AllocateHostBuffer(max_scratch_);
  ctx->values.reserve(graph_->num_values());
  ++contexts_created_;
  return ctx;
}

Tensor CpuEngine::OutputTensor(ir::ValueId value, DType dtype, Shape shape, ExecContext& ctx) const {
  const int slot = slot_[static_cast<size_t>(value)];
  if (slot >= 0) {
    const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
    if (bytes <= requests_[static_cast<size_t>(slot)].bytes)
      return Tensor(dtype, std::move(shape), ctx.arena, arena_.offsets[static_cast<size_t>(slot)]);
    ++spilled_;
  }
  return Tensor(dtype, std::move(shape));
}

void CpuEngine::CheckInputs(std::span<const Tensor> inputs) const {
  const ir::Graph& g = *graph_;
  if (inputs.size() != g.inputs().size())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("the engine takes {} inputs, got {}", g.inputs().size(), inputs.size()));
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Value& v = g.value(g.inputs()[i]);
    const Tensor& t = inputs[i];
    if (t.dtype() != v.dtype)
      throw Error(ErrorCode::kInvalidArgument, fmt::format("engine input {} ('{}'): expected dtype {}, got {}", i, g.input_names()[i],
                                                           DTypeName(v.dtype), DTypeName(t.dtype())));
    if (!t.is_host())
      throw Error(ErrorCode::kInvalidArgument, fmt::format("engine input {} ('{}') is not a host tensor", i, g.input_names()[i]));
    shapes.push_back(t.shape());
  }
  if (!profile_.Covers(shapes)) {
    std::vector<std::string> s;
    for (const Shape& sh : shapes) s.push_back(ShapeToString(sh));
    throw Error(ErrorCode::kInvalidArgument, fmt::format("input shapes {} are outside the engine's profile {}", fmt::join(s, ";"),
                                                         profile_.ToString()));
  }
}

std::vector<DType> CpuEngine::output_dtypes() const {
  std::vector<DType> dtypes;
  for (ir::ValueId v : graph_->outputs()) dtypes.push_back(graph_->value(v).dtype);
  return dtypes;
}

std::vector<Shape> CpuEngine::OutputShapes(std::span<const Shape> input_shapes) const {
  std::vector<Shape> key(input_shapes.begin(), input_shapes.end());
  std::optional<std::vector<Shape>> shapes;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(shapes_mu_);
    auto it = output_shapes_.find(key);
    if (it != output_shapes_.end()) {
      shapes = it->second;
      cached = true;
    }
  }
  if (!cached) {
    if (!profile_.Covers(key)) {
      std::vector<std::string> s;
      for (const Shape& sh : key) s.push_back(ShapeToString(sh));
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("input shapes {} are outside the engine's profile {}", fmt::join(s, ";"), profile_.ToString()));
    }
    // Specialising clones the graph (and folds its shape computations): the answer, known or
    // not, is kept per input shapes.
    const std::vector<std::optional<Shape>> all = ir::SpecializeShapesFolding(*graph_, key, reference::EvaluateNode);
    shapes.emplace();
    for (ir::ValueId out : graph_->outputs()) {
      if (!all[static_cast<size_t>(out)]) {
        shapes.reset();
        break;
      }
      shapes->push_back(*all[static_cast<size_t>(out)]);
    }
    std::lock_guard<std::mutex> lock(shapes_mu_);
    if (output_shapes_.size() >= 64) output_shapes_.clear();  // bounded: shapes seen by one engine are few
    output_shapes_.emplace(std::move(key), shapes);
  }
  if (!shapes)
    throw Error(ErrorCode::kUnimplemented, "the engine's output shapes are determined only by running it");
  return *shapes;
}

void CpuEngine::Enqueue(std::span<const Tensor> inputs, std::span<Tensor> outputs, Stream& stream) const {
  const ir::Graph& g = *graph_;
  if (stream.device().kind != DeviceKind::kCpu)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("the CPU engine runs on a host stream, not {}", stream.device().ToString()));
  CheckInputs(inputs);
  if (outputs.size() != g.outputs().size())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("the engine has {} outputs, {} given", g.outputs().size(), outputs.size()));
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].defined() && (!outputs[i].is_host() || outputs[i].dtype() != g.value(g.outputs()[i]).dtype))
      throw Error(ErrorCode::kInvalidArgument, fmt::format("engine output {} ('{}') must be a host {} tensor", i, g.output_names()[i],
                                                           DTypeName(g.value(g.outputs()[i]).dtype)));

  Lease lease(*this);
  ExecContext& ctx = lease.ctx();
  OmpThreadLimit threads(num_threads_);
  std::vector<Tensor>& vals = ctx.values;
  vals.assign(g.num_values(), Tensor());
  for (const auto& [v, t] : constants_) vals[static_cast<size_t>(v)] = t;
  for (size_t i = 0; i < inputs.size(); ++i) vals[static_cast<size_t>(g.inputs()[i])] = inputs[i];

  // Per-step wall time while a layer profiler is active (kiln bench --profile-layers).
  LayerProfiler* profiler = ActiveLayerProfiler();
  using Clock = std::chrono::steady_clock;
  for (const Step& s : steps_) {
    const Clock::time_point step_start = profiler ? Clock::now() : Clock::time_point();
    ctx.args.clear();
    for (ir::ValueId in : s.node->inputs) ctx.args.push_back(vals[static_cast<size_t>(in)]);
    if (!s.kernel) {
      std::vector<Tensor> outs = reference::RunReferenceKernel(*s.node, ctx.args, nullptr);
      for (size_t i = 0; i < s.node->outputs.size(); ++i) vals[static_cast<size_t>(s.node->outputs[i])] = std::move(outs[i]);
    } else {
      std::vector<Shape> in_shapes;
      in_shapes.reserve(ctx.args.size());
      for (const Tensor& a : ctx.args) in_shapes.push_back(a.shape());
      std::vector<Shape> shapes = s.def->infer(*s.node, in_shapes);
      std::vector<Tensor>& outs = ctx.outs;
      outs.clear();
      for (size_t i = 0; i < s.node->outputs.size(); ++i) {
        const ir::ValueId out_id = s.node->outputs[i];
        // A graph output is written straight into the caller's tensor.
        const int out_index = output_index_[static_cast<size_t>(out_id)];
        outs.push_back(out_index >= 0 && outputs[static_cast<size_t>(out_index)].defined() &&
                               outputs[static_cast<size_t>(out_index)].shape() == shapes.at(i)
                           ? outputs[static_cast<size_t>(out_index)]
                           : OutputTensor(out_id, g.value(out_id).dtype, std::move(shapes[i]), ctx));
      }
      s.kernel->RunOutputs(ctx.args, outs, ctx);
      for (size_t i = 0; i < outs.size(); ++i) vals[static_cast<size_t>(s.node->outputs[i])] = std::move(outs[i]);
    }
    if (profiler) {
      const Tensor& first = vals[static_cast<size_t>(s.node->outputs[0])];
      profiler->Add(s.node->name, s.kernel ? s.node->op : fmt::format("reference {}", s.node->op),
                    fmt::format("{} {}", DTypeName(first.dtype()), ShapeToString(first.shape())),
                    std::chrono::duration<double, std::milli>(Clock::now() - step_start).count());
    }
    for (ir::ValueId v : s.release) vals[static_cast<size_t>(v)] = Tensor();
  }

  // Outputs not written in place (reference steps, constants, inputs, repeated outputs).
  const char* arena_begin = static_cast<const char*>(ctx.arena->data());
  const char* arena_end = arena_begin ? arena_begin + ctx.arena->size() : nullptr;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& t = vals[static_cast<size_t>(g.outputs()[i])];
    if (!outputs[i].defined()) {
      // Unallocated (Execute): hand out the value, copied when it views the reused arena or the
      // plan's own constant.
      const char* p = static_cast<const char*>(t.raw_data());
      const bool shared = p && ((arena_begin && p >= arena_begin && p < arena_end) || g.ConstantOf(g.outputs()[i]));
      outputs[i] = shared ? t.Clone() : t;
      continue;
    }
    if (t.shape() != outputs[i].shape())
      throw Error(ErrorCode::kInternal, fmt::format("engine output {} ('{}') has shape {}, the caller allocated {}", i,
                                                    g.output_names()[i], ShapeToString(t.shape()),
                                                    ShapeToString(outputs[i].shape())));
    HostServices().transfer().CopyTensor(t, outputs[i], stream);
  }
}

std::string CpuEngine::Serialize() const { return EncodePlan(*graph_, segment_hash_, DeviceString(HostCpu()), pass_stats_); }

std::vector<CpuEngine::StepInfo> CpuEngine::steps() const {
  std::vector<StepInfo> info;
  for (const Step& s : steps_) info.push_back({s.node->name, s.node->op, s.kernel ? s.kernel->Describe() : std::string("reference")});
  return info;
}

std::string CpuEngine::Summary() const {
  std::ostringstream os;
  os << fmt::format("cpu engine: {} steps, profile {}, precision {}{}\n", steps_.size(), profile_.ToString(),
                    PrecisionName(precision_.precision), precision_.note.empty() ? "" : " (" + precision_.note + ")");
  for (const PassStat& p : pass_stats_) os << fmt::format("  pass {:<24} {} rewrites\n", p.pass, p.rewrites);
  for (const StepInfo& s : steps()) os << fmt::format("  step {:<32} {:<20} {}\n", s.node, s.op, s.kernel);
  os << fmt::format("  arena {} bytes for {} planned buffers ({} bytes without reuse), scratchpad {} bytes\n", arena_.arena_bytes,
                    arena_.offsets.size(), arena_.unshared_bytes, max_scratch_);
  return os.str();
}

}  // namespace kiln::backend::cpu
