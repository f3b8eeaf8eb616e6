// cpu.Binary: a float32 elementwise op of the table (Add, Mul, Maximum, ...) on two tensors with
// numpy broadcasting decided at run time: the op's functor (the one the reference kernel and the
// elementwise chains apply) over rows of the collapsed broadcast walk, rows split over oneDNN's
// OpenMP team when the build has OpenMP. For the binary ops that could not join an elementwise
// chain because their operands' shapes were unknown when the engine was built (an exporter's
// lowering of Select into Casts, products and sums of attention-score-sized tensors).
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/broadcast_walk.h"
#include "backend/cpu/kernels.h"
#include "common/name_registry.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::backend::cpu {
namespace {

using BinaryRowFn = void (*)(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n,
                             ir::elementwise::State st);

// One row; the contiguous and scalar cases are separate loops so that they vectorize.
template <typename Op>
__attribute__((target_clones("avx512f", "avx2", "default"))) void BinaryRow(const float* a, int64_t sa, const float* b,
                                                                            int64_t sb, float* out, int64_t n,
                                                                            ir::elementwise::State st) {
  auto f = [&st](float x, float y) { return Op::template Apply<float>(x, y, st); };
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float v = *b;
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], v);
  } else if (sa == 0 && sb == 1) {
    const float v = *a;
    for (int64_t i = 0; i < n; ++i) out[i] = f(v, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i * sa], b[i * sb]);
  }
}

// The fusible binary ops of the elementwise table, by IR op name.
const NameRegistry<BinaryRowFn>& BinaryRows() {
  static const NameRegistry<BinaryRowFn> rows = [] {
    NameRegistry<BinaryRowFn> r("CPU binary op");
    ir::elementwise::ForEachOp([&]<typename Op>() {
      if constexpr (Op::kInfo.fusible && Op::kInfo.pattern != ir::elementwise::Pattern::kUnary)
        r.Add(Op::kInfo.name, &BinaryRow<Op>);
    });
    return r;
  }();
  return rows;
}

class BinaryKernel final : public Kernel {
 public:
  explicit BinaryKernel(const ir::Node& node) : op_(node.attrs.Get<std::string>("op")) {
    const BinaryRowFn* fn = BinaryRows().Find(op_);
    const ir::elementwise::OpInfo* info = ir::elementwise::FindOp(op_);
    if (!fn || !info)
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): no CPU binary kernel for op '{}'", node.name, node.op, op_));
    row_ = *fn;
    state_.param = ir::elementwise::ParamOf(*info, node.attrs);
  }

  std::string Describe() const override { return fmt::format("binary-rows({})", op_); }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    if (out.num_elements() == 0) return;
    const BroadcastWalk w = CollapsedBroadcastWalk(out.shape(), in.first(2), "binary");
    const int64_t sa = w.strides[0].back(), sb = w.strides[1].back();
    const float* a = in[0].data<float>();
    const float* b = in[1].data<float>();
    float* o = out.data<float>();
    ForEachRowChunk<2>(w, [&](int64_t at, int64_t len, const std::array<int64_t, 2>& off) {
      row_(a + off[0], sa, b + off[1], sb, o + at, len, state_);
    });
  }

 private:
  std::string op_;
  BinaryRowFn row_ = nullptr;
  ir::elementwise::State state_;
};

}  // namespace

bool HasCpuBinaryKernel(const std::string& op) { return BinaryRows().Find(op) != nullptr; }

std::unique_ptr<Kernel> MakeBinaryKernel(const ir::Node& node) { return std::make_unique<BinaryKernel>(node); }

}  // namespace kiln::backend::cpu
