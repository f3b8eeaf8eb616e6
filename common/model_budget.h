// The tensor bytes one read of a model asks for, counted where readers make tensors from file
// data: weights, constants (a constant whose file stores one value for many elements counts at its
// full size), variables, external data and the constants of converted models. A file of a few
// bytes cannot make Kiln allocate more than kiln::MaxModelBytes() in all: the read fails with
// kResourceExhausted, naming the tensor that would pass the limit, before that tensor is allocated.
// Readers are single-threaded, so the count is per thread; a scope opened inside another adds to
// the outer one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/dtype.h"
#include "kiln/tensor.h"

namespace kiln {

class ModelReadScope {
 public:
  // `model` names the model in messages (its path).
  explicit ModelReadScope(std::string_view model);
  ~ModelReadScope();
  ModelReadScope(const ModelReadScope&) = delete;
  ModelReadScope& operator=(const ModelReadScope&) = delete;

 private:
  std::string model_;
  uint64_t bytes_ = 0;
  friend void ChargeModelBytes(uint64_t bytes, std::string_view what);
};

// Adds `bytes` for the tensor `what` to the calling thread's outermost scope; nothing outside a
// scope (the per-tensor limit, kiln::MaxTensorBytes, still applies).
void ChargeModelBytes(uint64_t bytes, std::string_view what);
// ChargeModelBytes for a tensor of `dtype` and `shape` (its element count times the dtype's size).
void ChargeModelTensor(DType dtype, const Shape& shape, std::string_view what);

}  // namespace kiln
