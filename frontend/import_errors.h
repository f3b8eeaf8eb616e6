// The errors every frontend reports: one node it cannot import (UnsupportedError, thrown by an
// importer and collected) and the model-wide report of every such node (UnsupportedOpsError).
#pragma once

#include <string>
#include <vector>

#include "kiln/error.h"

namespace kiln::frontend {

// Thrown by an importer for a valid node that Kiln cannot import (unsupported dtype, attribute
// value, ...). Collected into the model-wide unsupported-ops report.
class UnsupportedError : public Error {
 public:
  explicit UnsupportedError(const std::string& reason) : Error(ErrorCode::kUnimplemented, reason) {}
};

struct UnsupportedNode {
  std::string node;
  std::string op;
  std::string reason;
};

// Thrown when a model uses ops Kiln cannot import; the message lists each op type with its count
// and first node names; `nodes()` has every one.
class UnsupportedOpsError : public Error {
 public:
  explicit UnsupportedOpsError(std::vector<UnsupportedNode> nodes);
  const std::vector<UnsupportedNode>& nodes() const { return nodes_; }

 private:
  std::vector<UnsupportedNode> nodes_;
};

}  // namespace kiln::frontend
