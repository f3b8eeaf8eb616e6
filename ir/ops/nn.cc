// nn family IR ops: convolutions and pooling (this file), matmul/einsum/normalization/softmax/
// resize/space-depth (nn_math.cc), dense linear algebra (nn_linalg.cc), colour spaces
// (nn_color.cc), RNN/GRU/LSTM (nn_recurrent.cc). See docs/ops/nn.md for each
// op's inputs, attrs and layouts.
#include <fmt/format.h>

#include "ir/op_schema.h"
#include "ir/ops/nn_util.h"

namespace kiln::ir {

void RegisterNnMathOps(OpRegistry& registry);       // nn_math.cc
void RegisterNnRecurrentOps(OpRegistry& registry);  // nn_recurrent.cc

namespace {

using nn::Padding;

std::string VecToString(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ",")); }

struct WindowAttrs {
  bool channels_last = true;
  std::vector<int64_t> strides, dilations, pads;
  Padding padding = Padding::kValid;
};

// Reads padding and pads (2 per spatial dim for EXPLICIT padding, else zeros).
void ReadPadding(const InferContext& ctx, int spatial, WindowAttrs* w) {
  const AttrMap& a = ctx.attrs();
  const std::string padding = a.GetOr<std::string>("padding", "VALID");
  if (!nn::ParsePadding(padding, &w->padding)) ctx.Fail(fmt::format("unknown padding '{}'", padding));
  if (w->padding == Padding::kExplicit) {
    w->pads = a.GetOr<std::vector<int64_t>>("pads", {});
    if (static_cast<int>(w->pads.size()) != 2 * spatial)
      ctx.Fail(fmt::format("EXPLICIT padding needs {} pads, got {}", 2 * spatial, VecToString(w->pads)));
  } else {
    w->pads.assign(static_cast<size_t>(2 * spatial), 0);
  }
}

// Reads data_format / strides / dilations / padding / pads for `spatial` spatial dims.
WindowAttrs ReadWindowAttrs(const InferContext& ctx, int spatial, bool has_dilations) {
  WindowAttrs w;
  const AttrMap& a = ctx.attrs();
  const std::string format = a.GetOr<std::string>("data_format", spatial == 3 ? "NDHWC" : "NHWC");
  if (!nn::ChannelsLast(format, &w.channels_last) || static_cast<int>(format.size()) != spatial + 2)
    ctx.Fail(fmt::format("unsupported data_format '{}' for {} spatial dims", format, spatial));
  w.strides = a.GetOr<std::vector<int64_t>>("strides", std::vector<int64_t>(static_cast<size_t>(spatial), 1));
  w.dilations = has_dilations ? a.GetOr<std::vector<int64_t>>("dilations", std::vector<int64_t>(static_cast<size_t>(spatial), 1))
                              : std::vector<int64_t>(static_cast<size_t>(spatial), 1);
  if (static_cast<int>(w.strides.size()) != spatial)
    ctx.Fail(fmt::format("expected {} strides, got {}", spatial, VecToString(w.strides)));
  if (static_cast<int>(w.dilations.size()) != spatial)
    ctx.Fail(fmt::format("expected {} dilations, got {}", spatial, VecToString(w.dilations)));
  for (int i = 0; i < spatial; ++i)
    if (w.strides[static_cast<size_t>(i)] <= 0 || w.dilations[static_cast<size_t>(i)] <= 0)
      ctx.Fail(fmt::format("strides and dilations must be positive, got {} and {}", VecToString(w.strides), VecToString(w.dilations)));
  ReadPadding(ctx, spatial, &w);
  return w;
}

// Output size of one spatial dim: static when the input and kernel sizes are; the input dim
// itself (symbol kept) for SAME with stride 1; unknown otherwise.
Dim WindowOut(const InferContext& ctx, Dim in, Dim k, const WindowAttrs& w, int i) {
  const size_t s = static_cast<size_t>(i);
  if (IsStatic(in) && IsStatic(k)) {
    nn::WindowDim wd;
    std::string err;
    if (!nn::ComputeWindow(in, k, w.strides[s], w.dilations[s], w.padding, w.pads[2 * s], w.pads[2 * s + 1], &wd, &err))
      ctx.Fail(fmt::format("spatial dim {}: {}", i, err));
    return wd.out;
  }
  if (w.padding == Padding::kSame && w.strides[s] == 1) return in;
  return kUnknownDim;
}

void CheckSameFloatDtype(const InferContext& ctx, int a, int b) {
  const DType da = ctx.input_dtype(a), db = ctx.input_dtype(b);
  if (da != DType::kInvalid && db != DType::kInvalid && da != db)
    ctx.Fail(fmt::format("inputs {} and {} must have the same dtype, got {} and {}", a, b, DTypeName(da), DTypeName(db)));
}

void CheckRank(const InferContext& ctx, int i, int rank, const char* what) {
  const SymShape& s = ctx.input_shape(i);
  if (s.rank_known && s.rank() != rank)
    ctx.Fail(fmt::format("expected {} of rank {}, got shape {}", what, rank, const_cast<InferContext&>(ctx).graph().ShapeToString(s)));
}

// Conv2D / Conv3D / DepthwiseConv2D: (input, filter[, bias]).
template <int kSpatial, bool kDepthwise>
void InferConv(InferContext& ctx) {
  const int rank = kSpatial + 2;
  CheckRank(ctx, 0, rank, "input");
  CheckRank(ctx, 1, rank, "filter");
  CheckSameFloatDtype(ctx, 0, 1);
  const WindowAttrs w = ReadWindowAttrs(ctx, kSpatial, true);
  const SymShape& x = ctx.input_shape(0);
  const SymShape& f = ctx.input_shape(1);
  auto fdim = [&](int i) { return f.rank_known ? f.dims[static_cast<size_t>(i)] : kUnknownDim; };
  auto xdim = [&](int i) { return x.rank_known ? x.dims[static_cast<size_t>(i)] : kUnknownDim; };
  const Dim in_c = xdim(nn::ChannelAxis(w.channels_last, rank));
  const Dim f_in = fdim(kSpatial), f_out = fdim(kSpatial + 1);
  Dim out_c = kUnknownDim;
  if (kDepthwise) {
    if (IsStatic(in_c) && IsStatic(f_in) && in_c != f_in)
      ctx.Fail(fmt::format("input has {} channels but the depthwise filter expects {}", in_c, f_in));
    if (IsStatic(f_in) && IsStatic(f_out)) out_c = f_in * f_out;
  } else {
    if (IsStatic(in_c) && IsStatic(f_in) && (f_in == 0 || in_c % f_in != 0))
      ctx.Fail(fmt::format("input channels ({}) must be a multiple of the filter's input channels ({})", in_c, f_in));
    if (IsStatic(in_c) && IsStatic(f_in) && IsStatic(f_out) && f_in > 0 && f_out % (in_c / f_in) != 0)
      ctx.Fail(fmt::format("filter output channels ({}) must be a multiple of the group count ({})", f_out, in_c / f_in));
    out_c = f_out;
  }
  if (ctx.num_inputs() > 2) {
    const SymShape& b = ctx.input_shape(2);
    if (b.rank_known && (b.rank() != 1 || (IsStatic(b.dims[0]) && IsStatic(out_c) && b.dims[0] != out_c)))
      ctx.Fail(fmt::format("expected a bias of shape [{}], got {}", out_c, ctx.graph().ShapeToString(b)));
  }
  std::vector<Dim> out(static_cast<size_t>(rank), kUnknownDim);
  out[0] = xdim(0);
  out[static_cast<size_t>(nn::ChannelAxis(w.channels_last, rank))] = out_c;
  for (int i = 0; i < kSpatial; ++i)
    out[static_cast<size_t>(nn::SpatialAxis(w.channels_last, i))] =
        WindowOut(ctx, xdim(nn::SpatialAxis(w.channels_last, i)), fdim(i), w, i);
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(out));
}

// Conv2DBackpropInput / Conv3DBackpropInput: (input_sizes, filter, out_backprop).
template <int kSpatial>
void InferConvBackpropInput(InferContext& ctx) {
  const int rank = kSpatial + 2;
  CheckRank(ctx, 1, rank, "filter");
  CheckRank(ctx, 2, rank, "out_backprop");
  CheckSameFloatDtype(ctx, 1, 2);
  const WindowAttrs w = ReadWindowAttrs(ctx, kSpatial, true);
  const SymShape& f = ctx.input_shape(1);
  const SymShape& dy = ctx.input_shape(2);
  const int c_axis = nn::ChannelAxis(w.channels_last, rank);
  std::vector<Dim> out(static_cast<size_t>(rank), kUnknownDim);
  out[0] = dy.rank_known ? dy.dims[0] : kUnknownDim;
  out[static_cast<size_t>(c_axis)] = f.rank_known ? f.dims[static_cast<size_t>(kSpatial)] : kUnknownDim;
  if (const Tensor* sizes = ctx.constant_input(0)) {
    std::vector<int64_t> v = sizes->ToInt64Vector();
    if (static_cast<int>(v.size()) == rank) {
      for (int i = 0; i < rank; ++i) out[static_cast<size_t>(i)] = v[static_cast<size_t>(i)];
    } else if (static_cast<int>(v.size()) == kSpatial) {
      for (int i = 0; i < kSpatial; ++i) out[static_cast<size_t>(nn::SpatialAxis(w.channels_last, i))] = v[static_cast<size_t>(i)];
    } else {
      ctx.Fail(fmt::format("input_sizes must have {} (or {}) elements, got {}", rank, kSpatial, VecToString(v)));
    }
    for (int64_t d : v)
      if (d < 0) ctx.Fail(fmt::format("input_sizes must be non-negative, got {}", VecToString(v)));
  }
  ctx.SetOutput(0, ctx.input_dtype(2), SymShape::Of(out));
}

// MaxPool / AvgPool: (input) with attrs, or MaxPool (input, ksize, strides) in TF's full-rank
// MaxPoolV2 form. The spatial rank comes from the input rank (4 or 5), else from ksize.
template <bool kMax>
void InferPool(InferContext& ctx) {
  const SymShape& x = ctx.input_shape(0);
  const AttrMap& a = ctx.attrs();
  int spatial = 0;
  if (x.rank_known) spatial = x.rank() - 2;
  else if (a.Has("ksize")) spatial = static_cast<int>(a.Ints("ksize").size());
  else if (a.Has("data_format")) spatial = static_cast<int>(a.Str("data_format").size()) - 2;
  if (spatial != 1 && spatial != 2 && spatial != 3) ctx.Fail(fmt::format("expected an input of rank 3 to 5, got {}", spatial + 2));
  const int rank = spatial + 2;
  if (!kMax && ctx.num_inputs() != 1) ctx.Fail("AvgPool takes one input");
  WindowAttrs w;
  const std::string format = a.GetOr<std::string>("data_format", spatial == 3 ? "NDHWC" : "NHWC");
  if (!nn::ChannelsLast(format, &w.channels_last) || static_cast<int>(format.size()) != rank)
    ctx.Fail(fmt::format("data_format '{}' does not match an input of rank {}", format, rank));
  std::vector<int64_t> ksize;
  bool known = true;
  if (ctx.num_inputs() == 3) {
    // Runtime ksize/strides (TF layout, full rank); use them when constant.
    const Tensor* k = ctx.constant_input(1);
    const Tensor* s = ctx.constant_input(2);
    if (k && s) {
      std::vector<int64_t> kv = k->ToInt64Vector(), sv = s->ToInt64Vector();
      if (static_cast<int>(kv.size()) != rank || static_cast<int>(sv.size()) != rank)
        ctx.Fail(fmt::format("ksize and strides must have {} elements, got {} and {}", rank, VecToString(kv), VecToString(sv)));
      for (int i = 0; i < spatial; ++i) {
        ksize.push_back(kv[static_cast<size_t>(nn::SpatialAxis(w.channels_last, i))]);
        w.strides.push_back(sv[static_cast<size_t>(nn::SpatialAxis(w.channels_last, i))]);
      }
    } else {
      known = false;
    }
  } else if (ctx.num_inputs() != 1) {
    ctx.Fail(fmt::format("expected 1 or 3 inputs, got {}", ctx.num_inputs()));
  } else {
    ksize = a.GetOr<std::vector<int64_t>>("ksize", {});
    w.strides = a.GetOr<std::vector<int64_t>>("strides", std::vector<int64_t>(static_cast<size_t>(spatial), 1));
  }
  std::vector<Dim> out(static_cast<size_t>(rank), kUnknownDim);
  if (x.rank_known) {
    out[0] = x.dims[0];
    const int c = nn::ChannelAxis(w.channels_last, rank);
    out[static_cast<size_t>(c)] = x.dims[static_cast<size_t>(c)];
  }
  if (known) {
    if (static_cast<int>(ksize.size()) != spatial || static_cast<int>(w.strides.size()) != spatial)
      ctx.Fail(fmt::format("expected {} ksize and strides values, got {} and {}", spatial, VecToString(ksize), VecToString(w.strides)));
    for (int i = 0; i < spatial; ++i)
      if (ksize[static_cast<size_t>(i)] <= 0 || w.strides[static_cast<size_t>(i)] <= 0)
        ctx.Fail(fmt::format("ksize and strides must be positive, got {} and {}", VecToString(ksize), VecToString(w.strides)));
    w.dilations.assign(static_cast<size_t>(spatial), 1);
    ReadPadding(ctx, spatial, &w);
    if (x.rank_known)
      for (int i = 0; i < spatial; ++i) {
        const size_t ax = static_cast<size_t>(nn::SpatialAxis(w.channels_last, i));
        out[ax] = WindowOut(ctx, x.dims[ax], ksize[static_cast<size_t>(i)], w, i);
      }
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(out));
}

}  // namespace

void RegisterDetectionOps(OpRegistry& registry);  // nn_detection.cc
void RegisterVisionOps(OpRegistry& registry);     // nn_vision.cc
void RegisterSignalOps(OpRegistry& registry);     // signal.cc
void RegisterFftOps(OpRegistry& registry);        // signal_fft.cc
void RegisterRandomOps(OpRegistry& registry);     // random.cc
void RegisterNnLinalgOps(OpRegistry& registry);   // nn_linalg.cc
void RegisterNnColorOps(OpRegistry& registry);    // nn_color.cc

void RegisterNnOps(OpRegistry& registry) {
  registry.Add({"Conv2D", 2, 3, InferConv<2, false>});
  registry.Add({"Conv3D", 2, 3, InferConv<3, false>});
  registry.Add({"DepthwiseConv2D", 2, 3, InferConv<2, true>});
  registry.Add({"Conv2DBackpropInput", 3, 3, InferConvBackpropInput<2>});
  registry.Add({"Conv3DBackpropInput", 3, 3, InferConvBackpropInput<3>});
  registry.Add({"MaxPool", 1, 3, InferPool<true>});
  registry.Add({"AvgPool", 1, 1, InferPool<false>});
  RegisterNnMathOps(registry);
  RegisterDetectionOps(registry);
  RegisterVisionOps(registry);
  RegisterNnRecurrentOps(registry);
  RegisterSignalOps(registry);
  RegisterFftOps(registry);
  RegisterRandomOps(registry);
  RegisterNnLinalgOps(registry);
  RegisterNnColorOps(registry);
}

}  // namespace kiln::ir
