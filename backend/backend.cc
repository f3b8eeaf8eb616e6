// The backend registry and Engine::Execute.
#include "backend/backend.h"

#include <map>
#include <mutex>

#include <fmt/format.h>

namespace kiln::backend {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, BackendFactory, std::less<>> factories;
  std::map<DeviceKind, DeviceServicesLookup> services;
};

Registry& TheRegistry() {
  static Registry registry;
  return registry;
}

}  // namespace

std::vector<Tensor> Engine::Execute(std::span<const Tensor> inputs, const DeviceServices& services) const {
  if (services.device() != device())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("Engine::Execute: the engine runs on {}, the services are {}'s",
                                                         device().ToString(), services.device().ToString()));
  std::vector<Shape> shapes;
  shapes.reserve(inputs.size());
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  const std::vector<Shape> out_shapes = OutputShapes(shapes);
  const std::vector<DType> dtypes = output_dtypes();
  std::vector<Tensor> outputs;
  outputs.reserve(out_shapes.size());
  for (size_t i = 0; i < out_shapes.size(); ++i) outputs.push_back(services.allocator().AllocateTensor(dtypes.at(i), out_shapes[i]));
  std::unique_ptr<Stream> stream = services.CreateStream();
  Enqueue(inputs, outputs, *stream);
  stream->Synchronize();
  return outputs;
}

void RegisterBackend(std::string name, BackendFactory factory) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories.emplace(std::move(name), std::move(factory));
}

std::vector<std::string> BackendNames() {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

std::unique_ptr<Backend> MakeBackend(std::string_view device) {
  Registry& r = TheRegistry();
  BackendFactory factory;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(device);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("unknown engine device '{}' (this build of Kiln has: {})", device, fmt::join(BackendNames(), ", ")));
  return factory();
}

void RegisterDeviceServices(DeviceKind kind, DeviceServicesLookup lookup) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.services[kind] = std::move(lookup);
}

const DeviceServices& ServicesOf(Device device) {
  if (device.kind == DeviceKind::kCpu) return HostServices();
  Registry& r = TheRegistry();
  DeviceServicesLookup lookup;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.services.find(device.kind);
    if (it != r.services.end()) lookup = it->second;
  }
  if (!lookup)
    throw Error(ErrorCode::kUnavailable,
                fmt::format("device {} was named but this build of Kiln has no backend for it (backends: {})",
                            device.ToString(), fmt::join(BackendNames(), ", ")));
  return lookup(device.index);
}

}  // namespace kiln::backend
