#include "backend/cuda/matmul_siblings.h"

#include <cstring>
#include <map>
#include <tuple>

#include "ir/graph_util.h"

namespace kiln::backend::cuda {

bool IsColumnBias(const ir::Graph& g, ir::ValueId bias, ir::ValueId product) {
  const Tensor* c = g.ConstantOf(bias);
  const ir::SymShape& out = g.value(product).shape;
  const DType dtype = g.value(product).dtype;
  if (!c || c->dtype() != dtype || !out.rank_known || out.rank() < 2 || c->rank() < 1 || c->rank() > out.rank())
    return false;
  if (dtype != DType::kFloat32 && dtype != DType::kFloat16 && dtype != DType::kBFloat16) return false;
  const ir::Dim n = out.dims.back();
  if (!ir::IsStatic(n) || c->dim(c->rank() - 1) != n) return false;
  for (int d = 0; d + 1 < c->rank(); ++d)
    if (c->dim(d) != 1) return false;
  return true;
}

namespace {

struct Candidate {
  const ir::Node* product = nullptr;
  const ir::Node* bias = nullptr;  // its bias Add, or nullptr
};

// The product's bias Add: its only reader, adding a column bias, not a graph output.
const ir::Node* BiasAddOf(const ir::Graph& g, const ir::Node& product,
                          const std::vector<std::vector<ir::NodeId>>& consumers,
                          const std::function<bool(ir::NodeId)>& eligible) {
  const ir::ValueId out = product.outputs[0];
  const auto& readers = consumers[static_cast<size_t>(out)];
  if (readers.size() != 1 || !eligible(readers[0])) return nullptr;
  const ir::Node& add = g.node(readers[0]);
  if (add.op != "Add" || add.inputs.size() != 2 || ir::IsGraphOutput(g, add.outputs[0])) return nullptr;
  const ir::ValueId other = add.inputs[0] == out ? add.inputs[1] : add.inputs[0];
  return other != out && IsColumnBias(g, other, out) ? &add : nullptr;
}

}  // namespace

std::vector<MatMulSiblings> FindMatMulSiblings(const ir::Graph& g,
                                               const std::vector<std::vector<ir::NodeId>>& consumers,
                                               const std::function<bool(ir::NodeId)>& eligible) {
  // (left operand, right operand's shape, transposed, with bias, op) -> the products, in graph order.
  using Key = std::tuple<ir::ValueId, Shape, bool, bool, std::string>;
  std::map<Key, std::vector<Candidate>> groups;
  std::vector<Key> order;  // keys in the order first seen, for a deterministic result
  for (ir::NodeId id : g.TopologicalOrder()) {
    const ir::Node& n = g.node(id);
    const bool batched = n.op == "BatchMatMul";
    if ((n.op != "MatMul" && !batched) || n.inputs.size() != 2 || n.outputs.size() != 1 || !eligible(id)) continue;
    if (n.attrs.GetOr<bool>(batched ? "adj_x" : "transpose_a", false) || ir::IsGraphOutput(g, n.outputs[0])) continue;
    const ir::Value& left = g.value(n.inputs[0]);
    const Tensor* right = g.ConstantOf(n.inputs[1]);
    const DType dtype = left.dtype;
    if (g.ConstantOf(n.inputs[0]) || !right || right->rank() != 2 || right->dtype() != dtype ||
        g.value(n.outputs[0]).dtype != dtype)
      continue;
    if (dtype != DType::kFloat32 && dtype != DType::kFloat16 && dtype != DType::kBFloat16) continue;
    const bool transposed = n.attrs.GetOr<bool>(batched ? "adj_y" : "transpose_b", false);
    const int64_t cols = transposed ? right->dim(0) : right->dim(1);
    if ((cols * static_cast<int64_t>(DTypeSize(dtype))) % 16 != 0) continue;
    const ir::Node* bias = BiasAddOf(g, n, consumers, eligible);
    const Key key{n.inputs[0], right->shape(), transposed, bias != nullptr, n.op};
    auto [it, added] = groups.try_emplace(key);
    if (added) order.push_back(key);
    it->second.push_back({&n, bias});
  }
  std::vector<MatMulSiblings> found;
  for (const Key& key : order) {
    const std::vector<Candidate>& members = groups.at(key);
    if (members.size() < 2) continue;
    MatMulSiblings s;
    s.left = std::get<0>(key);
    const Shape& right_shape = std::get<1>(key);
    const DType dtype = g.value(s.left).dtype;
    const int64_t count = static_cast<int64_t>(members.size());
    s.weights = Tensor(dtype, {count, right_shape[0], right_shape[1]});
    const size_t weight_bytes = static_cast<size_t>(right_shape[0] * right_shape[1]) * DTypeSize(dtype);
    const bool with_bias = std::get<3>(key);
    const int64_t cols = std::get<2>(key) ? right_shape[0] : right_shape[1];
    if (with_bias) s.bias = Tensor(dtype, {count, cols});
    const size_t bias_bytes = static_cast<size_t>(cols) * DTypeSize(dtype);
    for (size_t i = 0; i < members.size(); ++i) {
      const Candidate& c = members[i];
      s.products.push_back(c.product);
      std::memcpy(static_cast<char*>(s.weights.raw_data()) + i * weight_bytes,
                  g.ConstantOf(c.product->inputs[1])->raw_data(), weight_bytes);
      if (with_bias) {
        s.biases.push_back(c.bias);
        const ir::ValueId out = c.product->outputs[0];
        const ir::ValueId vector = c.bias->inputs[0] == out ? c.bias->inputs[1] : c.bias->inputs[0];
        std::memcpy(static_cast<char*>(s.bias.raw_data()) + i * bias_bytes, g.ConstantOf(vector)->raw_data(),
                    bias_bytes);
        s.outputs.push_back(c.bias->outputs[0]);
      } else {
        s.outputs.push_back(c.product->outputs[0]);
      }
    }
    found.push_back(std::move(s));
  }
  return found;
}

}  // namespace kiln::backend::cuda
