// GELU fusion (ir/passes/gelu_fusion.cc) and the Gelu op: each order exporters write the exact
// GELU in becomes one Gelu node computing the same values; near misses (another constant, an
// intermediate read elsewhere, the tanh approximation) stay as they are.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "ir/graph_util.h"
#include "ir/passes/pass.h"
#include "runtime/executor.h"
#include "tests/unit/cpu_test_util.h"

namespace kiln {
namespace {

using cputest::Builder;

enum class Form {
  kTorch,       // Mul(Mul(x, Add(Erf(Div(x, sqrt2)), 1)), 0.5)
  kOnnxGelu,    // Mul(Mul(x, 0.5), Add(Erf(Mul(x, 1/sqrt2)), 1)): Kiln's ONNX Gelu import
  kTensorFlow,  // Mul(Mul(0.5, x), Add(1, Erf(Div(x, sqrt2))))
  kHalfFirst,   // Mul(Mul(Add(Erf(...), 1), 0.5), x)
  kDivByTwo,    // Div(Mul(x, Add(Erf(...), 1)), 2)
};

ir::ValueId Scalar(Builder& b, const std::string& name, double v, DType dtype = DType::kFloat32) {
  return b.Const(name,
                 dtype == DType::kFloat64 ? Tensor::Scalar(dtype, v) : Tensor::Scalar(dtype, static_cast<float>(v)));
}

// The GELU of x in `form`; sqrt2 lets a test pass a wrong constant.
ir::ValueId DecomposedGelu(Builder& b, ir::ValueId x, Form form, double sqrt2 = std::numbers::sqrt2,
                           DType dtype = DType::kFloat32) {
  const ir::ValueId u = form == Form::kOnnxGelu ? b.Op("Mul", "scaled", {x, Scalar(b, "rsqrt2", 1 / sqrt2, dtype)})
                                                : b.Op("Div", "scaled", {x, Scalar(b, "sqrt2", sqrt2, dtype)});
  const ir::ValueId e = b.Op("Erf", "erf", {u});
  const ir::ValueId one = Scalar(b, "one", 1.0, dtype), half = Scalar(b, "half", 0.5, dtype);
  const ir::ValueId a =
      form == Form::kTensorFlow ? b.Op("Add", "one_plus", {one, e}) : b.Op("Add", "one_plus", {e, one});
  switch (form) {
    case Form::kTorch:
      return b.Op("Mul", "gelu", {b.Op("Mul", "x_a", {x, a}), half});
    case Form::kOnnxGelu:
      return b.Op("Mul", "gelu", {b.Op("Mul", "half_x", {x, half}), a});
    case Form::kTensorFlow:
      return b.Op("Mul", "gelu", {b.Op("Mul", "half_x", {half, x}), a});
    case Form::kHalfFirst:
      return b.Op("Mul", "gelu", {b.Op("Mul", "half_a", {a, half}), x});
    case Form::kDivByTwo:
      return b.Op("Div", "gelu", {b.Op("Mul", "x_a", {x, a}), Scalar(b, "two", 2.0, dtype)});
  }
  return ir::kNoValue;
}

size_t CountOps(const ir::Graph& g, const std::string& op) {
  size_t n = 0;
  for (const ir::Node& node : g.nodes()) n += !node.removed && node.op == op;
  return n;
}

std::shared_ptr<ir::Graph> Fused(const ir::Graph& g) {
  auto fused = std::make_shared<ir::Graph>(ir::CloneGraph(g));
  ir::PassPipeline p;
  p.Add(ir::MakeGeluFusion());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(*fused);
  return fused;
}

TEST(GeluFusion, EachDecomposedOrderBecomesOneGeluWithTheSameValues) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (Form form : {Form::kTorch, Form::kOnnxGelu, Form::kTensorFlow, Form::kHalfFirst, Form::kDivByTwo}) {
      const std::string what = fmt::format("form {} {}", static_cast<int>(form), DTypeName(dtype));
      Builder b;
      const ir::ValueId x = b.Input("x", {b.Symbol("n"), 16}, dtype);
      b.Output("y", b.Op("Tanh", "after",
                         {DecomposedGelu(b, b.Op("Neg", "before", {x}), form, std::numbers::sqrt2, dtype)}));
      const auto fused = Fused(*b.g);
      ir::Verify(*fused);
      EXPECT_EQ(CountOps(*fused, "Gelu"), 1u) << what;
      EXPECT_EQ(CountOps(*fused, "Erf"), 0u) << what;
      EXPECT_EQ(CountOps(*fused, "Mul") + CountOps(*fused, "Div") + CountOps(*fused, "Add"), 0u) << what;
      Tensor in = cputest::RandScaled({5, 16}, 7, 4.0f);
      if (dtype == DType::kFloat64) {
        Tensor wide(DType::kFloat64, in.shape());
        for (int64_t i = 0; i < in.num_elements(); ++i) wide.data<double>()[i] = in.data<float>()[i];
        in = wide;
      }
      const Tensor want = runtime::ReferenceExecutor(b.g).Run({in})[0];
      const Tensor got = runtime::ReferenceExecutor(fused).Run({in})[0];
      double worst = 0;
      for (int64_t i = 0; i < want.num_elements(); ++i)
        worst = std::max(worst, std::abs(got.DoubleAt(i) - want.DoubleAt(i)));
      // Multiplying by 1/sqrt(2) instead of dividing by sqrt(2): an ulp or two of the dtype.
      EXPECT_LE(worst, dtype == DType::kFloat32 ? 1e-6 : 1e-14) << what;
    }
  }
}

TEST(GeluFusion, TensorFlowsErfcFormBecomesOneGeluAndFusesIntoACpuMatMul) {
  // tf.nn.gelu(approximate=False): Mul(0.5, x) * Erfc(Neg(x) * 1/sqrt(2)), and the variant with
  // the sign in the constant. After a MatMul the CPU engine runs it as the product's GELU
  // post-op (oneDNN's gelu_erf): one step, within FP32's bound of the decomposed reference.
  for (bool neg_node : {true, false}) {
    Builder b;
    const ir::ValueId a = b.Input("a", {8, 32});
    const ir::ValueId x = b.Op("MatMul", "mm", {a, b.Const("w", cputest::RandScaled({32, 24}, 3, 0.5f))});
    const ir::ValueId s = neg_node ? b.Op("Mul", "scaled", {b.Op("Neg", "neg", {x}), Scalar(b, "rsqrt2", 1 / std::numbers::sqrt2)})
                                   : b.Op("Mul", "scaled", {Scalar(b, "nrsqrt2", -1 / std::numbers::sqrt2), x});
    const ir::ValueId e = b.Op("Erfc", "erfc", {s});
    b.Output("y", b.Op("Mul", "gelu", {b.Op("Mul", "half_x", {Scalar(b, "half", 0.5), x}), e}));
    const auto fused = Fused(*b.g);
    ir::Verify(*fused);
    EXPECT_EQ(CountOps(*fused, "Gelu"), 1u) << neg_node;
    EXPECT_EQ(CountOps(*fused, "Erfc") + CountOps(*fused, "Neg"), 0u) << neg_node;
    auto engine = cputest::CheckAgainstReference(b, cputest::ExactProfile({{8, 32}}), {{cputest::RandScaled({8, 32}, 5, 2.0f)}});
    EXPECT_EQ(dynamic_cast<const backend::cpu::CpuEngine&>(*engine).steps().size(), 1u) << neg_node;
  }
}

TEST(GeluFusion, TheOpMatchesTheDefinition) {
  Builder b;
  const ir::ValueId x = b.Input("x", {7}, DType::kFloat64);
  b.Output("y", b.Op("Gelu", "gelu", {x}));
  const Tensor in = Tensor::FromVector<double>(DType::kFloat64, {7}, {-6, -1.5, -0.25, 0, 0.5, 1, 5});
  const Tensor out = runtime::ReferenceExecutor(b.g).Run({in})[0];
  for (int64_t i = 0; i < 7; ++i) {
    const double v = in.DoubleAt(i);
    EXPECT_NEAR(out.DoubleAt(i), 0.5 * v * (1 + std::erf(v / std::numbers::sqrt2)), 1e-15) << v;
  }
}

TEST(GeluFusion, NearMissesStayDecomposed) {
  {  // another constant than sqrt(2)
    Builder b;
    const ir::ValueId x = b.Input("x", {4});
    b.Output("y", DecomposedGelu(b, x, Form::kTorch, 1.5));
    EXPECT_EQ(CountOps(*Fused(*b.g), "Gelu"), 0u);
  }
  {  // sqrt(2) only to float16 precision
    Builder b;
    const ir::ValueId x = b.Input("x", {4});
    b.Output("y", DecomposedGelu(b, x, Form::kTorch, 1.4140625));
    EXPECT_EQ(CountOps(*Fused(*b.g), "Gelu"), 0u);
  }
  {  // 1 + erf is read elsewhere (the Mul producing y reads it as its second input)
    Builder b;
    const ir::ValueId x = b.Input("x", {4});
    b.Output("y", DecomposedGelu(b, x, Form::kOnnxGelu));
    b.Output("erf", b.g->Producer(b.g->outputs()[0]) ? b.g->node(b.g->Producer(b.g->outputs()[0])->id).inputs[1]
                                                     : ir::kNoValue);
    EXPECT_EQ(CountOps(*Fused(*b.g), "Gelu"), 0u);
  }
  {  // x times a, but not by a half
    Builder b;
    const ir::ValueId x = b.Input("x", {4});
    const ir::ValueId e = b.Op("Erf", "erf", {b.Op("Div", "u", {x, Scalar(b, "sqrt2", std::numbers::sqrt2)})});
    const ir::ValueId a = b.Op("Add", "a", {e, Scalar(b, "one", 1.0)});
    b.Output("y", b.Op("Mul", "y", {b.Op("Mul", "xa", {x, a}), Scalar(b, "third", 1.0 / 3)}));
    EXPECT_EQ(CountOps(*Fused(*b.g), "Gelu"), 0u);
  }
  {  // the other operand of the product is not the erf's input
    Builder b;
    const ir::ValueId x = b.Input("x", {4});
    const ir::ValueId z = b.Input("z", {4});
    const ir::ValueId e = b.Op("Erf", "erf", {b.Op("Div", "u", {x, Scalar(b, "sqrt2", std::numbers::sqrt2)})});
    const ir::ValueId a = b.Op("Add", "a", {e, Scalar(b, "one", 1.0)});
    b.Output("y", b.Op("Mul", "y", {b.Op("Mul", "za", {z, a}), Scalar(b, "half", 0.5)}));
    EXPECT_EQ(CountOps(*Fused(*b.g), "Gelu"), 0u);
  }
}

}  // namespace
}  // namespace kiln
