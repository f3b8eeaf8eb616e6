// ONNX importers of the text ops: StringNormalizer (opset 10) and TfIdfVectorizer (opset 9), each
// the IR op of the same name (docs/ops/text.md) with the node's attributes. See
// docs/onnx/text.md.
#include <fmt/format.h>

#include "frontend/onnx/importer.h"
#include "ir/ops/text_util.h"

namespace kiln::onnxfe {
namespace {

using frontend::Attrs;

void CheckOneInput(ImportContext& ctx) {
  if (ctx.num_inputs() != 1) ctx.Invalid(fmt::format("expected 1 input, got {}", ctx.num_inputs()));
}

void ImportStringNormalizer(ImportContext& ctx) {
  const std::string action = ctx.attr_string("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER")
    ctx.Invalid(fmt::format("case_change_action must be NONE, LOWER or UPPER, got '{}'", action));
  const int64_t case_sensitive = ctx.attr_int("is_case_sensitive", 0);
  if (case_sensitive != 0 && case_sensitive != 1)
    ctx.Invalid(fmt::format("is_case_sensitive must be 0 or 1, got {}", case_sensitive));
  const std::vector<std::string> stopwords = ctx.attr_strings("stopwords");
  const std::string locale = ctx.attr_string("locale", "");
  if (action != "NONE" || (case_sensitive == 0 && !stopwords.empty())) {
    std::string error;
    if (!ir::text::CaseMapper::Open(locale, &error)) ctx.Unsupported(error);
  }
  CheckOneInput(ctx);
  if (ctx.validate_only()) return;
  if (ctx.input_dtype(0) != DType::kString)
    ctx.Invalid(fmt::format("X has dtype {} (expected string)", DTypeName(ctx.input_dtype(0))));
  ir::AttrMap attrs =
      Attrs({{"case_change_action", action}, {"is_case_sensitive", case_sensitive == 1}, {"locale", locale}});
  if (!stopwords.empty()) attrs.Set("stopwords", stopwords);
  ctx.SetOutput(0, ctx.Emit1("StringNormalizer", {ctx.input(0)}, std::move(attrs)));
}
KILN_ONNX_IMPORTER("StringNormalizer", ImportStringNormalizer);

void ImportTfIdfVectorizer(ImportContext& ctx) {
  for (const char* required :
       {"mode", "min_gram_length", "max_gram_length", "max_skip_count", "ngram_counts", "ngram_indexes"})
    if (!ctx.has_attr(required)) ctx.Invalid(fmt::format("attribute '{}' is required", required));
  ir::AttrMap attrs = Attrs({{"mode", ctx.attr_string("mode")},
                             {"min_gram_length", ctx.attr_int("min_gram_length")},
                             {"max_gram_length", ctx.attr_int("max_gram_length")},
                             {"max_skip_count", ctx.attr_int("max_skip_count")},
                             {"ngram_counts", ctx.attr_ints("ngram_counts")},
                             {"ngram_indexes", ctx.attr_ints("ngram_indexes")}});
  if (ctx.has_attr("pool_int64s")) attrs.Set("pool_int64s", ctx.attr_ints("pool_int64s"));
  if (ctx.has_attr("pool_strings")) attrs.Set("pool_strings", ctx.attr_strings("pool_strings"));
  if (ctx.has_attr("weights")) {
    const std::vector<float> w = ctx.attr_floats("weights");
    attrs.Set("weights", std::vector<double>(w.begin(), w.end()));
  }
  ir::text::TfIdfPool pool;
  if (std::string e = ir::text::ReadTfIdfPool(attrs, &pool); !e.empty()) ctx.Invalid(e);
  CheckOneInput(ctx);
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(0);
  if (pool.strings ? t != DType::kString : (t != DType::kInt32 && t != DType::kInt64))
    ctx.Invalid(fmt::format("X has dtype {} (expected {} for {})", DTypeName(t),
                            pool.strings ? "string" : "int32 or int64", pool.strings ? "pool_strings" : "pool_int64s"));
  ctx.SetOutput(0, ctx.Emit1("TfIdfVectorizer", {ctx.input(0)}, std::move(attrs)));
}
KILN_ONNX_IMPORTER("TfIdfVectorizer", ImportTfIdfVectorizer);

}  // namespace
}  // namespace kiln::onnxfe
