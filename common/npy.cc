#include "kiln/npy.h"

#include "common/atomic_file.h"
#include "common/file_checks.h"

#include <cstring>
#include <fstream>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <system_error>
#include <cstdint>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace kiln {
namespace {

struct NpyType {
  const char* descr;
  DType dtype;
};
constexpr NpyType kTypes[] = {
    {"<f4", DType::kFloat32}, {"<f8", DType::kFloat64}, {"<f2", DType::kFloat16}, {"<i1", DType::kInt8},
    {"|i1", DType::kInt8},    {"<i2", DType::kInt16},   {"<i4", DType::kInt32},   {"<i8", DType::kInt64},
    {"|u1", DType::kUInt8},   {"<u1", DType::kUInt8},   {"<u2", DType::kUInt16},  {"<u4", DType::kUInt32},
    {"<u8", DType::kUInt64},  {"|b1", DType::kBool},    {"<c8", DType::kComplex64}, {"<c16", DType::kComplex128},
};

[[noreturn]] void Bad(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: not a valid .npy file: {}", path, what));
}

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// The header is a Python dict literal with exactly the keys 'descr' (a string), 'fortran_order'
// (True/False) and 'shape' (a tuple of non-negative ints), each once, as numpy requires.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : path_(path), text_(text) {}

  NpyHeader Parse() {
    NpyHeader h;
    bool seen[3] = {false, false, false};
    Expect('{');
    for (;;) {
      Skip();
      if (Peek() == '}') break;
      const std::string key = String();
      Expect(':');
      int which = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
      if (which < 0) Fail(fmt::format("unexpected key '{}'", key));
      if (seen[which]) Fail(fmt::format("key '{}' appears twice", key));
      seen[which] = true;
      if (which == 0) h.descr = String();
      if (which == 1) h.fortran_order = Bool();
      if (which == 2) h.shape = Tuple();
      Skip();
      if (Peek() == ',') ++at_;
    }
    Expect('}');
    Skip();
    if (at_ != text_.size()) Fail("unexpected text after the header dict");
    for (int i = 0; i < 3; ++i)
      if (!seen[i]) Fail(fmt::format("no '{}' in header", i == 0 ? "descr" : i == 1 ? "fortran_order" : "shape"));
    return h;
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const { Bad(path_, fmt::format("{} (header byte {})", what, at_)); }
  void Skip() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\t')) ++at_;
  }
  char Peek() {
    Skip();
    return at_ < text_.size() ? text_[at_] : '\0';
  }
  void Expect(char c) {
    if (Peek() != c) Fail(fmt::format("expected '{}'", c));
    ++at_;
  }
  std::string String() {
    const char quote = Peek();
    if (quote != '\'' && quote != '"') Fail("expected a quoted string");
    const size_t end = text_.find(quote, ++at_);
    if (end == std::string::npos) Fail("unterminated string");
    std::string s = text_.substr(at_, end - at_);
    at_ = end + 1;
    return s;
  }
  bool Bool() {
    Skip();
    for (const auto& [word, value] : {std::pair<const char*, bool>{"True", true}, {"False", false}})
      if (text_.compare(at_, std::strlen(word), word) == 0) {
        at_ += std::strlen(word);
        return value;
      }
    Fail("expected True or False");
  }
  Shape Tuple() {
    constexpr int64_t kMaxDim = int64_t{1} << 62;
    constexpr size_t kMaxRank = 64;
    Shape shape;
    Expect('(');
    for (;;) {
      if (Peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(Peek()))) Fail("expected a non-negative integer dim");
      int64_t d = 0;
      while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) {
        const int digit = text_[at_++] - '0';
        if (d > (kMaxDim - digit) / 10) Fail("a dim is too large");  // checked before it could overflow
        d = d * 10 + digit;
      }
      if (at_ < text_.size() && text_[at_] == 'L') ++at_;  // Python 2 long
      shape.push_back(d);
      if (shape.size() > kMaxRank) Fail(fmt::format("more than {} dims", kMaxRank));
      if (Peek() == ',') ++at_;
      else if (Peek() != ')') Fail("expected ',' or ')' in the shape");
    }
    Expect(')');
    return shape;
  }

  const std::string& path_;
  const std::string& text_;
  size_t at_ = 0;
};

NpyHeader ParseHeader(const std::string& path, const std::string& header) { return HeaderParser(path, header).Parse(); }

}  // namespace

Tensor ReadNpy(const std::string& path) {
  RequireRegularFile(path, ".npy file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{}: cannot open file", path));
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) Bad(path, "missing the \\x93NUMPY magic");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) Bad(path, "truncated header");
    header_len = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) Bad(path, "truncated header");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  } else {
    Bad(path, fmt::format("unsupported format version {}", major));
  }
  if (header_len > (1u << 20)) Bad(path, "header too long");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) Bad(path, "truncated header");

  const NpyHeader h = ParseHeader(path, header);
  DType dtype = DType::kInvalid;
  for (const NpyType& t : kTypes)
    if (h.descr == t.descr) dtype = t.dtype;
  if (dtype == DType::kInvalid)
    Bad(path, fmt::format("unsupported dtype '{}' (expected a little-endian numeric type)", h.descr));
  if (h.fortran_order) Bad(path, "Fortran-order arrays are not supported");
  const Shape& shape = h.shape;
  // The data must be in the file before anything is allocated for it.
  uint64_t bytes = DTypeSize(dtype);
  for (int64_t d : shape)
    if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
      Bad(path, fmt::format("shape {} is too large", ShapeToString(shape)));
    else
      bytes *= static_cast<uint64_t>(d);
  const std::streampos data_start = in.tellg();
  in.seekg(0, std::ios::end);
  const uint64_t available = static_cast<uint64_t>(in.tellg() - data_start);
  in.seekg(data_start);
  if (bytes > available)
    Bad(path, fmt::format("data is truncated: expected {} bytes for {} {}, the file has {}", bytes, DTypeName(dtype),
                          ShapeToString(shape), available));

  Tensor t(dtype, shape);
  if (t.byte_size() > 0 && !in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.byte_size())))
    Bad(path, fmt::format("data is truncated: expected {} bytes for {} {}", t.byte_size(), DTypeName(dtype), ShapeToString(shape)));
  return t;
}

void WriteNpy(const std::string& path, const Tensor& tensor) {
  const char* descr = nullptr;
  for (const NpyType& t : kTypes)
    if (t.dtype == tensor.dtype() && !descr) descr = t.descr;
  Tensor host = tensor;
  if (tensor.dtype() == DType::kBFloat16) {
    // numpy has no bfloat16: write float32.
    host = Tensor(DType::kFloat32, tensor.shape());
    for (int64_t i = 0; i < tensor.num_elements(); ++i) host.data<float>()[i] = static_cast<float>(tensor.DoubleAt(i));
    descr = "<f4";
  }
  if (!descr) throw Error(ErrorCode::kUnimplemented, fmt::format("{}: cannot write dtype {} to .npy", path, DTypeName(tensor.dtype())));
  std::string shape;
  for (int64_t d : host.shape()) shape += std::to_string(d) + ",";
  if (host.rank() > 1) shape.pop_back();
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, shape);
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  // Never a truncated file under the final name (a full disk mid-write).
  WriteFileAtomically(path, {std::string_view("\x93NUMPY\x01\x00", 8), std::string_view(len_bytes, 2), header,
                             std::string_view(static_cast<const char*>(host.raw_data()), host.byte_size())});
}

}  // namespace kiln
