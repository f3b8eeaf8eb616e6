#include "api/import_pipeline.h"

#include "backend/reference/kernel.h"
#include "ir/passes/pass.h"

namespace kiln::api {

void OptimizeImportedGraph(ir::Graph& graph, bool verify) {
  ir::PassPipeline pipeline;
  pipeline.Add(ir::MakeIdentityElimination());
  pipeline.Add(ir::MakeEinsumLowering());
  pipeline.Add(ir::MakeConstantFolding(reference::EvaluateNode));
  pipeline.Add(ir::MakeKerasRnnFusion());
  pipeline.Add(ir::MakeReshapeTargetFolding());
  pipeline.Add(ir::MakePadFolding());
  pipeline.Add(ir::MakeDeadCodeElimination());
  ir::PipelineOptions options;
  options.verify_each = verify;
  pipeline.Run(graph, options);
}

}  // namespace kiln::api
