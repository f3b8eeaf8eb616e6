#include "ir/ops/nn_util.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace kiln::ir::nn {

bool ParsePadding(const std::string& text, Padding* padding) {
  if (text == "SAME") *padding = Padding::kSame;
  else if (text == "VALID") *padding = Padding::kValid;
  else if (text == "EXPLICIT") *padding = Padding::kExplicit;
  else return false;
  return true;
}

bool ComputeWindow(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, Padding padding,
                   int64_t explicit_before, int64_t explicit_after, WindowDim* out, std::string* error) {
  if (stride <= 0 || dilation <= 0 || kernel < 0 || in < 0) {
    *error = fmt::format("invalid window: input size {}, kernel {}, stride {}, dilation {}", in, kernel, stride, dilation);
    return false;
  }
  // Every value may come from a file: each step is checked, so a corrupted dilation or stride is
  // an error here rather than a wrapped size further on.
  bool overflow = false;
  auto mul = [&](int64_t a, int64_t b) {
    int64_t r = 0;
    overflow |= __builtin_mul_overflow(a, b, &r);
    return r;
  };
  auto add = [&](int64_t a, int64_t b) {
    int64_t r = 0;
    overflow |= __builtin_add_overflow(a, b, &r);
    return r;
  };
  auto sub = [&](int64_t a, int64_t b) {
    int64_t r = 0;
    overflow |= __builtin_sub_overflow(a, b, &r);
    return r;
  };
  const int64_t eff = add(mul(kernel - 1, dilation), 1);
  WindowDim w;
  switch (padding) {
    case Padding::kValid:
      w.out = add(sub(in, eff), stride) / stride;
      break;
    case Padding::kSame: {
      w.out = add(in, stride - 1) / stride;
      const int64_t total = std::max<int64_t>(sub(add(mul(w.out - 1, stride), eff), in), 0);
      w.pad_before = total / 2;
      w.pad_after = total - w.pad_before;
      break;
    }
    case Padding::kExplicit:
      if (explicit_before < 0 || explicit_after < 0) {
        *error = fmt::format("explicit paddings must be non-negative, got {} and {}", explicit_before, explicit_after);
        return false;
      }
      w.out = add(sub(add(add(in, explicit_before), explicit_after), eff), stride) / stride;
      w.pad_before = explicit_before;
      w.pad_after = explicit_after;
      break;
  }
  if (overflow) {
    *error =
        fmt::format("window size overflows 64 bits: input size {}, kernel {}, stride {}, dilation {}, padding {}+{}",
                    in, kernel, stride, dilation, explicit_before, explicit_after);
    return false;
  }
  if (w.out < 0) {
    *error = fmt::format("computed output size would be negative: input size {}, effective kernel size {}, stride {}, "
                         "padding {}+{}", in, eff, stride, w.pad_before, w.pad_after);
    return false;
  }
  *out = w;
  return true;
}

bool ChannelsLast(const std::string& f, bool* channels_last) {
  if (f.size() < 3 || f.size() > 5 || f[0] != 'N') return false;
  if (f.back() == 'C') *channels_last = true;
  else if (f[1] == 'C') *channels_last = false;
  else return false;
  return true;
}

int EinsumNumInputs(const std::string& equation) {
  const size_t arrow = equation.find("->");
  if (arrow == std::string::npos) return 0;
  return static_cast<int>(std::count(equation.begin(), equation.begin() + static_cast<long>(arrow), ',')) + 1;
}

namespace {

struct Term {
  std::vector<int> labels;  // named labels; -1 marks the ellipsis
  bool has_ellipsis = false;
};

std::string ParseTerm(const std::string& text, std::vector<char>& names, Term* term) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      if (text.compare(i, 3, "...") != 0) return fmt::format("invalid ellipsis in einsum term '{}'", text);
      if (term->has_ellipsis) return fmt::format("more than one ellipsis in einsum term '{}'", text);
      term->has_ellipsis = true;
      term->labels.push_back(-1);
      i += 2;
      continue;
    }
    if (c == ' ') continue;
    if (!std::isalpha(static_cast<unsigned char>(c)))
      return fmt::format("invalid character '{}' in einsum term '{}'", c, text);
    auto it = std::find(names.begin(), names.end(), c);
    int label = static_cast<int>(it - names.begin());
    if (it == names.end()) names.push_back(c);
    term->labels.push_back(label);
  }
  return "";
}

}  // namespace

std::string ParseEinsum(const std::string& equation, const std::vector<int>& input_ranks, EinsumSpec* spec) {
  const size_t arrow = equation.find("->");
  if (arrow == std::string::npos || equation.find("->", arrow + 2) != std::string::npos)
    return fmt::format("expected exactly one '->' in einsum equation '{}'", equation);
  std::vector<std::string> in_texts;
  {
    std::string lhs = equation.substr(0, arrow);
    size_t start = 0;
    while (true) {
      size_t comma = lhs.find(',', start);
      in_texts.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (in_texts.size() != 1 && in_texts.size() != 2)
    return fmt::format("expected 1 or 2 inputs in einsum equation '{}', got {}", equation, in_texts.size());
  if (in_texts.size() != input_ranks.size())
    return fmt::format("einsum equation '{}' has {} input terms but the op has {} inputs", equation, in_texts.size(),
                       input_ranks.size());
  std::vector<char> names;
  std::vector<Term> terms(in_texts.size());
  for (size_t i = 0; i < in_texts.size(); ++i) {
    std::string err = ParseTerm(in_texts[i], names, &terms[i]);
    if (!err.empty()) return err;
  }
  const size_t num_input_names = names.size();
  Term out_term;
  {
    std::string err = ParseTerm(equation.substr(arrow + 2), names, &out_term);
    if (!err.empty()) return err;
  }
  if (names.size() != num_input_names)
    return fmt::format("einsum equation '{}': output label '{}' does not appear in any input", equation,
                       names[num_input_names]);

  // Broadcast dims per input.
  std::vector<int> nb(terms.size(), 0);
  int max_nb = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    const int named = static_cast<int>(terms[i].labels.size()) - (terms[i].has_ellipsis ? 1 : 0);
    if (!terms[i].has_ellipsis) {
      if (input_ranks[i] != named)
        return fmt::format("einsum equation '{}': expected input {} to have rank {}, got {}", equation, i, named,
                           input_ranks[i]);
    } else {
      if (input_ranks[i] < named)
        return fmt::format("einsum equation '{}': expected input {} to have rank at least {}, got {}", equation, i,
                           named, input_ranks[i]);
      nb[i] = input_ranks[i] - named;
      max_nb = std::max(max_nb, nb[i]);
    }
  }
  if (max_nb > 0 && !out_term.has_ellipsis)
    return fmt::format("einsum equation '{}': the inputs have {} broadcast dimension(s) but the output has no '...'",
                       equation, max_nb);

  spec->num_named = static_cast<int>(names.size());
  spec->num_bcast = max_nb;
  spec->names = names;
  spec->inputs.assign(terms.size(), {});
  auto expand = [&](const Term& t, int count, std::vector<int>* labels) {
    for (int l : t.labels) {
      if (l >= 0) {
        labels->push_back(l);
        continue;
      }
      for (int j = 0; j < count; ++j) labels->push_back(spec->num_named + (max_nb - count) + j);
    }
  };
  for (size_t i = 0; i < terms.size(); ++i) expand(terms[i], nb[i], &spec->inputs[i]);
  spec->output.clear();
  expand(out_term, max_nb, &spec->output);
  return "";
}

}  // namespace kiln::ir::nn
