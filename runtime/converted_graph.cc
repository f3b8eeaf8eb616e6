#include "runtime/converted_graph.h"

#include <mutex>

#include <fmt/format.h>

#include "convert/placement.h"
#include "ir/graph_util.h"

namespace kiln::runtime {
namespace {

std::shared_ptr<const ir::Graph> Placed(const std::shared_ptr<const ir::Graph>& graph, Device device) {
  if (device.kind == DeviceKind::kCpu) return graph;  // every value on the host: nothing to insert
  auto placed = std::make_shared<ir::Graph>(graph->Clone());
  convert::PlaceOnDevices(*placed, device);
  return placed;
}

// One run's device state: the stream every engine and copy is queued on (taken from the idle
// streams, given back synchronized), and the host tensors queued copies still read (alive until
// the next synchronization).
struct RunState {
  const backend::DeviceServices& services;
  std::mutex& pool_mu;
  std::vector<std::unique_ptr<backend::Stream>>& pool;
  std::unique_ptr<backend::Stream> stream;
  std::vector<Tensor> pending_sources;

  RunState(const backend::DeviceServices& s, std::mutex& mu, std::vector<std::unique_ptr<backend::Stream>>& idle)
      : services(s), pool_mu(mu), pool(idle) {
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      if (!pool.empty()) {
        stream = std::move(pool.back());
        pool.pop_back();
      }
    }
    if (!stream) stream = s.CreateStream();
  }
  ~RunState() {
    try {
      stream->Synchronize();
    } catch (...) {
      return;  // a failed stream is not reused
    }
    std::lock_guard<std::mutex> lock(pool_mu);
    pool.push_back(std::move(stream));
  }
  void Synchronize() {
    stream->Synchronize();
    pending_sources.clear();
  }
};

}  // namespace

ConvertedGraph::ConvertedGraph(std::shared_ptr<const ir::Graph> graph, std::shared_ptr<const backend::Backend> backend,
                               EngineSettings settings, LogFn log)
    : graph_(std::move(graph)),
      placed_(Placed(graph_, backend->device_services().device())),
      backend_(std::move(backend)),
      stats_(std::make_unique<EngineStats>()),
      executor_(placed_) {
  // A graph input that only feeds copies to the device can be taken on the device as it is.
  const auto consumers = placed_->Consumers();
  for (ir::ValueId in : placed_->inputs()) {
    bool only_copies = true;
    for (ir::NodeId c : consumers[static_cast<size_t>(in)]) only_copies = only_copies && placed_->node(c).op == "MemcpyFromHost";
    input_read_on_device_.push_back(only_copies);
  }
  for (ir::NodeId id : graph_->TopologicalOrder()) {
    const ir::Node& node = graph_->node(id);
    if (node.op != "Engine") continue;
    auto runtime = std::make_unique<EngineNodeRuntime>(node, backend_, settings, *stats_, log);
    by_node_name_[node.name] = runtime.get();
    by_engine_name_[runtime->name()] = runtime.get();
    engine_nodes_.push_back(std::move(runtime));
  }
}

EngineNodeRuntime& ConvertedGraph::engine_node(const std::string& name) const {
  auto it = by_engine_name_.find(name);
  if (it == by_engine_name_.end()) throw Error(ErrorCode::kNotFound, fmt::format("no engine node named '{}'", name));
  return *it->second;
}

std::vector<Tensor> ConvertedGraph::Run(std::vector<Tensor> inputs, std::span<const std::shared_ptr<Buffer>> output_buffers) const {
  const ir::Graph& g = *placed_;
  RunState run(backend_->device_services(), streams_mu_, idle_streams_);
  // Inputs on the device that native nodes read as well come to the host first.
  for (size_t i = 0; i < inputs.size() && i < input_read_on_device_.size(); ++i) {
    if (inputs[i].is_host() || input_read_on_device_[i]) continue;
    Tensor host = backend::HostServices().allocator().AllocateTensor(inputs[i].dtype(), inputs[i].shape());
    run.services.transfer().CopyTensor(inputs[i], host, *run.stream);
    run.Synchronize();
    inputs[i] = std::move(host);
  }
  // Values that are graph outputs with a caller buffer (the first output naming the value).
  std::map<ir::ValueId, const std::shared_ptr<Buffer>*> bound;
  for (size_t i = 0; i < output_buffers.size() && i < g.outputs().size(); ++i)
    if (output_buffers[i]) bound.try_emplace(g.outputs()[i], &output_buffers[i]);
  // Memory for a value on `services`' device: its caller buffer when it fits there.
  auto allocate = [&](ir::ValueId value, const backend::DeviceServices& services, DType dtype, const Shape& shape) {
    auto it = bound.find(value);
    if (it != bound.end()) {
      const std::shared_ptr<Buffer>& buffer = *it->second;
      if (buffer->device() == services.device() && static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype) <= buffer->size())
        return Tensor(dtype, shape, buffer);
    }
    return services.allocator().AllocateTensor(dtype, shape);
  };

  const NodeHook hook = [&](const ir::Node& node, std::span<const Tensor> in, std::vector<Tensor>& out) {
    if (node.op == "Engine") {
      EngineNodeRuntime& runtime = *by_node_name_.at(node.name);
      const OutputAllocator engine_output = [&](size_t i, DType dtype, const Shape& shape) {
        return allocate(node.outputs[i], run.services, dtype, shape);
      };
      out = runtime.Run(in, *run.stream, engine_output);
      // The native executor reads engine outputs only through MemcpyToHost (which synchronizes)
      // or, on the host, directly: a host engine's stream is synchronous.
      return true;
    }
    if (node.op == "MemcpyFromHost") {
      if (in[0].device() == run.services.device()) {  // a graph input the caller put on the device
        out = {in[0]};
        return true;
      }
      Tensor device = allocate(node.outputs[0], run.services, in[0].dtype(), in[0].shape());
      run.services.transfer().CopyTensor(in[0], device, *run.stream);
      run.pending_sources.push_back(in[0]);
      out = {std::move(device)};
      return true;
    }
    if (node.op == "MemcpyToHost") {
      auto it = bound.find(node.outputs[0]);
      if (it != bound.end() && (*it->second)->device() == run.services.device()) {
        // A graph output the caller wants on the device: a copy within the device, and no wait.
        Tensor device = allocate(node.outputs[0], run.services, in[0].dtype(), in[0].shape());
        run.services.transfer().CopyTensor(in[0], device, *run.stream);
        out = {std::move(device)};
        return true;
      }
      Tensor host = allocate(node.outputs[0], backend::HostServices(), in[0].dtype(), in[0].shape());
      run.services.transfer().CopyTensor(in[0], host, *run.stream);
      run.Synchronize();  // the host reader runs next
      out = {std::move(host)};
      return true;
    }
    return false;
  };
  std::vector<Tensor> outputs = executor_.Run(std::move(inputs), &hook);
  run.Synchronize();
  return outputs;
}

std::vector<Tensor> ConvertedGraph::RunEngine(const std::string& name, std::vector<Tensor> inputs) const {
  EngineNodeRuntime& engine = engine_node(name);
  const ir::Graph& segment = engine.segment();
  if (inputs.size() != segment.inputs().size())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("engine '{}' takes {} inputs, got {}", name,
                                                         segment.inputs().size(), inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Value& v = segment.value(segment.inputs()[i]);
    if (inputs[i].dtype() != v.dtype)
      throw Error(ErrorCode::kInvalidArgument, fmt::format("engine '{}' input {} ('{}') must be {}, got {}", name, i,
                                                           segment.input_names()[i], DTypeName(v.dtype),
                                                           DTypeName(inputs[i].dtype())));
  }
  RunState run(backend_->device_services(), streams_mu_, idle_streams_);
  const Device device = run.services.device();
  for (Tensor& t : inputs) {
    if (t.device() == device) continue;
    Tensor on_device = run.services.allocator().AllocateTensor(t.dtype(), t.shape());
    run.services.transfer().CopyTensor(t, on_device, *run.stream);
    run.pending_sources.push_back(std::move(t));
    t = std::move(on_device);
  }
  const OutputAllocator allocate = [&](size_t, DType dtype, const Shape& shape) {
    return run.services.allocator().AllocateTensor(dtype, shape);
  };
  std::vector<Tensor> outputs = engine.Run(inputs, *run.stream, allocate);
  for (Tensor& t : outputs) {
    if (t.is_host()) continue;
    Tensor host = backend::HostServices().allocator().AllocateTensor(t.dtype(), t.shape());
    run.services.transfer().CopyTensor(t, host, *run.stream);
    t = std::move(host);
  }
  run.Synchronize();
  return outputs;
}

bool ConvertedGraph::InferEngineShapes(const std::vector<Tensor>& inputs,
                                       std::map<std::string, std::vector<std::vector<Shape>>>& shapes) const {
  std::vector<Shape> input_shapes;
  for (const Tensor& t : inputs) input_shapes.push_back(t.shape());
  std::vector<std::optional<Shape>> known;
  try {
    known = ir::SpecializeShapes(*graph_, input_shapes);
  } catch (const Error&) {
    return false;  // the run reports what is wrong
  }
  std::map<std::string, std::vector<Shape>> found;
  for (const ir::Node& node : graph_->nodes()) {
    if (node.removed || node.op != "Engine") continue;
    std::vector<Shape>& list = found[by_node_name_.at(node.name)->name()];
    for (ir::ValueId v : node.inputs) {
      if (!known[static_cast<size_t>(v)]) return false;
      list.push_back(*known[static_cast<size_t>(v)]);
    }
  }
  for (auto& [name, list] : found) shapes[name].push_back(std::move(list));
  return true;
}

std::vector<Tensor> ConvertedGraph::RunRecordingShapes(std::vector<Tensor> inputs,
                                                       std::map<std::string, std::vector<std::vector<Shape>>>& shapes) const {
  std::mutex mutex;
  const NodeHook hook = [&](const ir::Node& node, std::span<const Tensor> in, std::vector<Tensor>& out) {
    if (node.op != "Engine") return false;
    EngineNodeRuntime& runtime = *by_node_name_.at(node.name);
    std::vector<Shape> seen;
    for (const Tensor& t : in) seen.push_back(t.shape());
    {
      std::lock_guard<std::mutex> lock(mutex);
      shapes[runtime.name()].push_back(std::move(seen));
    }
    out = runtime.RunNativeOnHost(in);
    return true;
  };
  // Recording runs every segment natively, so values never leave the host: the graph as saved
  // (no copies) runs as it is.
  return ReferenceExecutor(graph_).Run(std::move(inputs), &hook);
}

}  // namespace kiln::runtime
