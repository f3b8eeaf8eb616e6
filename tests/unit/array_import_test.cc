// Array TF importers end to end on a hand-written SavedModel (text format): stripped attribute
// defaults (StridedSlice masks, Pack axis, Sum keep_dims, ArgMax output_type, Squeeze dims,
// Shape out_type), Concat with the axis first, MirrorPad, and multi-output ops referenced by
// output-arg name inside a function (Split, TopKV2, Unpack). The IR is evaluated with the
// reference kernels.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/unit/array_test_util.h"
#include "tests/unit/tf_import_test_util.h"

namespace kiln {
namespace {

using namespace array_test;

// An int32 Const node of the given shape.
std::string IntConst(const std::string& name, const std::vector<int>& values, const Shape& shape) {
  std::string vals, dims;
  for (int64_t d : shape) dims += "dim { size: " + std::to_string(d) + " } ";
  for (int v : values) vals += " int_val: " + std::to_string(v);
  return "node { name: \"" + name + "\" op: \"Const\" attr { key: \"dtype\" value { type: 3 } } attr { key: \"value\" value { tensor { dtype: 3 tensor_shape { " +
         dims + " }" + vals + " } } } }\n";
}

const char* kFunction = R"pb(
  library {
    function {
      signature {
        name: "f"
        input_arg { name: "x" type: 1 }
        output_arg { name: "a" type: 1 }
        output_arg { name: "b" type: 3 }
        output_arg { name: "c" type: 1 }
      }
      node_def { name: "dim" op: "Const" attr { key: "dtype" value { type: 3 } }
                 attr { key: "value" value { tensor { dtype: 3 tensor_shape {} int_val: 1 } } } }
      node_def { name: "k" op: "Const" attr { key: "dtype" value { type: 3 } }
                 attr { key: "value" value { tensor { dtype: 3 tensor_shape {} int_val: 2 } } } }
      node_def { name: "split" op: "Split" input: "dim:output:0" input: "x"
                 attr { key: "T" value { type: 1 } } attr { key: "num_split" value { i: 2 } } }
      node_def { name: "topk" op: "TopKV2" input: "x" input: "k:output:0" attr { key: "T" value { type: 1 } } }
      node_def { name: "unpack" op: "Unpack" input: "x" attr { key: "T" value { type: 1 } } attr { key: "num" value { i: 2 } } }
      ret { key: "a" value: "split:output:1" }
      ret { key: "b" value: "topk:indices:0" }
      ret { key: "c" value: "unpack:output:1" }
    }
  }
)pb";

const char* kNodes = R"pb(
  node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: 1 } } }
  node { name: "sh" op: "Shape" input: "x" attr { key: "T" value { type: 1 } } }
  node { name: "ss" op: "StridedSlice" input: "sh" input: "b0" input: "e1" input: "s1"
         attr { key: "T" value { type: 3 } } attr { key: "Index" value { type: 3 } } attr { key: "shrink_axis_mask" value { i: 1 } } }
  node { name: "pk" op: "Pack" input: "ss" input: "two" input: "m1" attr { key: "T" value { type: 3 } } attr { key: "N" value { i: 3 } } }
  node { name: "rs" op: "Reshape" input: "x" input: "pk" attr { key: "T" value { type: 1 } } attr { key: "Tshape" value { type: 3 } } }
  node { name: "sum" op: "Sum" input: "rs" input: "one" attr { key: "T" value { type: 1 } } attr { key: "Tidx" value { type: 3 } } }
  node { name: "am" op: "ArgMax" input: "x" input: "one" attr { key: "T" value { type: 1 } } attr { key: "Tidx" value { type: 3 } } }
  node { name: "ed" op: "ExpandDims" input: "x" input: "zero" attr { key: "T" value { type: 1 } } attr { key: "Tdim" value { type: 3 } } }
  node { name: "sq" op: "Squeeze" input: "ed" attr { key: "T" value { type: 1 } } }
  node { name: "cc" op: "Concat" input: "one" input: "x" input: "x" attr { key: "T" value { type: 1 } } attr { key: "N" value { i: 2 } } }
  node { name: "mp" op: "MirrorPad" input: "x" input: "pads" attr { key: "T" value { type: 1 } } attr { key: "mode" value { s: "REFLECT" } } }
  node { name: "call" op: "StatefulPartitionedCall" input: "x" attr { key: "f" value { func { name: "f" } } }
         attr { key: "Tin" value { list { type: 1 } } } attr { key: "Tout" value { list { type: 1 type: 3 type: 1 } } } }
)pb";

std::string SavedModelText() {
  const std::map<std::string, std::pair<std::string, int>> outputs = {
      {"sum", {"sum:0", 1}}, {"am", {"am:0", 9}},   {"sq", {"sq:0", 1}},     {"cc", {"cc:0", 1}},
      {"mp", {"mp:0", 1}},   {"a", {"call:0", 1}}, {"b", {"call:1", 3}}, {"c", {"call:2", 1}}};
  std::string outs;
  for (const auto& [name, t] : outputs)
    outs += "outputs { key: \"" + name + "\" value { name: \"" + t.first + "\" dtype: " + std::to_string(t.second) + " } }\n";
  return std::string("saved_model_schema_version: 1\nmeta_graphs {\n meta_info_def { tags: \"serve\" }\n graph_def {\n") + kNodes +
         IntConst("b0", {0}, {1}) + IntConst("e1", {1}, {1}) + IntConst("s1", {1}, {1}) + IntConst("two", {2}, {}) +
         IntConst("m1", {-1}, {}) + IntConst("one", {1}, {}) + IntConst("zero", {0}, {}) + IntConst("pads", {0, 0, 1, 1}, {2, 2}) +
         kFunction +
         " }\n signature_def { key: \"serving_default\" value {\n"
         "  inputs { key: \"x\" value { name: \"x:0\" dtype: 1 tensor_shape { dim { size: 2 } dim { size: 4 } } } }\n" +
         outs + "  method_name: \"tensorflow/serving/predict\" } }\n}\n";
}

using ArrayImport = tf_test::SavedModelTextImport;

TEST_F(ArrayImport, DefaultsAndMultiOutputOps) {
  const ir::Graph g = ImportSavedModelText(SavedModelText());

  // Static shapes flow through Shape -> StridedSlice -> Pack -> Reshape.
  for (size_t i = 0; i < g.outputs().size(); ++i)
    if (g.output_names()[i] == "sum") EXPECT_EQ(g.ShapeToString(g.value(g.outputs()[i]).shape), "[2,2]");

  const std::map<std::string, Tensor> out = Evaluate(g, F32({2, 4}, {1, 5, 3, 7, 8, 2, 6, 4}));
  ExpectTensor(out.at("sum"), DType::kFloat32, {2, 2}, {4, 12, 14, 6});
  ExpectTensor(out.at("am"), DType::kInt64, {2}, {3, 0});
  ExpectTensor(out.at("sq"), DType::kFloat32, {2, 4}, {1, 5, 3, 7, 8, 2, 6, 4});
  ExpectTensor(out.at("cc"), DType::kFloat32, {2, 8}, {1, 5, 3, 7, 1, 5, 3, 7, 8, 2, 6, 4, 8, 2, 6, 4});
  ExpectTensor(out.at("mp"), DType::kFloat32, {2, 6}, {5, 1, 5, 3, 7, 3, 2, 8, 2, 6, 4, 6});
  ExpectTensor(out.at("a"), DType::kFloat32, {2, 2}, {3, 7, 6, 4});
  ExpectTensor(out.at("b"), DType::kInt32, {2, 2}, {3, 1, 0, 2});
  ExpectTensor(out.at("c"), DType::kFloat32, {4}, {8, 2, 6, 4});
}

}  // namespace
}  // namespace kiln
