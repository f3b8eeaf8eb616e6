#include "frontend/import_errors.h"

#include <map>

#include <fmt/format.h>

namespace kiln::frontend {
namespace {

constexpr size_t kMaxNodesListed = 3;

std::string DescribeUnsupported(const std::vector<UnsupportedNode>& nodes) {
  // Group by op type, keeping first-seen order of node names and the first reason.
  std::map<std::string, std::vector<const UnsupportedNode*>> by_op;
  for (const UnsupportedNode& n : nodes) by_op[n.op].push_back(&n);
  std::string msg = fmt::format("the model uses {} unsupported op type{} ({} node{}):", by_op.size(),
                                by_op.size() == 1 ? "" : "s", nodes.size(), nodes.size() == 1 ? "" : "s");
  for (const auto& [op, list] : by_op) {
    std::vector<std::string> names;
    for (size_t i = 0; i < list.size() && i < kMaxNodesListed; ++i) names.push_back("'" + list[i]->node + "'");
    msg += fmt::format("\n  {} x{}: {}{} ({})", op, list.size(), fmt::join(names, ", "),
                       list.size() > kMaxNodesListed ? ", ..." : "", list[0]->reason);
  }
  return msg;
}

}  // namespace

UnsupportedOpsError::UnsupportedOpsError(std::vector<UnsupportedNode> nodes)
    : Error(ErrorCode::kUnimplemented, DescribeUnsupported(nodes)), nodes_(std::move(nodes)) {}

}  // namespace kiln::frontend
