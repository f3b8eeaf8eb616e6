// Optimization profiles by strategy (TF-TRT's table for build() inputs [8,128] and [4,384]), Profile::Covers and Profile::ToString.
#include "convert/profiles.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kiln/error.h"
#include "tests/unit/test_util.h"

namespace kiln::convert {
namespace {

using backend::InputRange;
using backend::Profile;
using testutil::ExpectError;

std::vector<std::string> Strings(const std::vector<Profile>& profiles) {
  std::vector<std::string> out;
  for (const Profile& p : profiles) out.push_back(p.ToString());
  return out;
}

// Seed 002: build() inputs [8,128] then [4,384].
const std::vector<std::vector<Shape>> kSeedRuns = {{{8, 128}}, {{4, 384}}};

// One row of TF-TRT's table: the profiles a strategy makes from the seed runs, in order.
struct SeedTableRow {
  std::string strategy_name;
  ProfileStrategy strategy;
  std::vector<std::string> strings;
  std::vector<InputRange> ranges;  // each profile's one input
};

// Names the row in test output (gtest would print its bytes).
void PrintTo(const SeedTableRow& row, std::ostream* os) { *os << row.strategy_name; }

class SeedTable : public ::testing::TestWithParam<SeedTableRow> {};

TEST_P(SeedTable, MakesTheTableRow) {
  const SeedTableRow& row = GetParam();
  const std::vector<Profile> profiles = MakeProfiles(row.strategy, kSeedRuns);
  EXPECT_EQ(Strings(profiles), row.strings);
  ASSERT_EQ(profiles.size(), row.ranges.size());
  for (size_t i = 0; i < profiles.size(); ++i) {
    SCOPED_TRACE("profile " + std::to_string(i));
    ASSERT_EQ(profiles[i].inputs.size(), 1u);
    EXPECT_EQ(profiles[i].inputs[0].min, row.ranges[i].min);
    EXPECT_EQ(profiles[i].inputs[0].opt, row.ranges[i].opt);
    EXPECT_EQ(profiles[i].inputs[0].max, row.ranges[i].max);
  }
}

// Ranges are {min, opt, max}; a range profile's opt is its max, as in TF-TRT.
INSTANTIATE_TEST_SUITE_P(
    Profiles, SeedTable,
    ::testing::Values(
        SeedTableRow{"Range", ProfileStrategy::kRange, {"[4-8,128-384]"}, {{{4, 128}, {8, 384}, {8, 384}}}},
        SeedTableRow{"Optimal",
                     ProfileStrategy::kOptimal,
                     {"[8,128]", "[4,384]"},
                     {{{8, 128}, {8, 128}, {8, 128}}, {{4, 384}, {4, 384}, {4, 384}}}},
        SeedTableRow{"RangeOptimal",
                     ProfileStrategy::kRangeOptimal,
                     {"[8,128]", "[4,384]", "[4-8,128-384]"},
                     {{{8, 128}, {8, 128}, {8, 128}}, {{4, 384}, {4, 384}, {4, 384}}, {{4, 128}, {8, 384}, {8, 384}}}},
        SeedTableRow{"ImplicitBatchModeCompatible",
                     ProfileStrategy::kImplicitBatchModeCompatible,
                     {"[1-8,128]", "[1-4,384]"},
                     {{{1, 128}, {8, 128}, {8, 128}}, {{1, 384}, {4, 384}, {4, 384}}}}),
    [](const ::testing::TestParamInfo<SeedTableRow>& info) { return info.param.strategy_name; });

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
    ExpectError([&] { MakeProfiles(strategy, runs); }, ErrorCode::kInvalidArgument, {"input 1", "rank"});
  }
}

TEST(Profiles, InputCountMismatchAndNegativeDims) {
  const std::vector<std::vector<Shape>> runs = {{{8, 128}}, {{8, 128}, {8, 128}}};
  ExpectError([&] { MakeProfiles(ProfileStrategy::kRange, runs); }, ErrorCode::kInvalidArgument,
              {"run 1 has 2 inputs"});
  ExpectError([] { MakeProfiles(ProfileStrategy::kOptimal, {{{-1, 128}}}); }, ErrorCode::kInvalidArgument, {"input 0"});
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
