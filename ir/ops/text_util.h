// Helpers shared by the text ops' shape functions (ir/ops/text.cc), reference kernels
// (backend/reference/text.cc) and the ONNX importers: attribute checks of TfIdfVectorizer and
// StringNormalizer's case mapping of UTF-8 text. See docs/ops/text.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/attr.h"

namespace kiln::ir::text {

// ---- TfIdfVectorizer ----

enum class TfIdfMode { kTf, kIdf, kTfIdf };

// The n-gram pool of a TfIdfVectorizer node, checked: n-gram i (in pool order) has `lengths[i]`
// items starting at `starts[i]` of the pool attribute, and is counted in output column
// `indexes[i]` with weight `weights[i]` (1 when the node has none).
struct TfIdfPool {
  TfIdfMode mode = TfIdfMode::kTf;
  int64_t min_gram = 1, max_gram = 1, max_skip = 0;
  bool strings = false;  // pool_strings (else pool_int64s)
  std::vector<int64_t> starts, lengths, indexes;
  std::vector<double> weights;
  int64_t columns = 0;  // max(indexes) + 1 (0 without n-grams)
};

// Reads and checks the node's attributes (mode, min_gram_length, max_gram_length,
// max_skip_count, ngram_counts, ngram_indexes, pool_int64s / pool_strings, weights). Returns "" or
// what is wrong.
std::string ReadTfIdfPool(const AttrMap& attrs, TfIdfPool* pool);

// ---- StringNormalizer ----

// Upper- and lower-casing of UTF-8 text in one locale's LC_CTYPE (the C library's towupper_l /
// towlower_l: Unicode's simple case mappings, plus the locale's own rules such as Turkish's
// dotted i).
class CaseMapper {
 public:
  // `locale`: "" (the default, en_US) or a locale name such as "en_US", "tr_TR.UTF-8"; tried as
  // given and with ".UTF-8" / ".utf8". A locale that is not installed falls back to C.UTF-8 (the
  // same mappings) unless its language has its own rules (Turkish, Azerbaijani): nullptr then,
  // with `error` set.
  static std::shared_ptr<const CaseMapper> Open(const std::string& locale, std::string* error);
  ~CaseMapper();

  // `text` upper- / lower-cased; nullopt when it is not valid UTF-8.
  std::optional<std::string> Upper(const std::string& text) const;
  std::optional<std::string> Lower(const std::string& text) const;

 private:
  explicit CaseMapper(void* locale) : locale_(locale) {}
  std::optional<std::string> Map(const std::string& text, bool upper) const;
  void* locale_;  // locale_t
};

}  // namespace kiln::ir::text
