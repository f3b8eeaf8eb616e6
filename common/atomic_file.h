// Writing a file so that readers never see it half written: the bytes go to a temporary file
// next to the target, which is renamed over the target only once every byte is on disk. A
// failed write (a full disk, a read-only directory) leaves the previous file, or none, and no
// temporary behind.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string_view>

namespace kiln {

// Writes the concatenation of `parts` to `path`. kUnavailable "PATH: cannot write: REASON".
void WriteFileAtomically(const std::filesystem::path& path, std::initializer_list<std::string_view> parts);

}  // namespace kiln
