// A table of entries looked up by name: the shape shared by Kiln's registries (IR op schemas,
// reference kernels, importers, backend op tables). Entries are added while a registry is
// built; a name can be added once. Names() lists them in sorted order, so every listing built
// from a registry is deterministic.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/error.h"

namespace kiln {

template <typename T>
class NameRegistry {
 public:
  // `what` names one entry in error messages, e.g. "IR op" or "reference kernel".
  explicit NameRegistry(std::string what) : what_(std::move(what)) {}

  // Throws kInternal when `name` is already registered.
  void Add(const std::string& name, T entry) {
    if (!entries_.emplace(name, std::move(entry)).second)
      throw Error(ErrorCode::kInternal, fmt::format("{} registered twice: {}", what_, name));
  }

  // The entry of `name`, or nullptr.
  const T* Find(std::string_view name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    names.reserve(entries_.size());
    for (const auto& [name, entry] : entries_) names.push_back(name);
    return names;
  }

 private:
  std::string what_;
  std::map<std::string, T, std::less<>> entries_;
};

// Registers entries during static initialisation, next to the code they name, the way TensorFlow's
// REGISTER_KERNEL_BUILDER and ONNX Runtime's kernel macros keep an op's registration with its kernel:
//   KILN_STATIC_REGISTRATION(ReferenceKernelRegistry().Add("Gather", Gather));
// The registry must be a function-local static (constructed on first use, so the order in which
// translation units initialise does not matter), and the library holding the registrations must
// be linked whole (CMake: $<LINK_LIBRARY:WHOLE_ARCHIVE,lib>), or the linker drops them.
#define KILN_REGISTRATION_CONCAT_(a, b) a##b
#define KILN_REGISTRATION_CONCAT(a, b) KILN_REGISTRATION_CONCAT_(a, b)
#define KILN_STATIC_REGISTRATION(registration) \
  [[maybe_unused]] static const bool KILN_REGISTRATION_CONCAT(kiln_registration_, __COUNTER__) = ((registration), true)

// A registry built by running each registration function (one per op family) on it, in order.
template <typename Registry>
Registry BuildRegistry(std::initializer_list<void (*)(Registry&)> families) {
  Registry registry;
  for (auto add : families) add(registry);
  return registry;
}

}  // namespace kiln
