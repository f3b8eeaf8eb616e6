// SpecializeShapesFolding: SpecializeShapes with the shape computations folded (pass.h).
#include "ir/graph_util.h"
#include "ir/passes/pass.h"

namespace kiln::ir {

std::vector<std::optional<kiln::Shape>> SpecializeShapesFolding(const Graph& graph,
                                                                const std::vector<kiln::Shape>& inputs,
                                                                const NodeEvaluator& evaluate) {
  std::vector<ValueId> map;
  Graph g = SpecializedClone(graph, inputs, &map);
  // Until nothing folds (a Reshape whose target folds makes the next Shape of its result
  // foldable).
  const auto infer = MakeShapeInference();
  const auto fold = MakeConstantFolding(evaluate, size_t{1} << 20);
  const auto targets = MakeReshapeTargetFolding();
  for (int round = 0; round < 16; ++round) {
    const bool folded = fold->Run(g);
    const bool retargeted = targets->Run(g);
    if (!folded && !retargeted) break;
    infer->Run(g);
  }
  return StaticShapesOf(g, map);
}

}  // namespace kiln::ir
