// Tensors between Python and Kiln: arrays that come in through DLPack or numpy's buffer (any
// framework's CPU or CUDA tensors) are wrapped without a copy; Kiln's results go out as numpy arrays
// (host) or DLPack-capable arrays (device) that own the Kiln buffer.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "kiln/tensor.h"

namespace kiln::python {

namespace nb = nanobind;

// A C-contiguous array of any dtype and device, never written by Kiln.
using InputArray = nb::ndarray<nb::ro>;

// Wraps `array` (which the tensor keeps alive) as a tensor named `name` in messages. With
// `bfloat16`, a 2-byte unsigned array is read as bfloat16 (numpy has no bfloat16 of its own; the
// Python layer passes ml_dtypes' bfloat16 arrays this way). kInvalidArgument for non-contiguous
// arrays, vector dtypes and dtypes Kiln has no name for; kUnavailable for devices other than the
// host and CUDA.
Tensor TensorFromArray(const InputArray& array, const std::string& name, bool bfloat16 = false);

// A DT_STRING tensor of `shape` from a sequence of bytes objects (C order).
Tensor StringTensor(const std::vector<int64_t>& shape, nb::handle items, const std::string& name);

// Converts what the Python layer passes for one input: an array, or a (shape, [bytes...]) tuple
// for strings, or a ("bfloat16", array) tuple.
Tensor TensorFromObject(nb::handle object, const std::string& name);

// A host tensor as a numpy array sharing its buffer (bfloat16 comes out as uint16 for the Python
// layer to view as ml_dtypes.bfloat16), a device tensor as a DLPack-capable array on its device, a
// DT_STRING tensor as (shape, [bytes...]).
nb::object ObjectFromTensor(const Tensor& tensor);

// The address of the first element Kiln reads from `array` (tests check that inputs are not copied).
uintptr_t DataAddress(const InputArray& array);

}  // namespace kiln::python
