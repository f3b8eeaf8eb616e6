// RecurrentUnsupported (recurrent.h): the conditions under which oneDNN's RNN primitives compute
// ONNX's RNN / GRU / LSTM exactly. The segmenter and the cpu-recurrent pass share it, so a node
// that enters an engine is always rewritten.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/recurrent.h"
#include "ir/ops/nn_recurrent.h"

namespace kiln::backend::cpu {

std::optional<std::string> RecurrentUnsupported(const ir::Graph& graph, const ir::Node& node) {
  const ir::nn::RecurrentKind* kind = ir::nn::FindRecurrentKind(node.op);
  if (!kind) return std::nullopt;
  const std::string op(kind->op);
  const ir::AttrMap& a = node.attrs;
  if (node.inputs.empty() || graph.value(node.inputs[0]).dtype != DType::kFloat32)
    return fmt::format("oneDNN's {} runs float32 only, X is {}", op,
                       node.inputs.empty() ? "missing" : DTypeName(graph.value(node.inputs[0]).dtype));
  const auto optional = a.GetOr<std::vector<std::string>>("optional_inputs", {});
  if (node.inputs.size() != 3 + optional.size())
    return fmt::format("{} has {} inputs for optional_inputs [{}]", op, node.inputs.size(), fmt::join(optional, ","));
  std::vector<std::pair<std::string, ir::ValueId>> inputs = {{"W", node.inputs[1]}, {"R", node.inputs[2]}};
  for (size_t i = 0; i < optional.size(); ++i) inputs.push_back({optional[i], node.inputs[3 + i]});
  for (const auto& [name, v] : inputs) {
    const bool weights = name == "W" || name == "R" || name == "B" || name == "P";
    if (weights && !graph.ConstantOf(v))
      return fmt::format("{}'s {} is not a constant (oneDNN's weights are repacked when the engine is built)", op,
                         name);
  }
  if (a.Has("clip")) return fmt::format("{} with clip: oneDNN's RNN primitives have no cell clip", op);
  if (a.GetOr<bool>("input_forget", false))
    return "LSTM with input_forget: oneDNN's LSTM has no coupled input-forget gate";
  const bool bidirectional = a.GetOr<std::string>("direction", "forward") == "bidirectional";
  const auto acts = a.GetOr<std::vector<std::string>>("activations", {});
  const auto per_dir = static_cast<size_t>(kind->activations_per_direction());
  if (!acts.empty()) {
    const std::vector<std::string> first(acts.begin(),
                                         acts.begin() + static_cast<std::ptrdiff_t>(std::min(per_dir, acts.size())));
    const bool same_directions =
        !bidirectional || (acts.size() == 2 * per_dir &&
                           std::equal(first.begin(), first.end(), acts.begin() + static_cast<std::ptrdiff_t>(per_dir)));
    const bool rnn_ok = op == "RNN" && (first[0] == "Tanh" || first[0] == "Relu" || first[0] == "Sigmoid");
    if (!same_directions || (!rnn_ok && first != kind->activations))
      return fmt::format("{} activations [{}]: oneDNN computes {} only{}", op, fmt::join(acts, ","),
                         op == "RNN" ? "Tanh, Relu or Sigmoid" : fmt::format("[{}]", fmt::join(kind->activations, ",")),
                         bidirectional ? ", the same in both directions" : "");
  }
  if (auto it = std::find(optional.begin(), optional.end(), "sequence_lens"); it != optional.end()) {
    const ir::ValueId v = node.inputs[3 + static_cast<size_t>(it - optional.begin())];
    const Tensor* lens = graph.ConstantOf(v);
    const ir::SymShape& x = graph.value(node.inputs[0]).shape;
    const int seq_axis = a.GetOr<int64_t>("layout", 0) == 1 ? 1 : 0;
    const bool static_seq = x.rank_known && x.rank() == 3 && ir::IsStatic(x.dims[static_cast<size_t>(seq_axis)]);
    bool full = lens && lens->dtype() == DType::kInt32 && static_seq;
    for (int64_t i = 0; full && i < lens->num_elements(); ++i)
      full = lens->data<int32_t>()[i] == x.dims[static_cast<size_t>(seq_axis)];
    if (!full)
      return fmt::format(
          "{} with sequence_lens that is not a constant equal to X's static sequence length in every row "
          "(oneDNN runs every row the full length)",
          op);
  }
  return std::nullopt;
}

}  // namespace kiln::backend::cpu
