// Text reference kernels: StringNormalizer and TfIdfVectorizer, as the ONNX spec defines them.
// See docs/ops/text.md.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "backend/reference/kernel.h"
#include "ir/ops/text_util.h"

namespace kiln::reference {
namespace {

// At most this many characters of a string in an error message.
std::string Excerpt(const std::string& s) { return s.size() > 40 ? s.substr(0, 40) + "..." : s; }

// ---- StringNormalizer: drops the stop words (whole elements, compared case-insensitively
// unless is_case_sensitive), then upper- or lower-cases what is left; [""] when nothing is ----
void StringNormalizerKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::kString) ctx.Fail(fmt::format("X must be a string tensor, got {}", DTypeName(x.dtype())));
  if (!(x.rank() == 1 || (x.rank() == 2 && x.dim(0) == 1)))
    ctx.Fail(fmt::format("X must be [C] or [1, C], got {}", ShapeToString(x.shape())));
  const std::string action = ctx.attrs().GetOr<std::string>("case_change_action", "NONE");
  const bool case_sensitive = ctx.attrs().GetOr<bool>("is_case_sensitive", false);
  const std::vector<std::string> stopwords = ctx.attrs().GetOr<std::vector<std::string>>("stopwords", {});
  std::shared_ptr<const ir::text::CaseMapper> mapper;
  if (action != "NONE" || (!case_sensitive && !stopwords.empty())) {
    std::string error;
    mapper = ir::text::CaseMapper::Open(ctx.attrs().GetOr<std::string>("locale", ""), &error);
    if (!mapper) ctx.Fail(error);
  }
  auto lower = [&](const std::string& s, const char* what) {
    std::optional<std::string> l = mapper->Lower(s);
    if (!l) ctx.Fail(fmt::format("{} '{}' is not valid UTF-8", what, Excerpt(s)));
    return *l;
  };
  std::set<std::string> stops;
  for (const std::string& w : stopwords) stops.insert(case_sensitive ? w : lower(w, "stop word"));
  std::vector<std::string> kept;
  for (const std::string& s : x.strings()) {
    if (!stops.empty() && stops.count(case_sensitive ? s : lower(s, "element"))) continue;
    if (action == "NONE") {
      kept.push_back(s);
      continue;
    }
    std::optional<std::string> mapped = action == "UPPER" ? mapper->Upper(s) : mapper->Lower(s);
    if (!mapped) ctx.Fail(fmt::format("element '{}' is not valid UTF-8", Excerpt(s)));
    kept.push_back(std::move(*mapped));
  }
  if (kept.empty()) kept.emplace_back();
  const int64_t n = static_cast<int64_t>(kept.size());
  ctx.AllocateOutput(0, DType::kString, x.rank() == 1 ? Shape{n} : Shape{1, n}).strings() = std::move(kept);
}
KILN_REFERENCE_KERNEL("StringNormalizer", StringNormalizerKernel);

// ---- TfIdfVectorizer: per row, how often each pool n-gram occurs with its items `skip` apart
// (skip = 0 .. max_skip_count; 1-grams once), then TF (the counts), IDF (weight where the count
// is positive) or TFIDF (weight x count), summed into the n-gram's output column ----

// The pool's n-grams of the lengths counted, as a trie: ids[node] are the n-grams ending there.
template <typename Key>
struct Trie {
  std::vector<std::map<Key, int>> next{1};
  std::vector<std::vector<int>> ids{1};

  void Add(const std::vector<Key>& items, int64_t start, int64_t length, int id) {
    int node = 0;
    for (int64_t k = 0; k < length; ++k) {
      const Key& key = items[static_cast<size_t>(start + k)];
      auto it = next[static_cast<size_t>(node)].find(key);
      if (it == next[static_cast<size_t>(node)].end()) {
        it = next[static_cast<size_t>(node)].emplace(key, static_cast<int>(next.size())).first;
        next.emplace_back();
        ids.emplace_back();
      }
      node = it->second;
    }
    ids[static_cast<size_t>(node)].push_back(id);
  }
};

template <typename Key>
void CountNgrams(KernelContext& ctx, const ir::text::TfIdfPool& pool, const std::vector<Key>& items,
                 const std::vector<Key>& x, int64_t rows, int64_t row_length) {
  Trie<Key> trie;
  for (size_t i = 0; i < pool.starts.size(); ++i)
    if (pool.lengths[i] >= pool.min_gram && pool.lengths[i] <= pool.max_gram)
      trie.Add(items, pool.starts[i], pool.lengths[i], static_cast<int>(i));
  float* y = ctx.outputs()[0].template data<float>();
  std::vector<int64_t> counts(pool.starts.size());
  // Items further apart than the row is long never form an n-gram of two or more.
  const int64_t distances = std::min(pool.max_skip, std::max<int64_t>(row_length - 1, 0)) + 1;
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(counts.begin(), counts.end(), 0);
    const Key* row = x.data() + r * row_length;
    for (int64_t d = 1; d <= distances; ++d) {
      const int64_t shortest = d == 1 ? pool.min_gram : std::max<int64_t>(pool.min_gram, 2);
      if (shortest > pool.max_gram) break;
      for (int64_t start = 0; start < row_length; ++start) {
        int node = 0;
        for (int64_t k = 0, at = start; k < pool.max_gram && at < row_length; ++k, at += d) {
          const auto it = trie.next[static_cast<size_t>(node)].find(row[at]);
          if (it == trie.next[static_cast<size_t>(node)].end()) break;
          node = it->second;
          if (k + 1 >= shortest)
            for (const int id : trie.ids[static_cast<size_t>(node)]) ++counts[static_cast<size_t>(id)];
        }
      }
    }
    std::vector<double> sums(static_cast<size_t>(pool.columns), 0.0);
    for (size_t i = 0; i < counts.size(); ++i) {
      const double c = static_cast<double>(counts[i]);
      double v = c;
      if (pool.mode == ir::text::TfIdfMode::kIdf)
        v = counts[i] > 0 ? pool.weights[i] : 0.0;
      else if (pool.mode == ir::text::TfIdfMode::kTfIdf)
        v = c * pool.weights[i];
      sums[static_cast<size_t>(pool.indexes[i])] += v;
    }
    for (int64_t j = 0; j < pool.columns; ++j)
      y[r * pool.columns + j] = static_cast<float>(sums[static_cast<size_t>(j)]);
  }
}

void TfIdfVectorizerKernel(KernelContext& ctx) {
  ir::text::TfIdfPool pool;
  if (std::string e = ir::text::ReadTfIdfPool(ctx.attrs(), &pool); !e.empty()) ctx.Fail(e);
  const Tensor& x = ctx.input(0);
  if (x.rank() != 1 && x.rank() != 2)
    ctx.Fail(fmt::format("X must be [C] or [N, C], got {}", ShapeToString(x.shape())));
  const int64_t rows = x.rank() == 1 ? 1 : x.dim(0), row_length = x.dim(x.rank() - 1);
  ctx.AllocateOutput(0, DType::kFloat32, x.rank() == 1 ? Shape{pool.columns} : Shape{rows, pool.columns});
  if (pool.columns == 0 || rows == 0) return;
  if (pool.strings) {
    if (x.dtype() != DType::kString)
      ctx.Fail(fmt::format("X must be a string tensor for pool_strings, got {}", DTypeName(x.dtype())));
    CountNgrams<std::string>(ctx, pool, ctx.attrs().Get<std::vector<std::string>>("pool_strings"), x.strings(), rows,
                             row_length);
    return;
  }
  std::vector<int64_t> values(static_cast<size_t>(x.num_elements()));
  if (x.dtype() == DType::kInt32)
    std::copy(x.data<int32_t>(), x.data<int32_t>() + x.num_elements(), values.begin());
  else if (x.dtype() == DType::kInt64)
    std::copy(x.data<int64_t>(), x.data<int64_t>() + x.num_elements(), values.begin());
  else
    ctx.Fail(fmt::format("X must be int32 or int64 for pool_int64s, got {}", DTypeName(x.dtype())));
  CountNgrams<int64_t>(ctx, pool, ctx.attrs().Ints("pool_int64s"), values, rows, row_length);
}
KILN_REFERENCE_KERNEL("TfIdfVectorizer", TfIdfVectorizerKernel);

}  // namespace
}  // namespace kiln::reference
