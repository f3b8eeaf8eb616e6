#include "common/file_checks.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "kiln/error.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

const char* KindOf(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

}  // namespace

void RequireRegularFile(const fs::path& path, const std::string& what) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) throw Error(ErrorCode::kNotFound, fmt::format("{} '{}' does not exist", what, path.string()));
    throw Error(ErrorCode::kNotFound,
                fmt::format("{} '{}' cannot be opened: {}", what, path.string(), std::strerror(err)));
  }
  struct stat st {};
  const bool ok = ::fstat(fd, &st) == 0;
  ::close(fd);
  if (!ok) throw Error(ErrorCode::kNotFound, fmt::format("{} '{}' cannot be examined", what, path.string()));
  if (!S_ISREG(st.st_mode))
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} '{}' is not a regular file ({})", what, path.string(), KindOf(st.st_mode)));
}

std::string ReadRegularFile(const fs::path& path, uintmax_t max_bytes, const std::string& what) {
  RequireRegularFile(path, what);
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec)
    throw Error(ErrorCode::kNotFound,
                fmt::format("{} '{}': cannot read its size: {}", what, path.string(), ec.message()));
  if (size > max_bytes)
    throw Error(ErrorCode::kResourceExhausted, fmt::format("{} '{}' is {} bytes, more than it may hold ({} bytes)",
                                                           what, path.string(), size, max_bytes));
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in || !in.read(bytes.data(), static_cast<std::streamsize>(size)))
    throw Error(ErrorCode::kDataLoss, fmt::format("{} '{}': read error", what, path.string()));
  return bytes;
}

void RequireInsideDirectory(const fs::path& path, const fs::path& dir, const std::string& what) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec)
    throw Error(ErrorCode::kNotFound, fmt::format("{} '{}' cannot be resolved: {}", what, path.string(), ec.message()));
  const fs::path root = fs::canonical(dir.empty() ? fs::path(".") : dir, ec);
  if (ec)
    throw Error(ErrorCode::kNotFound, fmt::format("the directory '{}' of {} cannot be resolved", dir.string(), what));
  const fs::path rel = real.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..")
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{} '{}' resolves to '{}', outside the model's directory '{}'",
                                                         what, path.string(), real.string(), root.string()));
}

}  // namespace kiln
