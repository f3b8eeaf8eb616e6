// Converted SavedModel writing and reading (the layout is described in converted_model.h).
#include "convert/converted_model.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "common/file_checks.h"
#include "common/atomic_file.h"
#include "common/crc32c.h"
#include "common/model_budget.h"
#include "convert/engine_file.h"
#include "convert/ir_codec.h"
#include "convert/tf_wrapper_graph.h"

namespace kiln::convert {
namespace {

namespace fs = std::filesystem;

constexpr char kSavedModelFile[] = "saved_model.pb";
// The converted graph's MetaGraphDef (layout kiln-converted-2; saved_model.pb holds TensorFlow's view).
constexpr char kGraphFile[] = "graph.pb";
constexpr char kGraphChecksum[] = "graph.pb.crc32c";
constexpr char kConversionJson[] = "conversion.json";
// The masked CRC32C of saved_model.pb (in the older layout it holds the frozen weights), as 8 hex digits.
constexpr char kSavedModelChecksum[] = "saved_model.pb.crc32c";
constexpr char kConversionJsonChecksum[] = "conversion.json.crc32c";
constexpr char kWriteLock[] = ".write-lock";  // held (flock) while a save writes the directory

fs::path KilnAssets(const fs::path& dir) { return dir / "assets" / "kiln"; }
fs::path EnginesDir(const fs::path& dir) { return KilnAssets(dir) / "engines"; }

bool Plain(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

std::string EscapeName(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (Plain(c)) out.push_back(c);
    else out += fmt::format("%{:02X}", static_cast<unsigned>(static_cast<unsigned char>(c)));
  }
  return out;
}

std::optional<std::string> UnescapeName(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      if (!Plain(s[i])) return std::nullopt;
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string EngineFileName(const std::string& engine, size_t index) {
  return fmt::format("{}_{}{}", EscapeName(engine), index, kEngineFileExtension);
}

// (engine name, index) of an engine file name; nullopt for other files.
std::optional<std::pair<std::string, size_t>> ParseEngineFileName(const std::string& file) {
  const std::string ext = kEngineFileExtension;
  if (file.size() <= ext.size() || file.compare(file.size() - ext.size(), ext.size(), ext) != 0) return std::nullopt;
  const std::string stem = file.substr(0, file.size() - ext.size());
  const size_t underscore = stem.rfind('_');
  if (underscore == std::string::npos || underscore + 1 == stem.size() || stem.size() - underscore - 1 > 9) return std::nullopt;
  size_t index = 0;
  for (size_t i = underscore + 1; i < stem.size(); ++i) {
    if (stem[i] < '0' || stem[i] > '9') return std::nullopt;
    index = index * 10 + static_cast<size_t>(stem[i] - '0');
  }
  std::optional<std::string> name = UnescapeName(std::string_view(stem).substr(0, underscore));
  if (!name) return std::nullopt;
  return std::make_pair(*name, index);
}

[[noreturn]] void WriteFailed(const fs::path& path, const std::string& reason) {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: cannot write: {}", path.string(), reason));
}

// An exclusive advisory lock on `path` (created if missing) for the object's lifetime; waits for
// another holder (another process, or another save in this one) to finish.
class WriteLock {
 public:
  explicit WriteLock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) WriteFailed(path, fmt::format("cannot create the lock file: {}", std::strerror(errno)));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd_);
      WriteFailed(path, fmt::format("cannot lock: {}", std::strerror(err)));
    }
  }
  ~WriteLock() { ::close(fd_); }  // closing releases the lock
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  int fd_;
};

// The text of a checksum file: the masked CRC32C of `bytes` in hex and a newline.
std::string ChecksumText(std::string_view bytes) { return fmt::format("{:08x}\n", crc32c::Mask(crc32c::Value(bytes))); }

// The largest checksum file (eight hex digits and a newline) and conversion.json a converted
// model may hold; the graph and engine files are bounded by the model's read budget instead.
constexpr uintmax_t kMaxChecksumFileBytes = 64;
constexpr uintmax_t kMaxConversionJsonBytes = uintmax_t{64} << 20;

std::string ReadFile(const fs::path& path, uintmax_t max_bytes, const fs::path& root);

// kDataLoss unless `bytes` (read from `file`) match the checksum written with them. A missing
// checksum file is data loss too: without it any byte of the file could have been changed.
void VerifyChecksum(const fs::path& file, const std::string& bytes, const fs::path& checksum_path, const fs::path& root) {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(checksum_path, ec);
  if (ec || !fs::exists(status))
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: its checksum file {} is missing, so the file cannot be verified (was it removed, or "
                            "was the model converted by a Kiln older than 2026-12? convert the model again)",
                            file.string(), checksum_path.string()));
  const std::string text = ReadFile(checksum_path, kMaxChecksumFileBytes, root);
  const std::string actual = ChecksumText(bytes);
  if (text != actual)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: checksum mismatch (the file is corrupt or was changed after conversion; {} says {}, "
                            "the file's is {})",
                            file.string(), checksum_path.string(), text.substr(0, 8), actual.substr(0, 8)));
}

// The whole file, if it is a regular file inside the model's directory `root` (symlinks
// followed) of at most `max_bytes` (checked before reading: a sparse file of gigabytes must not
// be read into memory to be refused).
std::string ReadFile(const fs::path& path, uintmax_t max_bytes, const fs::path& root) {
  RequireInsideDirectory(path, root, "converted model file");
  return ReadRegularFile(path, max_bytes, "converted model file");
}

std::string Serialize(const google::protobuf::Message& proto, const fs::path& path) {
  const size_t size = proto.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX))
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("{}: the converted graph is too large for a SavedModel protobuf ({} bytes; the limit is 2 GiB)",
                            path.string(), size));
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    proto.SerializeToCodedStream(&coded);
    if (coded.HadError()) throw Error(ErrorCode::kInternal, fmt::format("{}: serializing the SavedModel failed", path.string()));
  }
  return bytes;
}

// Parses DIR/saved_model.pb; false when it cannot be opened or parsed.
bool ParseSavedModel(const fs::path& path, tfproto::SavedModel& proto) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;  // a FIFO would block the read
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  google::protobuf::io::IstreamInputStream zero_copy(&in);
  google::protobuf::io::CodedInputStream coded(&zero_copy);
  coded.SetTotalBytesLimit(INT_MAX);
  return proto.ParseFromCodedStream(&coded) && coded.ConsumedEntireMessage() && !in.bad();
}

// Points each TensorInfo of `infos` at the encoded tensor of the graph input/output of that name.
void RewriteNames(google::protobuf::Map<std::string, tfproto::TensorInfo>& infos, const std::vector<std::string>& names,
                  const std::vector<std::string>& tensors, const char* kind) {
  for (auto& [key, info] : infos) {
    size_t i = 0;
    while (i < names.size() && names[i] != key) ++i;
    if (i == names.size())
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("signature {} '{}' is not an {} of the converted graph (its {}s: {})", kind, key, kind, kind,
                              fmt::join(names, ", ")));
    info.set_name(tensors[i]);
  }
}

}  // namespace

std::string WriteConvertedModel(const std::string& dir, const ConvertedModel& model) {
  const fs::path root(dir);
  const fs::path pb_path = root / kSavedModelFile;

  // Everything that can fail without touching the disk first. Kiln's graph goes to
  // assets/kiln/graph.pb; saved_model.pb gets the graph TensorFlow loads (tf_wrapper_graph.h).
  const fs::path graph_path = KilnAssets(root) / kGraphFile;
  tfproto::MetaGraphDef graph_meta;
  tfproto::MetaGraphDef* meta = &graph_meta;
  tfproto::MetaInfoDef* info = meta->mutable_meta_info_def();
  info->set_meta_graph_version(kConvertedMetaGraphVersion);
  for (const std::string& tag : model.tags) info->add_tags(tag);
  *meta->mutable_graph_def() = convert::EncodeIrGraph(model.graph);
  if (!model.signature_key.empty()) {
    tfproto::SignatureDef& sig = (*meta->mutable_signature_def())[model.signature_key];
    sig = model.signature;
    RewriteNames(*sig.mutable_inputs(), model.graph.input_names(), convert::EncodedInputTensors(meta->graph_def()), "input");
    RewriteNames(*sig.mutable_outputs(), model.graph.output_names(), convert::EncodedOutputTensors(meta->graph_def()), "output");
  }
  const std::string graph_bytes = Serialize(graph_meta, graph_path);
  tfproto::SavedModel saved;
  saved.set_saved_model_schema_version(1);
  const std::string model_id = fmt::format("{:08x}{:08x}", crc32c::Value(graph_bytes), crc32c::Value(model.conversion_json));
  tfproto::MetaGraphDef* tf_meta = saved.add_meta_graphs();
  *tf_meta = MakeTfLoadableMetaGraph(model.tags, model.signature_key, model.signature, model.graph, model_id,
                                                        model.tf_source.get());
  const std::string pb_bytes = Serialize(saved, pb_path);

  std::vector<std::pair<std::string, const std::string*>> engines;  // file name, bytes
  std::set<std::string> engine_names;
  for (const auto& [name, files] : model.engine_files) {
    for (size_t i = 0; i < files.size(); ++i) {
      std::string file = EngineFileName(name, i);
      if (file.size() > 255)
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("{}: engine '{}' has a name too long for a file name", (EnginesDir(root) / file).string(), name));
      engine_names.insert(file);
      engines.emplace_back(std::move(file), &files[i]);
    }
  }

  const fs::path engines_dir = EnginesDir(root);
  std::error_code ec;
  fs::create_directories(engines_dir, ec);
  if (ec) WriteFailed(engines_dir, ec.message());
  // Two saves into one directory (two `kiln convert` runs) take turns: each writes its whole
  // model under the lock, so the directory ends up holding one of them, never a mix.
  const WriteLock lock(KilnAssets(root) / kWriteLock);
  for (const auto& [file, bytes] : engines) WriteFileAtomically(engines_dir / file, {*bytes});
  // Engine files of an earlier save into the same directory would be picked up on load.
  for (const auto& entry : fs::directory_iterator(engines_dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (ParseEngineFileName(file) && !engine_names.count(file)) {
      std::error_code rm;
      fs::remove(entry.path(), rm);
      if (rm) WriteFailed(entry.path(), fmt::format("cannot remove a stale engine file: {}", rm.message()));
    }
  }
  if (ec) WriteFailed(engines_dir, ec.message());
  WriteFileAtomically(KilnAssets(root) / kConversionJson, {model.conversion_json});
  WriteFileAtomically(KilnAssets(root) / kConversionJsonChecksum, {ChecksumText(model.conversion_json)});
  WriteFileAtomically(KilnAssets(root) / kGraphChecksum, {ChecksumText(graph_bytes)});
  WriteFileAtomically(graph_path, {graph_bytes});
  WriteFileAtomically(KilnAssets(root) / kSavedModelChecksum, {ChecksumText(pb_bytes)});
  WriteFileAtomically(pb_path, {pb_bytes});
  return TfLayoutLine(*tf_meta);
}

bool IsConvertedModel(const std::string& dir) {
  try {
    tfproto::SavedModel saved;
    if (!ParseSavedModel(fs::path(dir) / kSavedModelFile, saved)) return false;
    if (saved.meta_graphs_size() != 1) return false;
    const std::string& version = saved.meta_graphs(0).meta_info_def().meta_graph_version();
    return version == kConvertedMetaGraphVersion || version == kTfLoadableMetaGraphVersion;
  } catch (...) {
    return false;
  }
}

ConvertedModel ReadConvertedModel(const std::string& dir) {
  ModelReadScope budget(dir);
  const fs::path root(dir);
  const fs::path pb_path = root / kSavedModelFile;
  std::error_code ec;
  if (!fs::exists(pb_path, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("{}: not found{}", pb_path.string(),
                                                  fs::is_directory(root, ec) ? "" : fmt::format(" ({} is not a directory)", dir)));
  const std::string pb_bytes = ReadFile(pb_path, MaxModelBytes(), root);
  // saved_model.pb must match the checksum written with it, checked before anything is parsed
  // from it. Without a checksum file the marker decides the message: a SavedModel Kiln did not
  // convert, or a converted one whose checksum is gone.
  const fs::path pb_checksum = KilnAssets(root) / kSavedModelChecksum;
  const bool have_checksum = fs::exists(fs::symlink_status(pb_checksum, ec));
  if (have_checksum) VerifyChecksum(pb_path, pb_bytes, pb_checksum, root);
  tfproto::SavedModel saved;
  if (!saved.ParseFromString(pb_bytes))
    throw Error(ErrorCode::kDataLoss, fmt::format("{}: cannot parse as a SavedModel protobuf (corrupt or truncated)", pb_path.string()));
  bool marked = false, tf_loadable = false;
  for (const auto& m : saved.meta_graphs()) {
    const std::string& version = m.meta_info_def().meta_graph_version();
    marked = marked || version == kConvertedMetaGraphVersion;
    tf_loadable = tf_loadable || version == kTfLoadableMetaGraphVersion;
  }
  if (!marked && !tf_loadable)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: not a Kiln-converted model (no meta graph has meta_graph_version '{}' or '{}')",
                            pb_path.string(), kTfLoadableMetaGraphVersion, kConvertedMetaGraphVersion));
  if (!have_checksum) VerifyChecksum(pb_path, pb_bytes, pb_checksum, root);  // reports the missing file
  if (saved.meta_graphs_size() != 1)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: a converted model has one meta graph; this one has {}", pb_path.string(), saved.meta_graphs_size()));
  // The converted graph and its frozen weights: assets/kiln/graph.pb (saved_model.pb is
  // TensorFlow's wrapper), checked against its own checksum before it is parsed; or saved_model.pb
  // itself in the older layout.
  tfproto::MetaGraphDef meta_storage;
  fs::path graph_path = pb_path;
  if (tf_loadable) {
    graph_path = KilnAssets(root) / kGraphFile;
    if (!fs::exists(fs::symlink_status(graph_path, ec)))
      throw Error(ErrorCode::kNotFound, fmt::format("{}: not found (the converted graph of {})", graph_path.string(), dir));
    const std::string graph_bytes = ReadFile(graph_path, MaxModelBytes(), root);
    VerifyChecksum(graph_path, graph_bytes, KilnAssets(root) / kGraphChecksum, root);
    if (!meta_storage.ParseFromString(graph_bytes) ||
        meta_storage.meta_info_def().meta_graph_version() != kConvertedMetaGraphVersion)
      throw Error(ErrorCode::kDataLoss, fmt::format("{}: cannot parse as Kiln's converted graph (corrupt or truncated)",
                                                    graph_path.string()));
  } else {
    meta_storage = saved.meta_graphs(0);
  }
  const tfproto::MetaGraphDef& meta = meta_storage;

  ConvertedModel model;
  if (tf_loadable) model.tf_layout = TfLayoutLine(saved.meta_graphs(0));
  model.tags.assign(meta.meta_info_def().tags().begin(), meta.meta_info_def().tags().end());
  if (meta.signature_def_size() > 1)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: a converted model has one signature; this one has {}", pb_path.string(), meta.signature_def_size()));
  if (meta.signature_def_size() == 1) {
    model.signature_key = meta.signature_def().begin()->first;
    model.signature = meta.signature_def().begin()->second;
  }
  try {
    model.graph = convert::DecodeIrGraph(meta.graph_def());
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: {}", graph_path.string(), e.what()));
  }
  model.conversion_json = ReadFile(KilnAssets(root) / kConversionJson, kMaxConversionJsonBytes, root);
  VerifyChecksum(KilnAssets(root) / kConversionJson, model.conversion_json, KilnAssets(root) / kConversionJsonChecksum, root);

  const fs::path engines_dir = EnginesDir(root);
  if (fs::is_directory(engines_dir, ec)) {
    std::map<std::string, std::map<size_t, std::string>> found;
    for (const auto& entry : fs::directory_iterator(engines_dir, ec)) {
      if (!entry.is_regular_file()) continue;
      auto parsed = ParseEngineFileName(entry.path().filename().string());
      if (!parsed) continue;
      found[parsed->first][parsed->second] = ReadFile(entry.path(), MaxModelBytes(), root);
    }
    if (ec) throw Error(ErrorCode::kDataLoss, fmt::format("{}: cannot list: {}", engines_dir.string(), ec.message()));
    for (auto& [name, files] : found)
      for (auto& [index, bytes] : files) model.engine_files[name].push_back(std::move(bytes));
  }
  return model;
}

}  // namespace kiln::convert
