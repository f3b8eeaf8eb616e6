// The per-engine-node LRU engine cache.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "convert/profiles.h"
#include "kiln/error.h"
#include "runtime/engine_cache.h"

namespace kiln::runtime {
namespace {

using backend::Engine;
using backend::Profile;
using EnginePtr = std::shared_ptr<const Engine>;

class FakeEngine : public Engine {
 public:
  FakeEngine(std::string name, Profile profile) : name_(std::move(name)), profile_(std::move(profile)) {}
  const Profile& profile() const override { return profile_; }
  Precision precision() const override { return Precision::kFP32; }
  std::string precision_note() const override { return ""; }
  std::vector<DType> output_dtypes() const override { return {}; }
  std::vector<Shape> OutputShapes(std::span<const Shape>) const override { return {}; }
  void Enqueue(std::span<const Tensor>, std::span<Tensor>, backend::Stream&) const override {}
  std::string Serialize() const override { return name_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Profile profile_;
};

// An engine for exactly `shape` (one input).
EnginePtr Exact(std::string name, Shape shape) {
  return std::make_shared<FakeEngine>(std::move(name), convert::ExactProfile({std::move(shape)}));
}
// An engine for batch 1..n of [n, 16].
EnginePtr Batch(std::string name, int64_t n) {
  return std::make_shared<FakeEngine>(std::move(name), convert::ImplicitBatchProfile({{n, 16}}));
}

std::string Name(const EnginePtr& engine) {
  return engine ? static_cast<const FakeEngine&>(*engine).name() : "null";
}
std::vector<std::string> Names(const std::vector<EnginePtr>& engines) {
  std::vector<std::string> out;
  for (const EnginePtr& e : engines) out.push_back(Name(e));
  return out;
}
using Names_ = std::vector<std::string>;

TEST(EngineCache, CapacityOneEvictsPrevious) {
  EngineCache cache(1);
  EXPECT_EQ(cache.capacity(), 1u);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.Find({{1, 16}}), nullptr);
  EXPECT_TRUE(cache.Insert(Exact("a", {1, 16})).empty());
  EXPECT_EQ(Name(cache.Find({{1, 16}})), "a");
  EXPECT_EQ(Names(cache.Insert(Exact("b", {2, 16}))), Names_{"a"});
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Find({{1, 16}}), nullptr);
  EXPECT_EQ(Name(cache.Find({{2, 16}})), "b");
}

TEST(EngineCache, CapacityTwoEvictsLeastRecentlyUsed) {
  EngineCache cache(2);
  cache.Insert(Exact("a", {1, 16}));
  cache.Insert(Exact("b", {2, 16}));
  EXPECT_EQ(Names(cache.Engines()), (Names_{"b", "a"}));
  EXPECT_EQ(Names(cache.Insert(Exact("c", {3, 16}))), Names_{"a"});
  EXPECT_EQ(Names(cache.Engines()), (Names_{"c", "b"}));
  EXPECT_EQ(Names(cache.Insert(Exact("d", {4, 16}))), Names_{"b"});
  EXPECT_EQ(Names(cache.Engines()), (Names_{"d", "c"}));
}

TEST(EngineCache, FindRefreshesRecency) {
  EngineCache cache(2);
  cache.Insert(Exact("a", {1, 16}));
  cache.Insert(Exact("b", {2, 16}));
  EXPECT_EQ(Name(cache.Find({{1, 16}})), "a");  // a is now most recently used
  EXPECT_EQ(Names(cache.Engines()), (Names_{"a", "b"}));
  EXPECT_EQ(Names(cache.Insert(Exact("c", {3, 16}))), Names_{"b"});
  EXPECT_EQ(Names(cache.Engines()), (Names_{"c", "a"}));
  // A miss changes nothing.
  EXPECT_EQ(cache.Find({{9, 16}}), nullptr);
  EXPECT_EQ(Names(cache.Engines()), (Names_{"c", "a"}));
}

TEST(EngineCache, PrefersMostRecentlyUsedAmongCovering) {
  EngineCache cache(3);
  cache.Insert(Batch("b8", 8));  // covers batch 1..8
  cache.Insert(Batch("b4", 4));  // covers batch 1..4
  EXPECT_EQ(Name(cache.Find({{2, 16}})), "b4");
  EXPECT_EQ(Name(cache.Find({{6, 16}})), "b8");
  EXPECT_EQ(Name(cache.Find({{2, 16}})), "b8");  // b8 is now the most recently used that covers it
  EXPECT_EQ(cache.Find({{9, 16}}), nullptr);
  EXPECT_EQ(cache.Find({{2, 17}}), nullptr);
}

TEST(EngineCache, ReinsertAndSameProfile) {
  EngineCache cache(3);
  EnginePtr a = Exact("a", {1, 16});
  cache.Insert(a);
  cache.Insert(Exact("b", {2, 16}));
  EXPECT_TRUE(cache.Insert(a).empty());  // already cached: refreshed, not duplicated
  EXPECT_EQ(Names(cache.Engines()), (Names_{"a", "b"}));
  EXPECT_EQ(Names(cache.Insert(Exact("b2", {2, 16}))), Names_{"b"});  // same profile: replaced
  EXPECT_EQ(Names(cache.Engines()), (Names_{"b2", "a"}));
}

TEST(EngineCache, EvictedEnginesStayAliveForHolders) {
  EngineCache cache(1);
  cache.Insert(Exact("a", {1, 16}));
  EnginePtr held = cache.Find({{1, 16}});
  cache.Insert(Exact("b", {2, 16}));
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(Name(held), "a");
}

TEST(EngineCache, RejectsZeroCapacityAndNull) {
  EXPECT_THROW(EngineCache(0), Error);
  EngineCache cache(1);
  EXPECT_THROW(cache.Insert(nullptr), Error);
}

TEST(EngineCache, ConcurrentFindAndInsert) {
  constexpr size_t kCapacity = 4;
  constexpr int kThreads = 8, kIterations = 2000, kShapes = 10;
  EngineCache cache(kCapacity);
  std::atomic<int> hits{0}, evicted{0}, inserted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        int64_t n = (t * 7 + i) % kShapes + 1;
        std::vector<Shape> shapes = {{n, 16}};
        if (EnginePtr e = cache.Find(shapes)) {
          ASSERT_TRUE(e->profile().Covers(shapes));
          ++hits;
        } else {
          evicted += static_cast<int>(cache.Insert(Exact("e" + std::to_string(n), {n, 16})).size());
          ++inserted;
        }
        ASSERT_LE(cache.size(), kCapacity);
        ASSERT_LE(cache.Engines().size(), kCapacity);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(hits + inserted, kThreads * kIterations);
  EXPECT_EQ(cache.size(), kCapacity);
  // Every insert either stays cached or was evicted (same-profile replacements count as evicted).
  EXPECT_EQ(inserted - evicted, static_cast<int>(cache.size()));
  std::vector<EnginePtr> engines = cache.Engines();
  for (size_t i = 0; i < engines.size(); ++i)
    for (size_t j = i + 1; j < engines.size(); ++j)
      EXPECT_FALSE(convert::SameProfile(engines[i]->profile(), engines[j]->profile()));
}

}  // namespace
}  // namespace kiln::runtime
