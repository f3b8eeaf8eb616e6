// LayerNorm fusion (ir/passes/layer_norm_fusion.cc) and the LayerNorm op's reference kernel:
// each decomposed form importers emit becomes one LayerNorm node computing the same values, and
// patterns whose intermediates are read elsewhere, or that normalize other dims, stay as they are.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "ir/graph_util.h"
#include "ir/passes/pass.h"
#include "kiln/half.h"
#include "runtime/executor.h"
#include "tests/unit/cpu_test_util.h"

namespace kiln {
namespace {

using cputest::Builder;

ir::AttrMap KeepDims() {
  ir::AttrMap a;
  a.Set("keep_dims", true);
  return a;
}

ir::ValueId Axes(Builder& b, const std::string& name, std::vector<int64_t> axes) {
  const int64_t n = static_cast<int64_t>(axes.size());
  return b.Const(name, Tensor::FromVector<int64_t>(DType::kInt64, {n}, axes));
}

enum class Form {
  kOnnxFunction,      // Mul(d, d), Rsqrt, Mul(d, inv): ONNX LayerNormalization's function body
  kTorchOpset12,      // Pow(d, 2), Sqrt, Div(d, std): PyTorch's export below opset 17
  kSquaredDifference  // SquaredDifference(x, mean), Mul(inv, d): TensorFlow's moments
};

struct Pattern {
  ir::ValueId normalized = ir::kNoValue;
  ir::ValueId mean = ir::kNoValue;
};

// The normalization of `x` over `axes` in `form`, before scale and bias.
Pattern Normalize(Builder& b, ir::ValueId x, Form form, std::vector<int64_t> axes, DType dtype) {
  Pattern p;
  p.mean = b.Op("ReduceMean", "mean", {x, Axes(b, "mean_axes", axes)}, KeepDims());
  const ir::ValueId d = b.Op("Sub", "centered", {x, p.mean});
  ir::ValueId sq;
  if (form == Form::kOnnxFunction) sq = b.Op("Mul", "sq", {d, d});
  if (form == Form::kTorchOpset12)
    sq = b.Op("Pow", "sq", {d, b.Const("two", Tensor::Scalar<float>(DType::kFloat32, 2.0f))});
  if (form == Form::kSquaredDifference) sq = b.Op("SquaredDifference", "sq", {x, p.mean});
  const ir::ValueId var = b.Op("ReduceMean", "var", {sq, Axes(b, "var_axes", axes)}, KeepDims());
  const Tensor eps = dtype == DType::kFloat16 ? Tensor::Scalar<Half>(dtype, Half(1e-3f))
                                              : Tensor::Scalar<float>(DType::kFloat32, 1e-5f);
  const ir::ValueId var_eps = b.Op("Add", "var_eps", {b.Const("eps", eps), var});
  if (form == Form::kTorchOpset12) {
    p.normalized = b.Op("Div", "normalized", {d, b.Op("Sqrt", "std", {var_eps})});
  } else {
    const ir::ValueId inv = b.Op("Rsqrt", "inv_std", {var_eps});
    p.normalized =
        form == Form::kSquaredDifference ? b.Op("Mul", "normalized", {inv, d}) : b.Op("Mul", "normalized", {d, inv});
  }
  return p;
}

Tensor Values(DType dtype, Shape shape, uint32_t seed, float offset) {
  Tensor f = cputest::RandF32(shape, seed);
  for (int64_t i = 0; i < f.num_elements(); ++i) f.data<float>()[i] = f.data<float>()[i] * 3.0f + offset;
  if (dtype == DType::kFloat32) return f;
  Tensor h(dtype, shape);
  for (int64_t i = 0; i < f.num_elements(); ++i) h.data<Half>()[i] = Half(f.data<float>()[i]);
  return h;
}

size_t CountOps(const ir::Graph& g, const std::string& op) {
  size_t n = 0;
  for (const ir::Node& node : g.nodes()) n += !node.removed && node.op == op;
  return n;
}

// Runs the fusion (and dead-code elimination) on a copy; returns it.
std::shared_ptr<ir::Graph> Fused(const ir::Graph& g) {
  auto fused = std::make_shared<ir::Graph>(ir::CloneGraph(g));
  ir::PassPipeline p;
  p.Add(ir::MakeLayerNormFusion());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(*fused);
  return fused;
}

void ExpectSameOutputs(const Builder& b, const ir::Graph& fused, const std::vector<Tensor>& inputs, double tol,
                       const std::string& what) {
  const auto want = runtime::ReferenceExecutor(b.g).Run(inputs);
  const auto got = runtime::ReferenceExecutor(std::make_shared<ir::Graph>(ir::CloneGraph(fused))).Run(inputs);
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].shape(), want[i].shape()) << what;
    ASSERT_EQ(got[i].dtype(), want[i].dtype()) << what;
    double worst = 0;
    for (int64_t k = 0; k < want[i].num_elements(); ++k)
      worst = std::max(worst, std::abs(got[i].DoubleAt(k) - want[i].DoubleAt(k)) / (1 + std::abs(want[i].DoubleAt(k))));
    EXPECT_LE(worst, tol) << what;
  }
}

TEST(LayerNormFusion, EachDecomposedFormBecomesOneNodeWithTheSameValues) {
  for (Form form : {Form::kOnnxFunction, Form::kTorchOpset12, Form::kSquaredDifference}) {
    for (bool two_axes : {false, true}) {
      const std::string what = fmt::format("form {} over {} axes", static_cast<int>(form), two_axes ? 2 : 1);
      Builder b;
      const ir::ValueId x = b.Input("x", {3, 4, 40});
      const std::vector<int64_t> axes = two_axes ? std::vector<int64_t>{1, -1} : std::vector<int64_t>{-1};
      const Pattern p = Normalize(b, x, form, axes, DType::kFloat32);
      // Scale over the normalized dims (with a leading 1), bias broadcast along the row.
      const Shape scale_shape = two_axes ? Shape{1, 4, 40} : Shape{40};
      const ir::ValueId scaled =
          b.Op("Mul", "scaled", {b.Const("gamma", Values(DType::kFloat32, scale_shape, 7, 1.0f)), p.normalized});
      b.Output("y", b.Op("Add", "biased", {scaled, b.Const("beta", Values(DType::kFloat32, {1, 40}, 8, 0.0f))}));
      const auto fused = Fused(*b.g);
      ir::Verify(*fused);
      EXPECT_EQ(CountOps(*fused, "LayerNorm"), 1u) << what;
      EXPECT_EQ(fused->NumLiveNodes(), 3u) << what << ":\n" << ir::GraphToText(*fused);  // + scale, bias
      for (const ir::Node& n : fused->nodes())
        if (!n.removed && n.op == "LayerNorm") {
          EXPECT_EQ(n.attrs.Get<int64_t>("axis"), two_axes ? 1 : 2) << what;
          EXPECT_EQ(n.inputs.size(), 3u) << what;
          EXPECT_EQ(fused->value(n.inputs[1]).shape.dims.size(), two_axes ? 2u : 1u) << what;
        }
      ExpectSameOutputs(b, *fused, {Values(DType::kFloat32, {3, 4, 40}, 9, 5.0f)}, 2e-6, what);
    }
  }
}

TEST(LayerNormFusion, KerasAndBatchNormalizationFormsFoldTheScaleIntoTheInverse) {
  // Keras: s = rsqrt(var + eps) * gamma; y = x * s + (-mean * s + beta).
  // tf.nn.batch_normalization: the same with beta - mean * s.
  for (bool keras : {true, false}) {
    Builder b;
    const ir::ValueId x = b.Input("x", {b.Symbol("batch"), 5, 48});
    const ir::ValueId mean = b.Op("ReduceMean", "mean", {x, Axes(b, "axes", {-1})}, KeepDims());
    const ir::ValueId var = b.Op("ReduceMean", "variance",
                                 {b.Op("SquaredDifference", "sq", {x, mean}), Axes(b, "axes2", {-1})}, KeepDims());
    const ir::ValueId inv =
        b.Op("Rsqrt", "rsqrt",
             {b.Op("Add", "var_eps", {var, b.Const("eps", Tensor::Scalar<float>(DType::kFloat32, 1e-3f))})});
    const ir::ValueId s = b.Op("Mul", "s", {inv, b.Const("gamma", Values(DType::kFloat32, {48}, 21, 1.0f))});
    const ir::ValueId beta = b.Const("beta", Values(DType::kFloat32, {48}, 22, 0.0f));
    const ir::ValueId xs = b.Op("Mul", "x_s", {x, s});
    ir::ValueId shift;
    if (keras)
      shift = b.Op("Add", "shift", {b.Op("Mul", "neg_mean_s", {b.Op("Neg", "neg_mean", {mean}), s}), beta});
    else
      shift = b.Op("Sub", "shift", {beta, b.Op("Mul", "mean_s", {mean, s})});
    b.Output("y", b.Op("Add", "y", {xs, shift}));
    const auto fused = Fused(*b.g);
    EXPECT_EQ(CountOps(*fused, "LayerNorm"), 1u) << (keras ? "keras" : "batch_normalization") << "\n"
                                                 << ir::GraphToText(*fused);
    EXPECT_EQ(fused->NumLiveNodes(), 3u) << ir::GraphToText(*fused);
    ExpectSameOutputs(b, *fused, {Values(DType::kFloat32, {4, 5, 48}, 23, 2.0f)}, 2e-6, keras ? "keras" : "tf.nn");
  }
}

TEST(LayerNormFusion, TheFloat32StashOfAFloat16NormIsReadFromTheFloat16Tensor) {
  // ONNX LayerNormalization on float16 with stash_type float: Cast up, normalize, Cast back.
  Builder b;
  const ir::ValueId x16 = b.Input("x", {5, 64}, DType::kFloat16);
  ir::AttrMap up, down;
  up.Set("to", DType::kFloat32);
  down.Set("to", DType::kFloat16);
  const ir::ValueId x = b.Op("Cast", "x_stash", {x16}, up);
  const Pattern p = Normalize(b, x, Form::kOnnxFunction, {-1}, DType::kFloat32);
  const ir::ValueId back = b.Op("Cast", "normalized_t", {p.normalized}, down);
  const ir::ValueId scaled = b.Op("Mul", "scaled", {back, b.Const("gamma", Values(DType::kFloat16, {64}, 3, 1.0f))});
  b.Output("y", b.Op("Add", "biased", {scaled, b.Const("beta", Values(DType::kFloat16, {64}, 4, 0.0f))}));
  const auto fused = Fused(*b.g);
  ASSERT_EQ(CountOps(*fused, "LayerNorm"), 1u) << ir::GraphToText(*fused);
  EXPECT_EQ(CountOps(*fused, "Cast"), 0u) << ir::GraphToText(*fused);
  // The fused node rounds once (the reference rounds the normalized value, then the affine).
  ExpectSameOutputs(b, *fused, {Values(DType::kFloat16, {5, 64}, 5, -2.0f)}, 2e-3, "float16 stash");
}

TEST(LayerNormFusion, WithoutScaleOrBiasTheNormalizationStillFuses) {
  Builder b;
  const ir::ValueId x = b.Input("x", {b.Symbol("batch"), 33});
  b.Output("y", Normalize(b, x, Form::kOnnxFunction, {1}, DType::kFloat32).normalized);
  const auto fused = Fused(*b.g);
  EXPECT_EQ(CountOps(*fused, "LayerNorm"), 1u);
  EXPECT_EQ(fused->NumLiveNodes(), 1u);
  ExpectSameOutputs(b, *fused, {Values(DType::kFloat32, {6, 33}, 11, 3.0f)}, 2e-6, "no affine");
}

TEST(LayerNormFusion, PatternsThatAreNotALayerNormStayAsTheyAre) {
  {  // the mean is also a graph output
    Builder b;
    const ir::ValueId x = b.Input("x", {2, 16});
    const Pattern p = Normalize(b, x, Form::kOnnxFunction, {-1}, DType::kFloat32);
    b.Output("y", p.normalized);
    b.Output("mean", p.mean);
    EXPECT_EQ(CountOps(*Fused(*b.g), "LayerNorm"), 0u);
  }
  {  // normalizing a leading dim (a batch norm over the batch) is not a layer norm
    Builder b;
    const ir::ValueId x = b.Input("x", {2, 16, 3});
    b.Output("y", Normalize(b, x, Form::kOnnxFunction, {1}, DType::kFloat32).normalized);
    EXPECT_EQ(CountOps(*Fused(*b.g), "LayerNorm"), 0u);
  }
  {  // a scale that varies across rows is not absorbed (the node keeps its own Mul)
    Builder b;
    const ir::ValueId x = b.Input("x", {4, 16});
    const Pattern p = Normalize(b, x, Form::kOnnxFunction, {-1}, DType::kFloat32);
    b.Output("y", b.Op("Mul", "scaled", {p.normalized, b.Const("per_row", Values(DType::kFloat32, {4, 1}, 2, 1.0f))}));
    const auto fused = Fused(*b.g);
    EXPECT_EQ(CountOps(*fused, "LayerNorm"), 1u);
    EXPECT_EQ(CountOps(*fused, "Mul"), 1u);
    ExpectSameOutputs(b, *fused, {Values(DType::kFloat32, {4, 16}, 12, 0.0f)}, 2e-6, "per-row scale");
  }
}

TEST(LayerNormFusion, CpuEnginesRunFusedLayerNormsAgainstTheDecomposedReference) {
  // The three decomposed forms over the last dim (rows of 64 and 768, values offset by 40 so a
  // one-pass variance would cancel), and over the last two dims with a [C] scale: the CPU engine
  // fuses each into one cpu.LayerNorm step; relative L2 against the reference executor on the
  // decomposed graph within FP32's 1e-5 (float accumulation against double).
  struct Case {
    Form form;
    Shape shape;
    std::vector<int64_t> axes;
  };
  const std::vector<Case> cases = {{Form::kOnnxFunction, {2, 16, 64}, {-1}},
                                   {Form::kTorchOpset12, {1, 8, 768}, {-1}},
                                   {Form::kSquaredDifference, {3, 5, 64}, {-1}},
                                   {Form::kOnnxFunction, {2, 6, 10, 32}, {-2, -1}}};
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.shape.begin(), c.shape.end()));
    const Pattern p = Normalize(b, x, c.form, c.axes, DType::kFloat32);
    const int64_t channels = c.shape.back();
    ir::ValueId y = b.Op("Mul", "scale", {p.normalized, b.Const("gamma", cputest::RandF32({channels}, 3))});
    y = b.Op("Add", "bias", {y, b.Const("beta", cputest::RandF32({channels}, 4))});
    b.Output("y", y);
    auto engine = cputest::CheckAgainstReference(b, cputest::ExactProfile({c.shape}), {{Values(DType::kFloat32, c.shape, 5, 40.0f)}});
    EXPECT_EQ(cputest::CountOps(*engine, "cpu.LayerNorm"), 1) << ShapeToString(c.shape);
    EXPECT_EQ(dynamic_cast<const backend::cpu::CpuEngine&>(*engine).steps().size(), 1u) << ShapeToString(c.shape);
  }
}

}  // namespace
}  // namespace kiln
