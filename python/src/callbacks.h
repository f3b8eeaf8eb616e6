// Python callables that Kiln's C++ code calls back (input generators, log functions) while the
// calling thread has released the GIL. An exception a callback raises stops the C++ call (as a
// kiln::Error) and is raised again, as it was, when the call returns to Python.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kiln/converter.h"

namespace kiln::python {

namespace nb = nanobind;

// Collects the first exception raised by any callback during one C++ call.
class CallbackErrors {
 public:
  // Called in a catch block with the GIL held: keeps the current exception.
  void KeepCurrent();
  // After the C++ call, with the GIL held: raises the kept Python exception, if any.
  void RaiseIfAny();

 private:
  std::mutex mutex_;
  std::exception_ptr first_;
};

// A log function calling `callable(line)` (borrowed: the caller keeps it alive during the call);
// null when `callable` is None.
std::function<void(const std::string&)> LogCallback(nb::handle callable, CallbackErrors& errors);

// An InputFn calling `next_inputs()` (borrowed): None ends the stream, else a list of inputs in
// signature order, each as TensorFromObject takes it.
InputFn InputCallback(nb::handle next_inputs, CallbackErrors& errors);

}  // namespace kiln::python
