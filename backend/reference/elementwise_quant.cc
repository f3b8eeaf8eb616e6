// Simulated quantization reference kernels: QuantizeAndDequantize (TF QuantizeAndDequantizeV2/V3/V4)
// and FakeQuant (TF FakeQuantWithMinMaxArgs/Vars/VarsPerChannel), following TensorFlow's
// quantize_and_dequantize_op.h and fake_quant_ops_functor.h arithmetic step by step.
#include <cmath>

#include "backend/reference/elementwise_common.h"

namespace kiln::reference::elementwise {
namespace {

template <typename T>
double MaxOf() {
  if constexpr (std::is_same_v<T, Half>) return 65504.0;
  else if constexpr (std::is_same_v<T, BFloat16>) return 3.3895313892515355e38;
  else return static_cast<double>(std::numeric_limits<T>::max());
}

// ---- QuantizeAndDequantize ----
// inputs: x, input_min, input_max (scalars, or [depth] vectors when axis >= 0)
// attrs: signed_input (true), num_bits (8), range_given (false), round_mode ("HALF_TO_EVEN"),
//        narrow_range (false), axis (-1)
void QuantizeAndDequantizeKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& min_t = ctx.input(1);
  const Tensor& max_t = ctx.input(2);
  const auto& attrs = ctx.attrs();
  const bool signed_input = attrs.GetOr<bool>("signed_input", true);
  const int64_t num_bits = attrs.GetOr<int64_t>("num_bits", 8);
  const bool range_given = attrs.GetOr<bool>("range_given", false);
  const bool half_up = attrs.GetOr<std::string>("round_mode", "HALF_TO_EVEN") == "HALF_UP";
  const bool narrow_range = attrs.GetOr<bool>("narrow_range", false);
  const int64_t axis = attrs.GetOr<int64_t>("axis", -1);
  if (num_bits <= 0 || num_bits >= (signed_input ? 62 : 63))
    ctx.Fail(fmt::format("num_bits is out of range: {} with signed_input {}", num_bits, signed_input));
  if (axis < -1 || (axis >= 0 && axis >= x.rank()))
    ctx.Fail(fmt::format("axis {} is out of range for an input of rank {}", axis, x.rank()));
  if (min_t.dtype() != x.dtype() || max_t.dtype() != x.dtype())
    ctx.Fail(fmt::format("input_min/input_max must have the input's dtype {}, got {} and {}", DTypeName(x.dtype()),
                         DTypeName(min_t.dtype()), DTypeName(max_t.dtype())));
  const int64_t depth = axis == -1 ? 1 : x.dim(static_cast<int>(axis));
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x.rank(); ++d) {
    if (axis >= 0 && d < axis) outer *= x.dim(d);
    if (axis >= 0 && d > axis) inner *= x.dim(d);
  }
  if (axis == -1) inner = x.num_elements();

  DispatchMask<kFloat>(x.dtype(), ctx.node().op, [&]<typename T>() {
    using C = ComputeT<T>;
    const T* in = x.data<T>();
    std::vector<C> min_range(static_cast<size_t>(depth)), max_range(static_cast<size_t>(depth));
    if (range_given) {
      if (min_t.num_elements() != depth || max_t.num_elements() != depth ||
          (axis == -1 && (min_t.rank() != 0 || max_t.rank() != 0)))
        ctx.Fail(fmt::format("input_min and input_max must have {} element(s), got shapes {} and {}", depth,
                             ShapeToString(min_t.shape()), ShapeToString(max_t.shape())));
      for (int64_t c = 0; c < depth; ++c) {
        min_range[static_cast<size_t>(c)] = Load(min_t.data<T>()[c]);
        max_range[static_cast<size_t>(c)] = Load(max_t.data<T>()[c]);
      }
      if (axis == -1 && min_range[0] > max_range[0])
        ctx.Fail(fmt::format("Invalid range: input_min {} > input_max {}", min_range[0], max_range[0]));
    } else {
      for (int64_t c = 0; c < depth; ++c) {
        C lo = std::numeric_limits<C>::infinity(), hi = -std::numeric_limits<C>::infinity();
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            const C v = Load(in[(o * depth + c) * inner + i]);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
          }
        min_range[static_cast<size_t>(c)] = lo;
        max_range[static_cast<size_t>(c)] = hi;
      }
    }
    const int64_t min_q = signed_input ? (narrow_range ? -(int64_t{1} << (num_bits - 1)) + 1 : -(int64_t{1} << (num_bits - 1))) : 0;
    const int64_t max_q = signed_input ? (int64_t{1} << (num_bits - 1)) - 1 : (int64_t{1} << num_bits) - 1;
    const C min_qc = static_cast<C>(min_q), max_qc = static_cast<C>(max_q);
    T* out = ctx.AllocateOutput(0, x.dtype(), x.shape()).template data<T>();
    for (int64_t c = 0; c < depth; ++c) {
      C lo = min_range[static_cast<size_t>(c)], hi = max_range[static_cast<size_t>(c)];
      // Largest scale mapping [lo, hi] into [min_q, max_q] while keeping 0 exact.
      const C from_min = min_qc * lo > C(0) ? min_qc / lo : static_cast<C>(MaxOf<T>());
      const C from_max = max_qc * hi > C(0) ? max_qc / hi : static_cast<C>(MaxOf<T>());
      C scale, inverse_scale;
      if (from_min < from_max) {
        scale = from_min;
        inverse_scale = lo / min_qc;
        hi = max_qc * inverse_scale;
      } else {
        scale = from_max;
        inverse_scale = hi / max_qc;
        lo = min_qc * inverse_scale;
      }
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t idx = (o * depth + c) * inner + i;
          C v = Load(in[idx]);
          if (range_given) {
            v = hi < v ? hi : v;  // cwiseMin(max_range)
            v = v < lo ? lo : v;  // cwiseMax(min_range)
          }
          v = v * scale;
          v = half_up ? std::floor(v + C(0.5)) : std::nearbyint(v);
          out[idx] = Store<T>(v * inverse_scale);
        }
    }
  });
}
KILN_REFERENCE_KERNEL("QuantizeAndDequantize", QuantizeAndDequantizeKernel);

// ---- FakeQuant ----
// inputs: x (float32), min, max (float32 scalars, or [d] vectors for the last dimension)
// attrs: num_bits (8), narrow_range (false), divide_by_scale (false: multiply by the inverse
//        scale like FakeQuantWithMinMaxArgs/VarsPerChannel; true: divide by the scale like
//        FakeQuantWithMinMaxVars)
struct Nudged {
  bool zero = false;  // min == max == 0: the output is 0
  float min = 0, max = 0, scale = 0, inv_scale = 0, quant_zero = 0;
};

Nudged Nudge(float min, float max, int quant_min, int quant_max) {
  Nudged n;
  if (min == 0.0f && max == 0.0f) {
    n.zero = true;
    return n;
  }
  const float qmin = static_cast<float>(quant_min);
  const float qmax = static_cast<float>(quant_max);
  n.scale = (max - min) / (qmax - qmin);
  n.inv_scale = (qmax - qmin) / (max - min);
  const float zero_point_from_min = qmin - min / n.scale;
  uint16_t nudged_zero_point;
  if (zero_point_from_min < qmin) nudged_zero_point = static_cast<uint16_t>(quant_min);
  else if (zero_point_from_min > qmax) nudged_zero_point = static_cast<uint16_t>(quant_max);
  else nudged_zero_point = static_cast<uint16_t>(std::round(zero_point_from_min));
  n.min = (qmin - nudged_zero_point) * n.scale;
  n.max = (qmax - nudged_zero_point) * n.scale;
  n.quant_zero = std::floor(-n.min * n.inv_scale + 0.5f);
  return n;
}

void FakeQuantKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& min_t = ctx.input(1);
  const Tensor& max_t = ctx.input(2);
  for (int i = 0; i < 3; ++i)
    if (ctx.input(i).dtype() != DType::kFloat32)
      ctx.Fail(fmt::format("input {} must be float32, got {}", i, DTypeName(ctx.input(i).dtype())));
  const int64_t num_bits = ctx.attrs().GetOr<int64_t>("num_bits", 8);
  const bool narrow_range = ctx.attrs().GetOr<bool>("narrow_range", false);
  const bool divide = ctx.attrs().GetOr<bool>("divide_by_scale", false);
  if (num_bits < 2 || num_bits > 16) ctx.Fail(fmt::format("num_bits must be between 2 and 16, inclusive, got {}", num_bits));
  const int quant_min = narrow_range ? 1 : 0;
  const int quant_max = (1 << num_bits) - 1;
  if (min_t.rank() != max_t.rank() || min_t.rank() > 1 || min_t.num_elements() != max_t.num_elements())
    ctx.Fail(fmt::format("min and max must be scalars or vectors of the same size, got shapes {} and {}",
                         ShapeToString(min_t.shape()), ShapeToString(max_t.shape())));
  const bool per_channel = min_t.rank() == 1;
  const int64_t depth = per_channel ? min_t.num_elements() : 1;
  if (per_channel && (x.rank() == 0 || x.dim(x.rank() - 1) != depth))
    ctx.Fail(fmt::format("per-channel min/max have {} elements but the input has shape {}", depth, ShapeToString(x.shape())));
  std::vector<Nudged> nudged;
  for (int64_t c = 0; c < depth; ++c) nudged.push_back(Nudge(min_t.data<float>()[c], max_t.data<float>()[c], quant_min, quant_max));
  const float* in = x.data<float>();
  float* out = ctx.AllocateOutput(0, DType::kFloat32, x.shape()).data<float>();
  const int64_t n = x.num_elements();
  for (int64_t i = 0; i < n; ++i) {
    const Nudged& q = nudged[static_cast<size_t>(per_channel ? i % depth : 0)];
    if (q.zero) {
      out[i] = 0.0f;
      continue;
    }
    float v = in[i];
    v = q.max < v ? q.max : v;  // cwiseMin(nudged_max)
    v = v < q.min ? q.min : v;  // cwiseMax(nudged_min)
    const float shifted = v - q.min;
    const float scaled = divide ? shifted / q.scale : shifted * q.inv_scale;
    out[i] = std::floor(scaled - q.quant_zero + 0.5f) * q.scale;
  }
}
KILN_REFERENCE_KERNEL("FakeQuant", FakeQuantKernel);

}  // namespace

}  // namespace kiln::reference::elementwise
