// The text ops' reference kernels and shape functions: StringNormalizer (stop words, case mapping
// of UTF-8 text) and TfIdfVectorizer (n-grams with skips, the three weightings), and their errors.
#include <gtest/gtest.h>

#include "ir/ops/text_util.h"
#include "tests/unit/nn_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using testutil::Attrs;
using testutil::Doubles;
using testutil::ExpectError;

Tensor Strings(Shape shape, std::vector<std::string> v) {
  Tensor t(DType::kString, std::move(shape));
  t.strings() = std::move(v);
  return t;
}

Tensor Normalize(const Tensor& x, ir::AttrMap attrs) {
  nntest::OneNode n("StringNormalizer", {x}, std::move(attrs));
  return n.Run({x})[0];
}

TEST(TextStringNormalizer, StopWordsAndCase) {
  const Tensor x = Strings({5}, {"Monday", "tuesday", "MONDAY", "Wednesday", ""});
  const std::vector<std::string> stop = {"monday"};
  // Case-insensitive by default: every spelling of the stop word goes; the empty string stays.
  EXPECT_EQ(Normalize(x, Attrs({{"stopwords", stop}})).strings(),
            (std::vector<std::string>{"tuesday", "Wednesday", ""}));
  EXPECT_EQ(
      Normalize(x,
                Attrs({{"stopwords", stop}, {"is_case_sensitive", true}, {"case_change_action", std::string("UPPER")}}))
          .strings(),
      (std::vector<std::string>{"MONDAY", "TUESDAY", "MONDAY", "WEDNESDAY", ""}));
  // [1, C] stays 2-D; all dropped gives one empty string.
  const Tensor y = Normalize(Strings({1, 2}, {"Monday", "monday"}), Attrs({{"stopwords", stop}}));
  EXPECT_EQ(y.shape(), (Shape{1, 1}));
  EXPECT_EQ(y.strings(), (std::vector<std::string>{""}));
  EXPECT_EQ(Normalize(Strings({0}, {}), Attrs({})).shape(), (Shape{1}));
}

TEST(TextStringNormalizer, MapsUnicodeCase) {
  const Tensor x = Strings({3}, {"\xc3\x89"
                                 "cole",
                                 "stra\xc3\x9f"
                                 "e",
                                 "\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91"});
  EXPECT_EQ(Normalize(x, Attrs({{"case_change_action", std::string("LOWER")}})).strings(),
            (std::vector<std::string>{"\xc3\xa9"
                                      "cole",
                                      "stra\xc3\x9f"
                                      "e",
                                      "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1"}));
  // Simple (one-to-one) mappings: sharp s has no single upper-case letter and stays.
  EXPECT_EQ(Normalize(x, Attrs({{"case_change_action", std::string("UPPER")}})).strings()[1],
            "STRA\xc3\x9f"
            "E");
  // Stop words match across case in any script.
  EXPECT_EQ(Normalize(x, Attrs({{"stopwords", std::vector<std::string>{"\xc3\xa9"
                                                                       "COLE"}}}))
                .strings()
                .size(),
            2u);
}

TEST(TextStringNormalizer, Errors) {
  ExpectError(
      [] {
        Normalize(Strings({1}, {"caf\xc3"}), Attrs({{"case_change_action", std::string("UPPER")}}));
      },
      ErrorCode::kInvalidArgument, {"StringNormalizer", "element 'caf", "is not valid UTF-8"});
  ExpectError(
      [] {
        Normalize(Strings({1}, {"\xed\xa0\x80"}), Attrs({{"case_change_action", std::string("LOWER")}}));
      },
      ErrorCode::kInvalidArgument, {"is not valid UTF-8"});  // a surrogate
  ExpectError(
      [] {
        Normalize(Strings({2, 2}, {"a", "b", "c", "d"}), Attrs({}));
      },
      ErrorCode::kInvalidArgument, {"X must be [C] or [1, C], got [2,2]"});
  ExpectError(
      [] {
        Normalize(Strings({1}, {"a"}), Attrs({{"case_change_action", std::string("TITLE")}}));
      },
      ErrorCode::kInvalidArgument, {"case_change_action must be NONE, LOWER or UPPER, got 'TITLE'"});
  std::string error;
  EXPECT_NE(ir::text::CaseMapper::Open("en_US", &error), nullptr) << error;  // en_US's mappings are C.UTF-8's
  EXPECT_NE(ir::text::CaseMapper::Open("", &error), nullptr) << error;
}

// ---- TfIdfVectorizer ----

ir::AttrMap TfIdf(const std::string& mode, int64_t min_n, int64_t max_n, int64_t skip) {
  // Pool: 1-grams 2, 3, 5, 4; 2-grams (5, 6), (7, 8), (6, 7): ONNX's example.
  return Attrs({{"mode", mode},
                {"min_gram_length", min_n},
                {"max_gram_length", max_n},
                {"max_skip_count", skip},
                {"ngram_counts", std::vector<int64_t>{0, 4}},
                {"ngram_indexes", std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}},
                {"pool_int64s", std::vector<int64_t>{2, 3, 5, 4, 5, 6, 7, 8, 6, 7}}});
}

Tensor Vectorize(const Tensor& x, ir::AttrMap attrs) {
  return nntest::RunOp("TfIdfVectorizer", {x}, std::move(attrs))[0];
}

TEST(TextTfIdfVectorizer, CountsNgramsWithSkips) {
  const Tensor x = nntest::I32({2, 6}, {1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8});
  // Bigrams without skips: row 2 has (6, 7) and (5, 6).
  EXPECT_EQ(Doubles(Vectorize(x, TfIdf("TF", 2, 2, 0))),
            (std::vector<double>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}));
  // Up to 5 skips: (7, 8) in row 2 with 2 between; 3 appears three times in row 1 (once per 1-gram).
  EXPECT_EQ(Doubles(Vectorize(x, TfIdf("TF", 1, 2, 5))),
            (std::vector<double>{0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1}));
  // IDF: weight where found; TFIDF: weight x count.
  ir::AttrMap idf = TfIdf("IDF", 1, 2, 5);
  idf.Set("weights", std::vector<double>{1, 0.5, 1, 1, 1, 1, 1});
  EXPECT_EQ(Doubles(Vectorize(x, idf)), (std::vector<double>{0, 0.5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1}));
  ir::AttrMap tfidf = TfIdf("TFIDF", 1, 1, 0);
  tfidf.Set("weights", std::vector<double>{1, 0.5, 1, 1, 1, 1, 1});
  EXPECT_EQ(Doubles(Vectorize(x, tfidf)), (std::vector<double>{0, 1.5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}));
}

TEST(TextTfIdfVectorizer, WeightsBelongToPoolNgrams) {
  // The spec: weight i scales pool n-gram i, whose count goes to column ngram_indexes[i].
  ir::AttrMap a = Attrs({{"mode", std::string("TFIDF")},
                         {"min_gram_length", int64_t{1}},
                         {"max_gram_length", int64_t{1}},
                         {"max_skip_count", int64_t{0}},
                         {"ngram_counts", std::vector<int64_t>{0}},
                         {"ngram_indexes", std::vector<int64_t>{2, 0}},
                         {"pool_strings", std::vector<std::string>{"a", "b"}},
                         {"weights", std::vector<double>{10, 100}}});
  const Tensor y = Vectorize(Strings({4}, {"a", "b", "a", "c"}), a);
  EXPECT_EQ(y.shape(), (Shape{3}));
  EXPECT_EQ(Doubles(y), (std::vector<double>{100, 0, 20}));
}

TEST(TextTfIdfVectorizer, Errors) {
  const Tensor x = nntest::I32({3}, {1, 2, 3});
  auto with = [](std::string name, ir::AttrValue v) {
    ir::AttrMap a = TfIdf("TF", 1, 2, 0);
    a.Set(name, std::move(v));
    return a;
  };
  ExpectError([&] { Vectorize(x, with("mode", std::string("BM25"))); }, ErrorCode::kInvalidArgument,
              {"TfIdfVectorizer", "mode must be TF, IDF or TFIDF, got 'BM25'"});
  ExpectError([&] { Vectorize(x, with("min_gram_length", int64_t{3})); }, ErrorCode::kInvalidArgument,
              {"expected 1 <= min_gram_length <= max_gram_length, got 3 and 2"});
  ExpectError(
      [&] {
        Vectorize(x, with("ngram_counts", std::vector<int64_t>{0, 5}));
      },
      ErrorCode::kInvalidArgument, {"the pool's 2-grams (items 5 to 10) are not a whole number of 2-grams"});
  ExpectError(
      [&] {
        Vectorize(x, with("ngram_counts", std::vector<int64_t>{0, 11}));
      },
      ErrorCode::kInvalidArgument, {"non-decreasing offsets into the pool of 10 items"});
  ExpectError(
      [&] {
        Vectorize(x, with("ngram_indexes", std::vector<int64_t>{0, 1}));
      },
      ErrorCode::kInvalidArgument, {"ngram_indexes has 2 entries, but the pool holds 7 n-grams"});
  ExpectError(
      [&] {
        Vectorize(x, with("ngram_indexes", std::vector<int64_t>{0, 1, 2, 3, 4, 5, -1}));
      },
      ErrorCode::kInvalidArgument, {"ngram_indexes must be in [0, 2^40), got -1"});
  ExpectError([&] { Vectorize(x, with("weights", std::vector<double>{1})); }, ErrorCode::kInvalidArgument,
              {"weights has 1 entries, expected one per n-gram (7)"});
  ExpectError([&] { Vectorize(x, with("pool_strings", std::vector<std::string>{"a"})); }, ErrorCode::kInvalidArgument,
              {"exactly one of pool_int64s and pool_strings"});
  ExpectError([&] { Vectorize(Strings({1}, {"a"}), TfIdf("TF", 1, 2, 0)); }, ErrorCode::kInvalidArgument,
              {"X has dtype string, expected int32 or int64 for pool_int64s"});
  ExpectError(
      [&] {
        Vectorize(nntest::I32({1, 1, 1}, {1}), TfIdf("TF", 1, 2, 0));
      },
      ErrorCode::kInvalidArgument, {"X must be [C] or [N, C]"});
  // A column count past the tensor size limit fails before allocating.
  SetMaxTensorBytes(1 << 20);
  ExpectError(
      [&] {
        Vectorize(x, with("ngram_indexes", std::vector<int64_t>{0, 1, 2, 3, 4, 5, int64_t{1} << 39}));
      },
      ErrorCode::kResourceExhausted, {});
  SetMaxTensorBytes(0);
}

}  // namespace
}  // namespace kiln
