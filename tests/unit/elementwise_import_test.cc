// Elementwise TF importers end to end on a hand-written SavedModel (text format): attribute
// defaults, BiasAdd NCHW, Select v1 with a rank-1 condition, Cast, FakeQuant, QDQ V3; the IR
// graph is then evaluated with the reference kernels.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/unit/elementwise_test_util.h"
#include "tests/unit/tf_import_test_util.h"

namespace kiln::ew_test {
namespace {

const char* kConsts = R"pb(
      node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: 1 } } }
      node {
        name: "bias" op: "Const"
        attr { key: "dtype" value { type: 1 } }
        attr { key: "value" value { tensor { dtype: 1 tensor_shape { dim { size: 3 } } float_val: 1 float_val: 2 float_val: 3 } } }
      }
      node {
        name: "cond" op: "Const"
        attr { key: "dtype" value { type: 10 } }
        attr { key: "value" value { tensor { dtype: 10 tensor_shape { dim { size: 2 } } bool_val: true bool_val: false } } }
      }
      node {
        name: "qmin" op: "Const"
        attr { key: "dtype" value { type: 1 } }
        attr { key: "value" value { tensor { dtype: 1 tensor_shape {} float_val: -1 } } }
      }
      node {
        name: "qmax" op: "Const"
        attr { key: "dtype" value { type: 1 } }
        attr { key: "value" value { tensor { dtype: 1 tensor_shape {} float_val: 1 } } }
      }
      node {
        name: "bits" op: "Const"
        attr { key: "dtype" value { type: 3 } }
        attr { key: "value" value { tensor { dtype: 3 tensor_shape {} int_val: 8 } } }
      }
)pb";

// A SavedModel whose signature maps input "x" ([2,3,1,1] float32) to the given outputs.
std::string SavedModelText(const std::string& nodes, const std::map<std::string, std::string>& outputs) {
  std::string outs;
  for (const auto& [name, tensor] : outputs)
    outs += "outputs { key: \"" + name + "\" value { name: \"" + tensor + "\" dtype: 1 } }\n";
  return R"pb(
saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" }
  graph_def {
)pb" + std::string(kConsts) +
         nodes + R"pb(
  }
  signature_def {
    key: "serving_default"
    value {
      inputs { key: "x" value { name: "x:0" dtype: 1 tensor_shape { dim { size: 2 } dim { size: 3 } dim { size: 1 } dim { size: 1 } } } }
      )pb" + outs + R"pb(
      method_name: "tensorflow/serving/predict"
    }
  }
}
)pb";
}

class ElementwiseImport : public tf_test::SavedModelTextImport {
 protected:
  ir::Graph Import(const std::string& nodes, const std::map<std::string, std::string>& outputs) {
    return ImportSavedModelText(SavedModelText(nodes, outputs));
  }

  static int Count(const ir::Graph& g, const std::string& op) {
    int n = 0;
    for (const ir::Node& node : g.nodes())
      if (!node.removed && node.op == op) ++n;
    return n;
  }
};

TEST_F(ElementwiseImport, OpsWithDefaultsAndRewrites) {
  const std::string nodes = R"pb(
      node { name: "ba" op: "BiasAdd" input: "x" input: "bias" attr { key: "T" value { type: 1 } }
             attr { key: "data_format" value { s: "NCHW" } } }
      node { name: "lr" op: "LeakyRelu" input: "x" attr { key: "T" value { type: 1 } } }
      node { name: "neg" op: "Neg" input: "x" attr { key: "T" value { type: 1 } } }
      node { name: "sel" op: "Select" input: "cond" input: "x" input: "neg" attr { key: "T" value { type: 1 } } }
      node { name: "cast" op: "Cast" input: "x" attr { key: "SrcT" value { type: 1 } } attr { key: "DstT" value { type: 3 } } }
      node { name: "castf" op: "Cast" input: "cast" attr { key: "SrcT" value { type: 3 } } attr { key: "DstT" value { type: 1 } } }
      node { name: "fq" op: "FakeQuantWithMinMaxArgs" input: "x" }
      node { name: "qdq" op: "QuantizeAndDequantizeV3" input: "x" input: "qmin" input: "qmax" input: "bits"
             attr { key: "T" value { type: 1 } } }
      node { name: "addn" op: "AddN" input: "x" input: "ba" input: "lr"
             attr { key: "T" value { type: 1 } } attr { key: "N" value { i: 3 } } }
      node { name: "rdiv" op: "RealDiv" input: "x" input: "qmin" attr { key: "T" value { type: 1 } } }
  )pb";
  const ir::Graph g = Import(nodes, {{"ba", "ba:0"}, {"lr", "lr:0"}, {"sel", "sel:0"}, {"castf", "castf:0"},
                                     {"fq", "fq:0"}, {"qdq", "qdq:0"}, {"addn", "addn:0"}, {"rdiv", "rdiv:0"}});
  EXPECT_EQ(Count(g, "Reshape"), 0);  // constant bias / condition are reshaped at import
  EXPECT_EQ(Count(g, "Add"), 1);
  EXPECT_EQ(Count(g, "Div"), 1);
  const Tensor x = F32({2, 3, 1, 1}, {-1.5, 0.25, 2.7, 3, -4, 0.5});
  std::map<std::string, Tensor> out = Evaluate(g, x);
  // BiasAdd NCHW: bias [1,2,3] along dim 1.
  EXPECT_EQ(out.at("ba").shape(), (Shape{2, 3, 1, 1}));
  ExpectNear(Doubles(out.at("ba")), {-0.5, 2.25, 5.7, 4, -2, 3.5}, 1e-6);
  // LeakyRelu with the default alpha 0.2.
  ExpectNear(Doubles(out.at("lr")), {-0.3, 0.25, 2.7, 3, -0.8, 0.5}, 1e-6);
  // Select v1: cond [true, false] picks along dim 0.
  EXPECT_EQ(Doubles(out.at("sel")), (std::vector<double>{-1.5, 0.25, 2.7f, -3, 4, -0.5}));
  // Cast float -> int32 truncates toward zero (default Truncate=false).
  EXPECT_EQ(Doubles(out.at("castf")), (std::vector<double>{-1, 0, 2, 3, -4, 0}));
  // FakeQuantWithMinMaxArgs defaults: min -6, max 6, 8 bits.
  const double s = 12.0 / 255;
  ExpectNear(Doubles(out.at("fq")), {-32 * s, 5 * s, 57 * s, 64 * s, -85 * s, 11 * s}, 1e-6);
  // QuantizeAndDequantizeV3 defaults: range_given=true, signed: values clamp to [-128/127, 1].
  ExpectNear(Doubles(out.at("qdq")), {-128.0 / 127, 32.0 / 127, 1, 1, -128.0 / 127, 64.0 / 127}, 1e-6);
  ExpectNear(Doubles(out.at("addn")), {-1.5 - 0.5 - 0.3, 0.25 + 2.25 + 0.25, 2.7 + 5.7 + 2.7, 3 + 4 + 3, -4 - 2 - 0.8, 0.5 + 3.5 + 0.5},
             1e-6);
  EXPECT_EQ(Doubles(out.at("rdiv")), (std::vector<double>{1.5, -0.25, -2.7f, -3, 4, -0.5}));
}

TEST_F(ElementwiseImport, NonConstantBiasUsesReshape) {
  const std::string nodes = R"pb(
      node { name: "b2" op: "Neg" input: "bias" attr { key: "T" value { type: 1 } } }
      node { name: "ba" op: "BiasAdd" input: "x" input: "b2" attr { key: "T" value { type: 1 } }
             attr { key: "data_format" value { s: "NCHW" } } }
  )pb";
  const ir::Graph g = Import(nodes, {{"ba", "ba:0"}});
  EXPECT_EQ(Count(g, "Reshape"), 1) << "Neg(bias) was folded: the test no longer covers the Reshape path";
  std::map<std::string, Tensor> out = Evaluate(g, F32({2, 3, 1, 1}, {0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(Doubles(out.at("ba")), (std::vector<double>{-1, -2, -3, 0, -1, -2}));
}

TEST_F(ElementwiseImport, UnsupportedFloatTruncateDiv) {
  const std::string nodes = R"pb(
      node { name: "td" op: "TruncateDiv" input: "x" input: "bias" attr { key: "T" value { type: 1 } } }
  )pb";
  try {
    Import(nodes, {{"td", "td:0"}});
    ADD_FAILURE() << "expected an unsupported-op error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("TruncateDiv"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::ew_test
