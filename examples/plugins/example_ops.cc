// An example Kiln plugin (include/kiln/custom_op.h): two ops Kiln does not have built in.
//   - TensorFlow's BesselJ0 (the Bessel function of the first kind of order 0, elementwise,
//     float32 / float64; J0 is even, and std::cyl_bessel_j takes x >= 0);
//   - ONNX com.example::ScaledSwish(x) = x * sigmoid(alpha * x) * scale, attrs alpha (float,
//     default 1) and scale (float, default 1), float32.
// Build: g++ -std=c++20 -O2 -shared -fPIC -I<kiln>/include example_ops.cc -o libkiln_example_ops.so
// Use:   kiln --plugin ./libkiln_example_ops.so run model.onnx   (or kiln.load_plugin(...) in Python)
#include <cmath>
#include <stdexcept>
#include <string>

#include "kiln/custom_op.h"

namespace {

using kiln::CustomAttrs;
using kiln::CustomOp;
using kiln::CustomTensorInfo;
using kiln::CustomTensorView;
using kiln::DType;

double FloatAttr(const CustomAttrs& attrs, const std::string& name, double fallback) {
  auto it = attrs.find(name);
  if (it == attrs.end()) return fallback;
  if (const double* v = std::get_if<double>(&it->second)) return *v;
  throw std::invalid_argument("attribute '" + name + "' must be a float");
}

// Elementwise ops: one input, the output as the input.
std::vector<CustomTensorInfo> SameAsInput(const std::vector<CustomTensorInfo>& in, DType a, DType b) {
  if (in.size() != 1) throw std::invalid_argument("expected one input");
  if (in[0].dtype != a && in[0].dtype != b) throw std::invalid_argument("unsupported input dtype");
  return in;
}

size_t Count(const CustomTensorView& t) {
  size_t n = 1;
  for (int64_t d : t.dims) n *= static_cast<size_t>(d);
  return n;
}

template <typename T, typename F>
void Map(const CustomTensorView& in, CustomTensorView& out, F f) {
  const T* x = static_cast<const T*>(in.data);
  T* y = static_cast<T*>(out.data);
  for (size_t i = 0, n = Count(in); i < n; ++i) y[i] = f(x[i]);
}

CustomOp BesselJ0() {
  CustomOp op;
  op.framework = CustomOp::Framework::kTensorFlow;
  op.op_type = "BesselJ0";
  op.infer = [](const std::vector<CustomTensorInfo>& in, const CustomAttrs&) {
    return SameAsInput(in, DType::kFloat32, DType::kFloat64);
  };
  op.compute = [](const std::vector<CustomTensorView>& in, std::vector<CustomTensorView>& out, const CustomAttrs&) {
    if (in[0].dtype == DType::kFloat32)
      Map<float>(in[0], out[0],
                 [](float v) { return static_cast<float>(std::cyl_bessel_j(0.0, std::abs(static_cast<double>(v)))); });
    else
      Map<double>(in[0], out[0], [](double v) { return std::cyl_bessel_j(0.0, std::abs(v)); });
  };
  return op;
}

CustomOp ScaledSwish() {
  CustomOp op;
  op.framework = CustomOp::Framework::kOnnx;
  op.domain = "com.example";
  op.op_type = "ScaledSwish";
  op.infer = [](const std::vector<CustomTensorInfo>& in, const CustomAttrs&) {
    return SameAsInput(in, DType::kFloat32, DType::kFloat32);
  };
  op.compute = [](const std::vector<CustomTensorView>& in, std::vector<CustomTensorView>& out,
                  const CustomAttrs& attrs) {
    const double alpha = FloatAttr(attrs, "alpha", 1.0), scale = FloatAttr(attrs, "scale", 1.0);
    Map<float>(in[0], out[0], [&](float v) { return static_cast<float>(v / (1.0 + std::exp(-alpha * v)) * scale); });
  };
  return op;
}

}  // namespace

extern "C" int kiln_plugin_init(int api_version, kiln::RegisterCustomOpFn register_op) {
  if (api_version != kiln::kCustomOpApiVersion) return 1;
  register_op(BesselJ0());
  register_op(ScaledSwish());
  return 0;
}
