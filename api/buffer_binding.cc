// Signature::RunWithBuffers: runs a signature on caller-owned memory. Inputs are wrapped in
// non-owning host buffers (no copy); outputs are copied into the caller's memory.
#include <cstdint>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "kiln/model.h"

namespace kiln {
namespace {

// Host memory the caller owns; the Tensor that wraps it never frees it.
class BorrowedBuffer final : public Buffer {
 public:
  BorrowedBuffer(void* data, size_t size) : data_(data), size_(size) {}
  void* data() override { return data_; }
  size_t size() const override { return size_; }
  Device device() const override { return {}; }

 private:
  void* data_;
  size_t size_;
};

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
  if (b.device.kind == DeviceKind::kCuda)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("RunWithBuffers on signature '{}': {} binding '{}' is on device {}: CUDA buffers need the CUDA "
                            "backend, which this build of Kiln does not have yet; pass host memory",
                            key, kind, b.name, b.device.ToString()));
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

}  // namespace

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
    // The executor and kernels only read their inputs, so the caller's memory is used in place.
    tensors[b.name] = Tensor(b.dtype, b.shape, std::make_shared<BorrowedBuffer>(b.data, b.size_bytes));
  }
  for (const TensorSpec& spec : this->inputs())
    if (!seen_inputs.count(spec.name))
      Invalid(sig_key, "input", spec.name, fmt::format("missing: every input must be bound (inputs: {})", Names(this->inputs())));
  for (const BufferBinding& b : outputs) CheckBinding(sig_key, "output", b, this->outputs(), seen_outputs);

  std::map<std::string, Tensor> results = Run(tensors);  // checks input shapes against the signature

  // Every output must fit before any is written.
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
    if (!t.is_host())
      throw Error(ErrorCode::kInternal, fmt::format("RunWithBuffers: output '{}' is not a host tensor", b.name));
    if (t.byte_size() > 0) std::memmove(b.data, t.raw_data(), t.byte_size());  // may alias an input buffer
  }
}

}  // namespace kiln
