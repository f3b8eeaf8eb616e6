// Text IR ops: StringNormalizer, TfIdfVectorizer (ONNX's semantics). See docs/ops/text.md.
#include <fmt/format.h>
#include <langinfo.h>
#include <locale.h>

#include <algorithm>
#include <cstring>
#include <cwctype>

#include "ir/op_schema.h"
#include "ir/ops/text_util.h"

namespace kiln::ir {

void RegisterTextOps(OpRegistry& registry);

namespace text {

std::string ReadTfIdfPool(const AttrMap& attrs, TfIdfPool* pool) {
  const std::string mode = attrs.GetOr<std::string>("mode", "");
  if (mode == "TF")
    pool->mode = TfIdfMode::kTf;
  else if (mode == "IDF")
    pool->mode = TfIdfMode::kIdf;
  else if (mode == "TFIDF")
    pool->mode = TfIdfMode::kTfIdf;
  else
    return fmt::format("mode must be TF, IDF or TFIDF, got '{}'", mode);
  pool->min_gram = attrs.GetOr<int64_t>("min_gram_length", 0);
  pool->max_gram = attrs.GetOr<int64_t>("max_gram_length", 0);
  pool->max_skip = attrs.GetOr<int64_t>("max_skip_count", -1);
  if (pool->min_gram < 1 || pool->max_gram < pool->min_gram)
    return fmt::format("expected 1 <= min_gram_length <= max_gram_length, got {} and {}", pool->min_gram,
                       pool->max_gram);
  if (pool->max_skip < 0) return fmt::format("max_skip_count must not be negative, got {}", pool->max_skip);
  const bool ints = attrs.Has("pool_int64s"), strings = attrs.Has("pool_strings");
  if (ints == strings) return "exactly one of pool_int64s and pool_strings must be given";
  pool->strings = strings;
  const int64_t size = strings ? static_cast<int64_t>(attrs.Get<std::vector<std::string>>("pool_strings").size())
                               : static_cast<int64_t>(attrs.Ints("pool_int64s").size());
  const std::vector<int64_t> counts = attrs.GetOr<std::vector<int64_t>>("ngram_counts", {});
  if (size > 0 && (counts.empty() || counts[0] != 0))
    return fmt::format("ngram_counts must start with 0 (where the 1-grams start), got [{}]", fmt::join(counts, ","));
  pool->starts.clear();
  pool->lengths.clear();
  for (size_t level = 0; level < counts.size(); ++level) {
    const int64_t begin = counts[level], end = level + 1 < counts.size() ? counts[level + 1] : size;
    if (begin < 0 || end < begin || end > size)
      return fmt::format("ngram_counts [{}] must be non-decreasing offsets into the pool of {} items",
                         fmt::join(counts, ","), size);
    const int64_t n = static_cast<int64_t>(level) + 1;
    if ((end - begin) % n != 0)
      return fmt::format("the pool's {}-grams (items {} to {}) are not a whole number of {}-grams", n, begin, end, n);
    for (int64_t at = begin; at < end; at += n) {
      pool->starts.push_back(at);
      pool->lengths.push_back(n);
    }
  }
  pool->indexes = attrs.GetOr<std::vector<int64_t>>("ngram_indexes", {});
  if (pool->indexes.size() != pool->starts.size())
    return fmt::format("ngram_indexes has {} entries, but the pool holds {} n-grams", pool->indexes.size(),
                       pool->starts.size());
  pool->columns = 0;
  for (const int64_t index : pool->indexes) {
    if (index < 0 || index >= (int64_t{1} << 40))
      return fmt::format("ngram_indexes must be in [0, 2^40), got {}", index);
    pool->columns = std::max(pool->columns, index + 1);
  }
  pool->weights = attrs.GetOr<std::vector<double>>("weights", {});
  if (!pool->weights.empty() && pool->weights.size() != pool->indexes.size())
    return fmt::format("weights has {} entries, expected one per n-gram ({})", pool->weights.size(),
                       pool->indexes.size());
  if (pool->weights.empty()) pool->weights.assign(pool->indexes.size(), 1.0);
  return "";
}

namespace {

bool IsUtf8Locale(locale_t loc) {
  const char* codeset = nl_langinfo_l(CODESET, loc);
  return codeset && (std::strcmp(codeset, "UTF-8") == 0 || std::strcmp(codeset, "utf8") == 0);
}

locale_t TryLocale(const std::string& name) {
  locale_t loc = newlocale(LC_CTYPE_MASK, name.c_str(), static_cast<locale_t>(nullptr));
  if (loc && !IsUtf8Locale(loc)) {
    freelocale(loc);
    return static_cast<locale_t>(nullptr);
  }
  return loc;
}

// Appends the UTF-8 encoding of code point c.
void Encode(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// Decodes the code point at text[*i] and advances *i; false for invalid UTF-8 (bad or truncated
// sequences, overlong forms, surrogates, code points past U+10FFFF).
bool Decode(const std::string& text, size_t* i, char32_t* c) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(*i);
  int extra = 0;
  char32_t min = 0;
  if (b0 < 0x80) {
    *c = b0;
    ++*i;
    return true;
  } else if ((b0 & 0xE0) == 0xC0) {
    extra = 1, *c = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, *c = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, *c = b0 & 0x07, min = 0x10000;
  } else {
    return false;
  }
  if (*i + static_cast<size_t>(extra) >= text.size()) return false;
  for (int k = 1; k <= extra; ++k) {
    const unsigned char b = byte(*i + static_cast<size_t>(k));
    if ((b & 0xC0) != 0x80) return false;
    *c = (*c << 6) | (b & 0x3F);
  }
  if (*c < min || *c > 0x10FFFF || (*c >= 0xD800 && *c <= 0xDFFF)) return false;
  *i += static_cast<size_t>(extra) + 1;
  return true;
}

}  // namespace

std::shared_ptr<const CaseMapper> CaseMapper::Open(const std::string& locale, std::string* error) {
  locale_t loc = static_cast<locale_t>(nullptr);
  if (!locale.empty()) {
    loc = TryLocale(locale);
    if (!loc && locale.find('.') == std::string::npos) loc = TryLocale(locale + ".UTF-8");
    if (!loc && locale.find('.') == std::string::npos) loc = TryLocale(locale + ".utf8");
    if (!loc) {
      const std::string language = locale.substr(0, locale.find_first_of("_.@"));
      if (language == "tr" || language == "az") {
        *error = fmt::format(
            "locale '{}' is not installed on this machine (its case rules differ from Unicode's "
            "default ones)",
            locale);
        return nullptr;
      }
    }
  }
  if (!loc) loc = TryLocale("C.UTF-8");
  if (!loc) loc = TryLocale("C.utf8");
  if (!loc) {
    *error = "no UTF-8 locale (C.UTF-8) is installed on this machine";
    return nullptr;
  }
  return std::shared_ptr<const CaseMapper>(new CaseMapper(loc));
}

CaseMapper::~CaseMapper() { freelocale(static_cast<locale_t>(locale_)); }

std::optional<std::string> CaseMapper::Map(const std::string& text, bool upper) const {
  const locale_t loc = static_cast<locale_t>(locale_);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t c = 0;
    if (!Decode(text, &i, &c)) return std::nullopt;
    const wint_t w = static_cast<wint_t>(c);
    const wint_t mapped = upper ? towupper_l(w, loc) : towlower_l(w, loc);
    Encode(static_cast<char32_t>(mapped), &out);
  }
  return out;
}

std::optional<std::string> CaseMapper::Upper(const std::string& text) const { return Map(text, true); }
std::optional<std::string> CaseMapper::Lower(const std::string& text) const { return Map(text, false); }

}  // namespace text

namespace {

std::string S(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }

// ---- StringNormalizer(X [C] or [1, C]) attrs case_change_action, is_case_sensitive,
// stopwords, locale -> the kept elements, [C'] or [1, C'] ----
void InferStringNormalizer(InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kString)
    ctx.Fail(fmt::format("X must be a string tensor, got {}", DTypeName(ctx.input_dtype(0))));
  const std::string action = ctx.attrs().GetOr<std::string>("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER")
    ctx.Fail(fmt::format("case_change_action must be NONE, LOWER or UPPER, got '{}'", action));
  const SymShape& x = ctx.input_shape(0);
  if (x.rank_known && !(x.rank() == 1 || (x.rank() == 2 && (!IsStatic(x.dims[0]) || x.dims[0] == 1))))
    ctx.Fail(fmt::format("X must be [C] or [1, C], got {}", S(ctx, x)));
  const bool keeps_all = ctx.attrs().GetOr<std::vector<std::string>>("stopwords", {}).empty();
  if (!x.rank_known) return ctx.SetOutput(0, DType::kString, SymShape::Unknown());
  SymShape out = x;
  if (x.rank() == 2) out.dims[0] = 1;
  // Without stop words every element stays (an empty X gives one empty string).
  Dim& c = out.dims.back();
  if (!keeps_all || !IsStatic(c))
    c = kUnknownDim;
  else if (c == 0)
    c = 1;
  ctx.SetOutput(0, DType::kString, out);
}

// ---- TfIdfVectorizer(X [C] or [N, C], int32 / int64 / string) -> float32 [columns] or
// [N, columns] ----
void InferTfIdfVectorizer(InferContext& ctx) {
  text::TfIdfPool pool;
  if (std::string e = text::ReadTfIdfPool(ctx.attrs(), &pool); !e.empty()) ctx.Fail(e);
  const DType t = ctx.input_dtype(0);
  if (pool.strings ? t != DType::kString : (t != DType::kInt32 && t != DType::kInt64))
    ctx.Fail(fmt::format("X has dtype {}, expected {} for {}", DTypeName(t), pool.strings ? "string" : "int32 or int64",
                         pool.strings ? "pool_strings" : "pool_int64s"));
  const SymShape& x = ctx.input_shape(0);
  if (x.rank_known && x.rank() != 1 && x.rank() != 2)
    ctx.Fail(fmt::format("X must be [C] or [N, C], got {}", S(ctx, x)));
  if (!x.rank_known) return ctx.SetOutput(0, DType::kFloat32, SymShape::Unknown());
  ctx.SetOutput(0, DType::kFloat32,
                x.rank() == 1 ? SymShape::Of({pool.columns}) : SymShape::Of({x.dims[0], pool.columns}));
}

}  // namespace

void RegisterTextOps(OpRegistry& registry) {
  registry.Add({"StringNormalizer", 1, 1, InferStringNormalizer});
  registry.Add({"TfIdfVectorizer", 1, 1, InferTfIdfVectorizer});
}

}  // namespace kiln::ir
