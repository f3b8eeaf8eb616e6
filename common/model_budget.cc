#include "common/model_budget.h"

#include <fmt/format.h>

#include <algorithm>

#include "kiln/error.h"
#include "kiln/tensor.h"

namespace kiln {
namespace {

thread_local ModelReadScope* t_outermost = nullptr;

}  // namespace

ModelReadScope::ModelReadScope(std::string_view model) : model_(model) {
  if (!t_outermost) t_outermost = this;
}

ModelReadScope::~ModelReadScope() {
  if (t_outermost == this) t_outermost = nullptr;
}

void ChargeModelBytes(uint64_t bytes, std::string_view what) {
  ModelReadScope* scope = t_outermost;
  if (!scope) return;
  const uint64_t limit = MaxModelBytes();
  if (bytes > limit || scope->bytes_ > limit - bytes)
    throw Error(ErrorCode::kResourceExhausted,
                fmt::format("{} needs {} bytes, which would bring the tensor data read from model '{}' to {} "
                            "bytes, more than one model may take ({} bytes; kiln::MaxModelBytes: three quarters of "
                            "physical memory unless set, KILN_MAX_MODEL_BYTES for the kiln CLI)",
                            what, bytes, scope->model_,
                            scope->bytes_ > UINT64_MAX - bytes ? UINT64_MAX : scope->bytes_ + bytes, limit));
  scope->bytes_ += bytes;
}

void ChargeModelTensor(DType dtype, const Shape& shape, std::string_view what) {
  const uint64_t elements = static_cast<uint64_t>(NumElements(shape));  // checked: never wraps
  const uint64_t width = std::max<uint64_t>(DTypeSize(dtype), 1);
  ChargeModelBytes(elements > UINT64_MAX / width ? UINT64_MAX : elements * width, what);
}

}  // namespace kiln
