// Signature::RunWithBuffers: runs a signature on caller-owned memory, on the host or on a device.
// Inputs are wrapped in non-owning buffers (no copy) where the signature reads them on their
// device; outputs are computed in the caller's memory where the signature can (engine outputs
// on the binding's device), else copied there once.
#include <cstdint>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "backend/backend.h"
#include "kiln/device.h"
#include "kiln/model.h"

#include "common/cancellation.h"

namespace kiln {
namespace {

// Memory the caller owns, on the host or a device; the Tensor that wraps it never frees it.
class BorrowedBuffer final : public Buffer {
 public:
  BorrowedBuffer(void* data, size_t size, Device device) : data_(data), size_(size), device_(device) {}
  void* data() override { return data_; }
  size_t size() const override { return size_; }
  Device device() const override { return device_; }

 private:
  void* data_;
  size_t size_;
  Device device_;
};

// Copies `src` into `dst` (either may be on a device) and waits for the copy.
void CopyAndWait(const Tensor& src, Tensor& dst) {
  const Device side = src.is_host() ? dst.device() : src.device();
  const backend::DeviceServices& services = backend::ServicesOf(side);
  std::unique_ptr<backend::Stream> stream = services.CreateStream();
  services.transfer().CopyTensor(src, dst, *stream);
  stream->Synchronize();
}

[[noreturn]] void Invalid(const std::string& key, const char* kind, const std::string& name, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("RunWithBuffers on signature '{}': {} binding '{}': {}", key, kind, name, what));
}

const TensorSpec* FindSpec(const std::vector<TensorSpec>& specs, const std::string& name) {
  for (const TensorSpec& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

std::string Names(const std::vector<TensorSpec>& specs) {
  std::vector<std::string> names;
  for (const TensorSpec& s : specs) names.push_back(s.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

// The checks common to inputs and outputs: known name, bound once, dtype, device, data pointer.
const TensorSpec& CheckBinding(const std::string& key, const char* kind, const BufferBinding& b,
                               const std::vector<TensorSpec>& specs, std::set<std::string>& seen) {
  const TensorSpec* spec = FindSpec(specs, b.name);
  if (!spec) Invalid(key, kind, b.name, fmt::format("the signature has no {} of that name (its {}s: {})", kind, kind, Names(specs)));
  if (!seen.insert(b.name).second) Invalid(key, kind, b.name, "bound more than once");
  if (b.device.kind != DeviceKind::kCpu) {
    try {
      backend::ServicesOf(b.device);
    } catch (const Error& e) {
      throw Error(e.code(), fmt::format("RunWithBuffers on signature '{}': {} binding '{}' is on {}: {}", key, kind, b.name,
                                        b.device.ToString(), e.what()));
    }
  }
  if (b.dtype != spec->dtype)
    Invalid(key, kind, b.name, fmt::format("dtype {} given, the signature's {} has dtype {}", DTypeName(b.dtype), kind,
                                           DTypeName(spec->dtype)));
  if (b.dtype == DType::kString || DTypeSize(b.dtype) == 0)
    throw Error(ErrorCode::kUnimplemented, fmt::format("RunWithBuffers on signature '{}': {} binding '{}': dtype {} cannot be "
                                                       "bound to a raw buffer; use Signature::Run",
                                                       key, kind, b.name, DTypeName(b.dtype)));
  if (b.data == nullptr) Invalid(key, kind, b.name, "data is null");
  const size_t align = DTypeSize(b.dtype);
  if (reinterpret_cast<uintptr_t>(b.data) % align != 0)
    Invalid(key, kind, b.name, fmt::format("data {} is not aligned to the {}-byte element size of {}", b.data, align,
                                           DTypeName(b.dtype)));
  return *spec;
}

// Engines write outputs while reading inputs, so no output may share memory with an input or
// another output.
void CheckNoOverlap(const std::string& key, std::span<const BufferBinding> inputs, std::span<const BufferBinding> outputs) {
  auto overlap = [](const BufferBinding& a, const BufferBinding& b) {
    const auto a0 = reinterpret_cast<uintptr_t>(a.data), b0 = reinterpret_cast<uintptr_t>(b.data);
    return a.size_bytes > 0 && b.size_bytes > 0 && a0 < b0 + b.size_bytes && b0 < a0 + a.size_bytes;
  };
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (const BufferBinding& in : inputs)
      if (overlap(outputs[i], in))
        Invalid(key, "output", outputs[i].name, fmt::format("its memory overlaps input '{}'; outputs need memory of their own", in.name));
    for (size_t j = 0; j < i; ++j)
      if (overlap(outputs[i], outputs[j]))
        Invalid(key, "output", outputs[i].name, fmt::format("its memory overlaps output '{}'", outputs[j].name));
  }
}

}  // namespace

std::map<std::string, Tensor> Signature::Run(const std::map<std::string, Tensor>& inputs,
                                             const RunOptions& options) const {
  CancellationScope scope(options.cancel);
  const Device device = input_device();
  if (!options.outputs_on_device || device.kind == DeviceKind::kCpu) return Run(inputs);
  // Empty buffers on the device: each output is placed there, in memory of its own.
  std::map<std::string, std::shared_ptr<Buffer>> on_device;
  for (const TensorSpec& spec : outputs()) on_device[spec.name] = std::make_shared<BorrowedBuffer>(nullptr, 0, device);
  return RunInto(inputs, on_device);
}

void Signature::RunWithBuffers(std::span<const BufferBinding> inputs, std::span<BufferBinding> outputs,
                               const RunOptions& options) const {
  CancellationScope scope(options.cancel);
  RunWithBuffers(inputs, outputs);
}

void Signature::RunWithBuffers(std::span<const BufferBinding> inputs, std::span<BufferBinding> outputs) const {
  const std::string& sig_key = key();
  std::set<std::string> seen_inputs, seen_outputs;
  std::map<std::string, Tensor> tensors;
  for (const BufferBinding& b : inputs) {
    CheckBinding(sig_key, "input", b, this->inputs(), seen_inputs);
    for (int64_t d : b.shape)
      if (d < 0) Invalid(sig_key, "input", b.name, fmt::format("shape {} has a negative dim", ShapeToString(b.shape)));
    const size_t needed = static_cast<size_t>(NumElements(b.shape)) * DTypeSize(b.dtype);
    if (b.size_bytes < needed)
      Invalid(sig_key, "input", b.name, fmt::format("size_bytes is {}, but shape {} of {} needs {} bytes", b.size_bytes,
                                                    ShapeToString(b.shape), DTypeName(b.dtype), needed));
    // The executor and kernels only read their inputs, so the caller's memory is used in place
    // where the signature reads inputs on its device; device memory elsewhere is copied to the host.
    Tensor t(b.dtype, b.shape, std::make_shared<BorrowedBuffer>(b.data, b.size_bytes, b.device));
    if (b.device.kind != DeviceKind::kCpu && b.device != input_device()) t = CopyTensorTo(t, Device{});
    tensors[b.name] = std::move(t);
  }
  for (const TensorSpec& spec : this->inputs())
    if (!seen_inputs.count(spec.name))
      Invalid(sig_key, "input", spec.name, fmt::format("missing: every input must be bound (inputs: {})", Names(this->inputs())));
  std::map<std::string, std::shared_ptr<Buffer>> output_buffers;
  for (const BufferBinding& b : outputs) {
    CheckBinding(sig_key, "output", b, this->outputs(), seen_outputs);
    output_buffers[b.name] = std::make_shared<BorrowedBuffer>(b.data, b.size_bytes, b.device);
  }
  CheckNoOverlap(sig_key, inputs, outputs);

  std::map<std::string, Tensor> results = RunInto(tensors, output_buffers);  // checks input shapes against the signature

  for (BufferBinding& b : outputs) {
    const Tensor& t = results.at(b.name);
    b.shape = t.shape();
    if (t.byte_size() > b.size_bytes)
      Invalid(sig_key, "output", b.name, fmt::format("size_bytes is {}, but the output has shape {} of {} and needs {} bytes",
                                                     b.size_bytes, ShapeToString(t.shape()), DTypeName(t.dtype()),
                                                     t.byte_size()));
  }
  for (BufferBinding& b : outputs) {
    const Tensor& t = results.at(b.name);
    if (t.byte_size() == 0 || (t.raw_data() == b.data && t.device() == b.device)) continue;
    if (t.is_host() && b.device.kind == DeviceKind::kCpu) {
      std::memcpy(b.data, t.raw_data(), t.byte_size());
    } else {
      Tensor dst(t.dtype(), t.shape(), std::make_shared<BorrowedBuffer>(b.data, b.size_bytes, b.device));
      CopyAndWait(t, dst);
    }
  }
}

}  // namespace kiln
