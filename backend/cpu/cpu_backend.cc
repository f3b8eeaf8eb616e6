#include "backend/cpu/cpu_backend.h"

#include <fmt/format.h>

#include "backend/cpu/cpu_engine.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/passes/passes.h"
#include "backend/cpu/plan_serialization.h"
#include "backend/cpu/recurrent.h"
#include "backend/reference/kernel.h"
#include "ir/graph_util.h"
#include "ir/passes/pass.h"

namespace kiln::backend::cpu {
namespace {

bool SupportedDtype(DType d) {
  switch (d) {
    case DType::kString:
    case DType::kResource:
    case DType::kVariant:
    case DType::kComplex64:
    case DType::kComplex128:
    case DType::kInvalid:
      return false;
    default:
      return true;
  }
}

// The profile must have one range per segment input, ranks matching, 0 <= min <= opt <= max,
// and contain every static dim of the segment's inputs.
void CheckProfile(const ir::Graph& segment, const Profile& profile) {
  auto fail = [&](const std::string& what) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("profile {} does not fit the segment: {}", profile.ToString(), what));
  };
  if (profile.inputs.size() != segment.inputs().size())
    fail(fmt::format("{} input ranges for {} segment inputs", profile.inputs.size(), segment.inputs().size()));
  for (size_t i = 0; i < profile.inputs.size(); ++i) {
    const InputRange& r = profile.inputs[i];
    const ir::SymShape& s = segment.value(segment.inputs()[i]).shape;
    const std::string& name = segment.input_names()[i];
    if (r.min.size() != r.max.size() || r.opt.size() != r.max.size())
      fail(fmt::format("input '{}': min/opt/max have different ranks", name));
    if (s.rank_known && s.rank() != static_cast<int>(r.max.size()))
      fail(fmt::format("input '{}' has rank {}, its range rank {}", name, s.rank(), r.max.size()));
    for (size_t d = 0; d < r.max.size(); ++d) {
      if (r.min[d] < 0 || r.min[d] > r.opt[d] || r.opt[d] > r.max[d])
        fail(fmt::format("input '{}' dim {}: need 0 <= min <= opt <= max", name, d));
      if (s.rank_known && ir::IsStatic(s.dims[d]) && (s.dims[d] < r.min[d] || s.dims[d] > r.max[d]))
        fail(fmt::format("input '{}' dim {} is {} in the segment", name, d, s.dims[d]));
    }
  }
}

// Dims the profile fixes (min == max: a sequence length of 128, say) become static in the
// engine's graph, and the shape computations on them fold: every Reshape and Slice of a
// transformer then has a known shape, which the fusion passes need (an attention mask that is
// provably [batch, 1, 1, 128] fuses into the scores' elementwise chain). The profile guarantees
// those dims at run time. Symbols of unfixed dims (a batch range) stay.
void SpecializeFixedDims(ir::Graph& g, const Profile& profile) {
  bool changed = false;
  for (size_t i = 0; i < g.inputs().size() && i < profile.inputs.size(); ++i) {
    ir::SymShape& s = g.value(g.inputs()[i]).shape;
    const InputRange& r = profile.inputs[i];
    if (!s.rank_known || s.dims.size() != r.min.size()) continue;
    for (size_t d = 0; d < s.dims.size(); ++d)
      if (!ir::IsStatic(s.dims[d]) && r.min[d] == r.max[d]) {
        s.dims[d] = r.min[d];
        changed = true;
      }
  }
  if (!changed) return;
  ir::PassPipeline fold;
  fold.Add(ir::MakeShapeInference());
  fold.Add(ir::MakeConstantFolding(reference::EvaluateNode));
  fold.Add(ir::MakeReshapeTargetFolding());
  fold.Add(ir::MakeShapeInference());
  fold.Add(ir::MakeDeadCodeElimination());
  fold.Run(g);
}

}  // namespace

std::string CpuBackend::device() const { return DeviceString(HostCpu()); }

std::optional<std::string> CpuBackend::Unsupported(const ir::Graph& graph, const ir::Node& node) const {
  if (node.op == "If" || node.op == "While") return "control flow runs natively";
  if (node.op == "Where" || node.op == "Unique" || node.op == "UniqueWithCounts") return "data-dependent output shape";
  if (node.op == "Engine") return "engine nodes are not nested in engines";
  for (const auto& [name, value] : node.attrs.all())
    if (std::holds_alternative<std::shared_ptr<ir::Graph>>(value)) return "nodes with subgraphs run natively";
  if (!reference::ReferenceKernels().Find(node.op))
    return fmt::format("the CPU backend has no kernel for op {}", node.op);
  for (const auto* ids : {&node.inputs, &node.outputs})
    for (ir::ValueId v : *ids)
      if (!SupportedDtype(graph.value(v).dtype))
        return fmt::format("dtype {} is not supported by the CPU backend", DTypeName(graph.value(v).dtype));
  // RNN / GRU / LSTM enter engines only where oneDNN computes them (backend/cpu/recurrent.h).
  return RecurrentUnsupported(graph, node);
}

std::unique_ptr<Engine> CpuBackend::Compile(const ir::Graph& segment, const Profile& profile,
                                            const CompileOptions& options) const {
  CheckProfile(segment, profile);
  for (const ir::Node& node : segment.nodes()) {
    if (node.removed) continue;
    if (auto why = Unsupported(segment, node))
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("node '{}' ({}) cannot run in a CPU engine: {}", node.name, node.op, *why));
  }
  const uint64_t hash = HashSegment(segment);
  ir::Graph work = ir::CloneGraph(segment);
  SpecializeFixedDims(work, profile);
  std::vector<PassStat> stats = OptimizeForCpu(work, HostCpu().int8_dot_product);
  auto plan = std::make_shared<const ir::Graph>(ir::CloneGraph(work));  // compact: removed nodes dropped
  auto engine = std::make_unique<CpuEngine>(std::move(plan), profile, options, std::move(stats), hash);
  ++compiled_;
  return engine;
}

std::unique_ptr<Engine> CpuBackend::Deserialize(const ir::Graph& segment, const Profile& profile,
                                                const CompileOptions& options, std::string_view payload) const {
  DecodedPlan plan = DecodePlan(payload);
  const uint64_t hash = HashSegment(segment);
  if (plan.segment_hash != hash)
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("the CPU engine payload was built for a different segment (segment hash {:016x}, payload {:016x})",
                    hash, plan.segment_hash));
  CheckProfile(segment, profile);
  const ir::Graph& g = plan.graph;
  bool same_io = g.inputs().size() == segment.inputs().size() && g.outputs().size() == segment.outputs().size();
  for (size_t i = 0; same_io && i < g.inputs().size(); ++i)
    same_io = g.value(g.inputs()[i]).dtype == segment.value(segment.inputs()[i]).dtype;
  for (size_t i = 0; same_io && i < g.outputs().size(); ++i)
    same_io = g.value(g.outputs()[i]).dtype == segment.value(segment.outputs()[i]).dtype;
  if (!same_io)
    throw Error(ErrorCode::kDataLoss, "CPU engine payload is corrupted: its inputs/outputs do not match the segment");
  std::unique_ptr<CpuEngine> engine;
  try {
    engine = std::make_unique<CpuEngine>(std::make_shared<const ir::Graph>(std::move(plan.graph)), profile, options,
                                         std::move(plan.pass_stats), hash);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument) throw;
    throw Error(ErrorCode::kDataLoss, fmt::format("CPU engine payload does not describe a valid plan: {}", e.what()));
  }
  ++deserialized_;
  return engine;
}

}  // namespace kiln::backend::cpu

namespace kiln::backend::cpu {
namespace {

const bool registered = [] {
  RegisterBackend("cpu", [] { return std::make_unique<CpuBackend>(); });
  return true;
}();

}  // namespace
}  // namespace kiln::backend::cpu
