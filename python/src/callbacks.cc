#include "python/src/callbacks.h"

#include <fmt/format.h>

#include "python/src/tensors.h"

namespace kiln::python {

void CallbackErrors::KeepCurrent() {
  std::lock_guard lock(mutex_);
  if (!first_) first_ = std::current_exception();
}

void CallbackErrors::RaiseIfAny() {
  std::exception_ptr error;
  {
    std::lock_guard lock(mutex_);
    error = std::exchange(first_, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

std::function<void(const std::string&)> LogCallback(nb::handle callable, CallbackErrors& errors) {
  if (callable.is_none()) return nullptr;
  return [callable, &errors](const std::string& line) {
    nb::gil_scoped_acquire gil;
    try {
      callable(line);
    } catch (nb::python_error&) {
      errors.KeepCurrent();
      throw Error(ErrorCode::kCancelled, "the Python log callback raised an exception");
    }
  };
}

InputFn InputCallback(nb::handle next_inputs, CallbackErrors& errors) {
  return [next_inputs, &errors]() -> std::optional<std::vector<Tensor>> {
    nb::gil_scoped_acquire gil;
    try {
      nb::object result = next_inputs();
      if (result.is_none()) return std::nullopt;
      std::vector<Tensor> tensors;
      size_t i = 0;
      for (nb::handle item : result) tensors.push_back(TensorFromObject(item, fmt::format("#{}", i++)));
      return tensors;
    } catch (nb::python_error&) {
      errors.KeepCurrent();
      throw Error(ErrorCode::kCancelled, "the Python input generator raised an exception");
    }
  };
}

}  // namespace kiln::python
