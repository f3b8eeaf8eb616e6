// A converted graph ready to run: the reference executor for the native parts and one
// EngineNodeRuntime per engine node. Values live where placement put them (convert/placement):
// engine outputs on the engine device, native values on the host, with the copies between them
// run on the run's stream by the backend's DataTransfer.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "runtime/engine_node.h"

namespace kiln::runtime {

class ConvertedGraph {
 public:
  ConvertedGraph(std::shared_ptr<const ir::Graph> graph, std::shared_ptr<const backend::Backend> backend,
                 EngineSettings settings, LogFn log);

  const ir::Graph& graph() const { return *graph_; }
  // The graph as it runs: `graph()` with devices placed and copies inserted.
  const ir::Graph& placed_graph() const { return *placed_; }
  // Runs the graph; engine nodes go through their caches. Thread-safe. `output_buffers` (graph
  // output order, nullptr for none; may be shorter) are caller-owned buffers: an output whose
  // producer can write into its buffer (it fits, and is on the buffer's device) is computed
  // there in place, and the returned tensor then views that buffer. Other outputs are returned in
  // fresh memory; the caller copies them. Inputs may be on the engines' device: those that only
  // engines read are used in place, the others are copied to the host first.
  std::vector<Tensor> Run(std::vector<Tensor> inputs, std::span<const std::shared_ptr<Buffer>> output_buffers = {}) const;
  // The input shapes every engine node sees for these graph inputs, from shape inference alone
  // (no run); false when some engine input's shape depends on values (then RunRecordingShapes).
  bool InferEngineShapes(const std::vector<Tensor>& inputs,
                         std::map<std::string, std::vector<std::vector<Shape>>>& shapes) const;
  // Runs every engine node natively and records the input shapes each one saw (for build()).
  std::vector<Tensor> RunRecordingShapes(std::vector<Tensor> inputs,
                                         std::map<std::string, std::vector<std::vector<Shape>>>& shapes) const;

  EngineNodeRuntime& engine_node(const std::string& name) const;
  // Runs one engine node on host `inputs` (its segment's inputs, in order) through its cache,
  // as Run does, and returns host outputs (for TensorFlow's KilnEngineOp). kInvalidArgument for
  // a wrong input count or dtype; kNotFound for an unknown engine.
  std::vector<Tensor> RunEngine(const std::string& name, std::vector<Tensor> inputs) const;
  // In graph order.
  const std::vector<std::unique_ptr<EngineNodeRuntime>>& engine_nodes() const { return engine_nodes_; }
  const EngineStats& stats() const { return *stats_; }
  const backend::Backend& backend() const { return *backend_; }

 private:
  std::shared_ptr<const ir::Graph> graph_;
  std::shared_ptr<const ir::Graph> placed_;
  std::shared_ptr<const backend::Backend> backend_;
  std::unique_ptr<EngineStats> stats_;
  ReferenceExecutor executor_;
  std::vector<std::unique_ptr<EngineNodeRuntime>> engine_nodes_;
  std::map<std::string, EngineNodeRuntime*> by_node_name_;  // IR node name -> runtime
  std::map<std::string, EngineNodeRuntime*> by_engine_name_;
  std::vector<bool> input_read_on_device_;  // per graph input: only copies to the device read it
  // Streams of finished runs, reused by the next ones (creating a device stream per run costs
  // more than a small model's inference).
  mutable std::mutex streams_mu_;
  mutable std::vector<std::unique_ptr<backend::Stream>> idle_streams_;
};

}  // namespace kiln::runtime
