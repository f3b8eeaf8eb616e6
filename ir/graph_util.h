// Graph helpers for passes and codecs: compacting copies, shape equality, unique node names.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

// A deep copy of the live part of `graph` (node ids renumbered in topological order; removed
// nodes dropped; constants and subgraph attributes shared). Symbols are copied by name. With
// `value_map`, (*value_map)[old value id] is the new id (kNoValue for values of removed nodes).
Graph CloneGraph(const Graph& graph, std::vector<ValueId>* value_map = nullptr);

// Static shapes of every value of `graph` for concrete input shapes, by running each op's shape
// function (nullopt where shape inference cannot tell). kInvalidArgument when the shapes do not
// fit the graph. Engines use it to size buffers for the shapes of one run.
std::vector<std::optional<kiln::Shape>> SpecializeShapes(const Graph& graph, const std::vector<kiln::Shape>& inputs);
// SpecializeShapes in two halves, for callers that rewrite the clone in between: a clone of
// `graph` with `inputs` as its input shapes and every op's shape function run (`map`: old value
// id -> the clone's), then the static shape of each of `graph`'s values in it.
Graph SpecializedClone(const Graph& graph, const std::vector<kiln::Shape>& inputs, std::vector<ValueId>* map);
std::vector<std::optional<kiln::Shape>> StaticShapesOf(const Graph& clone, const std::vector<ValueId>& map);

// The graph's symbol names in symbol order.
std::vector<std::string> SymbolNames(const Graph& graph);

// True when both shapes have a known rank and every dim is the same known size or the same
// named symbol (so the two values have equal shapes at run time).
bool SameShape(const SymShape& a, const SymShape& b);

// True when `operand` broadcasts to `target` without enlarging it: rank <= target's rank and,
// right-aligned, each operand dim is 1 or provably equal to the target dim.
bool BroadcastsInto(const SymShape& operand, const SymShape& target);

// True when `value` is an output of the graph.
bool IsGraphOutput(const Graph& graph, ValueId value);

// Adds a one-output node that takes the place of value `replaced`: its output gets the dtype,
// shape and name of `replaced`, and every use of `replaced` reads it instead. The returned
// reference is valid until the graph's next AddNode.
Node& AddReplacementNode(Graph& graph, const std::string& op, const std::string& name, std::vector<ValueId> inputs,
                         ValueId replaced);

// `t` transposed on the host (constant folding, importers, layout passes): out.shape[k] =
// t.shape[perm[k]]; `perm` must be a permutation of t's dims.
kiln::Tensor HostTranspose(const kiln::Tensor& t, const std::vector<int64_t>& perm);

// Hands out node names unique within a graph.
class NameGen {
 public:
  explicit NameGen(const Graph& graph);
  std::string Make(const std::string& base);

 private:
  std::set<std::string> used_;
};

}  // namespace kiln::ir
