// cpu.Binary: a float32 elementwise op of the table (Add, Mul, Maximum, ...), or a logical op on
// two bool tensors (LogicalAnd, LogicalOr), on two tensors with numpy broadcasting decided at run
// time: the op's functor (the one the reference kernel and the
// elementwise chains apply) over rows of the collapsed broadcast walk, rows split over oneDNN's
// OpenMP team when the build has OpenMP. For the binary ops that could not join an elementwise
// chain because their operands' shapes were unknown when the engine was built (an exporter's
// lowering of Select into Casts, products and sums of attention-score-sized tensors, and its
// attention mask's logic on bool tensors of that size).
#include <fmt/format.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "backend/cpu/broadcast_walk.h"
#include "backend/cpu/kernels.h"
#include "common/name_registry.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::backend::cpu {
namespace {

template <typename T>
using BinaryRowFn = void (*)(const T* a, int64_t sa, const T* b, int64_t sb, T* out, int64_t n,
                             ir::elementwise::State st);

// One row; the contiguous and scalar cases are separate loops so that they vectorize.
template <typename Op, typename T>
__attribute__((target_clones("avx512f", "avx2", "default"))) void BinaryRow(const T* a, int64_t sa, const T* b,
                                                                            int64_t sb, T* out, int64_t n,
                                                                            ir::elementwise::State st) {
  auto f = [&st](T x, T y) { return static_cast<T>(Op::template Apply<T>(x, y, st)); };
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T v = *b;
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], v);
  } else if (sa == 0 && sb == 1) {
    const T v = *a;
    for (int64_t i = 0; i < n; ++i) out[i] = f(v, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i * sa], b[i * sb]);
  }
}

// Whether cpu.Binary runs Op on operands of type T: on float32 the fusible binary ops of the
// elementwise table, on bool the binary ops defined on bool only (LogicalAnd, LogicalOr).
template <typename T, typename Op>
constexpr bool RunsOn() {
  using ir::elementwise::Pattern;
  if constexpr (std::is_same_v<T, float>) return Op::kInfo.fusible && Op::kInfo.pattern != Pattern::kUnary;
  return Op::kInfo.pattern == Pattern::kBinary && Op::kInfo.types == ir::kBoolT;
}

// The rows cpu.Binary runs on operands of type T, by IR op name.
template <typename T>
const NameRegistry<BinaryRowFn<T>>& Rows() {
  static const NameRegistry<BinaryRowFn<T>> rows = [] {
    NameRegistry<BinaryRowFn<T>> r("CPU binary op");
    ir::elementwise::ForEachOp([&]<typename Op>() {
      if constexpr (RunsOn<T, Op>()) r.Add(Op::kInfo.name, &BinaryRow<Op, T>);
    });
    return r;
  }();
  return rows;
}

class BinaryKernel final : public Kernel {
 public:
  explicit BinaryKernel(const ir::Node& node) : op_(node.attrs.Get<std::string>("op")) {
    const ir::elementwise::OpInfo* info = ir::elementwise::FindOp(op_);
    if (const auto* fn = Rows<float>().Find(op_)) float_row_ = *fn;
    if (const auto* fn = Rows<bool>().Find(op_)) bool_row_ = *fn;
    if ((!float_row_ && !bool_row_) || !info)
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): no CPU binary kernel for op '{}'", node.name, node.op, op_));
    state_.param = ir::elementwise::ParamOf(*info, node.attrs);
  }

  std::string Describe() const override { return fmt::format("binary-rows({})", op_); }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    if (out.num_elements() == 0) return;
    const BroadcastWalk w = CollapsedBroadcastWalk(out.shape(), in.first(2), "binary");
    if (bool_row_)
      RunRows<bool>(w, in, out, bool_row_);
    else
      RunRows<float>(w, in, out, float_row_);
  }

 private:
  template <typename T>
  void RunRows(const BroadcastWalk& w, std::span<const Tensor> in, Tensor& out, BinaryRowFn<T> row) const {
    const int64_t sa = w.strides[0].back(), sb = w.strides[1].back();
    const T* a = in[0].data<T>();
    const T* b = in[1].data<T>();
    T* o = out.data<T>();
    ForEachRowChunk<2>(w, [&](int64_t at, int64_t len, const std::array<int64_t, 2>& off) {
      row(a + off[0], sa, b + off[1], sb, o + at, len, state_);
    });
  }

  std::string op_;
  BinaryRowFn<float> float_row_ = nullptr;
  BinaryRowFn<bool> bool_row_ = nullptr;
  ir::elementwise::State state_;
};

}  // namespace

bool HasCpuBinaryKernel(const std::string& op, DType dtype) {
  if (dtype == DType::kFloat32) return Rows<float>().Find(op) != nullptr;
  if (dtype == DType::kBool) return Rows<bool>().Find(op) != nullptr;
  return false;
}

std::unique_ptr<Kernel> MakeBinaryKernel(const ir::Node& node) { return std::make_unique<BinaryKernel>(node); }

}  // namespace kiln::backend::cpu
