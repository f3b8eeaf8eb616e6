#include "common/atomic_file.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <system_error>

#include "kiln/error.h"

namespace kiln {

void WriteFileAtomically(const std::filesystem::path& path, std::initializer_list<std::string_view> parts) {
  namespace fs = std::filesystem;
  // Unique per process and call: two threads writing one target never share a temporary.
  static std::atomic<uint64_t> counter{0};
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::path tmp =
      dir / fmt::format(".{}.tmp-{}-{}", path.filename().string(), static_cast<long>(::getpid()), counter++);
  auto fail = [&](const std::string& reason) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw Error(ErrorCode::kUnavailable, fmt::format("{}: cannot write: {}", path.string(), reason));
  };
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail("it is a directory");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(fmt::format("cannot create '{}'", tmp.string()));
    for (std::string_view part : parts) out.write(part.data(), static_cast<std::streamsize>(part.size()));
    out.close();
    if (!out) fail(fmt::format("writing '{}' failed (is the disk full?)", tmp.string()));
  }
  fs::rename(tmp, path, ec);
  if (ec) fail(ec.message());
}

}  // namespace kiln
