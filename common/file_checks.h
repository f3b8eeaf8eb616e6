// Checks on the files a model names, before Kiln reads them:
// - RequireRegularFile: a FIFO, socket or device passed as a model, weights or input file would
//   block open() or read() forever (or stream without end); it is refused without blocking
//   (opened with O_NONBLOCK and checked with fstat).
// - RequireInsideDirectory: a file of a model (a weights shard, external data) must resolve,
//   symlinks followed, to a path inside the model's directory, so that a downloaded model cannot
//   make Kiln read (and return in its outputs) a file elsewhere on the machine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln {

// kNotFound "WHAT 'PATH' does not exist" / "cannot be opened: REASON"; kInvalidArgument
// "WHAT 'PATH' is not a regular file (a FIFO, ...)".
void RequireRegularFile(const std::filesystem::path& path, const std::string& what);

// The whole of a regular file (RequireRegularFile) of at most `max_bytes`, checked from its size
// before anything is read (a sparse file of gigabytes is refused, not read). kResourceExhausted
// "WHAT 'PATH' is N bytes, more than it may hold (M bytes)"; kDataLoss for a read error.
std::string ReadRegularFile(const std::filesystem::path& path, uintmax_t max_bytes, const std::string& what);

// kInvalidArgument "WHAT 'PATH' resolves to 'REAL', outside the model's directory 'DIR'";
// kNotFound when either cannot be resolved.
void RequireInsideDirectory(const std::filesystem::path& path, const std::filesystem::path& dir,
                            const std::string& what);

}  // namespace kiln
