// The registries: NameRegistry, the IR op registry with backend ops under a prefix, and the
// elementwise op table that the IR schemas, reference kernels and importers are built from.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "backend/cpu/cpu_ops.h"
#include "backend/reference/kernel.h"
#include "common/name_registry.h"
#include "frontend/onnx/importer.h"
#include "frontend/tf/importer.h"
#include "ir/op_schema.h"
#include "ir/ops/elementwise_ops.h"
#include "ir/passes/pass.h"

namespace kiln {
namespace {

TEST(NameRegistry, FindsSortsAndRejectsDuplicates) {
  NameRegistry<int> r("test entry");
  r.Add("b", 2);
  r.Add("a", 1);
  ASSERT_NE(r.Find("a"), nullptr);
  EXPECT_EQ(*r.Find("b"), 2);
  EXPECT_EQ(r.Find("c"), nullptr);
  EXPECT_EQ(r.Names(), (std::vector<std::string>{"a", "b"}));
  try {
    r.Add("a", 3);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_STREQ(e.what(), "test entry registered twice: a");
  }
}

void InferLikeInput(ir::InferContext& ctx) { ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0)); }

int add_calls = 0;
void AddTestOps(ir::OpRegistry& r) {
  ++add_calls;
  r.Add({"regtest.Copy", 1, 1, &InferLikeInput, false});
}
void AddUnprefixedOps(ir::OpRegistry& r) { r.Add({"Copy2", 1, 1, &InferLikeInput, false}); }

TEST(OpRegistry, BackendOpsRegisterUnderTheirPrefix) {
  EXPECT_EQ(ir::FindOp("regtest.Copy"), nullptr);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([] { ir::RegisterBackendOps("regtest", &AddTestOps); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(add_calls, 1);
  ASSERT_NE(ir::FindOp("regtest.Copy"), nullptr);
  EXPECT_FALSE(ir::FindOp("regtest.Copy")->foldable);
  EXPECT_EQ(ir::FindOp("regtest.Other"), nullptr);
  EXPECT_EQ(ir::BuiltinOps().Find("regtest.Copy"), nullptr);  // built-in ops stay the canonical set
  EXPECT_NE(ir::FindOp("Relu"), nullptr);

  // A backend op is verified and shape-inferred like any other.
  ir::Graph g;
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2, 3}));
  ir::Node& n = g.AddNode("regtest.Copy", "copy", {x});
  const ir::NodeId id = n.id;
  ir::InferNode(g, id);
  g.AddOutput("y", g.node(id).outputs[0]);
  EXPECT_EQ(g.value(g.node(id).outputs[0]).dtype, DType::kFloat32);
  EXPECT_NO_THROW(ir::Verify(g));

  try {
    ir::RegisterBackendOps("unprefixed", &AddUnprefixedOps);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("'Copy2' is not named 'unprefixed.<Op>'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ir::FindOp("unprefixed.Copy2"), nullptr);
}

TEST(OpRegistry, CpuOpsAreIrOps) {
  backend::cpu::RegisterCpuOps();
  for (std::string_view op : {backend::cpu::kFusedConv2D, backend::cpu::kFusedMatMul, backend::cpu::kFusedBatchMatMul,
                              backend::cpu::kEltwiseChain}) {
    const ir::OpSchema* schema = ir::FindOp(op);
    ASSERT_NE(schema, nullptr) << op;
    EXPECT_FALSE(schema->foldable) << op;
    EXPECT_NE(backend::cpu::FindCpuOp(op), nullptr) << op;
  }
}

// The table's ops are IR ops with the table's arity, have reference kernels, and every TF/ONNX
// name in the table has an importer.
TEST(ElementwiseTable, DrivesSchemasKernelsAndImporters) {
  const auto tf_ops = tf::TfImporters().Ops();
  const auto onnx_ops = onnxfe::OnnxImporters().Ops();
  auto has = [](const std::vector<std::string>& names, const char* name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  for (const ir::elementwise::OpInfo& op : ir::elementwise::AllOps()) {
    EXPECT_EQ(ir::elementwise::FindOp(op.name), &op);
    const ir::OpSchema* schema = ir::BuiltinOps().Find(op.name);
    ASSERT_NE(schema, nullptr) << op.name;
    EXPECT_EQ(schema->min_inputs, ir::elementwise::Arity(op.pattern)) << op.name;
    EXPECT_EQ(schema->max_inputs, ir::elementwise::Arity(op.pattern)) << op.name;
    EXPECT_NE(reference::ReferenceKernels().Find(op.name), nullptr) << op.name;
    for (const auto& tf : op.tf) {
      if (tf.name) {
        EXPECT_TRUE(has(tf_ops, tf.name)) << tf.name;
      }
    }
    for (const auto& onnx : op.onnx) {
      if (onnx.name) {
        EXPECT_TRUE(has(onnx_ops, onnx.name)) << onnx.name;
      }
    }
  }
  EXPECT_EQ(ir::elementwise::FindOp("Select"), nullptr);  // registered by hand
}

}  // namespace
}  // namespace kiln
