// cpu.RNN / cpu.GRU / cpu.LSTM: ONNX's recurrent ops on oneDNN's RNN primitives
// (vanilla_rnn_forward, gru_forward, lbr_gru_forward for linear_before_reset, lstm_forward;
// forward_inference), one layer, a primitive per X shape.
//
// The constant weights are repacked once, when the kernel is made, from ONNX's layout and gate
// order into oneDNN's plain ones, and reordered once per primitive into the layout the primitive
// asks for (packed GEMM weights on x86):
//   W [nd, G*H, I] -> weights_layer ldigo [1, nd, I, G, H]; R [nd, G*H, H] -> weights_iter ldigo;
//   gates: ONNX LSTM i, o, f, c -> oneDNN i, f, c, o; GRU z, r, h -> u, r, o (the same gates);
//   B [nd, 2*G*H] (Wb, Rb) -> bias ldgo [1, nd, G, H] = Wb + Rb (summed in double, rounded once);
//     linear-before-reset GRU has 4 bias gates: Wb+Rb for u and r, Wbh, then Rbh (oneDNN adds it
//     to U_o h before the reset gate multiplies it, as ONNX's Rbh);
//   P [nd, 3H] (ONNX Pi, Po, Pf) -> weights_peephole ldgo [1, nd, 3, H] (oneDNN i, f, o).
// X, Y, Y_h, Y_c are used in place where ONNX's layout is oneDNN's (tnc / ntc for X and Y,
// ldnc for the states); otherwise (bidirectional Y in layout 0, bidirectional states in layout 1,
// one LSTM initial state given without the other) through copies in the scratch buffer.
// Shapes oneDNN refuses (and sequence_lens other than the full length) run the reference kernel.
#include <fmt/format.h>

#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "backend/reference/kernel.h"
#include "kiln/half.h"

namespace kiln::backend::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr auto kBF16 = memory::data_type::bf16;

enum class Cell { kRnn, kGru, kLbrGru, kLstm };

size_t Align(size_t bytes) { return (bytes + 63) / 64 * 64; }

class RecurrentKernel final : public Kernel {
 public:
  RecurrentKernel(const ir::Graph& graph, const ir::Node& node, std::shared_ptr<const KernelEnv> env)
      : node_(node), env_(std::move(env)) {
    const ir::AttrMap& a = node.attrs;
    reference_ = node;
    reference_.op = node.op == kLstm ? "LSTM" : node.op == kGru ? "GRU" : "RNN";
    cell_ = node.op == kLstm  ? Cell::kLstm
            : node.op == kGru ? (a.GetOr<bool>("linear_before_reset", false) ? Cell::kLbrGru : Cell::kGru)
                              : Cell::kRnn;
    const std::string direction = a.GetOr<std::string>("direction", "forward");
    nd_ = direction == "bidirectional" ? 2 : 1;
    direction_ = direction == "bidirectional" ? dnnl::rnn_direction::bidirectional_concat
                 : direction == "reverse"     ? dnnl::rnn_direction::unidirectional_right2left
                                              : dnnl::rnn_direction::unidirectional_left2right;
    hidden_ = a.Get<int64_t>("hidden_size");
    batch_major_ = a.GetOr<int64_t>("layout", 0) == 1;
    const auto acts = a.GetOr<std::vector<std::string>>("activations", {});
    activation_ = acts.empty() || acts[0] == "Tanh" ? dnnl::algorithm::eltwise_tanh
                  : acts[0] == "Relu"               ? dnnl::algorithm::eltwise_relu
                                                    : dnnl::algorithm::eltwise_logistic;
    gates_ = cell_ == Cell::kLstm ? 4 : cell_ == Cell::kRnn ? 1 : 3;

    const auto optional = a.GetOr<std::vector<std::string>>("optional_inputs", {});
    for (size_t i = 0; i < optional.size(); ++i) {
      const int index = 3 + static_cast<int>(i);
      if (optional[i] == "sequence_lens")
        lens_input_ = index;
      else if (optional[i] == "initial_h")
        h0_input_ = index;
      else if (optional[i] == "initial_c")
        c0_input_ = index;
    }
    auto constant = [&](size_t index, const char* what) -> const Tensor& {
      const Tensor* t = index < node.inputs.size() ? graph.ConstantOf(node.inputs[index]) : nullptr;
      if (!t || t->dtype() != DType::kFloat32)
        throw Error(ErrorCode::kInternal,
                    fmt::format("node '{}' ({}): {} must be a float32 constant", node.name, node.op, what));
      return *t;
    };
    const Tensor& w = constant(1, "W");
    const Tensor& r = constant(2, "R");
    if (w.shape().size() != 3 || w.dim(0) != nd_ || w.dim(1) != gates_ * hidden_ ||
        r.shape() != Shape{nd_, gates_ * hidden_, hidden_})
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): W {} / R {} do not fit hidden_size {} and {} direction(s)", node.name,
                              node.op, ShapeToString(w.shape()), ShapeToString(r.shape()), hidden_, nd_));
    input_size_ = w.dim(2);
    weights_layer_ = RepackWeights(w, input_size_);
    weights_iter_ = RepackWeights(r, hidden_);
    bias_gates_ = cell_ == Cell::kLbrGru ? 4 : gates_;
    // oneDNN 2.6's CPU RNN implementations all refuse a zero bias descriptor (the documented
    // "no bias"): without B the bias is zeros.
    bias_.assign(static_cast<size_t>(nd_ * bias_gates_ * hidden_), 0.f);
    for (size_t i = 0; i < optional.size(); ++i) {
      if (optional[i] == "B") RepackBias(constant(3 + i, "B"));
      if (optional[i] == "P") RepackPeephole(constant(3 + i, "P"));
    }
  }

  std::string Describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return DescribeShapeCache(
        cache_,
        [&](const Prim& p) {
          if (p.bf16) return "onednn:" + p.impl + " [bf16]";
          if (env_->bf16_math || !p.bf16_failure.empty())
            return "onednn:" + p.impl + " [f32: " + (p.bf16_failure.empty() ? "no bf16 kernel" : p.bf16_failure) + "]";
          return "onednn:" + p.impl;
        },
        "onednn rnn (no primitive yet)");
  }

  void Prepare(const std::vector<Shape>& shapes) override {
    if (NumElements(shapes.at(0)) > 0) Get(shapes[0]);
  }

  size_t scratchpad_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    size_t most = 0;
    for (const auto& [shape, p] : cache_)
      if (p) most = std::max(most, p->scratch_total);
    return most;
  }

  void Run(std::span<const Tensor>, Tensor&, ExecContext&) const override {
    throw Error(ErrorCode::kInternal,
                fmt::format("node '{}' ({}) has several outputs: RunOutputs runs it", node_.name, node_.op));
  }

  void RunOutputs(std::span<const Tensor> in, std::span<Tensor> outs, ExecContext& ctx) const override {
    const Tensor& x = in[0];
    std::shared_ptr<const Prim> prim = NumElements(x.shape()) > 0 && FullLength(in) ? Get(x.shape()) : nullptr;
    if (!prim) {
      RunReference(in, outs);
      return;
    }
    const dnnl::engine& eng = env_->engine;
    char* scratch = static_cast<char*>(ctx.Scratch(prim->scratch_total));
    auto at = [&](size_t offset) -> void* { return scratch + offset; };
    const int64_t N = prim->n, nd = nd_;
    const size_t state_elems = static_cast<size_t>(nd * N * hidden_);
    const bool lstm = cell_ == Cell::kLstm, bf16 = prim->bf16;
    // States in layout 1 are [N, nd, H]: oneDNN's ldnc [1, nd, N, H] only when nd == 1.
    const bool state_copy = batch_major_ && nd == 2;

    std::unordered_map<int, memory> args;
    void* src_layer = const_cast<void*>(x.raw_data());
    if (bf16) {  // bf16 X, h states and Y (the cell states c and the bias stay f32)
      src_layer = at(prim->x_offset);
      ToBf16(x.data<float>(), static_cast<uint16_t*>(src_layer), x.num_elements());
    }
    args.emplace(DNNL_ARG_SRC_LAYER, memory(prim->src_layer_md, eng, src_layer));
    args.emplace(DNNL_ARG_WEIGHTS_LAYER, prim->weights_layer);
    args.emplace(DNNL_ARG_WEIGHTS_ITER, prim->weights_iter);
    if (prim->bias) args.emplace(DNNL_ARG_BIAS, *prim->bias);
    if (prim->peephole) args.emplace(DNNL_ARG_WEIGHTS_PEEPHOLE, *prim->peephole);
    if (prim->scratch_bytes > 0)
      args.emplace(DNNL_ARG_SCRATCHPAD, memory(prim->scratch_md, eng, at(prim->scratch_offset)));

    // Initial states: the input in place, or in scratch: transposed (layout 1, two directions),
    // converted to bf16, or zeros (the other LSTM state given alone).
    const bool has_h0 = h0_input_ >= 0, has_c0 = lstm && c0_input_ >= 0;
    if (has_h0 || has_c0) {
      auto state_in = [&](int input, size_t offset, bool to_bf16) -> void* {
        if (input < 0) {
          std::memset(at(offset), 0, state_elems * (to_bf16 ? 2 : 4));
          return at(offset);
        }
        const float* src = in[static_cast<size_t>(input)].data<float>();
        if (!state_copy && !to_bf16) return const_cast<float*>(src);
        if (to_bf16)
          ToLdnc(src, static_cast<uint16_t*>(at(offset)), N, state_copy);
        else
          ToLdnc(src, static_cast<float*>(at(offset)), N, state_copy);
        return at(offset);
      };
      args.emplace(DNNL_ARG_SRC_ITER, memory(prim->state_md, eng, state_in(h0_input_, prim->h0_offset, bf16)));
      if (lstm)
        args.emplace(DNNL_ARG_SRC_ITER_C,
                     memory(prim->state_c_md, eng, state_in(has_c0 ? c0_input_ : -1, prim->c0_offset, false)));
    }
    // Y: oneDNN's tnc / ntc with the directions concatenated along C is ONNX's Y except for two
    // directions in layout 0 ([T, nd, N, H]).
    const bool y_copy = !batch_major_ && nd == 2;
    void* y_dnnl = y_copy || bf16 ? at(prim->y_offset) : outs[0].raw_data();
    args.emplace(DNNL_ARG_DST_LAYER, memory(prim->dst_layer_md, eng, y_dnnl));
    void* h_out = state_copy || bf16 ? at(prim->h_offset) : outs[1].raw_data();
    args.emplace(DNNL_ARG_DST_ITER, memory(prim->state_md, eng, h_out));
    void* c_out = nullptr;
    if (lstm) {
      c_out = state_copy ? at(prim->c_offset) : outs[2].raw_data();
      args.emplace(DNNL_ARG_DST_ITER_C, memory(prim->state_c_md, eng, c_out));
    }
    prim->prim.execute(ctx.stream, args);
    ctx.stream.wait();

    if (bf16) {
      WriteY(static_cast<const uint16_t*>(y_dnnl), outs[0].data<float>(), prim->t, N, y_copy);
      FromLdnc(static_cast<const uint16_t*>(h_out), outs[1].data<float>(), N, state_copy);
    } else {
      if (y_copy) WriteY(static_cast<const float*>(y_dnnl), outs[0].data<float>(), prim->t, N, true);
      if (state_copy) FromLdnc(static_cast<const float*>(h_out), outs[1].data<float>(), N, true);
    }
    if (lstm && state_copy) FromLdnc(static_cast<const float*>(c_out), outs[2].data<float>(), N, true);
  }

  std::optional<PrimitivePrecision> primitive_precision() const override {
    std::lock_guard<std::mutex> lock(mu_);
    PrimitivePrecision p;
    for (const auto& [shape, prim] : cache_) ++(prim && prim->bf16 ? p.bf16 : p.f32);
    return p;
  }

 private:
  struct Prim {
    dnnl::primitive prim;
    std::string impl;
    int64_t t = 0, n = 0;
    bool bf16 = false;         // bf16 X, weights, h states and Y (BF16 engines)
    std::string bf16_failure;  // why an f32 primitive in a BF16 engine (oneDNN's message)
    memory::desc src_layer_md, dst_layer_md, state_md, state_c_md, scratch_md;
    memory weights_layer, weights_iter;
    std::optional<memory> bias, peephole;  // bias: always (zeros without B)
    size_t scratch_bytes = 0, scratch_offset = 0;
    size_t x_offset = 0, y_offset = 0, h0_offset = 0, c0_offset = 0, h_offset = 0, c_offset = 0, scratch_total = 0;
  };

  // ONNX gate g of oneDNN's gate `dnnl_gate`.
  int OnnxGate(int dnnl_gate) const {
    static constexpr int kLstmGates[] = {0, 2, 3, 1};  // oneDNN i, f, c, o <- ONNX i, o, f, c
    return cell_ == Cell::kLstm ? kLstmGates[dnnl_gate] : dnnl_gate;
  }

  // [nd, G*H, in] (ONNX) -> ldigo [1, nd, in, G, H].
  std::vector<float> RepackWeights(const Tensor& w, int64_t in) const {
    const int64_t G = gates_, H = hidden_;
    std::vector<float> out(static_cast<size_t>(nd_ * in * G * H));
    const float* src = w.data<float>();
    for (int64_t d = 0; d < nd_; ++d)
      for (int64_t i = 0; i < in; ++i)
        for (int64_t g = 0; g < G; ++g)
          for (int64_t o = 0; o < H; ++o)
            out[static_cast<size_t>(((d * in + i) * G + g) * H + o)] =
                src[(d * G * H + OnnxGate(static_cast<int>(g)) * H + o) * in + i];
    return out;
  }

  void RepackBias(const Tensor& b) {
    const int64_t G = gates_, H = hidden_;
    if (b.shape() != Shape{nd_, 2 * G * H})
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): B {} does not fit", node_.name, node_.op, ShapeToString(b.shape())));
    for (int64_t d = 0; d < nd_; ++d) {
      const float* wb = b.data<float>() + d * 2 * G * H;
      const float* rb = wb + G * H;
      for (int64_t g = 0; g < G; ++g)
        for (int64_t o = 0; o < H; ++o) {
          const int64_t k = OnnxGate(static_cast<int>(g)) * H + o;
          // lbr GRU's candidate gate: Wbh alone here, Rbh in the fourth gate.
          const bool split = cell_ == Cell::kLbrGru && g == 2;
          bias_[static_cast<size_t>((d * bias_gates_ + g) * H + o)] =
              split ? wb[k] : static_cast<float>(static_cast<double>(wb[k]) + static_cast<double>(rb[k]));
          if (split) bias_[static_cast<size_t>((d * bias_gates_ + 3) * H + o)] = rb[k];
        }
    }
  }

  void RepackPeephole(const Tensor& p) {
    const int64_t H = hidden_;
    if (p.shape() != Shape{nd_, 3 * H})
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): P {} does not fit", node_.name, node_.op, ShapeToString(p.shape())));
    static constexpr int kOrder[] = {0, 2, 1};  // oneDNN i, f, o <- ONNX Pi, Po, Pf
    peephole_.resize(static_cast<size_t>(nd_ * 3 * H));
    for (int64_t d = 0; d < nd_; ++d)
      for (int64_t g = 0; g < 3; ++g)
        std::memcpy(&peephole_[static_cast<size_t>((d * 3 + g) * H)], p.data<float>() + (d * 3 + kOrder[g]) * H,
                    static_cast<size_t>(H) * sizeof(float));
  }

  static float Load(float v) { return v; }
  static float Load(uint16_t v) { return BFloat16::ToFloat(v); }
  static void Store(float v, float* d) { *d = v; }
  static void Store(float v, uint16_t* d) { *d = BFloat16::FromFloat(v); }
  static void ToBf16(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = BFloat16::FromFloat(src[i]);
  }

  // A state as oneDNN's ldnc [nd, N, H] from ONNX's (layout 1 with two directions: [N, nd, H]).
  template <typename D>
  void ToLdnc(const float* src, D* dst, int64_t n, bool transposed) const {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t d = 0; d < nd_; ++d)
        for (int64_t h = 0; h < hidden_; ++h)
          Store(src[((transposed ? b * nd_ + d : d * n + b)) * hidden_ + h], dst + (d * n + b) * hidden_ + h);
  }
  template <typename S>
  void FromLdnc(const S* src, float* dst, int64_t n, bool transposed) const {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t d = 0; d < nd_; ++d)
        for (int64_t h = 0; h < hidden_; ++h)
          dst[(transposed ? b * nd_ + d : d * n + b) * hidden_ + h] = Load(src[(d * n + b) * hidden_ + h]);
  }
  // Y from oneDNN's dst_layer ([T, N, nd*H] tnc, or ntc in layout 1); `scatter`: to layout 0's
  // [T, nd, N, H] with two directions, else element for element.
  template <typename S>
  void WriteY(const S* src, float* y, int64_t t_len, int64_t n, bool scatter) const {
    const int64_t H = hidden_, nd = nd_;
    if (!scatter) {
      for (int64_t i = 0; i < t_len * n * nd * H; ++i) y[i] = Load(src[i]);
      return;
    }
    for (int64_t t = 0; t < t_len; ++t)
      for (int64_t d = 0; d < nd; ++d)
        for (int64_t b = 0; b < n; ++b)
          for (int64_t h = 0; h < H; ++h)
            y[((t * nd + d) * n + b) * H + h] = Load(src[(t * n + b) * nd * H + d * H + h]);
  }

  // sequence_lens (constant when the node was claimed) is the full length in every row.
  bool FullLength(std::span<const Tensor> in) const {
    if (lens_input_ < 0) return true;
    const Tensor& lens = in[static_cast<size_t>(lens_input_)];
    const int64_t t = in[0].dim(batch_major_ ? 1 : 0);
    for (int64_t i = 0; i < lens.num_elements(); ++i)
      if (lens.data<int32_t>()[i] != t) return false;
    return true;
  }

  void RunReference(std::span<const Tensor> in, std::span<Tensor> outs) const {
    std::vector<Tensor> r = reference::RunReferenceKernel(reference_, in, nullptr);
    for (size_t i = 0; i < outs.size() && i < r.size(); ++i)
      if (outs[i].byte_size() > 0) std::memcpy(outs[i].raw_data(), r[i].raw_data(), outs[i].byte_size());
  }

  // A plain f32 constant in the layout `want`: reordered once per layout and shared by every
  // primitive that asks for it (a dynamic profile makes a primitive per X shape; most want the
  // same weights layout), or the constant itself when the layouts agree. Called under mu_.
  memory Reordered(const memory::desc& user_md, const std::vector<float>& data, const memory::desc& want) const {
    // oneDNN only reads the user memory; the kernel owns `data` for as long as the primitive.
    memory user(user_md, env_->engine, const_cast<float*>(data.data()));
    if (want == user_md) return user;
    for (const auto& [source, md, mem] : reordered_)
      if (source == data.data() && md == want) return mem;
    memory out(want, env_->engine);
    dnnl::stream s(env_->engine);
    dnnl::reorder(user, out).execute(s, user, out);
    s.wait();
    reordered_.emplace_back(data.data(), want, out);
    return out;
  }

  // Everything of `p` but the primitive itself: weights in the primitive's layouts, scratch.
  template <typename PD>
  void Finish(const PD& pd, Prim* p) const {
    const int64_t I = input_size_, H = hidden_, G = gates_;
    p->impl = pd.impl_info_str();
    p->weights_layer =
        Reordered(memory::desc({1, nd_, I, G, H}, kF32, Tag::ldigo), weights_layer_, pd.weights_layer_desc());
    p->weights_iter =
        Reordered(memory::desc({1, nd_, H, G, H}, kF32, Tag::ldigo), weights_iter_, pd.weights_iter_desc());
    p->bias = Reordered(memory::desc({1, nd_, bias_gates_, H}, kF32, Tag::ldgo), bias_, pd.bias_desc());
    if constexpr (std::is_same_v<PD, dnnl::lstm_forward::primitive_desc>) {
      if (!peephole_.empty())
        p->peephole = Reordered(memory::desc({1, nd_, 3, H}, kF32, Tag::ldgo), peephole_, pd.weights_peephole_desc());
    }
    p->scratch_md = pd.scratchpad_desc();
    p->scratch_bytes = p->scratch_md.get_size();
    // Scratch: oneDNN's scratchpad, then the layout copies this shape needs.
    size_t off = Align(p->scratch_bytes);
    const size_t state = Align(static_cast<size_t>(nd_ * p->n * H) * sizeof(float));
    if (p->bf16) {
      p->x_offset = off;
      off += Align(static_cast<size_t>(p->t * p->n * I) * sizeof(uint16_t));
    }
    if ((!batch_major_ && nd_ == 2) || p->bf16) {
      p->y_offset = off;
      off += Align(static_cast<size_t>(p->t * p->n * nd_ * H) * sizeof(float));
    }
    for (size_t* o : {&p->h0_offset, &p->c0_offset, &p->h_offset, &p->c_offset}) {
      *o = off;
      off += state;
    }
    p->scratch_total = off;
  }

  // A primitive for X of shape `x`: bf16 (BF16 engines) or f32; throws dnnl::error when oneDNN
  // has none.
  std::shared_ptr<Prim> Create(const Shape& x, bool bf16) const {
    auto p = std::make_shared<Prim>();
    p->bf16 = bf16;
    const memory::data_type dt = bf16 ? kBF16 : kF32;
    p->t = x[batch_major_ ? 1 : 0];
    p->n = x[batch_major_ ? 0 : 1];
    const int64_t T = p->t, N = p->n, H = hidden_, I = input_size_, G = gates_;
    const Tag seq_tag = batch_major_ ? Tag::ntc : Tag::tnc;
    p->src_layer_md = memory::desc({T, N, I}, dt, seq_tag);
    p->dst_layer_md = memory::desc({T, N, nd_ * H}, dt, seq_tag);
    p->state_md = memory::desc({1, nd_, N, H}, dt, Tag::ldnc);
    p->state_c_md = memory::desc({1, nd_, N, H}, kF32, Tag::ldnc);
    const memory::desc any_wl({1, nd_, I, G, H}, dt, Tag::any), any_wi({1, nd_, H, G, H}, dt, Tag::any);
    const memory::desc bias_md({1, nd_, bias_gates_, H}, kF32, Tag::ldgo);
    const bool has_state = h0_input_ >= 0 || (cell_ == Cell::kLstm && c0_input_ >= 0);
    const memory::desc src_iter = has_state ? p->state_md : memory::desc();
    const memory::desc src_iter_c = has_state ? p->state_c_md : memory::desc();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const auto prop = dnnl::prop_kind::forward_inference;
    const dnnl::engine& eng = env_->engine;
    switch (cell_) {
      case Cell::kRnn: {
        const dnnl::vanilla_rnn_forward::primitive_desc pd(
            dnnl::vanilla_rnn_forward::desc(prop, activation_, direction_, p->src_layer_md, src_iter, any_wl, any_wi,
                                            bias_md, p->dst_layer_md, p->state_md),
            attr, eng);
        Finish(pd, p.get());
        p->prim = dnnl::vanilla_rnn_forward(pd);
        break;
      }
      case Cell::kGru: {
        const dnnl::gru_forward::primitive_desc pd(
            dnnl::gru_forward::desc(prop, direction_, p->src_layer_md, src_iter, any_wl, any_wi, bias_md,
                                    p->dst_layer_md, p->state_md),
            attr, eng);
        Finish(pd, p.get());
        p->prim = dnnl::gru_forward(pd);
        break;
      }
      case Cell::kLbrGru: {
        const dnnl::lbr_gru_forward::primitive_desc pd(
            dnnl::lbr_gru_forward::desc(prop, direction_, p->src_layer_md, src_iter, any_wl, any_wi, bias_md,
                                        p->dst_layer_md, p->state_md),
            attr, eng);
        Finish(pd, p.get());
        p->prim = dnnl::lbr_gru_forward(pd);
        break;
      }
      case Cell::kLstm: {
        const memory::desc peep = peephole_.empty() ? memory::desc() : memory::desc({1, nd_, 3, H}, kF32, Tag::ldgo);
        const dnnl::lstm_forward::primitive_desc pd(
            dnnl::lstm_forward::desc(prop, direction_, p->src_layer_md, src_iter, src_iter_c, any_wl, any_wi, peep,
                                     bias_md, p->dst_layer_md, p->state_md, p->state_c_md),
            attr, eng);
        Finish(pd, p.get());
        p->prim = dnnl::lstm_forward(pd);
        break;
      }
    }
    // As the conv / matmul kernels: bf16 only on a real (non-reference) implementation; oneDNN
    // 2.6 names its GEMM-based RNN implementation "ref" (the only one for GRU here).
    if (bf16 && p->impl.starts_with("ref"))
      throw dnnl::error(dnnl_unimplemented, "oneDNN's only bf16 implementation for it is 'ref'");
    return p;
  }

  std::shared_ptr<const Prim> Get(const Shape& x) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(x); it != cache_.end()) return it->second;
    std::shared_ptr<Prim> p;
    if (x.size() == 3 && x[2] == input_size_) {
      std::string bf16_failure;
      if (env_->bf16_math) {
        try {
          p = Create(x, /*bf16=*/true);
        } catch (const dnnl::error& e) {
          bf16_failure = e.what();
        }
      }
      if (!p) {
        try {
          p = Create(x, /*bf16=*/false);
          p->bf16_failure = bf16_failure;
        } catch (const dnnl::error&) {
          p = nullptr;  // no oneDNN implementation for this shape: the reference kernel
        }
      }
    }
    cache_.emplace(x, p);
    return p;
  }

  ir::Node node_, reference_;
  std::shared_ptr<const KernelEnv> env_;
  Cell cell_ = Cell::kLstm;
  int64_t nd_ = 1, hidden_ = 0, input_size_ = 0, gates_ = 4, bias_gates_ = 0;
  bool batch_major_ = false;
  dnnl::rnn_direction direction_ = dnnl::rnn_direction::unidirectional_left2right;
  dnnl::algorithm activation_ = dnnl::algorithm::eltwise_tanh;
  int lens_input_ = -1, h0_input_ = -1, c0_input_ = -1;
  std::vector<float> weights_layer_, weights_iter_, bias_, peephole_;
  mutable std::mutex mu_;
  mutable std::map<Shape, std::shared_ptr<Prim>> cache_;
  // Constants in the layouts primitives asked for: (repacked constant, layout, memory).
  mutable std::vector<std::tuple<const float*, memory::desc, memory>> reordered_;
};

}  // namespace

std::unique_ptr<Kernel> MakeRecurrentKernel(const ir::Graph& graph, const ir::Node& node,
                                            std::shared_ptr<const KernelEnv> env) {
  return std::make_unique<RecurrentKernel>(graph, node, std::move(env));
}

}  // namespace kiln::backend::cpu
