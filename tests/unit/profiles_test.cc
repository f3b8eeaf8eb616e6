// Optimization profiles by strategy (TF-TRT's table for build() inputs [8,128] and [4,384]), Profile::Covers and Profile::ToString.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "convert/profiles.h"
#include "kiln/error.h"

namespace kiln::convert {
namespace {

using backend::InputRange;
using backend::Profile;

std::vector<std::string> Strings(const std::vector<Profile>& profiles) {
  std::vector<std::string> out;
  for (const Profile& p : profiles) out.push_back(p.ToString());
  return out;
}

// Seed 002: build() inputs [8,128] then [4,384].
const std::vector<std::vector<Shape>> kSeedRuns = {{{8, 128}}, {{4, 384}}};

TEST(Profiles, SeedTableRange) {
  auto profiles = MakeProfiles(ProfileStrategy::kRange, kSeedRuns);
  EXPECT_EQ(Strings(profiles), (std::vector<std::string>{"[4-8,128-384]"}));
  ASSERT_EQ(profiles.size(), 1u);
  ASSERT_EQ(profiles[0].inputs.size(), 1u);
  EXPECT_EQ(profiles[0].inputs[0].min, (Shape{4, 128}));
  EXPECT_EQ(profiles[0].inputs[0].max, (Shape{8, 384}));
  EXPECT_EQ(profiles[0].inputs[0].opt, (Shape{8, 384}));  // opt = max, as TF-TRT
}

TEST(Profiles, SeedTableOptimal) {
  auto profiles = MakeProfiles(ProfileStrategy::kOptimal, kSeedRuns);
  EXPECT_EQ(Strings(profiles), (std::vector<std::string>{"[8,128]", "[4,384]"}));
  ASSERT_EQ(profiles.size(), 2u);
  EXPECT_EQ(profiles[0].inputs[0].min, (Shape{8, 128}));
  EXPECT_EQ(profiles[0].inputs[0].opt, (Shape{8, 128}));
  EXPECT_EQ(profiles[0].inputs[0].max, (Shape{8, 128}));
  EXPECT_EQ(profiles[1].inputs[0].min, (Shape{4, 384}));
  EXPECT_EQ(profiles[1].inputs[0].max, (Shape{4, 384}));
}

TEST(Profiles, SeedTableRangeOptimal) {
  auto profiles = MakeProfiles(ProfileStrategy::kRangeOptimal, kSeedRuns);
  EXPECT_EQ(Strings(profiles), (std::vector<std::string>{"[8,128]", "[4,384]", "[4-8,128-384]"}));
  ASSERT_EQ(profiles.size(), 3u);
  EXPECT_EQ(profiles[0].inputs[0].min, (Shape{8, 128}));
  EXPECT_EQ(profiles[0].inputs[0].max, (Shape{8, 128}));
  EXPECT_EQ(profiles[1].inputs[0].min, (Shape{4, 384}));
  EXPECT_EQ(profiles[1].inputs[0].max, (Shape{4, 384}));
  EXPECT_EQ(profiles[2].inputs[0].min, (Shape{4, 128}));
  EXPECT_EQ(profiles[2].inputs[0].max, (Shape{8, 384}));
}

TEST(Profiles, SeedTableImplicitBatchModeCompatible) {
  auto profiles = MakeProfiles(ProfileStrategy::kImplicitBatchModeCompatible, kSeedRuns);
  EXPECT_EQ(Strings(profiles), (std::vector<std::string>{"[1-8,128]", "[1-4,384]"}));
  ASSERT_EQ(profiles.size(), 2u);
  EXPECT_EQ(profiles[0].inputs[0].min, (Shape{1, 128}));
  EXPECT_EQ(profiles[0].inputs[0].opt, (Shape{8, 128}));
  EXPECT_EQ(profiles[0].inputs[0].max, (Shape{8, 128}));
  EXPECT_EQ(profiles[1].inputs[0].min, (Shape{1, 384}));
  EXPECT_EQ(profiles[1].inputs[0].max, (Shape{4, 384}));
}

TEST(Profiles, SeedTableWithThreeBertInputs) {
  // The doc's BERT example: three inputs per run, all the same shape.
  std::vector<std::vector<Shape>> runs = {{{8, 128}, {8, 128}, {8, 128}}, {{4, 384}, {4, 384}, {4, 384}}};
  EXPECT_EQ(Strings(MakeProfiles(ProfileStrategy::kRange, runs)),
            (std::vector<std::string>{"[4-8,128-384];[4-8,128-384];[4-8,128-384]"}));
  EXPECT_EQ(Strings(MakeProfiles(ProfileStrategy::kImplicitBatchModeCompatible, runs)),
            (std::vector<std::string>{"[1-8,128];[1-8,128];[1-8,128]", "[1-4,384];[1-4,384];[1-4,384]"}));
}

TEST(Profiles, DedupesKeepingFirstSeenOrder) {
  std::vector<std::vector<Shape>> runs = {{{4, 384}}, {{8, 128}}, {{4, 384}}, {{8, 128}}, {{2, 64}}};
  EXPECT_EQ(Strings(MakeProfiles(ProfileStrategy::kOptimal, runs)),
            (std::vector<std::string>{"[4,384]", "[8,128]", "[2,64]"}));
  // One distinct shape: the Range profile equals the exact one and is not repeated.
  std::vector<std::vector<Shape>> same = {{{8, 128}}, {{8, 128}}};
  EXPECT_EQ(Strings(MakeProfiles(ProfileStrategy::kRangeOptimal, same)), (std::vector<std::string>{"[8,128]"}));
  EXPECT_EQ(Strings(MakeProfiles(ProfileStrategy::kRange, same)), (std::vector<std::string>{"[8,128]"}));
}

TEST(Profiles, ImplicitBatchGroupsByNonBatchDims) {
  // Batches 2, 8 and 4 at sequence 128 make one profile with the largest batch.
  std::vector<std::vector<Shape>> runs = {{{2, 128}}, {{4, 384}}, {{8, 128}}, {{4, 128}}, {{1, 384}}};
  EXPECT_EQ(Strings(MakeProfiles(ProfileStrategy::kImplicitBatchModeCompatible, runs)),
            (std::vector<std::string>{"[1-8,128]", "[1-4,384]"}));
}

TEST(Profiles, NoRunsNoProfiles) {
  EXPECT_TRUE(MakeProfiles(ProfileStrategy::kRange, {}).empty());
  EXPECT_TRUE(MakeProfiles(ProfileStrategy::kRangeOptimal, {}).empty());
}

TEST(Profiles, ScalarsAndBatchZero) {
  EXPECT_EQ(ImplicitBatchProfile({{}, {3, 5}}).ToString(), "[];[1-3,5]");
  EXPECT_EQ(ImplicitBatchProfile({{0, 5}}).ToString(), "[0,5]");
  EXPECT_EQ(ExactProfile({{}, {2, 3}}).ToString(), "[];[2,3]");
}

TEST(Profiles, RankMismatchNamesInputIndex) {
  std::vector<std::vector<Shape>> runs = {{{8, 128}, {8}}, {{4, 384}, {4, 2}}};
  for (auto strategy : {ProfileStrategy::kRange, ProfileStrategy::kOptimal, ProfileStrategy::kRangeOptimal,
                        ProfileStrategy::kImplicitBatchModeCompatible}) {
    try {
      MakeProfiles(strategy, runs);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("input 1"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("rank"), std::string::npos) << e.what();
    }
  }
}

TEST(Profiles, InputCountMismatchAndNegativeDims) {
  try {
    MakeProfiles(ProfileStrategy::kRange, {{{8, 128}}, {{8, 128}, {8, 128}}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("run 1 has 2 inputs"), std::string::npos) << e.what();
  }
  try {
    MakeProfiles(ProfileStrategy::kOptimal, {{{-1, 128}}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("input 0"), std::string::npos) << e.what();
  }
}

TEST(ProfileCovers, InclusiveBounds) {
  Profile p{{InputRange{{4, 128}, {8, 384}, {8, 384}}}};
  EXPECT_TRUE(p.Covers({{4, 128}}));   // min
  EXPECT_TRUE(p.Covers({{8, 384}}));   // max
  EXPECT_TRUE(p.Covers({{4, 384}}));   // corners
  EXPECT_TRUE(p.Covers({{6, 200}}));
  EXPECT_FALSE(p.Covers({{3, 128}}));  // below min
  EXPECT_FALSE(p.Covers({{9, 128}}));  // above max
  EXPECT_FALSE(p.Covers({{8, 385}}));
  EXPECT_FALSE(p.Covers({{4, 127}}));
}

TEST(ProfileCovers, RankAndInputCountMismatch) {
  Profile p{{InputRange{{4, 128}, {8, 384}, {8, 384}}}};
  EXPECT_FALSE(p.Covers({{4}}));
  EXPECT_FALSE(p.Covers({{4, 128, 1}}));
  EXPECT_FALSE(p.Covers({}));
  EXPECT_FALSE(p.Covers({{4, 128}, {4, 128}}));
  Profile scalar = ExactProfile({{}});
  EXPECT_TRUE(scalar.Covers({{}}));
  EXPECT_FALSE(scalar.Covers({{1}}));
  EXPECT_TRUE(Profile{}.Covers({}));
}

TEST(ProfileToString, Formats) {
  Profile p{{InputRange{{4, 128}, {8, 384}, {8, 384}}, InputRange{{1}, {1}, {1}}}};
  EXPECT_EQ(p.ToString(), "[4-8,128-384];[1]");
  EXPECT_EQ(Profile{}.ToString(), "");
}

TEST(SameProfile, ComparesMinOptMax) {
  Profile a = ExactProfile({{8, 128}});
  Profile b = a;
  EXPECT_TRUE(SameProfile(a, b));
  b.inputs[0].opt = {4, 128};
  EXPECT_FALSE(SameProfile(a, b));
  EXPECT_FALSE(SameProfile(a, ExactProfile({{8, 128}, {8, 128}})));
}

}  // namespace
}  // namespace kiln::convert
