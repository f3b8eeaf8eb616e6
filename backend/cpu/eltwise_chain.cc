#include "backend/cpu/eltwise_chain.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/cpu/broadcast_walk.h"
#include "backend/cpu/cpu_ops.h"
#include "common/name_registry.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::backend::cpu {
namespace {

// The steps are cloned for AVX-512 and AVX2 (chosen when the process loads): the build's baseline
// is SSE2, and polynomial functions (ErfFloat32) spend their time in these loops.
template <typename Op>
__attribute__((target_clones("avx512f", "avx2", "default"))) void UnaryStep(float* b, const float*, int64_t, int64_t n,
                                                                            const ChainStep& step) {
  ir::elementwise::State st = step.state;
  for (int64_t i = 0; i < n; ++i) b[i] = Op::template Apply<float>(b[i], st);
}

template <typename Op>
__attribute__((target_clones("avx512f", "avx2", "default"))) void BinaryStep(float* b, const float* o, int64_t os,
                                                                             int64_t n, const ChainStep& step) {
  ir::elementwise::State st = step.state;
  auto f = [&st](float x, float y) { return Op::template Apply<float>(x, y, st); };
  if (os == 0) {
    const float v = *o;
    if (step.swapped)
      for (int64_t i = 0; i < n; ++i) b[i] = f(v, b[i]);
    else
      for (int64_t i = 0; i < n; ++i) b[i] = f(b[i], v);
  } else if (os == 1) {
    if (step.swapped)
      for (int64_t i = 0; i < n; ++i) b[i] = f(o[i], b[i]);
    else
      for (int64_t i = 0; i < n; ++i) b[i] = f(b[i], o[i]);
  } else {
    if (step.swapped)
      for (int64_t i = 0; i < n; ++i) b[i] = f(o[i * os], b[i]);
    else
      for (int64_t i = 0; i < n; ++i) b[i] = f(b[i], o[i * os]);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void QuantDequantStep(float* b, const float*, int64_t,
                                                                                   int64_t n, const ChainStep& step) {
  const QuantDequantParams p = step.quant;
  for (int64_t i = 0; i < n; ++i) b[i] = QuantDequantValue(b[i], p);
}

struct StepDef {
  ChainStepFn apply = nullptr;
  bool binary = false;
};

// The fusible ops of the elementwise table, by IR op name.
const NameRegistry<StepDef>& Steps() {
  static const NameRegistry<StepDef> steps = [] {
    NameRegistry<StepDef> r("eltwise chain step");
    ir::elementwise::ForEachOp([&]<typename Op>() {
      if constexpr (Op::kInfo.fusible) {
        if constexpr (Op::kInfo.pattern == ir::elementwise::Pattern::kUnary)
          r.Add(Op::kInfo.name, {&UnaryStep<Op>, false});
        else
          r.Add(Op::kInfo.name, {&BinaryStep<Op>, true});
      }
    });
    return r;
  }();
  return steps;
}

}  // namespace

ChainSpec ReadChainSpec(const ir::Node& node) {
  const auto& steps = node.attrs.Get<std::vector<std::string>>("steps");
  const auto& operands = node.attrs.Ints("operands");
  const auto& swapped = node.attrs.Ints("swapped");
  const auto& alphas = node.attrs.Get<std::vector<double>>("alphas");
  const std::vector<double> no_quant;
  const auto& quant = node.attrs.Has("quant_dequant") ? node.attrs.Get<std::vector<double>>("quant_dequant") : no_quant;
  size_t quant_used = 0;
  if (operands.size() != steps.size() || swapped.size() != steps.size() || alphas.size() != steps.size() ||
      steps.empty())
    throw Error(ErrorCode::kInternal,
                fmt::format("node '{}' ({}): chain attributes have different lengths", node.name, node.op));
  ChainSpec spec;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i] == kQuantDequant) {
      if (operands[i] != -1 || quant_used + kQuantDequantValues > quant.size())
        throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): quantize-dequantize step {} has bad attributes",
                                                      node.name, node.op, i));
      ChainStep s;
      s.apply = &QuantDequantStep;
      s.quant = QuantDequantParamsFromValues(quant.data() + quant_used);
      quant_used += kQuantDequantValues;
      spec.steps.push_back(s);
      continue;
    }
    const StepDef* def = Steps().Find(steps[i]);
    if (!def)
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): unknown chain step '{}'", node.name, node.op, steps[i]));
    ChainStep s;
    s.apply = def->apply;
    s.operand = static_cast<int>(operands[i]);
    s.swapped = swapped[i] != 0;
    s.state.param = alphas[i];
    if (def->binary != (s.operand >= 0) || s.operand >= static_cast<int>(node.inputs.size()))
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): step {} has a bad operand", node.name, node.op, i));
    spec.steps.push_back(s);
  }
  if (node.attrs.Has("quantize_output"))
    spec.quantize_output = QuantizeParamsFromValues(node.attrs.Get<std::vector<double>>("quantize_output"), node);
  if (quant_used != quant.size())
    throw Error(
        ErrorCode::kInternal,
        fmt::format("node '{}' ({}): quantize-dequantize attributes do not match the steps", node.name, node.op));
  return spec;
}

namespace {

// Where the chain's tiles go: float32 as computed, or quantized to int8 / uint8 (one byte an element).
struct ChainOutput {
  void* data;
  const std::optional<QuantizeParams>& quantize;

  void Store(const float* tile, int64_t begin, int64_t len) const {
    if (quantize)
      QuantizeRange(tile, static_cast<char*>(data) + begin, len, *quantize);
    else
      std::copy(tile, tile + len, static_cast<float*>(data) + begin);
  }
};

// The chain over n contiguous elements in rows of `inner`, every operand repeating each row:
// tiles of whole rows, the operands expanded once into one tile's pattern. Large inputs split
// their tiles over oneDNN's OpenMP team (idle between oneDNN calls) when the build has OpenMP.
void RunPeriodic(const ChainSpec& spec, const std::vector<const float*>& base,
                 const std::vector<std::vector<int64_t>>& cs, int64_t inner, int64_t n, const ChainOutput& out) {
  constexpr int64_t kTileRows = 512;
  const int64_t tile = std::max<int64_t>(1, kTileRows / inner) * inner;
  std::vector<std::vector<float>> pattern(base.size());
  for (size_t i = 1; i < base.size(); ++i) {
    const int64_t os = cs[i].back();
    if (os == 0) continue;  // a scalar: the steps read it as one
    pattern[i].resize(static_cast<size_t>(tile));
    for (int64_t j = 0; j < tile; ++j) pattern[i][static_cast<size_t>(j)] = base[i][(j % inner) * os];
  }
  const int64_t tiles = (n + tile - 1) / tile;
#if defined(_OPENMP)
#pragma omp parallel if (n >= (int64_t{1} << 16))
#endif
  {
    std::vector<float> buf(static_cast<size_t>(tile));
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t begin = t * tile, len = std::min(tile, n - begin);
      std::copy(base[0] + begin, base[0] + begin + len, buf.data());
      for (const ChainStep& s : spec.steps) {
        const float* o = nullptr;
        int64_t os = 0;
        if (s.operand >= 0) {
          const size_t j = static_cast<size_t>(s.operand);
          os = pattern[j].empty() ? 0 : 1;
          o = pattern[j].empty() ? base[j] : pattern[j].data();
        }
        s.apply(buf.data(), o, os, len, s);
      }
      out.Store(buf.data(), begin, len);
    }
  }
}

// One tile of `len` elements: the chain input x copied into buf, every step applied there, the
// result stored at element `begin` of out. Operand j of the tile starts at operand(j), stride cs[j].back().
template <typename Operand>
void RunTile(const ChainSpec& spec, const std::vector<std::vector<int64_t>>& cs, const float* x, const ChainOutput& out,
             int64_t begin, int64_t len, float* buf, const Operand& operand) {
  std::copy(x, x + len, buf);
  for (const ChainStep& s : spec.steps) {
    const float* o = nullptr;
    int64_t os = 0;
    if (s.operand >= 0) {
      const size_t j = static_cast<size_t>(s.operand);
      os = cs[j].back();
      o = operand(j);
    }
    s.apply(buf, o, os, len, s);
  }
  out.Store(buf, begin, len);
}

// One long row (every operand contiguous along it, or a scalar): its tiles split over oneDNN's
// OpenMP team when the build has OpenMP.
void RunOneRow(const ChainSpec& spec, const std::vector<const float*>& base,
               const std::vector<std::vector<int64_t>>& cs, int64_t n, const ChainOutput& out) {
  constexpr int64_t kTile = 512;
  const int64_t tiles = (n + kTile - 1) / kTile;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (int64_t t = 0; t < tiles; ++t) {
    alignas(64) float buf[kTile];
    const int64_t begin = t * kTile, len = std::min(kTile, n - begin);
    RunTile(spec, cs, base[0] + begin, out, begin, len, buf, [&](size_t j) { return base[j] + begin * cs[j].back(); });
  }
}

}  // namespace

void RunEltwiseChain(const ChainSpec& spec, std::span<const Tensor> in, void* out_data) {
  const ChainOutput out{out_data, spec.quantize_output};
  const Shape& shape = in[0].shape();
  const int64_t n = in[0].num_elements();
  if (n == 0) return;
  const size_t k = in.size();
  // Dims that every input walks the same way (contiguous together or broadcast together) collapse.
  const BroadcastWalk walk = CollapsedBroadcastWalk(shape, in, "eltwise chain");
  const std::vector<int64_t>& dims = walk.dims;
  const std::vector<std::vector<int64_t>>& cs = walk.strides;
  const int64_t inner = dims.back();
  const int64_t rows = n / inner;
  const size_t outer = dims.size() - 1;

  std::vector<const float*> base(k);
  for (size_t i = 0; i < k; ++i) base[i] = in[i].data<float>();
  constexpr int64_t kTile = 512;
  // Short rows whose operands vary only along the row (per-channel vectors of a channels-last
  // tensor): the operands repeat every row, so a tile spans many rows instead of a few elements.
  bool periodic = inner < kTile / 2 && rows > 1;
  for (size_t i = 1; periodic && i < k; ++i)
    for (size_t d = 0; periodic && d < outer; ++d) periodic = cs[i][d] == 0;
  if (periodic) {
    RunPeriodic(spec, base, cs, inner, n, out);
    return;
  }
  if (rows == 1 && inner >= (int64_t{1} << 15)) {  // 16 Ki elements or more for each of two threads
    RunOneRow(spec, base, cs, inner, out);
    return;
  }
  // Rows in blocks of about 16 Ki elements, split over oneDNN's OpenMP team when the build has
  // OpenMP and there are two blocks or more (a small BERT's [1,4,128,128] scores: 4 blocks); each
  // block finds its rows' offsets from its first row's multi-index.
  const int64_t rows_per_block = std::max<int64_t>(1, (int64_t{1} << 14) / inner);
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (blocks >= 2)
#endif
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t first = block * rows_per_block, last = std::min(rows, first + rows_per_block);
    std::vector<int64_t> offset(k, 0), idx(outer, 0);
    for (int64_t rest = first, d = static_cast<int64_t>(outer) - 1; d >= 0; --d) {
      idx[static_cast<size_t>(d)] = rest % dims[static_cast<size_t>(d)];
      rest /= dims[static_cast<size_t>(d)];
      for (size_t i = 0; i < k; ++i) offset[i] += idx[static_cast<size_t>(d)] * cs[i][static_cast<size_t>(d)];
    }
    alignas(64) float buf[kTile];
    for (int64_t row = first; row < last; ++row) {
      const float* xrow = base[0] + row * inner;
      for (int64_t t = 0; t < inner; t += kTile) {
        const int64_t len = std::min(kTile, inner - t);
        RunTile(spec, cs, xrow + t, out, row * inner + t, len, buf,
                [&](size_t j) { return base[j] + offset[j] + t * cs[j].back(); });
      }
      // Next row: advance the outer multi-index and every input's offset.
      for (size_t d = outer; d-- > 0;) {
        for (size_t i = 0; i < k; ++i) offset[i] += cs[i][d];
        if (++idx[d] < dims[d]) break;
        for (size_t i = 0; i < k; ++i) offset[i] -= cs[i][d] * dims[d];
        idx[d] = 0;
      }
    }
  }
}

}  // namespace kiln::backend::cpu
