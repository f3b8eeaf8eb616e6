// The CPU backend's optimization pipeline (see passes.h): an ir::PassPipeline, so the IR
// verifier checks the graph after every pass.
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "backend/reference/kernel.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

// Wraps a generic IR pass so it reports a rewrite count (1 per run that changed the graph).
class Counted final : public CountingPass {
 public:
  explicit Counted(std::unique_ptr<ir::Pass> pass) : pass_(std::move(pass)) {}
  std::string name() const override { return pass_->name(); }
  bool Run(ir::Graph& graph) override {
    const size_t before = graph.NumLiveNodes();
    const bool changed = pass_->Run(graph);
    const size_t after = graph.NumLiveNodes();
    if (changed) rewrites_ += before > after ? static_cast<int64_t>(before - after) : 1;
    return changed;
  }

 private:
  std::unique_ptr<ir::Pass> pass_;
};

}  // namespace

bool NodeRewritePass::Run(ir::Graph& g) {
  bool changed = false;
  const size_t num_nodes = g.nodes().size();
  for (size_t i = 0; i < num_nodes; ++i) {
    const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
    if (n.removed || n.outputs.size() != 1) continue;
    std::optional<NodeRewrite> r = Rewrite(g, n);
    if (!r) continue;
    const std::string name = n.name, op = n.op;
    const ir::ValueId output = n.outputs[0];
    const ir::NodeId id = n.id;
    ir::Node& added = ir::AddReplacementNode(g, r->op, name, std::move(r->inputs), output);
    added.source_op = op;
    added.attrs = std::move(r->attrs);
    g.node(id).removed = true;
    ++rewrites_;
    changed = true;
  }
  return changed;
}

std::vector<PassStat> OptimizeForCpu(ir::Graph& graph, bool int8_kernels) {
  RegisterCpuOps();
  std::vector<std::unique_ptr<CountingPass>> passes;
  passes.push_back(std::make_unique<Counted>(ir::MakeIdentityElimination()));
  passes.push_back(std::make_unique<Counted>(ir::MakeConstantFolding(reference::EvaluateNode)));
  passes.push_back(std::make_unique<Counted>(ir::MakeDeadCodeElimination()));
  // oneDNN's convolutions are fastest channels-last (the layout SavedModels use): channels-first
  // (ONNX) models run NHWC, changing layout only where the segment does.
  passes.push_back(std::make_unique<Counted>(ir::MakeChannelsLast()));
  passes.push_back(std::make_unique<Counted>(ir::MakeTransposeSinking()));
  passes.push_back(std::make_unique<Counted>(ir::MakeDeadCodeElimination()));
  // Decomposed layer norms (importers write nine ops) become one LayerNorm node.
  passes.push_back(std::make_unique<Counted>(ir::MakeLayerNormFusion()));
  // Decomposed exact GELUs become one Gelu (a matrix product's post-op below).
  passes.push_back(std::make_unique<Counted>(ir::MakeGeluFusion()));
  passes.push_back(MakeFoldBatchNormPass());
  passes.push_back(MakeFuseConvMatMulPass());
  passes.push_back(MakePoolPass());
  if (int8_kernels) {
    passes.push_back(MakeInt8Pass());
    passes.push_back(std::make_unique<Counted>(ir::MakeDeadCodeElimination()));
    passes.push_back(MakeInt8QuantizedAddPass());
    // The quantize-dequantize chains the Adds read no longer read the convolutions' results.
    passes.push_back(std::make_unique<Counted>(ir::MakeDeadCodeElimination()));
    passes.push_back(MakeInt8ResidualPass());
    passes.push_back(MakeInt8OutputPass());
    passes.push_back(MakeQuantizeBeforePadPass());
  }
  passes.push_back(MakeQuantDequantPass());
  passes.push_back(MakeRedundantQuantDequantPass());
  // The replaced chains' inner nodes still read their sources: gone before chains are fused.
  passes.push_back(std::make_unique<Counted>(ir::MakeDeadCodeElimination()));
  passes.push_back(MakeFuseEltwiseChainPass());
  passes.push_back(MakeTransposePass());
  passes.push_back(MakePadPass());
  passes.push_back(MakeSelectPass());
  passes.push_back(MakeCastPass());
  passes.push_back(MakeSoftmaxPass());
  passes.push_back(MakeLayerNormPass());
  passes.push_back(MakeReducePass());
  passes.push_back(MakeRecurrentPass());
  // Last: the binary ops no chain or other pass took.
  passes.push_back(MakeBinaryPass());
  passes.push_back(std::make_unique<Counted>(ir::MakeDeadCodeElimination()));
  // The pipeline owns the passes; their counts are read back through these pointers.
  std::vector<const CountingPass*> counted;
  ir::PassPipeline pipeline;
  for (auto& pass : passes) {
    counted.push_back(pass.get());
    pipeline.Add(std::move(pass));
  }
  pipeline.Run(graph);
  std::vector<PassStat> stats;
  for (const CountingPass* pass : counted) stats.push_back({pass->name(), pass->rewrites()});
  return stats;
}

}  // namespace kiln::backend::cpu
