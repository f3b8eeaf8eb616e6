// Custom ops: ops Kiln does not import, supplied by the user, as TensorRT's plugins are. A custom op
// names a TensorFlow op type, or an ONNX (domain, op_type); it says what its outputs are from its
// inputs (a shape function) and computes them on the host (a kernel). Models that use it then load
// and convert: the op runs on the host between engines, every other op as usual.
//
// A plugin is a shared library with one entry point (examples/plugins/ has a complete one):
//
//   extern "C" int kiln_plugin_init(int api_version, kiln::RegisterCustomOpFn register_op) {
//     if (api_version != kiln::kCustomOpApiVersion) return 1;
//     kiln::CustomOp op;
//     op.framework = kiln::CustomOp::Framework::kOnnx;
//     op.domain = "com.example";
//     op.op_type = "Swish";
//     op.infer = [](const std::vector<kiln::CustomTensorInfo>& in, const kiln::CustomAttrs&) { return in; };
//     op.compute = [](const std::vector<kiln::CustomTensorView>& in, std::vector<kiln::CustomTensorView>& out,
//                     const kiln::CustomAttrs&) { ... };
//     register_op(op);
//     return 0;
//   }
//
// loaded with `kiln --plugin libmy_ops.so run model.onnx`, kiln::LoadPlugin or kiln.load_plugin.
// This header needs nothing else from Kiln, so a plugin links nothing of Kiln's; it must be built
// with the same C++ compiler and standard library as Kiln (std::function and std::vector cross the
// boundary). A plugin stays loaded for the life of the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "kiln/dtype.h"

namespace kiln {

inline constexpr int kCustomOpApiVersion = 1;

// An input or output as the shape function sees it: dims of -1 are unknown (at conversion time);
// at run time every input dim is known and the outputs must be fully known.
struct CustomTensorInfo {
  DType dtype = DType::kInvalid;
  std::vector<int64_t> dims;
  bool rank_known = true;
};

// A tensor the kernel reads (inputs) or writes (outputs, allocated by Kiln from the shape
// function's answer for these inputs, zero-filled): C order, host memory.
struct CustomTensorView {
  DType dtype = DType::kInvalid;
  std::vector<int64_t> dims;
  void* data = nullptr;
  size_t size_bytes = 0;
};

// A constant tensor attribute (TensorFlow `tensor` attrs, ONNX TENSOR attributes): raw C-order bytes.
struct CustomTensorAttr {
  DType dtype = DType::kInvalid;
  std::vector<int64_t> dims;
  std::string bytes;
};

// The node's attributes. TensorFlow: int, float, bool, string, type (int64_t: TensorFlow's
// DataType number, which kiln::DType's values equal), shape (dims, -1 unknown), list(...),
// tensor. ONNX: INT, FLOAT, STRING, INTS, FLOATS, STRINGS, TENSOR.
using CustomAttrValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>,
                                     std::vector<std::string>, CustomTensorAttr>;
using CustomAttrs = std::map<std::string, CustomAttrValue>;

struct CustomOp {
  enum class Framework { kTensorFlow, kOnnx };
  Framework framework = Framework::kOnnx;
  std::string domain;   // ONNX: the node's domain ("" or "ai.onnx" for the default one); TensorFlow: unused
  std::string op_type;  // the TensorFlow op name or ONNX op_type
  int min_inputs = 1;
  int max_inputs = 1;   // -1: any number
  int num_outputs = 1;  // TensorFlow: the op's output count; ONNX: the most outputs a node may have
  // Outputs from inputs (called at import with what is known, and at each run with the actual
  // input shapes). Throw std::exception (its what() is reported with the node) for inputs the op
  // does not accept.
  std::function<std::vector<CustomTensorInfo>(const std::vector<CustomTensorInfo>& inputs, const CustomAttrs& attrs)>
      infer;
  // Fills `outputs` (allocated as `infer` described them) from `inputs`. May run on several threads
  // at once (for different calls). Throw std::exception to fail the run.
  std::function<void(const std::vector<CustomTensorView>& inputs, std::vector<CustomTensorView>& outputs,
                     const CustomAttrs& attrs)>
      compute;
};

using RegisterCustomOpFn = void (*)(const CustomOp& op);

// Registers a custom op for the process (models imported afterwards use it). kInvalidArgument when
// the op lacks an op_type, infer or compute, has bad counts, or is already registered.
void RegisterCustomOp(const CustomOp& op);
// Opens a plugin (dlopen) and runs its kiln_plugin_init. kNotFound for a missing file;
// kInvalidArgument naming the library for no entry point, another API version, or a failed init.
void LoadPlugin(const std::string& path);
// "tf:Op" / "onnx:domain:Op" of every registered custom op.
std::vector<std::string> CustomOpNames();

}  // namespace kiln
