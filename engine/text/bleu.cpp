// Corpus BLEU with sacreBLEU's defaults: 13a tokenisation, clipped n-gram counts (orders 1..4)
// summed over the corpus, brevity penalty and 'exp' smoothing. The rules are stated in bleu.h.
#include "text/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "core/error.h"
#include "text/utf8.h"

namespace attnlab {
namespace {

// ---- UTF-8 ---------------------------------------------------------------------------------------


// Whitespace as Python's str.isspace() defines it (what sacreBLEU's split() and rstrip() use).
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// The lowercase form of `c` where bleu.h says we know it; 0 when `c` stays as it is. İ (U+0130) is
// handled by the caller since it lowercases to two code points.
char32_t lower_of(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 0x20;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;  // À..Þ except ×
  if (c >= 0x100 && c <= 0x17F) {
    // Latin Extended-A comes in upper/lower pairs; the upper letter is even in three runs and odd
    // in two (the runs shift at ĸ and ŉ, which have no case).
    const bool even = c % 2 == 0;
    if ((c <= 0x12F || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) && even) return c + 1;
    if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && !even) return c + 1;
    if (c == 0x178) return 0xFF;  // Ÿ
    return 0;
  }
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;  // Ѐ..Џ
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;  // А..Я
  if (c == 0x1E9E) return 0xDF;                   // ẞ
  return 0;
}

// text without trailing (Python) whitespace.
std::string_view rstrip_python(std::string_view text) {
  std::size_t end = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, i, length);
    i += length;
    if (!is_python_space(c)) end = i;
  }
  return text.substr(0, end);
}

// ---- 13a ---------------------------------------------------------------------------------------

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  std::size_t start = 0;
  for (std::size_t hit = text.find(from); hit != std::string::npos; hit = text.find(from, start)) {
    out.append(text, start, hit - start);
    out.append(to);
    start = hit + from.size();
  }
  out.append(text, start, std::string::npos);
  text = std::move(out);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_or_comma(char c) { return c == '.' || c == ','; }

// The ASCII symbols 13a pads with spaces: 0x20-0x26, 0x28-0x2B, 0x2F, 0x3A-0x40, 0x5B-0x60,
// 0x7B-0x7E; that is every printable ASCII mark except the apostrophe, comma, dash and period.
bool is_13a_symbol(char c) {
  return (c >= 0x20 && c <= 0x26) || (c >= 0x28 && c <= 0x2B) || c == 0x2F || (c >= 0x3A && c <= 0x40) ||
         (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// One left-to-right pass over non-overlapping pairs (a, b): where `matches(a, b)`, the pair is
// written as `write(a, b)` and the scan resumes after b. All pairs involve an ASCII byte that
// never occurs inside a multi-byte UTF-8 sequence, so scanning bytes matches scanning characters.
template <typename Matches, typename Write>
std::string pair_pass(const std::string& text, Matches matches, Write write) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  std::size_t i = 0;
  while (i < text.size()) {
    if (i + 1 < text.size() && matches(text[i], text[i + 1])) {
      write(out, text[i], text[i + 1]);
      i += 2;
    } else {
      out += text[i];
      ++i;
    }
  }
  return out;
}

// Tokens separated by (Python) whitespace, joined by single spaces.
std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, i, length);
    if (is_python_space(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out += ' ';
      pending_space = false;
      out.append(text.substr(i, length));
    }
    i += length;
  }
  return out;
}

// ---- n-gram statistics ---------------------------------------------------------------------------

using NgramCounts = std::array<std::unordered_map<std::string, std::int64_t>, kBleuMaxOrder>;

std::vector<std::string_view> split_at_spaces(std::string_view tokenized) {
  std::vector<std::string_view> tokens;
  std::size_t start = 0;
  while (start < tokenized.size()) {
    std::size_t end = tokenized.find(' ', start);
    if (end == std::string_view::npos) end = tokenized.size();
    if (end > start) tokens.push_back(tokenized.substr(start, end - start));
    start = end + 1;
  }
  return tokens;
}

// Counts of every n-gram, n = 1..4, keyed by its tokens joined with single spaces (tokens hold
// no whitespace, so keys are unambiguous).
NgramCounts count_ngrams(const std::vector<std::string_view>& tokens) {
  NgramCounts counts;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string key(tokens[i]);
    for (int n = 1; n <= kBleuMaxOrder && i + static_cast<std::size_t>(n) <= tokens.size(); ++n) {
      if (n > 1) {
        key += ' ';
        key.append(tokens[i + static_cast<std::size_t>(n) - 1]);
      }
      ++counts[static_cast<std::size_t>(n - 1)][key];
    }
  }
  return counts;
}

std::string prepare(const std::string& line, const BleuOptions& options) {
  if (options.lowercase) return tokenize_13a(rstrip_python(lowercase_for_bleu(line)));
  return tokenize_13a(rstrip_python(line));
}

// The reference length closest to `hyp_len`; the shorter one on a tie.
std::int64_t closest_length(std::int64_t hyp_len, const std::vector<std::int64_t>& ref_lens) {
  std::int64_t best = ref_lens.front();
  for (const std::int64_t len : ref_lens) {
    const std::int64_t diff = std::llabs(hyp_len - len), best_diff = std::llabs(hyp_len - best);
    if (diff < best_diff || (diff == best_diff && len < best)) best = len;
  }
  return best;
}

void finish(BleuResult& r) {
  const double c = static_cast<double>(r.hyp_len), ref = static_cast<double>(r.ref_len);
  if (r.hyp_len < r.ref_len) {
    r.bp = r.hyp_len > 0 ? std::exp(1.0 - ref / c) : 0.0;
  } else {
    r.bp = 1.0;
  }
  r.precisions.fill(0.0);
  r.score = 0.0;
  if (std::all_of(r.correct.begin(), r.correct.end(), [](std::int64_t k) { return k == 0; })) return;
  double smoothing = 1.0;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    const auto i = static_cast<std::size_t>(n);
    if (r.total[i] == 0) break;
    if (r.correct[i] == 0) {
      smoothing *= 2.0;
      r.precisions[i] = 100.0 / (smoothing * static_cast<double>(r.total[i]));
    } else {
      r.precisions[i] = 100.0 * static_cast<double>(r.correct[i]) / static_cast<double>(r.total[i]);
    }
  }
  double log_sum = 0.0;
  for (const double p : r.precisions) {
    if (p == 0.0) return;  // ln 0 = -inf: the geometric mean, and so the score, is 0
    log_sum += std::log(p);
  }
  r.score = r.bp * std::exp(log_sum / kBleuMaxOrder);
}

}  // namespace

std::string lowercase_for_bleu(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 4);
  for (std::size_t i = 0; i < text.size();) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, i, length);
    if (length == 1 && c >= 0x80) {
      out += text[i];  // an invalid byte stays as it is
    } else if (c == 0x130) {
      out += "i\xCC\x87";  // İ -> i + combining dot above (U+0307), as Python does
    } else if (const char32_t lower = lower_of(c)) {
      append_utf8(out, lower);
    } else {
      out.append(text.substr(i, length));
    }
    i += length;
  }
  return out;
}

std::string tokenize_13a(std::string_view line) {
  std::string text(line);
  replace_all(text, "<skipped>", "");
  replace_all(text, "-\n", "");
  replace_all(text, "\n", " ");
  replace_all(text, "&quot;", "\"");
  replace_all(text, "&amp;", "&");
  replace_all(text, "&lt;", "<");
  replace_all(text, "&gt;", ">");
  // Spaces around the line let the period/comma rules see a non-digit at both ends.
  std::string padded = " ";
  padded.reserve(text.size() * 2 + 2);
  for (const char c : text) {
    if (is_13a_symbol(c)) {
      padded += ' ';
      padded += c;
      padded += ' ';
    } else {
      padded += c;
    }
  }
  padded += ' ';
  padded = pair_pass(
      padded, [](char a, char b) { return !is_digit(a) && is_period_or_comma(b); },
      [](std::string& out, char a, char b) { out.append({a, ' ', b, ' '}); });
  padded = pair_pass(
      padded, [](char a, char b) { return is_period_or_comma(a) && !is_digit(b); },
      [](std::string& out, char a, char b) { out.append({' ', a, ' ', b}); });
  padded = pair_pass(
      padded, [](char a, char b) { return is_digit(a) && b == '-'; },
      [](std::string& out, char a, char b) { out.append({a, ' ', b, ' '}); });
  return collapse_whitespace(padded);
}

std::string BleuResult::signature_line() const {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)",
                score, precisions[0], precisions[1], precisions[2], precisions[3], bp, ratio(),
                static_cast<long long>(hyp_len), static_cast<long long>(ref_len));
  return buffer;
}

BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                       const BleuOptions& options) {
  if (refs.size() != hyps.size()) {
    throw ShapeError("corpus_bleu: " + std::to_string(hyps.size()) + " hypotheses but " + std::to_string(refs.size()) +
                     " references");
  }
  return corpus_bleu(hyps, std::vector<std::vector<std::string>>{refs}, options);
}

BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& ref_streams,
                       const BleuOptions& options) {
  if (ref_streams.empty()) throw ParamError("corpus_bleu: no reference stream given");
  for (std::size_t k = 0; k < ref_streams.size(); ++k) {
    if (ref_streams[k].size() != hyps.size()) {
      throw ShapeError("corpus_bleu: " + std::to_string(hyps.size()) + " hypotheses but reference stream " +
                       std::to_string(k + 1) + " has " + std::to_string(ref_streams[k].size()) + " lines");
    }
  }
  if (hyps.empty()) throw ParamError("corpus_bleu: no sentences to score");

  BleuResult result;
  std::vector<std::int64_t> ref_lens;
  for (std::size_t s = 0; s < hyps.size(); ++s) {
    NgramCounts ref_max;
    ref_lens.clear();
    for (const std::vector<std::string>& stream : ref_streams) {
      if (stream[s].empty()) continue;
      const std::string tokenized = prepare(stream[s], options);
      const std::vector<std::string_view> tokens = split_at_spaces(tokenized);
      ref_lens.push_back(static_cast<std::int64_t>(tokens.size()));
      const NgramCounts counts = count_ngrams(tokens);
      for (std::size_t n = 0; n < counts.size(); ++n) {
        for (const auto& [ngram, count] : counts[n]) {
          std::int64_t& best = ref_max[n][ngram];
          best = std::max(best, count);
        }
      }
    }
    if (ref_lens.empty()) {
      throw ParamError("corpus_bleu: the reference of sentence " + std::to_string(s + 1) + " is empty" +
                       (ref_streams.size() > 1 ? " in every reference stream" : ""));
    }
    const std::string tokenized = prepare(hyps[s], options);
    const std::vector<std::string_view> tokens = split_at_spaces(tokenized);
    const auto hyp_len = static_cast<std::int64_t>(tokens.size());
    result.hyp_len += hyp_len;
    result.ref_len += closest_length(hyp_len, ref_lens);
    const NgramCounts counts = count_ngrams(tokens);
    for (std::size_t n = 0; n < counts.size(); ++n) {
      for (const auto& [ngram, count] : counts[n]) {
        result.total[n] += count;
        const auto it = ref_max[n].find(ngram);
        if (it != ref_max[n].end()) result.correct[n] += std::min(count, it->second);
      }
    }
  }
  finish(result);
  return result;
}

}  // namespace attnlab
