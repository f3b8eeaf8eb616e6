// Tensors, dtypes, 16-bit floats and .npy files.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "kiln/half.h"
#include "kiln/npy.h"
#include "kiln/tensor.h"

namespace kiln {
namespace {

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(Half(1.0f).bits, 0x3c00);
  EXPECT_EQ(Half(65504.0f).bits, 0x7bff);
  EXPECT_EQ(Half(65520.0f).bits, 0x7c00);  // rounds up to infinity
  EXPECT_EQ(Half(5.9604645e-08f).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(Half(1.0f + 1.0f / 2048).bits, 0x3c00);  // tie -> even
  EXPECT_EQ(Half(1.0f + 3.0f / 2048).bits, 0x3c02);  // tie -> even (up)
  EXPECT_TRUE(std::isnan(static_cast<float>(Half(std::numeric_limits<float>::quiet_NaN()))));
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) {  // every finite positive half round-trips
    Half h;
    h.bits = static_cast<uint16_t>(bits);
    ASSERT_EQ(Half(static_cast<float>(h)).bits, bits);
  }
}

TEST(BFloat16, RoundsToNearestEven) {
  EXPECT_EQ(BFloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(static_cast<float>(BFloat16(3.140625f)), 3.140625f);
  EXPECT_EQ(BFloat16(1.00390625f).bits, 0x3f80);  // tie -> even
}

TEST(DType, NamesRoundTrip) {
  for (DType d : {DType::kFloat32, DType::kInt64, DType::kBool, DType::kBFloat16, DType::kUInt16})
    EXPECT_EQ(DTypeFromName(DTypeName(d)), d);
  EXPECT_EQ(DTypeFromTf(101), DType::kFloat32);  // DT_FLOAT_REF
  EXPECT_EQ(DTypeFromTf(99), DType::kInvalid);
}

TEST(Tensor, ReshapeSharesStorage) {
  Tensor t = Tensor::FromVector<int32_t>(DType::kInt32, {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = t.Reshaped({3, 2});
  r.data<int32_t>()[0] = 9;
  EXPECT_EQ(t.data<int32_t>()[0], 9);
  EXPECT_THROW(t.Reshaped({4}), Error);
  EXPECT_EQ(t.ToInt64Vector()[5], 6);
}

TEST(Tensor, TheLimitOnOneTensorIsConfigurable) {
  const size_t physical = MaxTensorBytes();
  EXPECT_GT(physical, size_t{1} << 20);
  SetMaxTensorBytes(4096);
  EXPECT_EQ(MaxTensorBytes(), 4096u);
  EXPECT_NO_THROW(Tensor(DType::kFloat32, {1024}));  // exactly the limit
  try {
    Tensor(DType::kFloat32, {1025});
    ADD_FAILURE() << "4100 bytes accepted under a 4096-byte limit";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted) << e.what();
    EXPECT_NE(std::string(e.what()).find("4096 bytes one tensor may take"), std::string::npos) << e.what();
  }
  SetMaxTensorBytes(0);  // back to the machine's memory
  EXPECT_EQ(MaxTensorBytes(), physical);
  EXPECT_NO_THROW(Tensor(DType::kFloat32, {1025}));
}

TEST(Tensor, SizesAreCheckedBeforeAllocating) {
  // Element counts never wrap around, and no tensor may ask for more than the machine's memory.
  try {
    Tensor(DType::kFloat32, {int64_t{1} << 59, 32});
    ADD_FAILURE() << "2^64 elements accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  try {
    Tensor(DType::kFloat32, {int64_t{1} << 50});
    ADD_FAILURE() << "4 PiB accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted) << e.what();
    EXPECT_NE(std::string(e.what()).find("memory"), std::string::npos) << e.what();
  }
  EXPECT_THROW(NumElements({int64_t{1} << 32, int64_t{1} << 32}), Error);
  // A view claiming more than its buffer holds, with a size that would wrap around.
  EXPECT_THROW(Tensor(DType::kFloat32, {int64_t{1} << 62, 4}, AllocateHostBuffer(64)), Error);
  EXPECT_THROW(Tensor(DType::kFloat32, {4}, AllocateHostBuffer(64), ~size_t{0} - 8), Error);
}

TEST(Npy, RoundTripsAndRejectsBadFiles) {
  const auto dir = std::filesystem::temp_directory_path() / "kiln_npy_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "a.npy").string();
  Tensor t = Tensor::FromVector<float>(DType::kFloat32, {2, 2}, {1, 2, 3, 4});
  WriteNpy(path, t);
  Tensor back = ReadNpy(path);
  EXPECT_EQ(back.shape(), t.shape());
  EXPECT_EQ(back.data<float>()[3], 4.0f);

  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
  try {
    ReadNpy(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  std::ofstream(path) << "not numpy";
  EXPECT_THROW(ReadNpy(path), Error);
  // Writes land whole under the final name, with nothing else left in the directory.
  WriteNpy(path, t);
  EXPECT_EQ(ReadNpy(path).data<float>()[3], 4.0f);
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  EXPECT_THROW(WriteNpy((dir / "no_such_dir" / "b.npy").string(), t), Error);
  EXPECT_THROW(ReadNpy((dir / "missing.npy").string()), Error);
}

TEST(AtomicFile, WritesThePartsWholeOrNothing) {
  const auto dir = std::filesystem::temp_directory_path() / ("kiln_atomic_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = dir / "f.bin";
  WriteFileAtomically(path, {"ab", "", "cde"});
  std::ifstream in(path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "abcde");
  WriteFileAtomically(path, {"xy"});  // replaces
  std::ifstream again(path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(again), {}), "xy");
  try {
    WriteFileAtomically(dir / "missing" / "g.bin", {"z"});
    FAIL() << "a missing directory must be an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("cannot write"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WriteFileAtomically(dir, {"z"}), Error);  // a directory is never replaced
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++entries;
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
  EXPECT_EQ(entries, 1u);
  std::filesystem::remove_all(dir);
}

// A version 1.0 .npy file with this header text (padded as numpy pads it) and `data` after it.
std::string NpyBytes(const std::string& header_text, const std::string& data) {
  std::string header = header_text;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

TEST(Npy, HeadersAreParsedStrictly) {
  const auto dir = std::filesystem::temp_directory_path() / "kiln_npy_header_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "h.npy").string();
  auto read = [&](const std::string& header, const std::string& data) {
    std::ofstream(path, std::ios::binary) << NpyBytes(header, data);
    return ReadNpy(path);
  };
  const std::string eight_bytes(8, '\0');
  // Both quote styles, any key order, a trailing comma, Python 2 longs.
  EXPECT_EQ(read("{'shape': (2,), \"fortran_order\": False, 'descr': '<f4', }", eight_bytes).shape(), (Shape{2}));
  EXPECT_EQ(read("{'descr': '<i4', 'fortran_order': False, 'shape': (1L, 2L)}", eight_bytes).shape(), (Shape{1, 2}));
  EXPECT_EQ(read("{'descr': '<f8', 'fortran_order': False, 'shape': ()}", eight_bytes).shape(), (Shape{}));
  struct Bad {
    std::string header, data, why;
  };
  const Bad bad[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-4,)}", eight_bytes, "non-negative"},
      {"{'descr': '<f4', 'descr': '<i4', 'fortran_order': False, 'shape': (2,)}", eight_bytes, "twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", eight_bytes, "unexpected key"},
      {"{'descr': '<f4', 'shape': (2,)}", eight_bytes, "fortran_order"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", eight_bytes, "Fortran"},
      // Sizes are checked against the file before anything is allocated, without overflow.
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (576460752303423488, 32)}", eight_bytes, "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824,)}", eight_bytes, "truncated"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", eight_bytes, "too large"},
      // Found by the npy fuzzer: a dim whose next digit would overflow int64 while it is parsed.
      {"{'descr': '<u4', 'fortran_order': False, 'shape': (000014933100000001493318093, 32)}", eight_bytes, "too large"},
      {"{'descr': '<u1', 'fortran_order': False, 'shape': (46116860184273879040,)}", eight_bytes, "too large"},
      {"{'descr': '" + std::string(60000, 'x') + "', 'fortran_order': False, 'shape': (2,)}", eight_bytes, "dtype"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing", eight_bytes, "after the header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,", eight_bytes, "expected"},
  };
  for (const Bad& b : bad) {
    try {
      read(b.header, b.data);
      ADD_FAILURE() << "accepted: " << b.header.substr(0, 100);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find(b.why), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kiln
