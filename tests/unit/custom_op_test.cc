// Custom ops (include/kiln/custom_op.h): registered in the process or loaded from a plugin
// (examples/plugins/example_ops.cc), imported from ONNX and run, also inside converted models.
#include "kiln/custom_op.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "kiln/converter.h"
#include "kiln/model.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using testutil::ExpectError;

fs::path TempPath(const std::string& name) {
  return fs::path(testing::TempDir()) /
         (std::string(testing::UnitTest::GetInstance()->current_test_info()->name()) + name);
}

// y = Relu(custom(x)) with `domain`::`op`, attrs alpha (float) and scale (float); x float [N, 4].
std::string WriteModel(const std::string& domain, const std::string& op, float alpha, float scale) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  onnx::OperatorSetIdProto* custom = m.add_opset_import();
  custom->set_domain(domain);
  custom->set_version(1);
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("g");
  onnx::ValueInfoProto* x = g->add_input();
  x->set_name("x");
  x->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_param("n");
  x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(4);
  onnx::NodeProto* n = g->add_node();
  n->set_op_type(op);
  n->set_domain(domain);
  n->set_name("custom");
  n->add_input("x");
  n->add_output("c");
  for (auto [name, value] : {std::pair{"alpha", alpha}, std::pair{"scale", scale}}) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }
  // Relu, then two Negs: enough built-in ops after the custom one for an engine.
  const std::vector<std::array<const char*, 3>> chain = {{"Relu", "c", "r"}, {"Neg", "r", "n"}, {"Neg", "n", "y"}};
  for (const auto& [type, in, out] : chain) {
    onnx::NodeProto* r = g->add_node();
    r->set_op_type(type);
    r->add_input(in);
    r->add_output(out);
  }
  g->add_output()->set_name("y");
  const std::string path = TempPath(".onnx").string();
  std::ofstream(path, std::ios::binary) << m.SerializeAsString();
  return path;
}

float Swish(float v, float alpha, float scale) { return static_cast<float>(v / (1.0 + std::exp(-alpha * v)) * scale); }

Tensor Input() {
  return Tensor::FromVector<float>(DType::kFloat32, {2, 4}, {-3.f, -1.f, -0.5f, 0.f, 0.25f, 1.f, 2.f, 5.f});
}

void ExpectSwishRelu(const Tensor& y, float alpha, float scale) {
  const Tensor x = Input();
  ASSERT_EQ(y.shape(), x.shape());
  for (int64_t i = 0; i < x.num_elements(); ++i)
    EXPECT_FLOAT_EQ(y.data<float>()[i], std::max(0.f, Swish(x.data<float>()[i], alpha, scale))) << i;
}

TEST(CustomOp, PluginOpsImportRunAndConvert) {
  LoadPlugin(KILN_EXAMPLE_PLUGIN);
  const std::vector<std::string> names = CustomOpNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "onnx:com.example:ScaledSwish"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "tf:BesselJ0"), names.end());
  const std::string model = WriteModel("com.example", "ScaledSwish", 1.5f, 2.f);
  auto m = LoadModel(model);
  const std::string out = m->signature().outputs()[0].name;
  ExpectSwishRelu(m->signature().Run({{"x", Input()}}).at(out), 1.5f, 2.f);

  // Converted (the CPU engine runs the plugin kernel in place of its own), saved and reloaded.
  ConversionParams params;
  params.minimum_segment_size = 1;
  Converter converter(model, {"serve"}, "serving_default", params);
  converter.convert();
  ExpectSwishRelu(converter.signature().Run({{"x", Input()}}).at(out), 1.5f, 2.f);
  const fs::path dir = TempPath("_converted");
  converter.save(dir.string());
  ExpectSwishRelu(LoadModel(dir.string())->signature().Run({{"x", Input()}}).at(out), 1.5f, 2.f);
  // The summary names the op by its ONNX type.
  EXPECT_NE(converter.summary().find("ScaledSwish"), std::string::npos) << converter.summary();

  // A second load of the same plugin registers the same ops again: refused, naming the op.
  ExpectError([] { LoadPlugin(KILN_EXAMPLE_PLUGIN); }, ErrorCode::kInvalidArgument,
              {"libkiln_example_ops.so", "already registered"});
}

TEST(CustomOp, RegisteredInProcessWithRunTimeErrors) {
  CustomOp op;
  op.framework = CustomOp::Framework::kOnnx;
  op.domain = "com.kiln.test";
  op.op_type = "PositiveOnly";
  op.infer = [](const std::vector<CustomTensorInfo>& in, const CustomAttrs&) { return in; };
  op.compute = [](const std::vector<CustomTensorView>& in, std::vector<CustomTensorView>& out,
                  const CustomAttrs& attrs) {
    const float* x = static_cast<const float*>(in[0].data);
    float* y = static_cast<float*>(out[0].data);
    const double scale = std::get<double>(attrs.at("scale"));
    for (size_t i = 0; i < in[0].size_bytes / sizeof(float); ++i) {
      if (x[i] < -100) throw std::runtime_error("inputs below -100 are not allowed");
      y[i] = static_cast<float>(x[i] * scale / (1 + std::exp(-x[i] * std::get<double>(attrs.at("alpha")))));
    }
  };
  RegisterCustomOp(op);
  auto m = LoadModel(WriteModel("com.kiln.test", "PositiveOnly", 0.5f, 3.f));
  const std::string out = m->signature().outputs()[0].name;
  ExpectSwishRelu(m->signature().Run({{"x", Input()}}).at(out), 0.5f, 3.f);
  ExpectError(
      [&] {
        m->signature().Run({{"x", Tensor::FromVector<float>(DType::kFloat32, {1, 4}, {0, 0, 0, -200})}});
      },
      ErrorCode::kInvalidArgument, {"custom", "onnx:com.kiln.test:PositiveOnly", "below -100"});
  CustomOp incomplete;
  incomplete.op_type = "Nothing";
  ExpectError([&] { RegisterCustomOp(incomplete); }, ErrorCode::kInvalidArgument, {"Nothing", "infer and compute"});
}

TEST(CustomOp, UnknownDomainsAndBadPluginsSaySo) {
  ExpectError([] { LoadModel(WriteModel("com.nobody", "Mystery", 1.f, 1.f))->signature(); }, ErrorCode::kUnimplemented,
              {"com.nobody", "plugin"});
  ExpectError([] { LoadPlugin("/nonexistent/libnothing.so"); }, ErrorCode::kNotFound, {"libnothing.so"});
  // A shared library without the entry point.
  for (const char* lib : {"/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"})
    if (fs::exists(lib)) {
      ExpectError([&] { LoadPlugin(lib); }, ErrorCode::kInvalidArgument, {"kiln_plugin_init"});
      break;
    }
}

}  // namespace
}  // namespace kiln
