// ONNX elementwise importers: the IR they produce and their errors. Values are checked by the
// conformance runner (tests/onnx_conformance); these tests build small models in memory.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "kiln/error.h"
#include "tests/unit/onnx_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln::onnxfe {
namespace {

using onnxtest::ModelMaker;

using testutil::ExpectErrorMessage;

void SetAttr(onnx::NodeProto& n, const std::string& name, const std::string& s) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(s);
}
void SetAttr(onnx::NodeProto& n, const std::string& name, int64_t i) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(i);
}
void SetAttr(onnx::NodeProto& n, const std::string& name, float f) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(f);
}

std::vector<std::string> Ops(const ir::Graph& g) {
  std::vector<std::string> ops;
  for (const ir::Node& n : g.nodes())
    if (n.op != "Constant" && n.op != "Input" && n.op != "Placeholder") ops.push_back(n.op);
  return ops;
}
bool Has(const std::vector<std::string>& ops, const std::string& op) {
  return std::find(ops.begin(), ops.end(), op) != ops.end();
}

constexpr int32_t kF32 = onnx::TensorProto::FLOAT;
constexpr int32_t kF16 = onnx::TensorProto::FLOAT16;
constexpr int32_t kI32 = onnx::TensorProto::INT32;
constexpr int32_t kI64 = onnx::TensorProto::INT64;
constexpr int32_t kU8 = onnx::TensorProto::UINT8;

TEST(OnnxElementwiseImport, MappedOp) {
  ModelMaker m(17);
  m.Input("a", kF32, {2, 3}).Input("b", kF32, {3});
  m.Node("GreaterOrEqual", {"a", "b"});
  const std::shared_ptr<ir::Graph> g = m.Import();
  EXPECT_EQ(Ops(*g), std::vector<std::string>{"GreaterEqual"});
}

TEST(OnnxElementwiseImport, DtypeMismatchIsInvalid) {
  ModelMaker m(17);
  m.Input("a", kF32, {3}).Input("b", kI32, {3});
  m.Node("Add", {"a", "b"});
  ExpectErrorMessage([&] { m.Import(); }, {"node 'Add_0' (Add)", "same dtype"});
}

TEST(OnnxElementwiseImport, UnsupportedDtypeIsReported) {
  ModelMaker m(17);
  m.Input("a", kU8, {3});
  m.Node("Relu", {"a"});
  ExpectErrorMessage([&] { m.Import(); }, {"Relu is imported for floating-point, signed integer inputs only"});
}

TEST(OnnxElementwiseImport, BitShiftDirection) {
  ModelMaker m(17);
  m.Input("a", kU8, {3}).Input("b", kU8, {3});
  SetAttr(m.Node("BitShift", {"a", "b"}), "direction", std::string("UP"));
  ExpectErrorMessage([&] { m.Import(); },
                     {"node 'BitShift_0' (BitShift): attribute 'direction' must be \"LEFT\" or \"RIGHT\""});
}

TEST(OnnxElementwiseImport, BitShiftMasksWideShifts) {
  ModelMaker m(17);
  m.Input("a", kU8, {3}).Input("b", kU8, {3});
  SetAttr(m.Node("BitShift", {"a", "b"}), "direction", std::string("LEFT"));
  const std::vector<std::string> ops = Ops(*m.Import());
  EXPECT_TRUE(Has(ops, "LeftShift") && Has(ops, "Less") && Has(ops, "Select"));
}

TEST(OnnxElementwiseImport, FloatModNeedsFmod) {
  ModelMaker m(17);
  m.Input("a", kF32, {3}).Input("b", kF32, {3});
  m.Node("Mod", {"a", "b"});
  ExpectErrorMessage([&] { m.Import(); }, {"fmod must be 1 for floating-point inputs"});
}

TEST(OnnxElementwiseImport, IntegerModFlavours) {
  for (int64_t fmod : {0, 1}) {
    ModelMaker m(17);
    m.Input("a", kI32, {3}).Input("b", kI32, {3});
    SetAttr(m.Node("Mod", {"a", "b"}), "fmod", fmod);
    EXPECT_EQ(Ops(*m.Import()), std::vector<std::string>{fmod == 1 ? "TruncateMod" : "FloorMod"});
  }
}

TEST(OnnxElementwiseImport, GeluApproximate) {
  ModelMaker m(20);
  m.Input("a", kF32, {3});
  SetAttr(m.Node("Gelu", {"a"}), "approximate", std::string("fast"));
  ExpectErrorMessage([&] { m.Import(); }, {"attribute 'approximate' must be"});
}

TEST(OnnxElementwiseImport, WhereConditionMustBeBool) {
  ModelMaker m(17);
  m.Input("c", kI32, {3}).Input("a", kF32, {3}).Input("b", kF32, {3});
  m.Node("Where", {"c", "a", "b"});
  ExpectErrorMessage([&] { m.Import(); }, {"condition) must be bool"});
}

TEST(OnnxElementwiseImport, ClipConstantBoundsAreOneClip) {
  ModelMaker m(17);
  m.Input("a", kF32, {3}).Float("lo", -1.0f).Float("hi", 1.0f);
  m.Node("Clip", {"a", "lo", "hi"});
  EXPECT_EQ(Ops(*m.Import()), std::vector<std::string>{"Clip"});
}

TEST(OnnxElementwiseImport, ClipInvertedOrDynamicBoundsCompose) {
  {
    ModelMaker m(17);
    m.Input("a", kF32, {3}).Float("lo", 2.0f).Float("hi", 1.0f);
    m.Node("Clip", {"a", "lo", "hi"});
    EXPECT_EQ(Ops(*m.Import()), (std::vector<std::string>{"Maximum", "Minimum"}));
  }
  {
    ModelMaker m(17);
    m.Input("a", kF32, {3}).Input("hi", kF32, {});
    m.Node("Clip", {"a", "", "hi"});
    EXPECT_EQ(Ops(*m.Import()), std::vector<std::string>{"Minimum"});
  }
}

TEST(OnnxElementwiseImport, PowMixedDtypesComputeWide) {
  ModelMaker m(17);
  m.Input("a", kI32, {3}).Input("b", kI64, {3});
  m.Node("Pow", {"a", "b"});
  const std::shared_ptr<ir::Graph> g = m.Import();
  EXPECT_EQ(Ops(*g), (std::vector<std::string>{"Cast", "Pow", "Cast"}));
  EXPECT_EQ(g->value(g->outputs().at(0)).dtype, DType::kInt32);
}

TEST(OnnxElementwiseImport, HalfLeakyReluWidensOnlyForInexactAlpha) {
  {
    ModelMaker m(17);
    m.Input("a", kF16, {3});
    SetAttr(m.Node("LeakyRelu", {"a"}), "alpha", 0.25f);
    EXPECT_EQ(Ops(*m.Import()), std::vector<std::string>{"LeakyRelu"});
  }
  {
    ModelMaker m(17);
    m.Input("a", kF16, {3});
    SetAttr(m.Node("LeakyRelu", {"a"}), "alpha", 0.01f);
    EXPECT_EQ(Ops(*m.Import()), (std::vector<std::string>{"Cast", "LeakyRelu", "Cast"}));
  }
}

TEST(OnnxElementwiseImport, VariadicFold) {
  ModelMaker m(17);
  m.Input("a", kF32, {3}).Input("b", kF32, {3}).Input("c", kF32, {1});
  m.Node("Mean", {"a", "b", "c"});
  EXPECT_EQ(Ops(*m.Import()), (std::vector<std::string>{"Add", "Add", "Div"}));
}

}  // namespace
}  // namespace kiln::onnxfe
