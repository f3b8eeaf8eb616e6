// TensorBundle reader: the LevelDB-style index table (footer, index block, data blocks, each
// CRC32C-checked), BundleHeaderProto / BundleEntryProto records, and tensor data in the shards.
#include "frontend/tf/bundle_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>

#include <fmt/format.h>

#include "common/file_checks.h"

#include "common/crc32c.h"
#include "common/little_endian.h"
#include "common/model_budget.h"
#include "common/proto/tf.pb.h"

namespace kiln::tf {
namespace {

constexpr uint64_t kTableMagic = 0xdb4775248b80fb57ull;
constexpr size_t kFooterSize = 48;       // 2 max-size BlockHandles (2 * 20) + 8-byte magic
constexpr size_t kBlockTrailerSize = 5;  // type byte + masked crc32c
constexpr char kObjectGraphKey[] = "_CHECKPOINTABLE_OBJECT_GRAPH";

// A file opened for positional reads; closed on destruction.
class File {
 public:
  explicit File(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block
    if (fd_ < 0) {
      const int err = errno;
      if (err == ENOENT)
        throw Error(ErrorCode::kNotFound, fmt::format("{}: file does not exist", path));
      throw Error(ErrorCode::kNotFound, fmt::format("{}: cannot open: {}", path, std::strerror(err)));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw Error(ErrorCode::kNotFound, fmt::format("{}: not a regular file", path));
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  uint64_t size() const { return size_; }

  // Reads exactly n bytes at offset into out; `what` names the thing being read for errors.
  void ReadAt(uint64_t offset, uint64_t n, char* out, const std::string& what) const {
    if (offset > size_ || n > size_ - offset)
      throw Error(ErrorCode::kDataLoss,
                  fmt::format("{}: {} at bytes [{}, {}) lies past the end of the file ({} bytes); the file is truncated",
                              path_, what, offset, offset + n, size_));
    uint64_t done = 0;
    while (done < n) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - done, uint64_t{1} << 30));
      const ssize_t r = ::pread(fd_, out + done, chunk, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        throw Error(ErrorCode::kDataLoss, fmt::format("{}: reading {} failed: {}", path_, what, std::strerror(errno)));
      }
      if (r == 0)
        throw Error(ErrorCode::kDataLoss, fmt::format("{}: unexpected end of file reading {}", path_, what));
      done += static_cast<uint64_t>(r);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Bounds-checked varint decoding over [p, end). Returns false on truncation / overlong.
bool GetVarint64(const char*& p, const char* end, uint64_t* value) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && p < end; shift += 7) {
    const uint64_t byte = static_cast<unsigned char>(*p++);
    if (shift == 63 && byte > 1) return false;
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return true;
    }
  }
  return false;
}
bool GetVarint32(const char*& p, const char* end, uint32_t* value) {
  uint64_t v;
  const char* q = p;
  if (!GetVarint64(q, end, &v) || v > std::numeric_limits<uint32_t>::max() || q - p > 5) return false;
  p = q;
  *value = static_cast<uint32_t>(v);
  return true;
}

struct BlockHandle {
  uint64_t offset = 0;
  uint64_t size = 0;
};

bool DecodeBlockHandle(const char*& p, const char* end, BlockHandle* h) {
  return GetVarint64(p, end, &h->offset) && GetVarint64(p, end, &h->size);
}

// Reads a block and checks its trailer; returns the contents.
std::string ReadBlock(const File& file, const std::string& path, const BlockHandle& h, const std::string& what) {
  if (h.size > file.size() || h.offset > file.size() - h.size ||
      file.size() - h.size - h.offset < kBlockTrailerSize)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: {} at offset {} with {} bytes (+{} trailer) lies past the end of the file ({} bytes); "
                            "the file is truncated or corrupt",
                            path, what, h.offset, h.size, kBlockTrailerSize, file.size()));
  std::string buf(static_cast<size_t>(h.size + kBlockTrailerSize), '\0');
  file.ReadAt(h.offset, buf.size(), buf.data(), what);
  const char* trailer = buf.data() + h.size;
  const uint32_t stored = crc32c::Unmask(LoadLittleEndian<uint32_t>(trailer + 1));
  const uint32_t actual = crc32c::Value(buf.data(), static_cast<size_t>(h.size) + 1);  // contents + type byte
  if (stored != actual)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: {} at offset {} fails its CRC32C check (stored 0x{:08x}, computed 0x{:08x})", path,
                            what, h.offset, stored, actual));
  const auto type = static_cast<unsigned char>(trailer[0]);
  if (type != 0)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: {} at offset {} has compression type {} (expected 0, uncompressed)", path, what,
                            h.offset, type));
  buf.resize(static_cast<size_t>(h.size));
  return buf;
}

// Iterates the key/value entries of a block; calls fn(key, value) for each.
template <typename Fn>
void ForEachEntry(const std::string& block, const std::string& path, const std::string& what, Fn&& fn) {
  const auto corrupt = [&](const std::string& reason) {
    return Error(ErrorCode::kDataLoss, fmt::format("{}: {} is corrupt: {}", path, what, reason));
  };
  if (block.size() < 4) throw corrupt("shorter than its restart count");
  const uint64_t num_restarts = LoadLittleEndian<uint32_t>(block.data() + block.size() - 4);
  if (num_restarts == 0 || num_restarts > (block.size() - 4) / 4)
    throw corrupt(fmt::format("bad restart count {} for a block of {} bytes", num_restarts, block.size()));
  const size_t limit = block.size() - 4 - static_cast<size_t>(num_restarts) * 4;
  const char* p = block.data();
  const char* end = block.data() + limit;
  std::string key;
  while (p < end) {
    uint32_t shared, non_shared, value_len;
    if (!GetVarint32(p, end, &shared) || !GetVarint32(p, end, &non_shared) || !GetVarint32(p, end, &value_len))
      throw corrupt("truncated entry header");
    if (shared > key.size()) throw corrupt(fmt::format("entry shares {} key bytes but the previous key has {}", shared, key.size()));
    if (non_shared > static_cast<uint64_t>(end - p) || value_len > static_cast<uint64_t>(end - p) - non_shared)
      throw corrupt("entry extends past the end of the block");
    key.resize(shared);
    key.append(p, non_shared);
    p += non_shared;
    fn(key, std::string_view(p, value_len));
    p += value_len;
  }
}

std::string DataFileName(const std::string& prefix, int shard, int num_shards) {
  return fmt::format("{}.data-{:05d}-of-{:05d}", prefix, shard, num_shards);
}

}  // namespace

struct BundleReader::Impl {
  std::string prefix;
  std::string index_path;
  int num_shards = 1;
  std::map<std::string, tfproto::BundleEntryProto> entries;

  std::string DataPath(int shard) const { return DataFileName(prefix, shard, num_shards); }
};

BundleReader::BundleReader(const std::string& prefix, const std::string& confine_to) : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.prefix = prefix;
  im.index_path = prefix + ".index";
  const std::string& path = im.index_path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("{}: checkpoint index file does not exist", path));
  if (!confine_to.empty()) RequireInsideDirectory(path, confine_to, "the checkpoint index");
  File file(path);

  // Footer: metaindex handle, index handle, padding, magic.
  if (file.size() < kFooterSize)
    throw Error(ErrorCode::kDataLoss, fmt::format("{}: file has {} bytes, too short for the {}-byte table footer; "
                                                  "the index is truncated",
                                                  path, file.size(), kFooterSize));
  char footer[kFooterSize];
  file.ReadAt(file.size() - kFooterSize, kFooterSize, footer, "table footer");
  const uint64_t magic = LoadLittleEndian<uint64_t>(footer + kFooterSize - 8);
  if (magic != kTableMagic)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: bad table magic 0x{:016x} (expected 0x{:016x}); the index is truncated or not a "
                            "TensorBundle index",
                            path, magic, kTableMagic));
  const char* fp = footer;
  const char* fend = footer + kFooterSize - 8;
  BlockHandle metaindex, index;
  if (!DecodeBlockHandle(fp, fend, &metaindex) || !DecodeBlockHandle(fp, fend, &index))
    throw Error(ErrorCode::kDataLoss, fmt::format("{}: table footer has malformed block handles", path));

  const std::string index_block = ReadBlock(file, path, index, "index block");
  std::vector<std::pair<std::string, BlockHandle>> data_blocks;
  ForEachEntry(index_block, path, "index block", [&](const std::string& key, std::string_view value) {
    const char* p = value.data();
    BlockHandle h;
    if (!DecodeBlockHandle(p, value.data() + value.size(), &h))
      throw Error(ErrorCode::kDataLoss, fmt::format("{}: index block entry '{}' has a malformed block handle", path, key));
    data_blocks.emplace_back(key, h);
  });

  bool have_header = false;
  tfproto::BundleHeaderProto header;
  std::string prev_key;
  bool first = true;
  for (size_t b = 0; b < data_blocks.size(); ++b) {
    const std::string what = fmt::format("data block {}", b);
    const std::string block = ReadBlock(file, path, data_blocks[b].second, what);
    ForEachEntry(block, path, what, [&](const std::string& key, std::string_view value) {
      if (!first && key <= prev_key)
        throw Error(ErrorCode::kDataLoss, fmt::format("{}: keys out of order ('{}' after '{}')", path, key, prev_key));
      first = false;
      prev_key = key;
      if (key.empty()) {
        if (!header.ParseFromArray(value.data(), static_cast<int>(value.size())))
          throw Error(ErrorCode::kDataLoss, fmt::format("{}: the BundleHeaderProto (key \"\") does not parse", path));
        have_header = true;
        return;
      }
      tfproto::BundleEntryProto entry;
      if (!entry.ParseFromArray(value.data(), static_cast<int>(value.size())))
        throw Error(ErrorCode::kDataLoss, fmt::format("{}: the BundleEntryProto of '{}' does not parse", path, key));
      im.entries.emplace(key, std::move(entry));
    });
  }
  if (!have_header)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: no BundleHeaderProto (the entry with the empty key is missing)", path));
  if (header.endianness() != tfproto::BundleHeaderProto::LITTLE)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("{}: the checkpoint was written big-endian; only little-endian bundles are supported", path));
  if (header.num_shards() <= 0 || header.num_shards() > 99999)
    throw Error(ErrorCode::kDataLoss, fmt::format("{}: BundleHeaderProto has a bad num_shards {}", path, header.num_shards()));
  im.num_shards = header.num_shards();
  for (int s = 0; s < im.num_shards; ++s) {
    const std::string data = im.DataPath(s);
    if (!std::filesystem::exists(data, ec))
      throw Error(ErrorCode::kNotFound,
                  fmt::format("{}: data shard {} of {} is missing (expected file {})", path, s, im.num_shards, data));
    RequireRegularFile(data, fmt::format("data shard {} of the checkpoint", s));
    if (!confine_to.empty()) RequireInsideDirectory(data, confine_to, fmt::format("data shard {} of the checkpoint", s));
  }
  for (const auto& [key, entry] : im.entries)
    if (entry.shard_id() < 0 || entry.shard_id() >= im.num_shards)
      throw Error(ErrorCode::kDataLoss, fmt::format("{}: tensor '{}' names shard {} but the bundle has {} shard(s)",
                                                    path, key, entry.shard_id(), im.num_shards));
}

BundleReader::~BundleReader() = default;

std::vector<std::string> BundleReader::Keys() const {
  std::vector<std::string> keys;
  keys.reserve(impl_->entries.size());
  for (const auto& kv : impl_->entries) keys.push_back(kv.first);
  return keys;
}

bool BundleReader::Contains(const std::string& key) const { return impl_->entries.count(key) != 0; }

Tensor BundleReader::Read(const std::string& key) const {
  const Impl& im = *impl_;
  auto it = im.entries.find(key);
  if (it == im.entries.end())
    throw Error(ErrorCode::kNotFound, fmt::format("{}: no tensor with key '{}'", im.index_path, key));
  const tfproto::BundleEntryProto& e = it->second;
  const std::string data_path = im.DataPath(e.shard_id());
  const auto fail = [&](ErrorCode code, const std::string& reason) {
    return Error(code, fmt::format("{}: tensor '{}' {}", data_path, key, reason));
  };

  if (e.slices_size() > 0)
    throw fail(ErrorCode::kUnimplemented, "is sliced (a partitioned variable); sliced checkpoint entries are not supported");
  const DType dtype = DTypeFromTf(e.dtype());
  if (dtype == DType::kInvalid || dtype == DType::kResource || dtype == DType::kVariant)
    throw fail(ErrorCode::kUnimplemented, fmt::format("has dtype {} which Kiln cannot read from a checkpoint", e.dtype()));

  Shape shape;
  if (e.shape().unknown_rank()) throw fail(ErrorCode::kDataLoss, "has a shape of unknown rank in the index");
  uint64_t n = 1;
  for (const auto& d : e.shape().dim()) {
    if (d.size() < 0) throw fail(ErrorCode::kDataLoss, fmt::format("has a negative dimension {} in the index", d.size()));
    shape.push_back(d.size());
  }
  bool zero = false;
  for (int64_t d : shape) zero = zero || d == 0;
  if (zero) n = 0;
  else
    for (int64_t d : shape) {
      if (n > (uint64_t{1} << 62) / static_cast<uint64_t>(d))
        throw fail(ErrorCode::kDataLoss, fmt::format("has an absurd shape {} in the index", ShapeToString(shape)));
      n *= static_cast<uint64_t>(d);
    }
  if (e.offset() < 0 || e.size() < 0)
    throw fail(ErrorCode::kDataLoss, fmt::format("has a negative offset {} or size {} in the index", e.offset(), e.size()));
  const auto offset = static_cast<uint64_t>(e.offset());
  const auto size = static_cast<uint64_t>(e.size());
  const size_t elem = DTypeSize(dtype);
  if (dtype != DType::kString && (n > size / elem || n * elem != size))
    throw fail(ErrorCode::kDataLoss,
               fmt::format("has {} bytes in the index but shape {} of {} needs {} elements of {} bytes each", size,
                           ShapeToString(shape), DTypeName(dtype), n, elem));

  File file(data_path);
  if (offset > file.size() || size > file.size() - offset)
    throw fail(ErrorCode::kDataLoss,
               fmt::format("at bytes [{}, {}) lies past the end of the data file ({} bytes); the file is truncated",
                           offset, offset + size, file.size()));
  const uint32_t stored_crc = crc32c::Unmask(e.crc32c());
  const auto crc_error = [&](uint32_t computed, const std::string& which) {
    return fail(ErrorCode::kDataLoss, fmt::format("fails its {}CRC32C check (stored 0x{:08x}, computed 0x{:08x})",
                                                  which, stored_crc, computed));
  };

  ChargeModelBytes(size, fmt::format("variable '{}'", key));
  if (dtype != DType::kString) {
    Tensor t(dtype, shape);
    if (size > 0) {
      file.ReadAt(offset, size, static_cast<char*>(t.raw_data()), fmt::format("tensor '{}'", key));
      const uint32_t crc = crc32c::Value(t.raw_data(), static_cast<size_t>(size));
      if (crc != stored_crc) throw crc_error(crc, "");
    } else if (crc32c::Value("", 0) != stored_crc) {
      throw crc_error(0, "");
    }
    if (dtype == DType::kBool) {
      auto* b = t.data<uint8_t>();
      for (uint64_t i = 0; i < n; ++i) b[i] = b[i] != 0;
    }
    return t;
  }

  // DT_STRING: n varint64 lengths, masked crc32c of the lengths (each as LE uint32, or uint64
  // when > 0xFFFFFFFF), then the bytes. The entry crc covers lengths, length checksum, bytes.
  if (n == 0 && size == 0) return Tensor(DType::kString, shape);
  if (n > size)
    throw fail(ErrorCode::kDataLoss, fmt::format("is a string tensor of {} elements but has only {} bytes", n, size));
  std::string buf(static_cast<size_t>(size), '\0');
  file.ReadAt(offset, size, buf.data(), fmt::format("tensor '{}'", key));
  const char* p = buf.data();
  const char* end = buf.data() + buf.size();
  std::vector<uint64_t> lengths(static_cast<size_t>(n));
  uint32_t crc = 0;
  uint64_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len;
    if (!GetVarint64(p, end, &len))
      throw fail(ErrorCode::kDataLoss, fmt::format("is truncated in the length of string element {}", i));
    lengths[i] = len;
    if (len <= 0xffffffffull) {
      char le[4];
      const auto l32 = static_cast<uint32_t>(len);
      for (int k = 0; k < 4; ++k) le[k] = static_cast<char>((l32 >> (8 * k)) & 0xff);
      crc = crc32c::Extend(crc, le, 4);
    } else {
      char le[8];
      for (int k = 0; k < 8; ++k) le[k] = static_cast<char>((len >> (8 * k)) & 0xff);
      crc = crc32c::Extend(crc, le, 8);
    }
    if (len > size) throw fail(ErrorCode::kDataLoss, fmt::format("string element {} claims {} bytes", i, len));
    total += len;
  }
  if (end - p < 4) throw fail(ErrorCode::kDataLoss, "is truncated before its string-length checksum");
  const uint32_t stored_len_crc = crc32c::Unmask(LoadLittleEndian<uint32_t>(p));
  if (stored_len_crc != crc)
    throw fail(ErrorCode::kDataLoss,
               fmt::format("fails its string-length CRC32C check (stored 0x{:08x}, computed 0x{:08x})", stored_len_crc, crc));
  crc = crc32c::Extend(crc, p, 4);
  p += 4;
  if (static_cast<uint64_t>(end - p) != total)
    throw fail(ErrorCode::kDataLoss, fmt::format("string lengths add up to {} bytes but {} bytes follow them", total,
                                                 static_cast<uint64_t>(end - p)));
  crc = crc32c::Extend(crc, p, static_cast<size_t>(end - p));
  if (crc != stored_crc) throw crc_error(crc, "");
  Tensor t(DType::kString, shape);
  auto& out = t.strings();
  for (uint64_t i = 0; i < n; ++i) {
    out[i].assign(p, static_cast<size_t>(lengths[i]));
    p += lengths[i];
  }
  return t;
}

// ---- VariableReader ----

VariableReader::VariableReader(std::string saved_model_dir) : dir_(std::move(saved_model_dir)) {}

BundleReader& VariableReader::bundle() {
  std::lock_guard<std::mutex> lock(mutex_);
  return OpenLocked();
}

BundleReader& VariableReader::OpenLocked() {
  if (!reader_) {
    const std::string prefix = (std::filesystem::path(dir_) / "variables" / "variables").string();
    std::error_code ec;
    if (!std::filesystem::exists(prefix + ".index", ec))
      throw Error(ErrorCode::kNotFound,
                  fmt::format("SavedModel '{}' has no variables (expected variables/variables.index)", dir_));
    reader_ = std::make_unique<BundleReader>(prefix, dir_);
  }
  return *reader_;
}

std::shared_ptr<const Tensor> VariableReader::Read(const std::string& checkpoint_key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(checkpoint_key);
  if (it != cache_.end()) return it->second;
  BundleReader& reader = OpenLocked();
  auto t = std::make_shared<const Tensor>(reader.Read(checkpoint_key));
  cache_.emplace(checkpoint_key, t);
  return t;
}

std::string VariableReader::ObjectGraphBytes() {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string index = (std::filesystem::path(dir_) / "variables" / "variables.index").string();
  std::error_code ec;
  if (!reader_ && !std::filesystem::exists(index, ec)) return {};  // a model without variables
  BundleReader& reader = OpenLocked();
  if (!reader.Contains(kObjectGraphKey)) return {};
  const Tensor t = reader.Read(kObjectGraphKey);
  if (t.dtype() != DType::kString || t.num_elements() != 1)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: '{}' should be a string scalar but is {} of shape {}", index, kObjectGraphKey,
                            DTypeName(t.dtype()), ShapeToString(t.shape())));
  return t.strings()[0];
}

}  // namespace kiln::tf
