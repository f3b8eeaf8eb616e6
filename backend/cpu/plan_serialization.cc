#include "backend/cpu/plan_serialization.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <map>
#include <memory>

#include "backend/cpu/cpu_ops.h"
#include "common/crc32c.h"
#include "ir/graph_util.h"
#include "ir/op_schema.h"

namespace kiln::backend::cpu {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'C', 'P', 'U', 'P'};
// Version 2 dropped the body checksum: the engine file's CRC32C covers the payload.
constexpr uint32_t kVersion = 2;
constexpr size_t kHeaderBytes = 8 + 4 + 8;
constexpr int kMaxGraphDepth = 16;

// Payloads written before the backend's ops were registered as IR ops name them without the
// "cpu." prefix; the format is otherwise unchanged, so they decode with the names mapped.
std::string CurrentOpName(std::string name) {
  static const std::map<std::string, std::string, std::less<>> kRenamed = {
      {"CpuFusedConv2D", std::string(kFusedConv2D)},
      {"CpuFusedMatMul", std::string(kFusedMatMul)},
      {"CpuFusedBatchMatMul", std::string(kFusedBatchMatMul)},
      {"CpuEltwiseChain", std::string(kEltwiseChain)},
  };
  auto it = kRenamed.find(name);
  return it == kRenamed.end() ? name : it->second;
}

enum AttrTag : uint8_t {
  kInt = 0, kDouble, kBool, kString, kDType, kInts, kDoubles, kStrings, kDTypes, kTensor, kSubgraph, kNullSubgraph,
};

// ---- the segment fingerprint ----

// CRC32C of the segment's structure in the low 32 bits, its length in bytes in the high 32. It
// tells a payload paired with another segment apart; integrity is the engine file's CRC32C.
class SegmentFingerprint {
 public:
  void Put(const void* data, size_t n) {
    crc_ = crc32c::Extend(crc_, data, n);
    size_ += n;
  }
  uint64_t Value() const { return (static_cast<uint64_t>(static_cast<uint32_t>(size_)) << 32) | crc_; }

 private:
  uint32_t crc_ = 0;
  uint64_t size_ = 0;
};

// ---- writing ----

class Writer {
 public:
  // With `fingerprint`, bytes go to the fingerprint and names are left out (the segment hash).
  explicit Writer(std::string* out) : out_(out) {}
  explicit Writer(SegmentFingerprint* fingerprint) : fingerprint_(fingerprint) {}

  void Raw(const void* p, size_t n) {
    if (out_) out_->append(static_cast<const char*>(p), n);
    else
      fingerprint_->Put(p, n);
  }
  template <typename T>
  void Pod(T v) { Raw(&v, sizeof v); }
  void U8(uint8_t v) { Pod(v); }
  void U32(uint32_t v) { Pod(v); }
  void U64(uint64_t v) { Pod(v); }
  void I64(int64_t v) { Pod(v); }
  void F64(double v) { Pod(v); }
  void Count(size_t n) {
    if (n > std::numeric_limits<uint32_t>::max()) throw Error(ErrorCode::kInternal, "CPU engine payload: a count does not fit 32 bits");
    U32(static_cast<uint32_t>(n));
  }
  void Str(std::string_view s) {
    Count(s.size());
    Raw(s.data(), s.size());
  }
  void Name(std::string_view s) {
    if (!fingerprint_) Str(s);
  }
  void Type(DType d) { Pod(static_cast<int32_t>(d)); }

  void Sym(const ir::SymShape& s) {
    U8(s.rank_known ? 1 : 0);
    Count(s.dims.size());
    for (ir::Dim d : s.dims) {
      // The segment hash numbers symbols by first appearance: a graph rebuilt from a file may
      // hold the same symbols under other ids.
      if (fingerprint_ && d <= ir::kFirstSymbol)
        d = ir::kFirstSymbol - symbols_.emplace(d, static_cast<ir::Dim>(symbols_.size())).first->second;
      I64(d);
    }
  }

  void TensorValue(const Tensor& t) {
    Type(t.dtype());
    Count(t.shape().size());
    for (int64_t d : t.shape()) I64(d);
    if (t.dtype() == DType::kString) {
      Count(t.strings().size());
      for (const std::string& s : t.strings()) Str(s);
      return;
    }
    if (!t.is_host()) throw Error(ErrorCode::kInternal, "CPU engine payload: a constant is not a host tensor");
    U64(t.byte_size());
    Raw(t.raw_data(), t.byte_size());
  }

  void Attr(const ir::AttrValue& v, int depth) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, int64_t>) { U8(kInt); I64(x); }
          else if constexpr (std::is_same_v<T, double>) { U8(kDouble); F64(x); }
          else if constexpr (std::is_same_v<T, bool>) { U8(kBool); U8(x ? 1 : 0); }
          else if constexpr (std::is_same_v<T, std::string>) { U8(kString); Str(x); }
          else if constexpr (std::is_same_v<T, DType>) { U8(kDType); Type(x); }
          else if constexpr (std::is_same_v<T, std::vector<int64_t>>) { U8(kInts); Count(x.size()); for (int64_t e : x) I64(e); }
          else if constexpr (std::is_same_v<T, std::vector<double>>) { U8(kDoubles); Count(x.size()); for (double e : x) F64(e); }
          else if constexpr (std::is_same_v<T, std::vector<std::string>>) { U8(kStrings); Count(x.size()); for (const auto& e : x) Str(e); }
          else if constexpr (std::is_same_v<T, std::vector<DType>>) { U8(kDTypes); Count(x.size()); for (DType e : x) Type(e); }
          else if constexpr (std::is_same_v<T, Tensor>) { U8(kTensor); TensorValue(x); }
          else if constexpr (std::is_same_v<T, std::shared_ptr<ir::Graph>>) {
            if (!x) { U8(kNullSubgraph); return; }
            U8(kSubgraph);
            Graph(*x, depth + 1);
          }
        },
        v);
  }

  void Graph(const ir::Graph& g, int depth = 0) {
    if (depth > kMaxGraphDepth) throw Error(ErrorCode::kInternal, "CPU engine payload: subgraphs nested too deeply");
    const auto symbols = ir::SymbolNames(g);
    if (!fingerprint_) {
      Count(symbols.size());
      for (const auto& s : symbols) Str(s);
    }
    std::vector<uint32_t> index(g.num_values(), std::numeric_limits<uint32_t>::max());
    uint32_t next = 0;
    Count(g.inputs().size());
    for (size_t i = 0; i < g.inputs().size(); ++i) {
      const ir::Value& v = g.value(g.inputs()[i]);
      Name(g.input_names()[i]);
      Type(v.dtype);
      Sym(v.shape);
      index[static_cast<size_t>(v.id)] = next++;
    }
    const auto order = g.TopologicalOrder();
    Count(order.size());
    for (ir::NodeId id : order) {
      const ir::Node& n = g.node(id);
      Str(n.op);
      Name(n.name);
      Name(n.source_op);
      Count(n.inputs.size());
      for (ir::ValueId in : n.inputs) U32(index.at(static_cast<size_t>(in)));
      Count(n.outputs.size());
      for (ir::ValueId out : n.outputs) {
        const ir::Value& v = g.value(out);
        Type(v.dtype);
        Sym(v.shape);
        Name(v.name);
        index[static_cast<size_t>(out)] = next++;
      }
      Count(n.attrs.all().size());
      for (const auto& [key, value] : n.attrs.all()) {
        Str(key);
        Attr(value, depth);
      }
    }
    Count(g.outputs().size());
    for (size_t i = 0; i < g.outputs().size(); ++i) {
      Name(g.output_names()[i]);
      const uint32_t idx = index.at(static_cast<size_t>(g.outputs()[i]));
      if (idx == std::numeric_limits<uint32_t>::max()) throw Error(ErrorCode::kInternal, "CPU engine payload: an output is not produced");
      U32(idx);
    }
  }

 private:
  std::string* out_ = nullptr;
  SegmentFingerprint* fingerprint_ = nullptr;
  std::map<ir::Dim, ir::Dim> symbols_;  // fingerprinting: symbol -> order of first appearance
};

// ---- reading ----

class Reader {
 public:
  explicit Reader(std::string_view data) : p_(data.data()), left_(data.size()) {}

  [[noreturn]] static void Fail(const std::string& what) {
    throw Error(ErrorCode::kDataLoss, "CPU engine payload is corrupted: " + what);
  }
  void Need(size_t n) const {
    if (n > left_) Fail(fmt::format("truncated (needs {} more bytes, {} left)", n, left_));
  }
  void Raw(void* dst, size_t n) {
    Need(n);
    std::memcpy(dst, p_, n);
    p_ += n;
    left_ -= n;
  }
  template <typename T>
  T Pod() {
    T v;
    Raw(&v, sizeof v);
    return v;
  }
  uint8_t U8() { return Pod<uint8_t>(); }
  uint32_t U32() { return Pod<uint32_t>(); }
  uint64_t U64() { return Pod<uint64_t>(); }
  int64_t I64() { return Pod<int64_t>(); }
  double F64() { return Pod<double>(); }
  // A count of items that take at least `min_bytes` each.
  size_t Count(size_t min_bytes) {
    const uint32_t n = U32();
    if (min_bytes > 0 && n > left_ / min_bytes) Fail(fmt::format("count {} exceeds the remaining {} bytes", n, left_));
    return n;
  }
  std::string Str() {
    const size_t n = Count(1);
    std::string s(p_, n);
    p_ += n;
    left_ -= n;
    return s;
  }
  DType Type() {
    const int32_t v = Pod<int32_t>();
    const DType d = static_cast<DType>(v);
    if (v <= 0 || v > 23 || DTypeName(d) == "invalid") Fail(fmt::format("unknown dtype {}", v));
    return d;
  }
  ir::SymShape Sym(size_t num_symbols) {
    ir::SymShape s;
    s.rank_known = U8() != 0;
    const size_t rank = Count(8);
    for (size_t i = 0; i < rank; ++i) {
      const ir::Dim d = I64();
      if (d < ir::kUnknownDim && static_cast<uint64_t>(ir::kFirstSymbol - d) >= num_symbols) Fail(fmt::format("unknown symbol {}", d));
      s.dims.push_back(d);
    }
    if (!s.rank_known && !s.dims.empty()) Fail("a shape of unknown rank has dims");
    return s;
  }
  Tensor TensorValue() {
    const DType dtype = Type();
    const size_t rank = Count(8);
    Shape shape;
    uint64_t elements = 1;
    for (size_t i = 0; i < rank; ++i) {
      const int64_t d = I64();
      if (d < 0 || static_cast<uint64_t>(d) > (uint64_t{1} << 40)) Fail(fmt::format("bad tensor dim {}", d));
      elements = elements * static_cast<uint64_t>(d);
      if (elements > (uint64_t{1} << 40)) Fail("tensor too large");
      shape.push_back(d);
    }
    if (dtype == DType::kString) {
      const size_t n = Count(4);
      if (n != elements) Fail("string tensor count does not match its shape");
      Tensor t(dtype, shape);
      for (size_t i = 0; i < n; ++i) t.strings()[i] = Str();
      return t;
    }
    if (DTypeSize(dtype) == 0) Fail(fmt::format("tensor of dtype {}", DTypeName(dtype)));
    const uint64_t bytes = U64();
    if (bytes != elements * DTypeSize(dtype)) Fail("tensor byte size does not match its shape");
    Need(bytes);
    Tensor t(dtype, shape);
    Raw(t.raw_data(), bytes);
    return t;
  }

  ir::AttrValue Attr(int depth) {
    switch (U8()) {
      case kInt: return I64();
      case kDouble: return F64();
      case kBool: return U8() != 0;
      case kString: return Str();
      case kDType: return Type();
      case kInts: {
        std::vector<int64_t> v(Count(8));
        for (auto& e : v) e = I64();
        return v;
      }
      case kDoubles: {
        std::vector<double> v(Count(8));
        for (auto& e : v) e = F64();
        return v;
      }
      case kStrings: {
        std::vector<std::string> v(Count(4));
        for (auto& e : v) e = Str();
        return v;
      }
      case kDTypes: {
        std::vector<DType> v(Count(4));
        for (auto& e : v) e = Type();
        return v;
      }
      case kTensor: return TensorValue();
      case kSubgraph: return std::make_shared<ir::Graph>(Graph(depth + 1));
      case kNullSubgraph: return std::shared_ptr<ir::Graph>();
      default: Fail("unknown attribute tag");
    }
  }

  ir::Graph Graph(int depth = 0) {
    if (depth > kMaxGraphDepth) Fail("subgraphs nested too deeply");
    ir::Graph g;
    const size_t num_symbols = Count(4);
    for (size_t i = 0; i < num_symbols; ++i) g.NewSymbol(Str());
    std::vector<ir::ValueId> values;
    const size_t num_inputs = Count(13);
    for (size_t i = 0; i < num_inputs; ++i) {
      std::string name = Str();
      const DType dtype = Type();
      values.push_back(g.AddInput(name, dtype, Sym(num_symbols)));
    }
    const size_t num_nodes = Count(12);
    for (size_t k = 0; k < num_nodes; ++k) {
      const std::string op = CurrentOpName(Str());
      std::string name = Str();
      std::string source_op = Str();
      const ir::OpSchema* schema = ir::FindOp(op);
      if (!schema) Fail(fmt::format("unknown op '{}'", op));
      const int min_in = schema->min_inputs, max_in = schema->max_inputs;
      const size_t num_in = Count(4);
      if (static_cast<int>(num_in) < min_in || (max_in >= 0 && static_cast<int>(num_in) > max_in))
        Fail(fmt::format("node '{}' ({}) has {} inputs", name, op, num_in));
      std::vector<ir::ValueId> ins;
      for (size_t i = 0; i < num_in; ++i) {
        const uint32_t idx = U32();
        if (idx >= values.size()) Fail(fmt::format("node '{}' reads value {} of {}", name, idx, values.size()));
        ins.push_back(values[idx]);
      }
      const size_t num_out = Count(9);
      if (num_out == 0 || num_out > 4096) Fail(fmt::format("node '{}' has {} outputs", name, num_out));
      struct Out {
        DType dtype;
        ir::SymShape shape;
        std::string name;
      };
      std::vector<Out> outs;
      for (size_t i = 0; i < num_out; ++i) {
        Out o;
        o.dtype = Type();
        o.shape = Sym(num_symbols);
        o.name = Str();
        outs.push_back(std::move(o));
      }
      ir::AttrMap attrs;
      const size_t num_attrs = Count(5);
      for (size_t i = 0; i < num_attrs; ++i) {
        std::string key = Str();
        attrs.Set(key, Attr(depth));
      }
      ir::NodeId id;
      if (op == "Constant") {
        const auto it = attrs.all().find("value");
        if (num_out != 1 || it == attrs.all().end() || !std::holds_alternative<Tensor>(it->second))
          Fail(fmt::format("constant '{}' has no value", name));
        const ir::ValueId v = g.AddConstant(name, std::get<Tensor>(it->second));
        id = g.value(v).producer;
      } else {
        id = g.AddNode(op, name, ins, static_cast<int>(num_out)).id;
      }
      ir::Node& node = g.node(id);
      node.source_op = std::move(source_op);
      node.attrs = std::move(attrs);
      for (size_t i = 0; i < num_out; ++i) {
        ir::Value& v = g.value(node.outputs[i]);
        v.dtype = outs[i].dtype;
        if (op != "Constant") v.shape = std::move(outs[i].shape);
        v.name = std::move(outs[i].name);
        values.push_back(v.id);
      }
    }
    const size_t num_outputs = Count(8);
    for (size_t i = 0; i < num_outputs; ++i) {
      std::string name = Str();
      const uint32_t idx = U32();
      if (idx >= values.size()) Fail(fmt::format("graph output reads value {} of {}", idx, values.size()));
      g.AddOutput(name, values[idx]);
    }
    return g;
  }

  size_t left() const { return left_; }

 private:
  const char* p_;
  size_t left_;
};

}  // namespace

std::string EncodePlan(const ir::Graph& graph, uint64_t segment_hash, const std::string& device,
                       const std::vector<PassStat>& pass_stats) {
  std::string body;
  Writer w(&body);
  w.U64(segment_hash);
  w.Str(device);
  w.Count(pass_stats.size());
  for (const PassStat& s : pass_stats) {
    w.Str(s.pass);
    w.I64(s.rewrites);
  }
  w.Graph(graph);
  std::string out;
  Writer header(&out);
  header.Raw(kMagic, sizeof kMagic);
  header.U32(kVersion);
  header.U64(body.size());
  out += body;
  return out;
}

DecodedPlan DecodePlan(std::string_view payload) {
  RegisterCpuOps();
  if (payload.size() < kHeaderBytes || std::memcmp(payload.data(), kMagic, sizeof kMagic) != 0)
    Reader::Fail("not a Kiln CPU engine payload (bad magic)");
  Reader header(payload.substr(sizeof kMagic, kHeaderBytes - sizeof kMagic));
  const uint32_t version = header.U32();
  if (version != kVersion) Reader::Fail(fmt::format("unsupported payload version {} (this build reads {})", version, kVersion));
  const uint64_t body_size = header.U64();
  if (body_size != payload.size() - kHeaderBytes)
    Reader::Fail(fmt::format("body size {} does not match the payload ({} bytes)", body_size, payload.size() - kHeaderBytes));
  Reader r(payload.substr(kHeaderBytes));
  DecodedPlan plan;
  plan.segment_hash = r.U64();
  plan.device = r.Str();
  const size_t num_stats = r.Count(12);
  for (size_t i = 0; i < num_stats; ++i) {
    PassStat s;
    s.pass = r.Str();
    s.rewrites = r.I64();
    plan.pass_stats.push_back(std::move(s));
  }
  plan.graph = r.Graph();
  if (r.left() != 0) Reader::Fail(fmt::format("{} trailing bytes", r.left()));
  return plan;
}

uint64_t HashSegment(const ir::Graph& segment) {
  SegmentFingerprint fingerprint;
  Writer w(&fingerprint);
  w.Graph(segment);
  return fingerprint.Value();
}

}  // namespace kiln::backend::cpu
