// Device placement and the device-aware converted-graph executor, with a stand-in device whose
// memory is host memory tagged as another device: engines there must only ever see that
// device's tensors, native nodes only host tensors, and every crossing is a counted copy.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>

#include "backend/backend.h"
#include "convert/placement.h"
#include "ir/op_schema.h"
#include "ir/passes/pass.h"
#include "runtime/converted_graph.h"
#include "runtime/executor.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using testutil::ExpectError;

constexpr Device kFake{DeviceKind::kCuda, 3};

class FakeDeviceBuffer final : public Buffer {
 public:
  explicit FakeDeviceBuffer(size_t bytes) : host_(AllocateHostBuffer(bytes)) {}
  void* data() override { return host_->data(); }
  size_t size() const override { return host_->size(); }
  Device device() const override { return kFake; }

 private:
  std::shared_ptr<Buffer> host_;
};

struct Counters {
  std::atomic<int> to_device{0}, to_host{0}, synchronizations{0};
};

class FakeStream final : public backend::Stream {
 public:
  explicit FakeStream(Counters& c) : counters_(c) {}
  Device device() const override { return kFake; }
  void Synchronize() override { ++counters_.synchronizations; }

 private:
  Counters& counters_;
};

class FakeServices final : public backend::DeviceServices {
 public:
  class Alloc final : public backend::Allocator {
   public:
    Device device() const override { return kFake; }
    std::shared_ptr<Buffer> Allocate(size_t bytes) const override { return std::make_shared<FakeDeviceBuffer>(bytes); }
  };
  class Transfer final : public backend::DataTransfer {
   public:
    explicit Transfer(Counters& c) : counters_(c) {}
    bool CanCopy(Device src, Device dst) const override {
      return (src == kFake || src.kind == DeviceKind::kCpu) && (dst == kFake || dst.kind == DeviceKind::kCpu);
    }
    void CopyTensor(const Tensor& src, Tensor& dst, backend::Stream&) const override {
      backend::CheckCopyable(src, dst);
      if (dst.device() == kFake && src.is_host()) ++counters_.to_device;
      if (dst.is_host() && src.device() == kFake) ++counters_.to_host;
      std::memcpy(dst.raw_data(), src.raw_data(), src.byte_size());
    }

   private:
    Counters& counters_;
  };

  explicit FakeServices(Counters& c) : counters_(c), transfer_(c) {}
  Device device() const override { return kFake; }
  const backend::Allocator& allocator() const override { return allocator_; }
  const backend::DataTransfer& transfer() const override { return transfer_; }
  std::unique_ptr<backend::Stream> CreateStream() const override { return std::make_unique<FakeStream>(counters_); }

 private:
  Counters& counters_;
  Alloc allocator_;
  Transfer transfer_;
};

// Views a fake-device tensor as the host memory it really is (the engine's "kernels").
Tensor HostView(const Tensor& t) {
  auto host = AllocateHostBuffer(t.byte_size());
  std::memcpy(host->data(), t.raw_data(), t.byte_size());
  return Tensor(t.dtype(), t.shape(), host);
}

// Runs its segment with the reference executor, insisting on fake-device inputs and outputs.
class FakeEngine final : public backend::Engine {
 public:
  FakeEngine(const ir::Graph& segment, backend::Profile profile)
      : segment_(std::make_shared<ir::Graph>(segment.Clone())), executor_(segment_), profile_(std::move(profile)) {}
  const backend::Profile& profile() const override { return profile_; }
  Precision precision() const override { return Precision::kFP32; }
  std::string precision_note() const override { return ""; }
  Device device() const override { return kFake; }
  std::vector<DType> output_dtypes() const override {
    std::vector<DType> d;
    for (ir::ValueId v : segment_->outputs()) d.push_back(segment_->value(v).dtype);
    return d;
  }
  std::vector<Shape> OutputShapes(std::span<const Shape> in) const override { return {in[0]}; }  // elementwise segments
  void Enqueue(std::span<const Tensor> inputs, std::span<Tensor> outputs, backend::Stream& stream) const override {
    EXPECT_EQ(stream.device(), kFake);
    std::vector<Tensor> host;
    for (const Tensor& t : inputs) {
      EXPECT_EQ(t.device(), kFake) << "engine input not on the engine's device";
      host.push_back(HostView(t));
    }
    std::vector<Tensor> results = executor_.Run(std::move(host));
    for (size_t i = 0; i < outputs.size(); ++i) {
      EXPECT_EQ(outputs[i].device(), kFake) << "engine output not on the engine's device";
      std::memcpy(outputs[i].raw_data(), results[i].raw_data(), results[i].byte_size());
    }
  }
  std::string Serialize() const override { return ""; }

 private:
  std::shared_ptr<ir::Graph> segment_;
  runtime::ReferenceExecutor executor_;
  backend::Profile profile_;
};

class FakeBackend final : public backend::Backend {
 public:
  explicit FakeBackend(Counters& c) : services_(c) {}
  std::string name() const override { return "fake"; }
  std::string device() const override { return "fake device"; }
  std::optional<std::string> Unsupported(const ir::Graph&, const ir::Node&) const override { return std::nullopt; }
  std::unique_ptr<backend::Engine> Compile(const ir::Graph& segment, const backend::Profile& profile,
                                           const backend::CompileOptions&) const override {
    return std::make_unique<FakeEngine>(segment, profile);
  }
  std::unique_ptr<backend::Engine> Deserialize(const ir::Graph&, const backend::Profile&, const backend::CompileOptions&,
                                               std::string_view) const override {
    throw Error(ErrorCode::kUnimplemented, "not serialized");
  }
  const backend::DeviceServices& device_services() const override { return services_; }

 private:
  FakeServices services_;
};

// A one-node segment `op(x, x)` (or `op(x)`) as an Engine node reading `input`.
ir::ValueId AddEngine(ir::Graph& g, const std::string& name, const std::string& op, int arity, ir::ValueId input) {
  auto seg = std::make_shared<ir::Graph>();
  ir::ValueId x = seg->AddInput("x", DType::kFloat32, ir::SymShape::Of({ir::kUnknownDim}));
  std::vector<ir::ValueId> args(static_cast<size_t>(arity), x);
  ir::Node& n = seg->AddNode(op, name + "_" + op, args);
  ir::InferNode(*seg, n.id);
  seg->AddOutput("y", seg->node(0).outputs[0]);
  ir::Node& e = g.AddNode("Engine", name, {input});
  e.attrs.Set("segment", seg);
  e.attrs.Set("engine_name", "KilnEngineOp_" + name);
  const ir::NodeId id = e.id;
  ir::InferNode(g, id);
  return g.node(id).outputs[0];
}

// x -> E1 Relu -> E2 Add(y, y) -> native Neg -> E3 Mul(n, n) -> w; outputs (w, z).
std::shared_ptr<ir::Graph> ChainGraph() {
  auto g = std::make_shared<ir::Graph>();
  ir::ValueId x = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({ir::kUnknownDim}));
  ir::ValueId y = AddEngine(*g, "e1", "Relu", 1, x);
  ir::ValueId z = AddEngine(*g, "e2", "Add", 2, y);
  ir::Node& neg = g->AddNode("Neg", "neg", {z});
  const ir::NodeId neg_id = neg.id;
  ir::InferNode(*g, neg_id);
  ir::ValueId w = AddEngine(*g, "e3", "Mul", 2, g->node(neg_id).outputs[0]);
  g->AddOutput("w", w);
  g->AddOutput("z", z);
  return g;
}

TEST(DevicePlacement, CopiesOnlyWhereHostAndDeviceMeet) {
  auto g = ChainGraph();
  ir::Graph placed = g->Clone();
  // x to the device, z back (read by Neg and an output: one copy), Neg's result to the device,
  // w back. E1 -> E2 stays on the device.
  EXPECT_EQ(convert::PlaceOnDevices(placed, kFake), 4);
  ir::Verify(placed);
  for (ir::NodeId id : placed.TopologicalOrder()) {
    const ir::Node& n = placed.node(id);
    const Device want = n.op == "Engine" ? kFake : Device{};
    if (n.op == "MemcpyFromHost" || n.op == "MemcpyToHost") continue;
    for (ir::ValueId in : n.inputs) EXPECT_EQ(placed.value(in).device, want) << n.name << " reads " << placed.value(in).name;
  }
  for (ir::ValueId out : placed.outputs()) EXPECT_EQ(placed.value(out).device, Device{});
  ir::Graph host = g->Clone();
  EXPECT_EQ(convert::PlaceOnDevices(host, Device{}), 0);
}

TEST(DevicePlacement, ConvertedGraphRunsAcrossDevices) {
  Counters counters;
  runtime::ConvertedGraph graph(ChainGraph(), std::make_shared<FakeBackend>(counters), runtime::EngineSettings{}, nullptr);
  Tensor x = Tensor::FromVector<float>(DType::kFloat32, {3}, {-1.0f, 0.5f, 2.0f});
  std::vector<Tensor> out = graph.Run({x});
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(out[0].is_host());
  ASSERT_TRUE(out[1].is_host());
  // y = relu(x) = [0, .5, 2]; z = 2y = [0, 1, 4]; w = (-z)^2 = [0, 1, 16]
  EXPECT_EQ(std::vector<float>(out[0].data<float>(), out[0].data<float>() + 3), (std::vector<float>{0, 1, 16}));
  EXPECT_EQ(std::vector<float>(out[1].data<float>(), out[1].data<float>() + 3), (std::vector<float>{0, 1, 4}));
  EXPECT_EQ(counters.to_device.load(), 2);  // x, Neg's output
  EXPECT_EQ(counters.to_host.load(), 2);    // z, w
  EXPECT_EQ(graph.stats().engine_runs, 3);
  EXPECT_EQ(graph.stats().native_runs, 0);
}

TEST(DevicePlacement, NativeNodesRefuseDeviceTensors) {
  // Without placement a native node would read device memory: the executor says so.
  auto g = ChainGraph();
  runtime::ReferenceExecutor executor(g);
  Counters counters;
  FakeServices services(counters);
  const runtime::NodeHook hook = [&](const ir::Node& node, std::span<const Tensor> in, std::vector<Tensor>& out) {
    if (node.op != "Engine") return false;
    out = {services.allocator().AllocateTensor(DType::kFloat32, in[0].shape())};
    return true;
  };
  const std::vector<Tensor> x = {Tensor::FromVector<float>(DType::kFloat32, {3}, {1, 2, 3})};
  ExpectError([&] { executor.Run(x, &hook); }, ErrorCode::kInternal, {"'neg' (Neg)", "cuda:3"});
}

TEST(DevicePlacement, EngineOutputsAreWrittenIntoCallerBuffers) {
  // The real CPU backend: an engine-produced graph output lands in the caller's buffer.
  auto g = std::make_shared<ir::Graph>();
  ir::ValueId x = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({ir::kUnknownDim}));
  ir::ValueId y = AddEngine(*g, "e1", "Relu", 1, x);
  g->AddOutput("y", y);
  g->AddOutput("x", x);  // a graph input as an output: copied, not computed in place
  std::shared_ptr<const backend::Backend> cpu = backend::MakeBackend("cpu");
  runtime::ConvertedGraph graph(g, cpu, runtime::EngineSettings{}, nullptr);
  Tensor in = Tensor::FromVector<float>(DType::kFloat32, {4}, {-1.0f, 2.0f, -3.0f, 4.0f});
  std::vector<std::shared_ptr<Buffer>> buffers = {AllocateHostBuffer(4 * sizeof(float)), AllocateHostBuffer(16)};
  std::vector<Tensor> out = graph.Run({in}, buffers);
  EXPECT_EQ(out[0].raw_data(), buffers[0]->data()) << "engine output not computed in place";
  EXPECT_EQ(std::vector<float>(out[0].data<float>(), out[0].data<float>() + 4), (std::vector<float>{0, 2, 0, 4}));
  EXPECT_NE(out[1].raw_data(), buffers[1]->data());
  EXPECT_EQ(graph.stats().engine_runs, 1);
  // Too small a buffer: the output is computed in fresh memory instead.
  std::vector<std::shared_ptr<Buffer>> small = {AllocateHostBuffer(8)};
  std::vector<Tensor> again = graph.Run({in}, small);
  EXPECT_NE(again[0].raw_data(), small[0]->data());
  EXPECT_EQ(again[0].data<float>()[3], 4.0f);
}

}  // namespace
}  // namespace kiln
