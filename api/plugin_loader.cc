// kiln::LoadPlugin: custom ops from a shared library (include/kiln/custom_op.h).
#include <dlfcn.h>
#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "kiln/custom_op.h"
#include "kiln/error.h"

namespace kiln {
namespace {

// The first error a plugin's registrations raised during its init (the callback cannot throw
// through the plugin's C entry point).
thread_local std::optional<Error> registration_error;

void RegisterFromPlugin(const CustomOp& op) {
  try {
    RegisterCustomOp(op);
  } catch (const Error& e) {
    if (!registration_error) registration_error = e;
  }
}

}  // namespace

void LoadPlugin(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("plugin '{}' is not a file", path));
  // Plugins stay loaded: the ops they registered point into them.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("plugin '{}' cannot be loaded: {}", path, dlerror()));
  using InitFn = int (*)(int, RegisterCustomOpFn);
  auto init = reinterpret_cast<InitFn>(dlsym(handle, "kiln_plugin_init"));
  if (!init)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("plugin '{}' has no kiln_plugin_init entry point (include/kiln/custom_op.h)", path));
  registration_error.reset();
  const int rc = init(kCustomOpApiVersion, &RegisterFromPlugin);
  if (registration_error) {
    const Error e = *registration_error;
    registration_error.reset();
    throw Error(e.code(), fmt::format("plugin '{}': {}", path, e.what()));
  }
  if (rc != 0)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("plugin '{}': kiln_plugin_init failed with {} (this Kiln's custom op API is version {})",
                            path, rc, kCustomOpApiVersion));
}

}  // namespace kiln
