// Importers of TF's array ops: shape manipulation, slicing, gathers/scatters, shape queries,
// generators, reductions, arg/top-k and cumulative ops. Shapes, axes, perms, paddings and
// begin/end/strides stay IR inputs (see docs/ops/array.md for the IR ops).
#include <fmt/format.h>

#include "frontend/tf/importer.h"

namespace kiln::tf {
namespace {

using frontend::Attrs;
using ir::AttrMap;
using ir::ValueId;

// ---- dtype checks ----

// Data-movement ops accept every dtype that has a host representation.
void CheckMovable(ImportContext& ctx, const char* attr = "T") {
  if (!ctx.has_attr(attr)) return;
  const DType t = ctx.attr_type(attr);
  if (t == DType::kResource || t == DType::kVariant || (DTypeSize(t) == 0 && t != DType::kString))
    ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
}

// Math ops: real numbers (floating and integer types).
void CheckReal(ImportContext& ctx, const char* attr = "T") {
  if (!ctx.has_attr(attr)) return;
  const DType t = ctx.attr_type(attr);
  if (!IsFloating(t) && !IsInteger(t)) ctx.Unsupported(fmt::format("dtype {} is not supported (expected a real number type)", DTypeName(t)));
}

void CheckIndexType(ImportContext& ctx, const char* attr) {
  if (!ctx.has_attr(attr)) return;
  const DType t = ctx.attr_type(attr);
  if (!IsInteger(t)) ctx.Invalid(fmt::format("attribute {} must be an integer type, got {}", attr, DTypeName(t)));
}

void CheckInputs(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
}

ValueId IntConstant(ImportContext& ctx, int64_t v, const std::string& suffix) {
  return ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, static_cast<int32_t>(v)), suffix);
}

void CheckBadIndicesPolicy(ImportContext& ctx) {
  const std::string p = ctx.attr_string("bad_indices_policy", "");
  if (!p.empty() && p != "DEFAULT" && p != "ERROR") ctx.Unsupported(fmt::format("bad_indices_policy '{}' is not supported", p));
}

// ---- generic forms ----

// One TF op -> one IR op with the same inputs, no attributes.
template <const char* kIrOp, int kInputs, bool kReal>
void ImportSimple(ImportContext& ctx) {
  CheckInputs(ctx, kInputs);
  if constexpr (kReal) CheckReal(ctx);
  else CheckMovable(ctx);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(kIrOp, ctx.input_values()));
}

constexpr char kReshape[] = "Reshape", kTranspose[] = "Transpose", kSlice[] = "Slice", kExpandDims[] = "ExpandDims",
               kTile[] = "Tile", kFill[] = "Fill", kRange[] = "Range", kZerosLike[] = "ZerosLike", kOnesLike[] = "OnesLike",
               kBroadcastTo[] = "BroadcastTo", kBroadcastArgs[] = "BroadcastArgs", kReverse[] = "Reverse",
               kSpaceToBatchND[] = "SpaceToBatchND", kBatchToSpaceND[] = "BatchToSpaceND",
               kInvertPermutation[] = "InvertPermutation", kRank[] = "Rank", kWhere[] = "Where";

void ImportConcatV2(ImportContext& ctx) {
  CheckMovable(ctx);
  if (ctx.num_inputs() < 2) ctx.Invalid(fmt::format("expected at least 2 inputs (values, axis), got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Concat", ctx.input_values()));
}

// Concat: the axis comes first.
void ImportConcat(ImportContext& ctx) {
  CheckMovable(ctx);
  if (ctx.num_inputs() < 2) ctx.Invalid(fmt::format("expected at least 2 inputs (concat_dim, values), got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  std::vector<ValueId> in = ctx.input_values(1);
  in.push_back(ctx.input(0));
  ctx.SetOutput(0, ctx.Emit1("Concat", std::move(in)));
}

void ImportPack(ImportContext& ctx) {
  CheckMovable(ctx);
  if (ctx.num_inputs() < 1) ctx.Invalid("expected at least one input");
  const int64_t axis = ctx.attr_int("axis");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Pack", ctx.input_values(), Attrs({{"axis", axis}})));
}

void ImportUnpack(ImportContext& ctx) {
  CheckMovable(ctx);
  CheckInputs(ctx, 1);
  const int64_t num = ctx.attr_int("num"), axis = ctx.attr_int("axis");
  if (num < 0) ctx.Invalid(fmt::format("num must be non-negative, got {}", num));
  if (ctx.validate_only()) return;
  ctx.SetOutputs(ctx.Emit("Unpack", {ctx.input(0)}, Attrs({{"axis", axis}}), static_cast<int>(num)));
}

// Split and SplitV -> the IR Split with num_split outputs; `ir_inputs` lists the TF input
// positions of its inputs, in order.
void ImportSplitAs(ImportContext& ctx, const std::vector<int>& ir_inputs) {
  CheckMovable(ctx);
  CheckInputs(ctx, static_cast<int>(ir_inputs.size()));
  const int64_t num = ctx.attr_int("num_split");
  if (num < 1) ctx.Invalid(fmt::format("num_split must be >= 1, got {}", num));
  if (ctx.validate_only()) return;
  std::vector<ValueId> in;
  for (int i : ir_inputs) in.push_back(ctx.input(i));
  ctx.SetOutputs(ctx.Emit("Split", std::move(in), {}, static_cast<int>(num)));
}

// Split(split_dim, value) -> Split(value, axis)
void ImportSplit(ImportContext& ctx) { ImportSplitAs(ctx, {1, 0}); }

// SplitV(value, size_splits, split_dim) -> Split(value, axis, size_splits)
void ImportSplitV(ImportContext& ctx) { ImportSplitAs(ctx, {0, 2, 1}); }

void ImportStridedSlice(ImportContext& ctx) {
  CheckMovable(ctx);
  CheckInputs(ctx, 4);
  AttrMap a;
  for (const char* m : {"begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"}) a.Set(m, ctx.attr_int(m));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("StridedSlice", {ctx.input(0), ctx.input(1), ctx.input(2), ctx.input(3)}, std::move(a)));
}

void ImportPad(ImportContext& ctx) {
  CheckMovable(ctx);
  const bool v2 = ctx.op() == "PadV2";
  CheckInputs(ctx, v2 ? 3 : 2);
  std::string mode = "CONSTANT";
  if (ctx.op() == "MirrorPad") {
    mode = ctx.attr_string("mode");
    if (mode != "REFLECT" && mode != "SYMMETRIC") ctx.Invalid(fmt::format("mode must be REFLECT or SYMMETRIC, got '{}'", mode));
  }
  if (ctx.validate_only()) return;
  AttrMap a;
  a.Set("mode", mode);
  std::vector<ValueId> in{ctx.input(0), ctx.input(1)};
  if (v2) in.push_back(ctx.input(2));
  ctx.SetOutput(0, ctx.Emit1("Pad", std::move(in), std::move(a)));
}

void ImportSqueeze(ImportContext& ctx) {
  CheckMovable(ctx);
  CheckInputs(ctx, 1);
  const auto axes = ctx.attr_ints("squeeze_dims");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Squeeze", {ctx.input(0)}, Attrs({{"axes", axes}})));
}

void ImportGatherV2(ImportContext& ctx) {
  CheckMovable(ctx, "Tparams");
  CheckIndexType(ctx, "Tindices");
  CheckBadIndicesPolicy(ctx);
  CheckInputs(ctx, 3);
  const int64_t batch_dims = ctx.attr_int("batch_dims");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Gather", ctx.input_values(), Attrs({{"batch_dims", batch_dims}})));
}

// Gather (v1): axis 0.
void ImportGather(ImportContext& ctx) {
  CheckMovable(ctx, "Tparams");
  CheckIndexType(ctx, "Tindices");
  CheckInputs(ctx, 2);
  if (ctx.validate_only()) return;
  AttrMap a;
  a.Set("batch_dims", int64_t{0});
  ctx.SetOutput(0, ctx.Emit1("Gather", {ctx.input(0), ctx.input(1), IntConstant(ctx, 0, "axis")}, std::move(a)));
}

// ResourceGather(resource, indices): gathers rows of a variable (tf-keras Embedding).
void ImportResourceGather(ImportContext& ctx) {
  CheckMovable(ctx, "dtype");
  CheckIndexType(ctx, "Tindices");
  CheckInputs(ctx, 2);
  const TfValue& var = ctx.resource_input(0);
  const int64_t batch_dims = ctx.attr_int("batch_dims");
  if (ctx.validate_only()) return;
  const ValueId table = ctx.Constant(*var.resource, "table");
  AttrMap a;
  a.Set("batch_dims", batch_dims);
  // As TF: the gather axis is batch_dims (negative batch_dims count from the indices' rank).
  int64_t axis = batch_dims;
  if (axis < 0) {
    const ir::SymShape s = ctx.input_shape(1);
    if (!s.rank_known) ctx.Unsupported("negative batch_dims needs indices of known rank");
    axis += s.rank();
  }
  ctx.SetOutput(0, ctx.Emit1("Gather", {table, ctx.input(1), IntConstant(ctx, axis, "axis")}, std::move(a)));
}

void ImportGatherNd(ImportContext& ctx) {
  CheckMovable(ctx, "Tparams");
  CheckIndexType(ctx, "Tindices");
  CheckBadIndicesPolicy(ctx);
  CheckInputs(ctx, 2);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("GatherNd", {ctx.input(0), ctx.input(1)}));
}

void ImportScatterNd(ImportContext& ctx) {
  if (ctx.has_attr("T")) {
    const DType t = ctx.attr_type("T");
    if (!IsFloating(t) && !IsInteger(t) && t != DType::kBool) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  }
  CheckIndexType(ctx, "Tindices");
  CheckBadIndicesPolicy(ctx);
  CheckInputs(ctx, 3);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("ScatterNd", {ctx.input(0), ctx.input(1), ctx.input(2)}));
}

DType OutType(ImportContext& ctx, const char* attr) {
  const DType t = ctx.attr_type(attr);
  if (t != DType::kInt32 && t != DType::kInt64) ctx.Invalid(fmt::format("{} must be int32 or int64, got {}", attr, DTypeName(t)));
  return t;
}

void ImportShape(ImportContext& ctx) {
  CheckInputs(ctx, 1);
  const DType t = OutType(ctx, "out_type");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(ctx.op() == "Size" ? "Size" : "Shape", {ctx.input(0)}, Attrs({{"out_type", t}})));
}

void ImportShapeN(ImportContext& ctx) {
  const DType t = OutType(ctx, "out_type");
  if (ctx.validate_only()) return;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    ctx.SetOutput(i, ctx.Emit1("Shape", {ctx.input(i)}, Attrs({{"out_type", t}}), fmt::format("shape_{}", i)));
  }
}

void ImportOneHot(ImportContext& ctx) {
  CheckMovable(ctx);
  CheckIndexType(ctx, "TI");
  CheckInputs(ctx, 4);
  const int64_t axis = ctx.attr_int("axis");
  if (axis < -1) ctx.Invalid(fmt::format("axis must be >= -1, got {}", axis));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("OneHot", ctx.input_values(), Attrs({{"axis", axis}})));
}

void ImportCumulative(ImportContext& ctx) {
  CheckReal(ctx);
  CheckInputs(ctx, 2);
  AttrMap a;
  a.Set("exclusive", ctx.attr_bool("exclusive"));
  a.Set("reverse", ctx.attr_bool("reverse"));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(ctx.op(), {ctx.input(0), ctx.input(1)}, std::move(a)));
}

void ImportTopK(ImportContext& ctx) {
  CheckReal(ctx);
  CheckInputs(ctx, 2);
  AttrMap a;
  a.Set("sorted", ctx.attr_bool("sorted"));
  const DType idx = ctx.attr_type("index_type");
  if (idx != DType::kInt16 && idx != DType::kInt32 && idx != DType::kInt64)
    ctx.Invalid(fmt::format("index_type must be int16, int32 or int64, got {}", DTypeName(idx)));
  a.Set("index_type", idx);
  if (ctx.validate_only()) return;
  ctx.SetOutputs(ctx.Emit("TopK", {ctx.input(0), ctx.input(1)}, std::move(a), 2));
}

void ImportArg(ImportContext& ctx) {
  CheckReal(ctx);
  CheckInputs(ctx, 2);
  const DType out = ctx.attr_type("output_type");
  if (out != DType::kInt16 && out != DType::kUInt16 && out != DType::kInt32 && out != DType::kInt64)
    ctx.Invalid(fmt::format("output_type must be int16, uint16, int32 or int64, got {}", DTypeName(out)));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(ctx.op(), {ctx.input(0), ctx.input(1)}, Attrs({{"output_type", out}})));
}

// Sum/Mean/Prod/Max/Min/EuclideanNorm/All/Any(input, reduction_indices) attr keep_dims.
void ImportReduce(ImportContext& ctx) {
  const std::string& op = ctx.op();
  if (op != "All" && op != "Any") CheckReal(ctx);
  CheckInputs(ctx, 2);
  const bool keep = ctx.attr_bool("keep_dims");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Reduce" + op, {ctx.input(0), ctx.input(1)}, Attrs({{"keep_dims", keep}})));
}

void ImportUnique(ImportContext& ctx) {
  CheckInputs(ctx, 1);
  if (ctx.has_attr("T")) {
    const DType t = ctx.attr_type("T");
    if (!IsNumeric(t) && t != DType::kString) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  }
  const DType idx = OutType(ctx, "out_idx");
  if (ctx.validate_only()) return;
  ctx.SetOutputs(ctx.Emit("Unique", {ctx.input(0)}, Attrs({{"out_idx", idx}}), 2));
}

void ImportWhere(ImportContext& ctx) {
  CheckInputs(ctx, 1);
  if (ctx.has_attr("T")) {
    const DType t = ctx.attr_type("T");
    if (!IsNumeric(t) && t != DType::kComplex64 && t != DType::kComplex128)
      ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  }
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Where", {ctx.input(0)}));
}

// MatrixBandPart(input, num_lower, num_upper) (tf.linalg.band_part): keeps element [..., m, n]
// where (num_lower < 0 || m - n <= num_lower) && (num_upper < 0 || n - m <= num_upper), zeros
// elsewhere. Keras' causal attention mask is band_part(ones, -1, 0). The band limits may be run-time
// scalars, so the mask is computed from coordinate grids rather than folded into attributes.
void ImportMatrixBandPart(ImportContext& ctx) {
  CheckInputs(ctx, 3);
  CheckIndexType(ctx, "Tindex");
  const ir::SymShape shape = ctx.input_shape(0);
  if (shape.rank_known && shape.rank() < 2)
    ctx.Invalid(fmt::format("input must have rank >= 2, got rank {}", shape.rank()));
  if (ctx.validate_only()) return;
  auto i64 = [&](std::vector<int64_t> v, bool scalar, const std::string& name) {
    Tensor t(DType::kInt64, scalar ? Shape{} : Shape{static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.data<int64_t>());
    return ctx.Constant(t, name);
  };
  auto dim = [&](ValueId dims, int64_t d, const std::string& name) {
    return ctx.Emit1("StridedSlice", {dims, i64({d}, false, name + "_begin"), i64({d + 1}, false, name + "_end"),
                                      i64({1}, false, name + "_stride")},
                     Attrs({{"begin_mask", int64_t{0}}, {"end_mask", int64_t{0}}, {"ellipsis_mask", int64_t{0}},
                            {"new_axis_mask", int64_t{0}}, {"shrink_axis_mask", int64_t{1}}}),
                     name);
  };
  auto as_i64 = [&](ValueId v, const std::string& name) {
    return ctx.Emit1("Cast", {v}, Attrs({{"to", DType::kInt64}, {"truncate", false}}), name);
  };
  const ValueId x = ctx.input(0);
  const ValueId dims = ctx.Emit1("Shape", {x}, Attrs({{"out_type", DType::kInt64}}), "shape");
  const ValueId zero = i64({0}, true, "zero"), one = i64({1}, true, "one");
  const ValueId rows = ctx.Emit1("Range", {zero, dim(dims, -2, "rows_n"), one}, {}, "rows");
  const ValueId cols = ctx.Emit1("Range", {zero, dim(dims, -1, "cols_n"), one}, {}, "cols");
  const ValueId column = ctx.Emit1("Reshape", {rows, i64({-1, 1}, false, "column_shape")}, {}, "rows_column");
  const ValueId diag = ctx.Emit1("Sub", {cols, column}, {}, "n_minus_m");
  const ValueId lower = as_i64(ctx.input(1), "num_lower"), upper = as_i64(ctx.input(2), "num_upper");
  const ValueId keep_lower =
      ctx.Emit1("LogicalOr",
                {ctx.Emit1("Less", {lower, zero}, {}, "all_lower"),
                 ctx.Emit1("GreaterEqual", {diag, ctx.Emit1("Neg", {lower}, {}, "minus_lower")}, {}, "in_lower")},
                {}, "keep_lower");
  const ValueId keep_upper = ctx.Emit1(
      "LogicalOr",
      {ctx.Emit1("Less", {upper, zero}, {}, "all_upper"), ctx.Emit1("LessEqual", {diag, upper}, {}, "in_upper")}, {},
      "keep_upper");
  const ValueId keep = ctx.Emit1("LogicalAnd", {keep_lower, keep_upper}, {}, "keep");
  const ValueId zeros = ctx.Emit1("ZerosLike", {x}, {}, "zeros");
  ctx.SetOutput(0, ctx.Emit1("Select", {keep, x, zeros}));
}

// Bucketize(input) attr boundaries (sorted floats): the number of boundaries <= x, as int32 (TF's
// upper_bound; Keras' Discretization layer). Imported as a comparison against the boundaries along a
// new last axis, summed.
void ImportBucketize(ImportContext& ctx) {
  CheckInputs(ctx, 1);
  const DType t = ctx.input_dtype(0);
  if (t != DType::kInvalid && !IsFloating(t) && t != DType::kInt32 && t != DType::kInt64)
    ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  const std::vector<float> boundaries = ctx.attr_floats("boundaries");
  for (size_t i = 1; i < boundaries.size(); ++i)
    if (!(boundaries[i - 1] <= boundaries[i])) ctx.Invalid("boundaries must be sorted");
  if (ctx.validate_only()) return;
  const ValueId x = ctx.input(0);
  if (boundaries.empty()) {
    ctx.SetOutput(0, ctx.Emit1("ZerosLike", {ctx.Emit1("Cast", {x}, Attrs({{"to", DType::kInt32}, {"truncate", false}}), "as_int")},
                               {}, ""));
    return;
  }
  // Boundaries in double: float32 boundaries compare exactly as TF compares them with float inputs.
  Tensor b(DType::kFloat64, {static_cast<int64_t>(boundaries.size())});
  for (size_t i = 0; i < boundaries.size(); ++i) b.data<double>()[i] = boundaries[i];
  const ValueId x64 = ctx.Emit1("Cast", {x}, Attrs({{"to", DType::kFloat64}, {"truncate", false}}), "as_double");
  const ValueId last = ctx.Emit1("ExpandDims", {x64, IntConstant(ctx, -1, "last_axis")}, {}, "expanded");
  const ValueId ge = ctx.Emit1("GreaterEqual", {last, ctx.Constant(b, "boundaries")}, {}, "at_or_above");
  const ValueId ones = ctx.Emit1("Cast", {ge}, Attrs({{"to", DType::kInt32}, {"truncate", false}}), "counted");
  ctx.SetOutput(0, ctx.Emit1("ReduceSum", {ones, IntConstant(ctx, -1, "sum_axis")}, Attrs({{"keep_dims", false}})));
}

// DenseBincount(input, size, weights) attr binary_output: per row of a 1-D or 2-D input, how often
// (or, with weights, how much weight) each value in [0, size) occurs; values outside are ignored
// (Keras' CategoryEncoding). Imported as a one-hot over `size`, weighted and summed over the row.
void ImportDenseBincount(ImportContext& ctx) {
  CheckInputs(ctx, 3);
  const bool binary = ctx.attr_bool("binary_output", false);
  const DType idx = ctx.input_dtype(0);
  if (idx != DType::kInvalid && idx != DType::kInt32 && idx != DType::kInt64)
    ctx.Unsupported(fmt::format("input dtype {} is not supported", DTypeName(idx)));
  const ir::SymShape shape = ctx.input_shape(0);
  if (shape.rank_known && shape.rank() != 1 && shape.rank() != 2)
    ctx.Invalid(fmt::format("input must be 1-D or 2-D, got rank {}", shape.rank()));
  const DType t = ctx.has_attr("T") ? ctx.attr_type("T") : ctx.input_dtype(2);
  if (ctx.validate_only()) return;
  if (!shape.rank_known) ctx.Unsupported("the input's rank must be known");
  const ir::SymShape wshape = ctx.input_shape(2);
  // TF passes an empty weights tensor for plain counts.
  bool weighted = true;
  if (wshape.rank_known)
    for (ir::Dim d : wshape.dims) weighted = weighted && d != 0;
  const ValueId one = ctx.Constant(Tensor::Scalar<float>(DType::kFloat32, 1.f), "on");
  const ValueId zero = ctx.Constant(Tensor::Scalar<float>(DType::kFloat32, 0.f), "off");
  const ValueId depth = ctx.Emit1("Cast", {ctx.input(1)}, Attrs({{"to", DType::kInt32}, {"truncate", false}}), "depth");
  ValueId hot = ctx.Emit1("OneHot", {ctx.input(0), depth, one, zero}, Attrs({{"axis", int64_t{-1}}}), "one_hot");
  if (weighted && !binary) {
    const ValueId w = ctx.Emit1("Cast", {ctx.input(2)}, Attrs({{"to", DType::kFloat32}, {"truncate", false}}), "weights");
    hot = ctx.Emit1("Mul", {hot, ctx.Emit1("ExpandDims", {w, IntConstant(ctx, -1, "w_axis")}, {}, "w_col")}, {}, "weighted");
  }
  ValueId counts = ctx.Emit1("ReduceSum", {hot, IntConstant(ctx, -2, "row_axis")}, Attrs({{"keep_dims", false}}), "sums");
  if (binary) counts = ctx.Emit1("Minimum", {counts, one}, {}, "binary");
  ctx.SetOutput(0, ctx.Emit1("Cast", {counts}, Attrs({{"to", t}, {"truncate", false}})));
}

using Outputs = std::vector<TfOutputArg>;
using Defaults = std::vector<std::pair<std::string, TfAttrDefault>>;

void Add(ImporterTable& t, const char* op, ImporterFn fn, Outputs outputs = {}, Defaults defaults = {}) {
  t.Add(TfOpSpec{op, fn, std::move(outputs), std::move(defaults)});
}

}  // namespace

void RegisterArrayImporters(ImporterTable& t) {
  using V = std::vector<int64_t>;
  Add(t, "Reshape", ImportSimple<kReshape, 2, false>);
  Add(t, "MatrixBandPart", ImportMatrixBandPart);
  Add(t, "Bucketize", ImportBucketize);
  Add(t, "DenseBincount", ImportDenseBincount, {}, {{"binary_output", false}});
  Add(t, "Transpose", ImportSimple<kTranspose, 2, false>);
  Add(t, "ConcatV2", ImportConcatV2);
  Add(t, "Concat", ImportConcat);
  Add(t, "Pack", ImportPack, {}, {{"axis", int64_t{0}}});
  Add(t, "Unpack", ImportUnpack, {{"output", "num", ""}}, {{"axis", int64_t{0}}});
  Add(t, "Split", ImportSplit, {{"output", "num_split", ""}});
  Add(t, "SplitV", ImportSplitV, {{"output", "num_split", ""}});
  Add(t, "Slice", ImportSimple<kSlice, 3, false>);
  Add(t, "StridedSlice", ImportStridedSlice, {},
        {{"begin_mask", int64_t{0}}, {"end_mask", int64_t{0}}, {"ellipsis_mask", int64_t{0}}, {"new_axis_mask", int64_t{0}},
         {"shrink_axis_mask", int64_t{0}}});
  Add(t, "Pad", ImportPad);
  Add(t, "PadV2", ImportPad);
  Add(t, "MirrorPad", ImportPad);
  Add(t, "Squeeze", ImportSqueeze, {}, {{"squeeze_dims", V{}}});
  Add(t, "ExpandDims", ImportSimple<kExpandDims, 2, false>);
  Add(t, "Tile", ImportSimple<kTile, 2, false>);
  Add(t, "GatherV2", ImportGatherV2, {}, {{"batch_dims", int64_t{0}}});
  Add(t, "Gather", ImportGather, {}, {{"validate_indices", true}});
  Add(t, "ResourceGather", ImportResourceGather, {}, {{"batch_dims", int64_t{0}}, {"validate_indices", true}});
  Add(t, "GatherNd", ImportGatherNd);
  Add(t, "ScatterNd", ImportScatterNd);
  Add(t, "Shape", ImportShape, {}, {{"out_type", DType::kInt32}});
  Add(t, "ShapeN", ImportShapeN, {{"output", "N", ""}}, {{"out_type", DType::kInt32}});
  Add(t, "Size", ImportShape, {}, {{"out_type", DType::kInt32}});
  Add(t, "Rank", ImportSimple<kRank, 1, false>);
  Add(t, "Fill", ImportSimple<kFill, 2, false>);
  Add(t, "Range", ImportSimple<kRange, 3, false>);
  Add(t, "ZerosLike", ImportSimple<kZerosLike, 1, false>);
  Add(t, "OnesLike", ImportSimple<kOnesLike, 1, false>);
  Add(t, "OneHot", ImportOneHot, {}, {{"axis", int64_t{-1}}});
  Add(t, "BroadcastTo", ImportSimple<kBroadcastTo, 2, false>);
  Add(t, "BroadcastArgs", ImportSimple<kBroadcastArgs, 2, false>);
  Add(t, "Where", ImportWhere);
  Add(t, "Cumsum", ImportCumulative, {}, {{"exclusive", false}, {"reverse", false}});
  Add(t, "Cumprod", ImportCumulative, {}, {{"exclusive", false}, {"reverse", false}});
  Add(t, "ReverseV2", ImportSimple<kReverse, 2, false>);
  Add(t, "TopKV2", ImportTopK, {{"values", "", ""}, {"indices", "", ""}}, {{"sorted", true}, {"index_type", DType::kInt32}});
  Add(t, "ArgMax", ImportArg, {}, {{"output_type", DType::kInt64}});
  Add(t, "ArgMin", ImportArg, {}, {{"output_type", DType::kInt64}});
  for (const char* op : {"Sum", "Mean", "Prod", "Max", "Min", "All", "Any", "EuclideanNorm"})
    Add(t, op, ImportReduce, {}, {{"keep_dims", false}});
  Add(t, "SpaceToBatchND", ImportSimple<kSpaceToBatchND, 3, false>);
  Add(t, "BatchToSpaceND", ImportSimple<kBatchToSpaceND, 3, false>);
  Add(t, "InvertPermutation", ImportSimple<kInvertPermutation, 1, false>);
  Add(t, "Unique", ImportUnique, {{"y", "", ""}, {"idx", "", ""}}, {{"out_idx", DType::kInt32}});
}

}  // namespace kiln::tf
