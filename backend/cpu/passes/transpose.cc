// cpu-transpose: Transposes with a constant permutation of dtypes oneDNN reorders (float32,
// bfloat16, float16, int8, uint8, int32) become cpu.Transpose, a oneDNN reorder between strided
// views (the reference kernel moves one element at a time on one thread).
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

bool Reorderable(DType t) {
  return t == DType::kFloat32 || t == DType::kBFloat16 || t == DType::kFloat16 || t == DType::kInt8 ||
         t == DType::kUInt8 || t == DType::kInt32;
}

class TransposePass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-transpose"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || n.op != "Transpose" || n.inputs.size() != 2 || n.outputs.size() != 1) continue;
      const ir::Value& x = g.value(n.inputs[0]);
      const Tensor* perm = g.ConstantOf(n.inputs[1]);
      // oneDNN memory descriptors hold at most 12 dims; rank 0 and 1 have nothing to move.
      if (!perm || !Reorderable(x.dtype) || !x.shape.rank_known || x.shape.rank() < 2 || x.shape.rank() > 12) continue;
      std::vector<int64_t> p = perm->ToInt64Vector();
      const int64_t rank = x.shape.rank();
      if (static_cast<int64_t>(p.size()) != rank) continue;
      for (int64_t& a : p)
        if (a < 0) a += rank;
      const std::string name = n.name;
      const ir::ValueId input = n.inputs[0], output = n.outputs[0];
      const ir::NodeId id = n.id;
      ir::Node& t = ir::AddReplacementNode(g, std::string(kTranspose), name, {input}, output);
      t.source_op = "Transpose";
      t.attrs.Set("perm", p);
      g.node(id).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeTransposePass() { return std::make_unique<TransposePass>(); }

}  // namespace kiln::backend::cpu
