// Helpers of the ONNX importer unit tests: a builder of small ONNX models that imports them,
// attributes of hand-built ONNX nodes, the first live node of an op in an imported graph, and
// float32 tensors from values.
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "frontend/onnx/graph_builder.h"
#include "ir/graph.h"
#include "kiln/tensor.h"
#include "runtime/executor.h"

namespace kiln::onnxtest {

inline onnx::AttributeProto* NewAttr(onnx::NodeProto& n, const std::string& name,
                                     onnx::AttributeProto::AttributeType type) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}
inline void SetInt(onnx::NodeProto& n, const std::string& name, int64_t v) {
  NewAttr(n, name, onnx::AttributeProto::INT)->set_i(v);
}
inline void SetFloat(onnx::NodeProto& n, const std::string& name, float v) {
  NewAttr(n, name, onnx::AttributeProto::FLOAT)->set_f(v);
}
inline void SetString(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  NewAttr(n, name, onnx::AttributeProto::STRING)->set_s(v);
}
inline void SetInts(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto* a = NewAttr(n, name, onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
inline void SetFloats(onnx::NodeProto& n, const std::string& name, const std::vector<float>& v) {
  onnx::AttributeProto* a = NewAttr(n, name, onnx::AttributeProto::FLOATS);
  for (float x : v) a->add_floats(x);
}
inline void SetStrings(onnx::NodeProto& n, const std::string& name, const std::vector<std::string>& v) {
  onnx::AttributeProto* a = NewAttr(n, name, onnx::AttributeProto::STRINGS);
  for (const std::string& x : v) a->add_strings(x);
}

// The first node of `op` that no pass removed, or nullptr.
inline const ir::Node* FindOp(const ir::Graph& g, const std::string& op) {
  for (const ir::Node& n : g.nodes())
    if (!n.removed && n.op == op) return &n;
  return nullptr;
}

inline Tensor F32(Shape shape, const std::vector<float>& v) {
  return Tensor::FromVector<float>(DType::kFloat32, std::move(shape), v);
}

// A dim of a graph input: a length or a symbolic name.
using Dim = std::variant<int64_t, std::string>;

// Builds a one-graph ONNX model in memory and imports it through a file, as a user's model is.
// Nodes are named "<op>_0", the name the importer's errors quote.
class ModelMaker {
 public:
  // The default domain at `opset`, and `domain` (ai.onnx.preview.training, say) at
  // `domain_version` when that is positive: a version of 0 tests a model that does not import it.
  explicit ModelMaker(int64_t opset, const std::string& domain = "", int64_t domain_version = 0) {
    model_.set_ir_version(8);
    AddOpset("", opset);
    if (!domain.empty() && domain_version > 0) AddOpset(domain, domain_version);
    model_.mutable_graph()->set_name("g");
  }

  ModelMaker& Input(const std::string& name, int32_t type, const std::vector<Dim>& dims) {
    onnx::ValueInfoProto* v = model_.mutable_graph()->add_input();
    v->set_name(name);
    onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(type);
    onnx::TensorShapeProto* shape = t->mutable_shape();  // present even for a scalar: rank 0, not unknown
    for (const Dim& d : dims) {
      onnx::TensorShapeProto_Dimension* dim = shape->add_dim();
      if (const int64_t* n = std::get_if<int64_t>(&d))
        dim->set_dim_value(*n);
      else
        dim->set_dim_param(std::get<std::string>(d));
    }
    return *this;
  }

  // Initializers. Without dims, a vector is 1-D and a single value a scalar.
  ModelMaker& Floats(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
    onnx::TensorProto* t = Initializer(name, onnx::TensorProto::FLOAT, dims);
    for (float f : v) t->add_float_data(f);
    return *this;
  }
  ModelMaker& Floats(const std::string& name, const std::vector<float>& v) {
    return Floats(name, {static_cast<int64_t>(v.size())}, v);
  }
  ModelMaker& Int64s(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& v) {
    onnx::TensorProto* t = Initializer(name, onnx::TensorProto::INT64, dims);
    for (int64_t i : v) t->add_int64_data(i);
    return *this;
  }
  ModelMaker& Int64s(const std::string& name, const std::vector<int64_t>& v) {
    return Int64s(name, {static_cast<int64_t>(v.size())}, v);
  }
  ModelMaker& Float(const std::string& name, float v) { return Floats(name, {}, {v}); }
  ModelMaker& Int64(const std::string& name, int64_t v) { return Int64s(name, {}, {v}); }
  ModelMaker& Bool(const std::string& name, bool v) {
    Initializer(name, onnx::TensorProto::BOOL, {})->add_int32_data(v ? 1 : 0);  // ONNX keeps bools in int32_data
    return *this;
  }

  onnx::NodeProto& Node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs = {"y"}) {
    onnx::NodeProto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(op + "_0");
    for (const std::string& i : inputs) n->add_input(i);
    for (const std::string& o : outputs) n->add_output(o);
    last_outputs_ = outputs;
    return *n;
  }

  // Declares `outputs` (by default the last node's, omitted ones skipped) as the graph's outputs
  // on the first call only: Run imports again, and a model declares each output once.
  std::shared_ptr<ir::Graph> Import(const std::vector<std::string>& outputs = {}) {
    if (model_.graph().output_size() == 0)
      for (const std::string& o : outputs.empty() ? last_outputs_ : outputs)
        if (!o.empty()) model_.mutable_graph()->add_output()->set_name(o);
    // One file per test: tests may run in parallel processes (ctest).
    const std::string path = (std::filesystem::path(testing::TempDir()) /
                              (std::string(testing::UnitTest::GetInstance()->current_test_info()->name()) + ".onnx"))
                                 .string();
    std::ofstream(path, std::ios::binary) << model_.SerializeAsString();
    return std::make_shared<ir::Graph>(onnxfe::ImportOnnxFile(path));
  }

  // Imports the model and runs it on the reference executor.
  std::vector<Tensor> Run(std::vector<Tensor> inputs) {
    return runtime::ReferenceExecutor(Import()).Run(std::move(inputs));
  }

 private:
  void AddOpset(const std::string& domain, int64_t version) {
    onnx::OperatorSetIdProto* op = model_.add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
  }
  onnx::TensorProto* Initializer(const std::string& name, int32_t type, const std::vector<int64_t>& dims) {
    onnx::TensorProto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    return t;
  }

  onnx::ModelProto model_;
  std::vector<std::string> last_outputs_ = {"y"};
};

}  // namespace kiln::onnxtest
