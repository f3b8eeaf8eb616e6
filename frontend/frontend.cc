#include "frontend/frontend.h"

#include <algorithm>
#include <mutex>

namespace kiln::frontend {
namespace {

struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<const Frontend>> frontends;  // sorted by name
};

Registry& TheRegistry() {
  static Registry registry;
  return registry;
}

}  // namespace

void RegisterFrontend(std::unique_ptr<const Frontend> frontend) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const std::string name = frontend->name();
  auto at = std::lower_bound(r.frontends.begin(), r.frontends.end(), name,
                             [](const std::unique_ptr<const Frontend>& f, const std::string& n) { return f->name() < n; });
  if (at != r.frontends.end() && (*at)->name() == name) return;  // registered twice (two static copies): keep one
  r.frontends.insert(at, std::move(frontend));
}

std::vector<const Frontend*> Frontends() {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<const Frontend*> all;
  for (const auto& f : r.frontends) all.push_back(f.get());
  return all;
}

const Frontend* DetectFrontend(const std::string& path) {
  const Frontend* maybe = nullptr;
  for (const Frontend* f : Frontends()) {
    const Detection d = f->Detects(path);
    if (d == Detection::kYes) return f;
    if (d == Detection::kMaybe && !maybe) maybe = f;
  }
  return maybe;
}

}  // namespace kiln::frontend
