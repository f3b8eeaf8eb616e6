// Signal IR ops: DFT, STFT, MelWeightMatrix. See docs/ops/signal.md for each op's inputs, attrs
// and semantics (ONNX's, opset 17 / 20).
#include <fmt/format.h>

#include "ir/dtype_class.h"
#include "ir/op_schema.h"
#include "ir/ops/signal_util.h"

namespace kiln::ir {

void RegisterSignalOps(OpRegistry& registry);

namespace signal {

std::optional<int64_t> DftAxis(int64_t axis, int64_t rank) {
  if (rank < 2 || axis < -rank || axis > rank - 2 || axis == -1) return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

std::string CheckDftComponents(int64_t components, DftMode mode) {
  if (components != 1 && components != 2)
    return fmt::format("the last dim must be 1 (real) or 2 (complex), got {}", components);
  if (mode.rfft() && components != 1)
    return "onesided = 1 with inverse = 0 (RFFT) takes a real input (last dim 1), got a complex one";
  if (mode.irfft() && components != 2)
    return "onesided = 1 with inverse = 1 (IRFFT) takes a complex input (last dim 2), got a real one";
  return "";
}

int64_t DefaultDftLength(int64_t axis_dim, DftMode mode) { return mode.irfft() ? 2 * (axis_dim - 1) : axis_dim; }

std::string CheckDftLength(int64_t n) {
  if (n < 1) return fmt::format("the transform length (dft_length) must be at least 1, got {}", n);
  return "";
}

std::string StftFrames(int64_t signal_length, int64_t frame_length, int64_t frame_step, int64_t* frames) {
  if (frame_step < 1) return fmt::format("frame_step must be at least 1, got {}", frame_step);
  if (frame_length < 1) return fmt::format("frame_length must be at least 1, got {}", frame_length);
  if (signal_length < frame_length)
    return fmt::format("the signal ({} samples) is shorter than one frame ({})", signal_length, frame_length);
  *frames = (signal_length - frame_length) / frame_step + 1;
  return "";
}

std::string CheckMelArguments(int64_t num_mel_bins, int64_t dft_length, int64_t sample_rate) {
  if (num_mel_bins < 0) return fmt::format("num_mel_bins must not be negative, got {}", num_mel_bins);
  if (dft_length < 1) return fmt::format("dft_length must be at least 1, got {}", dft_length);
  if (sample_rate < 1) return fmt::format("sample_rate must be at least 1, got {}", sample_rate);
  return "";
}

}  // namespace signal

namespace {

using signal::DftMode;

std::string S(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }

// Input i must be a floating-point tensor.
void CheckFloat(InferContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (!IsFloating(t))
    ctx.Fail(fmt::format("{} must be float16, bfloat16, float32 or float64, got {}", what, DTypeName(t)));
}

// Input i must be an int32 / int64 scalar (or one-element 1-D tensor); returns its value when
// it is a constant.
std::optional<int64_t> ScalarInt(InferContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (t != DType::kInt32 && t != DType::kInt64)
    ctx.Fail(fmt::format("{} must be int32 or int64, got {}", what, DTypeName(t)));
  const SymShape& s = ctx.input_shape(i);
  if (s.rank_known && (s.rank() > 1 || (s.rank() == 1 && IsStatic(s.dims[0]) && s.dims[0] != 1)))
    ctx.Fail(fmt::format("{} must be a scalar, got shape {}", what, S(ctx, s)));
  const Tensor* c = ctx.constant_input(i);
  if (!c) return std::nullopt;
  if (c->num_elements() != 1)
    ctx.Fail(fmt::format("{} must hold one value, got shape {}", what, ShapeToString(c->shape())));
  return c->IntAt(0);
}

// ---- DFT(input [..., 1 | 2], axis, dft_length?) attrs inverse, onesided -> [..., 2 | 1] ----
void InferDft(InferContext& ctx) {
  CheckFloat(ctx, 0, "input");
  const DftMode mode{ctx.attrs().GetOr<bool>("inverse", false), ctx.attrs().GetOr<bool>("onesided", false)};
  const std::optional<int64_t> axis_value = ScalarInt(ctx, 1, "axis");
  std::optional<int64_t> length;
  if (ctx.num_inputs() > 2) {
    length = ScalarInt(ctx, 2, "dft_length");
    if (length) {
      if (std::string e = signal::CheckDftLength(*length); !e.empty()) ctx.Fail(e);
    }
  }
  const SymShape& x = ctx.input_shape(0);
  if (!x.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  const int rank = x.rank();
  if (rank < 2) ctx.Fail(fmt::format("input must have rank >= 2 ([..., signal, 1 or 2]), got {}", S(ctx, x)));
  if (IsStatic(x.dims.back())) {
    if (std::string e = signal::CheckDftComponents(x.dims.back(), mode); !e.empty()) ctx.Fail(e);
  }
  SymShape out = x;
  out.dims.back() = signal::DftOutputComponents(mode);
  if (!axis_value) {
    for (int i = 0; i < rank - 1; ++i) out.dims[static_cast<size_t>(i)] = kUnknownDim;
    return ctx.SetOutput(0, ctx.input_dtype(0), out);
  }
  const std::optional<int64_t> axis = signal::DftAxis(*axis_value, rank);
  if (!axis)
    ctx.Fail(
        fmt::format("axis {} is out of range for rank {} (expected [{}, -2] or [0, {}]: the last dim holds the "
                    "real and imaginary parts)",
                    *axis_value, rank, -rank, rank - 2));
  Dim& d = out.dims[static_cast<size_t>(*axis)];
  if (ctx.num_inputs() <= 2 && IsStatic(d)) {
    length = signal::DefaultDftLength(d, mode);
    if (std::string e = signal::CheckDftLength(*length); !e.empty()) ctx.Fail(e);
  }
  if (length)
    d = signal::DftOutputLength(*length, mode);
  else if (mode.onesided || ctx.num_inputs() > 2)
    d = kUnknownDim;  // (a plain DFT of the default length keeps the axis dim, symbol included)
  ctx.SetOutput(0, ctx.input_dtype(0), out);
}

// ---- STFT(signal [B, L, 1 | 2], frame_step, window [W], frame_length?) attr onesided ->
// [B, frames, W or W/2+1, 2] ----
void InferStft(InferContext& ctx) {
  CheckFloat(ctx, 0, "signal");
  if (ctx.input_dtype(2) != ctx.input_dtype(0))
    ctx.Fail(fmt::format("window must have the signal's dtype {}, got {}", DTypeName(ctx.input_dtype(0)),
                         DTypeName(ctx.input_dtype(2))));
  const bool onesided = ctx.attrs().GetOr<bool>("onesided", true);
  const std::optional<int64_t> step = ScalarInt(ctx, 1, "frame_step");
  const SymShape& signal = ctx.input_shape(0);
  const SymShape& window = ctx.input_shape(2);
  if (signal.rank_known && signal.rank() != 3)
    ctx.Fail(fmt::format("signal must be [batch, length, 1 or 2], got {}", S(ctx, signal)));
  if (window.rank_known && window.rank() != 1) ctx.Fail(fmt::format("window must be 1-D, got {}", S(ctx, window)));
  if (signal.rank_known && IsStatic(signal.dims[2])) {
    if (signal.dims[2] != 1 && signal.dims[2] != 2)
      ctx.Fail(fmt::format("the signal's last dim must be 1 (real) or 2 (complex), got {}", signal.dims[2]));
    if (onesided && signal.dims[2] == 2) ctx.Fail("onesided = 1 takes a real signal (last dim 1), got a complex one");
  }
  Dim frame_length = window.rank_known ? window.dims[0] : kUnknownDim;
  if (ctx.num_inputs() > 3) {
    if (const std::optional<int64_t> fl = ScalarInt(ctx, 3, "frame_length")) {
      if (IsStatic(frame_length) && frame_length != *fl)
        ctx.Fail(fmt::format("frame_length {} differs from the window's length {}", *fl, frame_length));
      frame_length = *fl;
    }
  }
  Dim frames = kUnknownDim;
  if (step && IsStatic(frame_length) && signal.rank_known && IsStatic(signal.dims[1])) {
    int64_t n = 0;
    if (std::string e = signal::StftFrames(signal.dims[1], frame_length, *step, &n); !e.empty()) ctx.Fail(e);
    frames = n;
  }
  const Dim bins = IsStatic(frame_length) ? (onesided ? frame_length / 2 + 1 : frame_length)
                                          : (onesided ? kUnknownDim : frame_length);
  ctx.SetOutput(0, ctx.input_dtype(0),
                SymShape::Of({signal.rank_known ? signal.dims[0] : kUnknownDim, frames, bins, 2}));
}

// ---- MelWeightMatrix(num_mel_bins, dft_length, sample_rate, lower_edge_hertz,
// upper_edge_hertz) attr output_datatype -> [dft_length / 2 + 1, num_mel_bins] ----
void InferMelWeightMatrix(InferContext& ctx) {
  const std::optional<int64_t> bins = ScalarInt(ctx, 0, "num_mel_bins");
  const std::optional<int64_t> length = ScalarInt(ctx, 1, "dft_length");
  const std::optional<int64_t> rate = ScalarInt(ctx, 2, "sample_rate");
  for (int i = 3; i < 5; ++i) {
    CheckFloat(ctx, i, i == 3 ? "lower_edge_hertz" : "upper_edge_hertz");
    const SymShape& s = ctx.input_shape(i);
    if (s.rank_known && (s.rank() > 1 || (s.rank() == 1 && IsStatic(s.dims[0]) && s.dims[0] != 1)))
      ctx.Fail(fmt::format("{} must be a scalar, got shape {}", i == 3 ? "lower_edge_hertz" : "upper_edge_hertz",
                           S(ctx, s)));
  }
  const DType out = ctx.attrs().GetOr<DType>("output_datatype", DType::kFloat32);
  if (!InClass(out, kNumeric)) ctx.Fail(fmt::format("output_datatype must be a numeric dtype, got {}", DTypeName(out)));
  if (std::string e = signal::CheckMelArguments(bins.value_or(0), length.value_or(1), rate.value_or(1)); !e.empty())
    ctx.Fail(e);
  ctx.SetOutput(0, out,
                SymShape::Of({length ? signal::MelSpectrogramBins(*length) : kUnknownDim, bins ? *bins : kUnknownDim}));
}

}  // namespace

void RegisterSignalOps(OpRegistry& registry) {
  registry.Add({"DFT", 2, 3, InferDft});
  registry.Add({"STFT", 3, 4, InferStft});
  registry.Add({"MelWeightMatrix", 5, 5, InferMelWeightMatrix});
}

}  // namespace kiln::ir
