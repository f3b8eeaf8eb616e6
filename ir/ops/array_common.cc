// Shared shape arithmetic of the array family: StridedSlice canonicalisation (TensorFlow's
// ValidateStridedSliceOp), Reshape's -1 resolution, static broadcasting, and symbolic
// evaluation of shape vectors.
#include "ir/ops/array_common.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

namespace kiln::ir::array {

std::optional<int64_t> NormalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

std::string DimsToString(const Graph& graph, const std::vector<Dim>& dims) {
  return graph.ShapeToString(SymShape::Of(dims));
}

std::vector<int64_t> IntValues(const Tensor& t) { return t.ToInt64Vector(); }

// ---------------------------------------------------------------------------------------------

StridedSliceMasks StridedSliceMasksOf(const AttrMap& attrs) {
  StridedSliceMasks m;
  m.begin_mask = attrs.GetOr<int64_t>("begin_mask", 0);
  m.end_mask = attrs.GetOr<int64_t>("end_mask", 0);
  m.ellipsis_mask = attrs.GetOr<int64_t>("ellipsis_mask", 0);
  m.new_axis_mask = attrs.GetOr<int64_t>("new_axis_mask", 0);
  m.shrink_axis_mask = attrs.GetOr<int64_t>("shrink_axis_mask", 0);
  return m;
}

std::string ComputeStridedSlice(const std::vector<Dim>& input_dims, int64_t spec_len, const std::vector<int64_t>* begin,
                                const std::vector<int64_t>* end, const std::vector<int64_t>* strides,
                                const StridedSliceMasks& masks, StridedSliceResult* out) {
  constexpr int kShrinkAxis = -1, kNewAxis = -2;
  if (spec_len < 0 || spec_len >= 32)
    return fmt::format("begin, end and strides must have fewer than 32 elements, got {}", spec_len);
  if ((begin && static_cast<int64_t>(begin->size()) != spec_len) || (end && static_cast<int64_t>(end->size()) != spec_len) ||
      (strides && static_cast<int64_t>(strides->size()) != spec_len))
    return fmt::format("expected begin, end and strides to be 1-D tensors of equal size, got sizes {}, {} and {}",
                       begin ? static_cast<int64_t>(begin->size()) : spec_len, end ? static_cast<int64_t>(end->size()) : spec_len,
                       strides ? static_cast<int64_t>(strides->size()) : spec_len);
  const int64_t ellipsis_in = masks.ellipsis_mask & 0xffffffffLL;
  if (ellipsis_in && (ellipsis_in & (ellipsis_in - 1)) != 0) return "multiple ellipses in slice spec are not allowed";

  // Step 1: count new axes after the ellipsis; add an implicit ellipsis at the end.
  int64_t sparse_dims = spec_len;
  int64_t ellipsis_mask = ellipsis_in;
  int64_t num_add_axis_after_ellipsis = 0;
  bool ellipsis_seen = false;
  for (int64_t i = 0; i < sparse_dims; ++i) {
    if (ellipsis_seen && ((1LL << i) & masks.new_axis_mask)) ++num_add_axis_after_ellipsis;
    if ((1LL << i) & ellipsis_mask) ellipsis_seen = true;
  }
  if (!ellipsis_seen) {
    ellipsis_mask |= (1LL << sparse_dims);
    ++sparse_dims;
  }

  // Step 2: the dense spec (one entry per input dim).
  const int64_t dims = static_cast<int64_t>(input_dims.size());
  out->begin.assign(static_cast<size_t>(dims), 0);
  out->end.assign(static_cast<size_t>(dims), 0);
  out->strides.assign(static_cast<size_t>(dims), 1);
  std::vector<bool> stride_known(static_cast<size_t>(dims), true);
  int64_t dense_begin_mask = 0, dense_end_mask = 0, dense_shrink = 0;
  std::vector<int64_t> gather;
  int64_t full_index = 0;
  for (int64_t i = 0; i < sparse_dims; ++i) {
    if ((1LL << i) & ellipsis_mask) {
      const int64_t next_index = std::min(dims - (sparse_dims - i) + 1 + num_add_axis_after_ellipsis, dims);
      for (; full_index < next_index; ++full_index) {
        out->begin[static_cast<size_t>(full_index)] = out->end[static_cast<size_t>(full_index)] = 0;
        out->strides[static_cast<size_t>(full_index)] = 1;
        dense_begin_mask |= (1LL << full_index);
        dense_end_mask |= (1LL << full_index);
        gather.push_back(full_index);
      }
    } else if ((1LL << i) & masks.new_axis_mask) {
      gather.push_back(kNewAxis);
    } else {
      if (full_index == dims)
        return fmt::format("index out of range using input dim {}; input has only {} dims", full_index, dims);
      const size_t f = static_cast<size_t>(full_index), s = static_cast<size_t>(i);
      if (begin) out->begin[f] = (*begin)[s];
      if (end) out->end[f] = (*end)[s];
      if (strides) out->strides[f] = (*strides)[s];
      stride_known[f] = strides != nullptr;
      if (masks.begin_mask & (1LL << i)) dense_begin_mask |= (1LL << full_index);
      if (masks.end_mask & (1LL << i)) dense_end_mask |= (1LL << full_index);
      if (masks.shrink_axis_mask & (1LL << i)) {
        gather.push_back(kShrinkAxis);
        dense_shrink |= (1LL << full_index);
      } else {
        gather.push_back(full_index);
      }
      ++full_index;
    }
  }

  // Step 3: canonical begin/end and the processing shape.
  const bool known = begin && end;
  out->processing_shape.assign(static_cast<size_t>(dims), kUnknownDim);
  for (int64_t i = 0; i < dims; ++i) {
    const size_t f = static_cast<size_t>(i);
    int64_t& begin_i = out->begin[f];
    int64_t& end_i = out->end[f];
    const int64_t stride_i = out->strides[f];
    const Dim dim_i = input_dims[f];
    const bool shrink_i = dense_shrink & (1LL << i);
    const bool begin_masked = dense_begin_mask & (1LL << i), end_masked = dense_end_mask & (1LL << i);
    if (stride_known[f] && stride_i == 0) return fmt::format("strides[{}] must be non-zero", i);
    if (!stride_known[f]) {
      out->processing_shape[f] = shrink_i ? 1 : kUnknownDim;
      continue;
    }
    if (!IsStatic(dim_i)) {
      // Symbolic or unknown dim: a full-range slice keeps it.
      Dim d = kUnknownDim;
      if (shrink_i) d = 1;
      else if (stride_i == 1 && (begin_masked || (begin && begin_i == 0)) && end_masked) d = dim_i;
      else if (stride_i == -1 && begin_masked && end_masked) d = dim_i;
      out->processing_shape[f] = d;
      continue;
    }
    const std::array<bool, 2> m = {begin_masked, end_masked};
    const std::array<int64_t, 2> valid_range = {stride_i > 0 ? 0 : -1, stride_i > 0 ? dim_i : dim_i - 1};
    auto canonical = [&](int64_t x, int c) {
      if (m[static_cast<size_t>(c)]) return stride_i > 0 ? valid_range[static_cast<size_t>(c)] : valid_range[static_cast<size_t>((c + 1) & 1)];
      const int64_t x_fwd = x < 0 ? dim_i + x : x;
      return x_fwd < valid_range[0] ? valid_range[0] : x_fwd > valid_range[1] ? valid_range[1] : x_fwd;
    };
    if (shrink_i && stride_i <= 0) return "only stride 1 allowed on non-range indexing";
    int64_t interval_length = 0;
    bool known_interval = false;
    if (known) {
      if (shrink_i) {
        const int64_t x_fwd = begin_i < 0 ? dim_i + begin_i : begin_i;
        begin_i = x_fwd;
        end_i = begin_i + 1;
        if (x_fwd < 0 || x_fwd >= dim_i)
          return fmt::format("slice index {} of dimension {} out of bounds (dimension size {})", begin_i, i, dim_i);
      } else {
        begin_i = canonical(begin_i, 0);
        end_i = canonical(end_i, 1);
      }
      interval_length = end_i - begin_i;
      known_interval = true;
    } else if (shrink_i) {
      interval_length = 1;
      known_interval = true;
    } else if (begin_masked && end_masked) {
      interval_length = stride_i < 0 ? -dim_i : dim_i;
      known_interval = true;
    }
    if (known_interval) {
      int64_t size_i;
      if (interval_length == 0 || ((interval_length < 0) != (stride_i < 0))) size_i = 0;
      else size_i = interval_length / stride_i + (interval_length % stride_i != 0 ? 1 : 0);
      out->processing_shape[f] = size_i;
    }
  }

  // Step 4: the final shape.
  out->final_shape.clear();
  for (int64_t g : gather) {
    if (g >= 0) out->final_shape.push_back(out->processing_shape[static_cast<size_t>(g)]);
    else if (g == kNewAxis) out->final_shape.push_back(1);
  }
  return "";
}

// ---------------------------------------------------------------------------------------------

std::string ResolveReshape(const Shape& input, const std::vector<int64_t>& target, Shape* out) {
  const int64_t input_elements = NumElements(input);
  auto mismatch = [&] {
    return fmt::format("cannot reshape {} ({} elements) to {}", ShapeToString(input), input_elements, ShapeToString(target));
  };
  int64_t product = 1;
  int unknown_index = -1;
  bool target_has_zero = false;
  out->assign(target.begin(), target.end());
  for (size_t d = 0; d < target.size(); ++d) {
    const int64_t size = target[d];
    if (size == -1) {
      if (unknown_index != -1)
        return fmt::format("target shape {} has more than one -1 (dims {} and {})", ShapeToString(target), unknown_index, d);
      unknown_index = static_cast<int>(d);
      (*out)[d] = 1;
    } else if (size < 0) {
      return fmt::format("target shape {} has a negative size {} at dim {}", ShapeToString(target), size, d);
    } else if (size == 0) {
      target_has_zero = true;
    } else {
      if (product > (int64_t{1} << 62) / size) return mismatch();
      product *= size;
    }
  }
  if (unknown_index != -1) {
    // As TensorFlow: zero-sized input dims are skipped when the target has a zero, so that the
    // -1 can still be inferred from the non-zero dims.
    int64_t input_num = 1;
    bool input_has_zero = false;
    for (int64_t d : input) {
      if (d > 0 || !target_has_zero) input_num *= d;
      else input_has_zero = true;
    }
    const int64_t missing = input_num / product;
    if (!input_has_zero && product * missing != input_num) return mismatch();
    (*out)[static_cast<size_t>(unknown_index)] = missing;
  }
  if (NumElements(*out) != input_elements) return mismatch();
  return "";
}

std::string RangeSize(const Tensor& start_t, const Tensor& limit_t, const Tensor& delta_t, int64_t* size) {
  const DType t = start_t.dtype();
  if (start_t.num_elements() != 1 || limit_t.num_elements() != 1 || delta_t.num_elements() != 1)
    return fmt::format("start, limit and delta must be scalars, got shapes {}, {} and {}", ShapeToString(start_t.shape()),
                       ShapeToString(limit_t.shape()), ShapeToString(delta_t.shape()));
  if (IsInteger(t)) {
    const int64_t s = start_t.IntAt(0), l = limit_t.IntAt(0), d = delta_t.IntAt(0);
    if (d == 0) return "delta must be non-zero";
    if (d > 0 && s > l) return fmt::format("requires start <= limit when delta > 0: {}/{}", s, l);
    if (d < 0 && s < l) return fmt::format("requires start >= limit when delta < 0: {}/{}", s, l);
    const uint64_t ad = d < 0 ? 0 - static_cast<uint64_t>(d) : static_cast<uint64_t>(d);
    const uint64_t span = l > s ? static_cast<uint64_t>(l) - static_cast<uint64_t>(s) : static_cast<uint64_t>(s) - static_cast<uint64_t>(l);
    *size = static_cast<int64_t>(span / ad + (span % ad != 0 ? 1 : 0));
    return "";
  }
  if (!IsFloating(t)) return fmt::format("dtype {} is not supported", DTypeName(t));
  const double s = start_t.DoubleAt(0), l = limit_t.DoubleAt(0), d = delta_t.DoubleAt(0);
  if (d == 0) return "delta must be non-zero";
  if (d > 0 && s > l) return fmt::format("requires start <= limit when delta > 0: {}/{}", s, l);
  if (d < 0 && s < l) return fmt::format("requires start >= limit when delta < 0: {}/{}", s, l);
  double n;
  if (t == DType::kFloat64) n = std::ceil(std::abs((l - s) / d));
  else n = std::ceil(std::abs((static_cast<float>(l) - static_cast<float>(s)) / static_cast<float>(d)));
  if (!(n < 9.0e18)) return fmt::format("the range [{}, {}) with delta {} has too many elements", s, l, d);
  *size = static_cast<int64_t>(n);
  return "";
}

std::string BroadcastStatic(const Shape& a, const Shape& b, Shape* out) {
  const size_t rank = std::max(a.size(), b.size());
  out->assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == db || db == 1) (*out)[i] = da;
    else if (da == 1) (*out)[i] = db;
    else return fmt::format("shapes {} and {} are not broadcast-compatible", ShapeToString(a), ShapeToString(b));
  }
  return "";
}

// ---------------------------------------------------------------------------------------------

namespace {

constexpr size_t kMaxSymElems = 64;

std::optional<SymVector> Fallback(const Value& v) {
  if (!v.shape.rank_known) return std::nullopt;
  if (v.shape.rank() == 0) return SymVector{true, {SymElem::Unknown()}};
  if (v.shape.rank() == 1 && IsStatic(v.shape.dims[0]) && static_cast<size_t>(v.shape.dims[0]) <= kMaxSymElems)
    return SymVector{false, std::vector<SymElem>(static_cast<size_t>(v.shape.dims[0]), SymElem::Unknown())};
  return std::nullopt;
}

const Tensor* ConstOf(const Graph& g, const Node& n, size_t i) {
  return i < n.inputs.size() ? g.ConstantOf(n.inputs[i]) : nullptr;
}

std::optional<SymElem> Binary(const std::string& op, const SymElem& a, const SymElem& b) {
  if (a.is_const && b.is_const) {
    if (op == "Mul") return SymElem::Const(a.value * b.value);
    if (op == "Add" || op == "AddV2") return SymElem::Const(a.value + b.value);
    if (op == "Sub") return SymElem::Const(a.value - b.value);
    if (op == "FloorDiv" && b.value != 0) {
      int64_t q = a.value / b.value;
      if ((a.value % b.value != 0) && ((a.value < 0) != (b.value < 0))) --q;
      return SymElem::Const(q);
    }
    if (op == "Maximum") return SymElem::Const(std::max(a.value, b.value));
    if (op == "Minimum") return SymElem::Const(std::min(a.value, b.value));
    return SymElem::Unknown();
  }
  // The elementwise maximum or minimum of a dim with itself (an exporter's broadcast of two
  // batch dims it cannot prove equal), or a maximum with a constant no dim is below.
  if ((op == "Maximum" || op == "Minimum") && a == b) return a;
  if (op == "Maximum" && a.is_const && a.value <= 0 && !b.is_const && b.dim != kUnknownDim) return b;
  if (op == "Maximum" && b.is_const && b.value <= 0 && !a.is_const && a.dim != kUnknownDim) return a;
  if (op == "Mul" && a.is_const && a.value == 1) return b;
  if ((op == "Mul" || op == "FloorDiv") && b.is_const && b.value == 1) return a;
  if ((op == "Add" || op == "AddV2") && a.is_const && a.value == 0) return b;
  if ((op == "Add" || op == "AddV2" || op == "Sub") && b.is_const && b.value == 0) return a;
  return SymElem::Unknown();
}

std::optional<SymVector> EvalImpl(const Graph& g, ValueId id, int depth, int& budget);

std::optional<SymVector> EvalNode(const Graph& g, const Value& v, const Node& n, int depth, int& budget) {
  const std::string& op = n.op;
  auto in = [&](size_t i) -> std::optional<SymVector> {
    if (i >= n.inputs.size()) return std::nullopt;
    return EvalImpl(g, n.inputs[i], depth + 1, budget);
  };
  if (op == "Shape") {
    const SymShape& s = g.value(n.inputs.at(0)).shape;
    if (!s.rank_known) return std::nullopt;
    SymVector r;
    for (Dim d : s.dims) r.elems.push_back(SymElem::OfDim(d));
    return r;
  }
  if (op == "Identity" || op == "Cast" || op == "ExpandDims" || op == "Squeeze" || op == "Reshape") {
    auto x = in(0);
    if (!x || !v.shape.rank_known || v.shape.rank() > 1) return std::nullopt;
    x->scalar = v.shape.rank() == 0;
    if (x->scalar && x->elems.size() != 1) return std::nullopt;
    return x;
  }
  if (op == "Pack") {
    if (n.attrs.GetOr<int64_t>("axis", 0) != 0) return std::nullopt;
    SymVector r;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      auto x = in(i);
      if (!x || !x->scalar) return std::nullopt;
      r.elems.push_back(x->elems[0]);
    }
    return r;
  }
  if (op == "Concat") {
    if (n.inputs.size() < 2) return std::nullopt;
    const Tensor* axis = ConstOf(g, n, n.inputs.size() - 1);
    if (!axis || axis->num_elements() != 1 || (axis->IntAt(0) != 0 && axis->IntAt(0) != -1)) return std::nullopt;
    SymVector r;
    for (size_t i = 0; i + 1 < n.inputs.size(); ++i) {
      auto x = in(i);
      if (!x || x->scalar) return std::nullopt;
      r.elems.insert(r.elems.end(), x->elems.begin(), x->elems.end());
    }
    return r;
  }
  if (op == "StridedSlice" || op == "Slice") {
    auto x = in(0);
    if (!x || x->scalar) return std::nullopt;
    const std::vector<Dim> dims = {static_cast<Dim>(x->elems.size())};
    std::vector<int64_t> idx;
    bool scalar = false;
    if (op == "StridedSlice") {
      const Tensor *b = ConstOf(g, n, 1), *e = ConstOf(g, n, 2), *s = ConstOf(g, n, 3);
      if (!b || !e || !s) return std::nullopt;
      const auto bv = IntValues(*b), ev = IntValues(*e), sv = IntValues(*s);
      const StridedSliceMasks m = StridedSliceMasksOf(n.attrs);
      StridedSliceResult r;
      if (!ComputeStridedSlice(dims, static_cast<int64_t>(sv.size()), &bv, &ev, &sv, m, &r).empty()) return std::nullopt;
      if (r.final_shape.size() > 1) return std::nullopt;
      scalar = r.final_shape.empty();
      for (int64_t k = 0; k < r.processing_shape[0]; ++k) idx.push_back(r.begin[0] + k * r.strides[0]);
    } else {
      // begin and size: constants, or computed ones symbolic evaluation finds constant.
      auto one = [&](size_t i) -> std::optional<int64_t> {
        auto e = in(i);
        if (!e || e->elems.size() != 1 || !e->elems[0].is_const) return std::nullopt;
        return e->elems[0].value;
      };
      const std::optional<int64_t> b = one(1), s = one(2);
      if (!b || !s) return std::nullopt;
      const int64_t start = *b, len = *s, size = dims[0];
      const int64_t stop = len == -1 ? size : start + len;
      if (start < 0 || stop < start || stop > size) return std::nullopt;
      for (int64_t k = start; k < stop; ++k) idx.push_back(k);
    }
    SymVector r;
    r.scalar = scalar;
    for (int64_t k : idx) {
      if (k < 0 || k >= dims[0]) return std::nullopt;
      r.elems.push_back(x->elems[static_cast<size_t>(k)]);
    }
    return r;
  }
  if (op == "Gather") {
    auto x = in(0);
    const Tensor* indices = ConstOf(g, n, 1);
    const Tensor* axis = ConstOf(g, n, 2);
    if (!x || x->scalar || !indices || indices->rank() > 1 || !axis || axis->num_elements() != 1) return std::nullopt;
    if (axis->IntAt(0) != 0 && axis->IntAt(0) != -1) return std::nullopt;
    SymVector r;
    r.scalar = indices->rank() == 0;
    for (int64_t k : IntValues(*indices)) {
      if (k < 0 || k >= static_cast<int64_t>(x->elems.size())) return std::nullopt;
      r.elems.push_back(x->elems[static_cast<size_t>(k)]);
    }
    return r;
  }
  if (op == "ReduceProd" || op == "ReduceSum") {
    auto x = in(0);
    if (!x || !v.shape.rank_known || v.shape.rank() != 0) return std::nullopt;
    const bool prod = op == "ReduceProd";
    int64_t acc = prod ? 1 : 0;
    std::vector<SymElem> rest;
    for (const SymElem& e : x->elems) {
      if (e.is_const) acc = prod ? acc * e.value : acc + e.value;
      else rest.push_back(e);
    }
    if (rest.empty()) return SymVector{true, {SymElem::Const(acc)}};
    if (rest.size() == 1 && acc == (prod ? 1 : 0)) return SymVector{true, {rest[0]}};
    return SymVector{true, {SymElem::Unknown()}};
  }
  if (op == "ZerosLike") {
    auto x = in(0);
    if (!x) return std::nullopt;
    for (SymElem& e : x->elems) e = SymElem::Const(0);
    return x;
  }
  if (op == "BroadcastArgs") {
    // Right-aligned: a 1 takes the other side; a constant other than 1 is the result whatever
    // the symbol against it (which can only be 1 or equal to it).
    auto a = in(0), b = in(1);
    if (!a || !b || a->scalar || b->scalar) return std::nullopt;
    const size_t rank = std::max(a->elems.size(), b->elems.size());
    auto at = [&](const SymVector& x, size_t i) {
      const size_t pad = rank - x.elems.size();
      return i < pad ? SymElem::Const(1) : x.elems[i - pad];
    };
    SymVector r;
    for (size_t i = 0; i < rank; ++i) {
      const SymElem x = at(*a, i), y = at(*b, i);
      if (x.is_const && x.value == 1) r.elems.push_back(y);
      else if (y.is_const && y.value == 1) r.elems.push_back(x);
      else if (x == y || (x.is_const && !y.is_const)) r.elems.push_back(x);
      else if (y.is_const && !x.is_const) r.elems.push_back(y);
      else r.elems.push_back(SymElem::Unknown());
    }
    return r;
  }
  if (op == "Select" && n.inputs.size() == 3) {
    // Where(Equal(s, c), x, y) with a provable answer per element: shape dims are never negative,
    // so a symbol never equals a negative constant (ONNX Expand's -1 handling writes this).
    const Node* eq = g.Producer(n.inputs[0]);
    if (!eq || eq->removed || eq->op != "Equal" || eq->inputs.size() != 2) return std::nullopt;
    auto p = EvalImpl(g, eq->inputs[0], depth + 1, budget), q = EvalImpl(g, eq->inputs[1], depth + 1, budget);
    auto x = in(1), y = in(2);
    if (!p || !q || !x || !y) return std::nullopt;
    const size_t len = std::max({p->elems.size(), q->elems.size(), x->elems.size(), y->elems.size()});
    auto at = [&](const SymVector& v, size_t i) -> std::optional<SymElem> {
      if (v.elems.size() == 1) return v.elems[0];
      if (v.elems.size() == len) return v.elems[i];
      return std::nullopt;
    };
    SymVector r;
    r.scalar = x->scalar && y->scalar && p->scalar && q->scalar;
    for (size_t i = 0; i < len; ++i) {
      const auto pi = at(*p, i), qi = at(*q, i), xi = at(*x, i), yi = at(*y, i);
      if (!pi || !qi || !xi || !yi) return std::nullopt;
      if (*xi == *yi || (xi->is_const && yi->is_const && xi->value == yi->value)) {  // either way the same
        r.elems.push_back(*xi);
        continue;
      }
      std::optional<bool> equal;
      if (pi->is_const && qi->is_const) equal = pi->value == qi->value;
      else if (*pi == *qi) equal = true;
      else if ((pi->is_const && pi->value < 0 && qi->dim != kUnknownDim) ||
               (qi->is_const && qi->value < 0 && pi->dim != kUnknownDim))
        equal = false;
      if (!equal) return std::nullopt;
      r.elems.push_back(*equal ? *xi : *yi);
    }
    return r;
  }
  if (op == "Mul" || op == "Add" || op == "AddV2" || op == "Sub" || op == "FloorDiv" || op == "Maximum" ||
      op == "Minimum") {
    auto a = in(0), b = in(1);
    if (!a || !b) return std::nullopt;
    const size_t na = a->elems.size(), nb = b->elems.size();
    if (na != nb && na != 1 && nb != 1) return std::nullopt;
    SymVector r;
    r.scalar = a->scalar && b->scalar;
    for (size_t i = 0; i < std::max(na, nb); ++i) {
      auto e = Binary(op, a->elems[na == 1 ? 0 : i], b->elems[nb == 1 ? 0 : i]);
      r.elems.push_back(*e);
    }
    return r;
  }
  return std::nullopt;
}

std::optional<SymVector> EvalImpl(const Graph& g, ValueId id, int depth, int& budget) {
  const Value& v = g.value(id);
  if (!IsInteger(v.dtype)) return std::nullopt;
  if (v.constant) {
    const Tensor& t = *v.constant;
    if (t.rank() > 1 || static_cast<size_t>(t.num_elements()) > kMaxSymElems) return std::nullopt;
    SymVector r;
    r.scalar = t.rank() == 0;
    for (int64_t x : IntValues(t)) r.elems.push_back(SymElem::Const(x));
    return r;
  }
  if (depth <= 24 && --budget > 0) {
    const Node* n = g.Producer(id);
    if (n && !n->removed) {
      if (auto r = EvalNode(g, v, *n, depth, budget)) {
        // Never contradict the value's own shape.
        const bool scalar = v.shape.rank_known && v.shape.rank() == 0;
        const bool length_ok = !v.shape.rank_known || v.shape.rank() != 1 || !IsStatic(v.shape.dims[0]) ||
                               static_cast<size_t>(v.shape.dims[0]) == r->elems.size();
        if (length_ok && (!v.shape.rank_known || scalar == r->scalar) && (!r->scalar || r->elems.size() == 1)) return r;
      }
    }
  }
  return Fallback(v);
}

}  // namespace

std::optional<SymVector> EvalSymbolic(const Graph& g, ValueId id, int depth) {
  int budget = 256;  // node visits: bounds the work on graphs with much sharing
  return EvalImpl(g, id, depth, budget);
}

}  // namespace kiln::ir::array

namespace kiln::ir::array {

void RequireIndexInput(const InferContext& ctx, int i, const char* what, int max_rank) {
  const DType t = ctx.input_dtype(i);
  if (!IsInteger(t)) ctx.Fail(fmt::format("{} (input {}) must be an integer tensor (int32 or int64), got {}", what, i, DTypeName(t)));
  const SymShape& s = ctx.input_shape(i);
  if (s.rank_known && s.rank() > max_rank)
    ctx.Fail(fmt::format("{} (input {}) must have rank <= {}, got shape {}", what, i, max_rank,
                         const_cast<InferContext&>(ctx).graph().ShapeToString(s)));
}

std::optional<std::vector<int64_t>> ConstInts(const InferContext& ctx, int i) {
  if (i >= ctx.num_inputs()) return std::nullopt;
  if (const Tensor* t = ctx.constant_input(i)) {
    if (!IsInteger(t->dtype())) return std::nullopt;
    return IntValues(*t);
  }
  // Not folded yet but computable from constants (e.g. a Concat of constant perms).
  auto sym = EvalSymbolic(const_cast<InferContext&>(ctx).graph(), ctx.node().inputs.at(static_cast<size_t>(i)));
  if (!sym) return std::nullopt;
  std::vector<int64_t> values;
  for (const SymElem& e : sym->elems) {
    if (!e.is_const) return std::nullopt;
    values.push_back(e.value);
  }
  return values;
}

std::optional<int64_t> ConstScalar(const InferContext& ctx, int i) {
  auto v = ConstInts(ctx, i);
  if (!v || v->size() != 1) return std::nullopt;
  return (*v)[0];
}

std::optional<int64_t> StaticLength(const InferContext& ctx, int i) {
  const SymShape& s = ctx.input_shape(i);
  if (!s.rank_known) return std::nullopt;
  if (s.rank() == 0) return 1;
  if (s.rank() == 1 && IsStatic(s.dims[0])) return s.dims[0];
  return std::nullopt;
}

std::optional<std::vector<SymElem>> ShapeVectorInput(const InferContext& ctx, int i) {
  auto& g = const_cast<InferContext&>(ctx).graph();
  if (auto sym = EvalSymbolic(g, ctx.node().inputs.at(static_cast<size_t>(i)))) return sym->elems;
  if (auto n = StaticLength(ctx, i)) return std::vector<SymElem>(static_cast<size_t>(*n), SymElem::Unknown());
  return std::nullopt;
}

Dim MergeDim(const InferContext& ctx, Dim a, Dim b, const std::string& what) {
  if (a == b) return a;
  if (IsStatic(a) && IsStatic(b)) ctx.Fail(fmt::format("{}: expected {}, got {}", what, a, b));
  if (IsStatic(a)) return a;
  if (IsStatic(b)) return b;
  if (a == kUnknownDim) return b;
  if (b == kUnknownDim) return a;
  return a;  // two different symbols: keep the first
}

std::string SliceGeometry(const Shape& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& size,
                          StridedCopyGeometry* out) {
  const size_t rank = x.size();
  if (begin.size() != rank || size.size() != rank)
    return fmt::format("begin and size must have {} entries (the rank of input shape {}), got {} and {}", rank,
                       ShapeToString(x), begin.size(), size.size());
  out->begin = begin;
  out->step.assign(rank, 1);
  out->sizes.assign(rank, 0);
  for (size_t d = 0; d < rank; ++d) {
    const int64_t n = x[d];
    if (begin[d] < 0 || begin[d] > n)
      return fmt::format("expected begin[{}] in [0, {}], got {} (input shape {})", d, n, begin[d], ShapeToString(x));
    const int64_t taken = size[d] == -1 ? n - begin[d] : size[d];
    if (taken < 0 || taken > n - begin[d])
      return fmt::format("expected size[{}] in [0, {}], got {} (begin[{}] = {}, input shape {})", d, n - begin[d], size[d], d,
                         begin[d], ShapeToString(x));
    out->sizes[d] = taken;
  }
  out->out_shape = out->sizes;
  return "";
}

std::string StridedSliceGeometry(const Shape& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& end,
                                 const std::vector<int64_t>& strides, const StridedSliceMasks& masks,
                                 StridedCopyGeometry* out) {
  StridedSliceResult r;
  std::string err = ComputeStridedSlice(std::vector<Dim>(x.begin(), x.end()), static_cast<int64_t>(strides.size()), &begin,
                                        &end, &strides, masks, &r);
  if (!err.empty()) return fmt::format("{} (input shape {})", err, ShapeToString(x));
  out->begin = r.begin;
  out->step = r.strides;
  out->sizes.assign(r.processing_shape.begin(), r.processing_shape.end());
  out->out_shape.assign(r.final_shape.begin(), r.final_shape.end());
  return "";
}

std::string ReverseGeometry(const Shape& x, const std::vector<int64_t>& axes, StridedCopyGeometry* out) {
  const int64_t rank = static_cast<int64_t>(x.size());
  std::vector<bool> reversed(x.size(), false);
  for (int64_t a : axes) {
    const std::optional<int64_t> axis = NormalizeAxis(a, rank);
    if (!axis) return fmt::format("axis {} is out of range [{}, {}) for shape {}", a, -rank, rank, ShapeToString(x));
    if (reversed[static_cast<size_t>(*axis)]) return fmt::format("axis {} is specified more than once", *axis);
    reversed[static_cast<size_t>(*axis)] = true;
  }
  out->begin.clear();
  out->step.clear();
  for (size_t d = 0; d < x.size(); ++d) {
    out->begin.push_back(reversed[d] ? x[d] - 1 : 0);
    out->step.push_back(reversed[d] ? -1 : 1);
  }
  out->sizes = x;
  out->out_shape = x;
  return "";
}

}  // namespace kiln::ir::array
