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

class TransposePass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-transpose"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if (n.op != "Transpose" || n.inputs.size() != 2) return std::nullopt;
    const ir::Value& x = g.value(n.inputs[0]);
    const Tensor* perm = g.ConstantOf(n.inputs[1]);
    // oneDNN memory descriptors hold at most 12 dims; rank 0 and 1 have nothing to move.
    if (!perm || !Reorderable(x.dtype) || !x.shape.rank_known || x.shape.rank() < 2 || x.shape.rank() > 12)
      return std::nullopt;
    std::vector<int64_t> p = perm->ToInt64Vector();
    const int64_t rank = x.shape.rank();
    if (static_cast<int64_t>(p.size()) != rank) return std::nullopt;
    for (int64_t& a : p)
      if (a < 0) a += rank;
    NodeRewrite r{std::string(kTranspose), {n.inputs[0]}, {}};
    r.attrs.Set("perm", p);
    return r;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeTransposePass() { return std::make_unique<TransposePass>(); }

}  // namespace kiln::backend::cpu
