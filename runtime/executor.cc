#include "runtime/executor.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/reference/kernel.h"
#include "common/cancellation.h"

namespace kiln::runtime {

ReferenceExecutor::ReferenceExecutor(std::shared_ptr<const ir::Graph> graph) : graph_(std::move(graph)) { Prepare(*graph_); }

void ReferenceExecutor::Prepare(const ir::Graph& graph) {
  Plan plan;
  plan.order = graph.TopologicalOrder();
  plan.last_use.assign(graph.num_values(), -1);
  plan.is_output.assign(graph.num_values(), false);
  for (size_t pos = 0; pos < plan.order.size(); ++pos) {
    const ir::Node& node = graph.node(plan.order[pos]);
    for (ir::ValueId in : node.inputs) plan.last_use[static_cast<size_t>(in)] = static_cast<int>(pos);
    for (const auto& [name, value] : node.attrs.all())
      if (const auto* sub = std::get_if<std::shared_ptr<ir::Graph>>(&value); sub && *sub && !plans_.count(sub->get()))
        Prepare(**sub);
  }
  for (ir::ValueId out : graph.outputs()) plan.is_output[static_cast<size_t>(out)] = true;
  plans_[&graph] = std::move(plan);
}

std::vector<Tensor> ReferenceExecutor::Run(std::vector<Tensor> inputs, const NodeHook* hook) const {
  // The caller's inputs stay referenced here for the whole run, so no tensor sharing their buffers
  // (an input, an Identity or Reshape of one) ever holds its buffer alone: kernels that write in
  // place copy them instead, and outputs never touch inputs.
  const std::vector<Tensor> pinned = inputs;
  return RunGraph(*graph_, std::move(inputs), hook);
}

std::vector<Tensor> ReferenceExecutor::RunGraph(const ir::Graph& graph, std::vector<Tensor> inputs,
                                                const NodeHook* hook) const {
  const Plan& plan = plans_.at(&graph);
  if (inputs.size() != graph.inputs().size())
    throw Error(ErrorCode::kInternal, fmt::format("executor: graph takes {} inputs, got {}", graph.inputs().size(), inputs.size()));
  std::vector<Tensor> values(graph.num_values());
  for (size_t i = 0; i < inputs.size(); ++i) values[static_cast<size_t>(graph.inputs()[i])] = std::move(inputs[i]);

  const reference::SubgraphRunner run_subgraph = [this](const ir::Graph& sub, std::vector<Tensor> args) {
    return RunGraph(sub, std::move(args), nullptr);
  };
  std::vector<Tensor> node_inputs;
  std::vector<bool> released;
  for (size_t pos = 0; pos < plan.order.size(); ++pos) {
    const ir::Node& node = graph.node(plan.order[pos]);
    if (CancellationRequested()) ThrowCancelled(fmt::format("node '{}' ({})", node.name, node.op));
    node_inputs.clear();
    released.assign(node.inputs.size(), false);
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const auto in = static_cast<size_t>(node.inputs[k]);
      // At its last use a value that is no graph output and that this node reads once is handed to
      // the kernel (moved, not shared), so that a kernel that writes it may do so in place.
      released[k] = plan.last_use[in] == static_cast<int>(pos) && !plan.is_output[in] &&
                    std::count(node.inputs.begin(), node.inputs.end(), node.inputs[k]) == 1;
      node_inputs.push_back(released[k] ? std::move(values[in]) : values[in]);
    }
    std::vector<Tensor> outs;
    if (!hook || !(*hook)(node, node_inputs, outs)) {
      for (size_t i = 0; i < node_inputs.size(); ++i)
        if (node_inputs[i].defined() && !node_inputs[i].is_host())
          throw Error(ErrorCode::kInternal,
                      fmt::format("node '{}' ({}) runs on the host but input {} is on {}: placement inserted no copy", node.name,
                                  node.op, i, node_inputs[i].device().ToString()));
      outs = reference::RunReferenceKernel(node, node_inputs, released, &run_subgraph);
    }
    node_inputs.clear();  // (drops the references to released inputs the kernel did not take)
    if (outs.size() != node.outputs.size())
      throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}) produced {} outputs, expected {}", node.name, node.op,
                                                    outs.size(), node.outputs.size()));
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      const ir::Value& v = graph.value(node.outputs[i]);
      const Tensor& t = outs[i];
      // Cheap consistency checks between shape inference and what the kernel produced.
      if (t.dtype() != v.dtype)
        throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}) output {}: kernel produced {}, shape inference said {}",
                                                      node.name, node.op, i, DTypeName(t.dtype()), DTypeName(v.dtype)));
      if (v.shape.rank_known) {
        bool ok = t.rank() == v.shape.rank();
        for (int d = 0; ok && d < t.rank(); ++d)
          ok = !ir::IsStatic(v.shape.dims[static_cast<size_t>(d)]) || v.shape.dims[static_cast<size_t>(d)] == t.dim(d);
        if (!ok)
          throw Error(ErrorCode::kInternal,
                      fmt::format("node '{}' ({}) output {}: kernel produced shape {}, shape inference said {}", node.name,
                                  node.op, i, ShapeToString(t.shape()), graph.ShapeToString(v.shape)));
      }
      values[static_cast<size_t>(node.outputs[i])] = std::move(outs[i]);
    }
    for (ir::ValueId in : node.inputs)
      if (plan.last_use[static_cast<size_t>(in)] == static_cast<int>(pos) && !plan.is_output[static_cast<size_t>(in)])
        values[static_cast<size_t>(in)] = Tensor();
  }
  std::vector<Tensor> outputs;
  for (ir::ValueId out : graph.outputs()) outputs.push_back(values[static_cast<size_t>(out)]);
  return outputs;
}

}  // namespace kiln::runtime
