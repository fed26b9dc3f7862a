// BEOLINGUS dictionary lines → clean (German, English) pairs; rules in beolingus.h.
#include "train/beolingus.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "text/utf8.h"

namespace attnlab {
namespace {

constexpr std::string_view kSeparator = " :: ";

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

bool is_open_bracket(char c) { return c == '(' || c == '[' || c == '{' || c == '<'; }
bool is_close_bracket(char c) { return c == ')' || c == ']' || c == '}' || c == '>'; }
char partner_of(char close) {
  switch (close) {
    case ')':
      return '(';
    case ']':
      return '[';
    case '}':
      return '{';
    default:
      return '<';
  }
}


// Letters and digits of any script; ASCII punctuation, Latin-1 symbols and the General
// Punctuation block (– … ’ “ ” „) are not.
bool is_letter_or_digit(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  if (c < 0xC0 || c == 0xD7 || c == 0xF7) return false;
  if (c >= 0x2000 && c <= 0x206F) return false;
  return true;
}

// Uppercase ASCII, Latin-1 (À..Þ without ×) or Latin Extended-A (even code points of
// U+0100..U+017F are the capitals), or a digit.
bool starts_upper_or_digit(std::string_view text) {
  if (text.empty()) return false;
  std::size_t length = 0;
  const char32_t c = decode_utf8(text, 0, length);
  if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return true;
  return c >= 0x100 && c <= 0x17F && c % 2 == 0;
}

bool has_letter_or_digit(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    std::size_t length = 1;
    if (is_letter_or_digit(decode_utf8(text, i, length))) return true;
    i += length;
  }
  return false;
}

std::size_t count_words(std::string_view text) {
  std::size_t words = 0;
  bool in_word = false;
  for (const char c : text) {
    const bool space = c == ' ';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// The last space-separated word.
std::string_view last_word(std::string_view text) {
  const std::size_t space = text.rfind(' ');
  return space == std::string_view::npos ? text : text.substr(space + 1);
}

bool ends_with_placeholder(std::string_view text) {
  static const std::string_view kPlaceholders[] = {"etw.", "jdn.", "jdm.", "jds.", "jd.", "sth.", "sb."};
  const std::string_view word = last_word(text);
  for (const std::string_view p : kPlaceholders) {
    // "jdn./etw." and "sb./sth." end in a placeholder too.
    if (word == p || ends_with(word, std::string("/") + std::string(p))) return true;
  }
  return false;
}

bool ends_sentence(std::string_view text) {
  return !text.empty() && (text.back() == '.' || text.back() == '!' || text.back() == '?');
}

// Rule 1: removes "/ABBR/" runs that stand alone (start or whitespace before; end, whitespace,
// ';' or '|' after).
std::string remove_abbreviations(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '/' && (i == 0 || is_ascii_space(text[i - 1]))) {
      std::size_t j = i + 1;
      while (j < text.size() && text[j] != '/' && !is_ascii_space(text[j])) ++j;
      const bool closed = j < text.size() && text[j] == '/' && j > i + 1;
      const bool stands_alone =
          closed && (j + 1 == text.size() || is_ascii_space(text[j + 1]) || text[j + 1] == ';' || text[j + 1] == '|');
      if (stands_alone) {
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

// Rule 1b: "A [Br.] / B [Am.]" → "A": of a British / American spelling pair, the British one
// (listed first) stays. B may be several words but no brackets, slashes, '|' or ';'.
std::string prefer_british_spelling(std::string_view text) {
  constexpr std::string_view kBritish = "[Br.]", kAmerican = "[Am.]";
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t british = text.find(kBritish, i);
    if (british == std::string_view::npos) break;
    std::size_t j = british + kBritish.size();
    while (j < text.size() && text[j] == ' ') ++j;
    std::size_t american = std::string_view::npos;
    if (j < text.size() && text[j] == '/') {
      const std::size_t candidate = text.find(kAmerican, j + 1);
      if (candidate != std::string_view::npos) {
        const std::string_view between = text.substr(j + 1, candidate - j - 1);
        const bool plain = between.find_first_of("/[]|;()") == std::string_view::npos;
        if (plain && has_letter_or_digit(between) && count_words(between) <= 4) american = candidate;
      }
    }
    if (american == std::string_view::npos) {
      out.append(text.substr(i, british + kBritish.size() - i));
      i = british + kBritish.size();
      continue;
    }
    out.append(text.substr(i, british - i));
    out.push_back(' ');
    i = american + kAmerican.size();
  }
  out.append(text.substr(std::min(i, text.size())));
  return out;
}

// Rule 2.
bool brackets_balance(std::string_view text) {
  std::string stack;
  for (const char c : text) {
    if (is_open_bracket(c)) {
      stack.push_back(c);
    } else if (is_close_bracket(c)) {
      if (stack.empty() || stack.back() != partner_of(c)) return false;
      stack.pop_back();
    }
  }
  return stack.empty();
}

// Rule 3: splits at `separator` outside brackets (the text balances).
std::vector<std::string> split_outside_brackets(std::string_view text, char separator) {
  std::vector<std::string> parts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (is_open_bracket(text[i]))
      ++depth;
    else if (is_close_bracket(text[i]))
      --depth;
    else if (depth == 0 && text[i] == separator) {
      parts.emplace_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.emplace_back(text.substr(start));
  return parts;
}

// Rule 7's spaced slash: "a / b", "a/ b", "a /b".
bool has_spaced_slash(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '/') continue;
    if ((i > 0 && text[i - 1] == ' ') || (i + 1 < text.size() && text[i + 1] == ' ')) return true;
  }
  return false;
}

struct PairKey {
  std::size_t operator()(const std::pair<std::string, std::string>& p) const {
    return std::hash<std::string>()(p.first) * 31u + std::hash<std::string>()(p.second);
  }
};

class Parser {
 public:
  explicit Parser(BeolingusStats& stats) : stats_(stats) {}

  void parse_line(std::string line, std::vector<TranslationPair>& out) {
    ++stats_.lines;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (stats_.lines == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte order mark
    if (!line.empty() && line[0] == '#') {
      ++stats_.comment_lines;
      return;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) {
      ++stats_.blank_lines;
      return;
    }
    const std::size_t sep = line.find(kSeparator);
    if (sep == std::string::npos || line.find(kSeparator, sep + kSeparator.size()) != std::string::npos) {
      ++stats_.skipped_no_separator;
      return;
    }
    const std::string de_side = prefer_british_spelling(remove_abbreviations(std::string_view(line).substr(0, sep)));
    const std::string en_side =
        prefer_british_spelling(remove_abbreviations(std::string_view(line).substr(sep + kSeparator.size())));
    if (!brackets_balance(de_side) || !brackets_balance(en_side)) {
      ++stats_.skipped_unbalanced_brackets;
      return;
    }
    const std::vector<std::string> de_alternatives = split_outside_brackets(de_side, '|');
    const std::vector<std::string> en_alternatives = split_outside_brackets(en_side, '|');
    if (de_alternatives.size() != en_alternatives.size()) {
      ++stats_.skipped_alternative_counts;
      return;
    }
    std::int64_t kept = 0;
    for (std::size_t a = 0; a < de_alternatives.size(); ++a) {
      kept += add_alternative(de_alternatives[a], en_alternatives[a], out);
    }
    if (kept == 0)
      ++stats_.skipped_empty;
    else
      ++stats_.entries;
  }

 private:
  // Pairs of one aligned alternative (rule 6); returns how many pairs it produced, duplicates
  // included (they still show the line was usable).
  std::int64_t add_alternative(const std::string& de_alternative, const std::string& en_alternative,
                               std::vector<TranslationPair>& out) {
    std::vector<std::string> de, en;
    for (const std::string& s : split_outside_brackets(de_alternative, ';')) de.push_back(strip_annotations(s));
    for (const std::string& s : split_outside_brackets(en_alternative, ';')) en.push_back(strip_annotations(s));
    std::vector<std::pair<std::string, std::string>> candidates;
    if (de.size() == en.size()) {
      for (std::size_t i = 0; i < de.size(); ++i) candidates.emplace_back(de[i], en[i]);
    } else {
      // Synonyms that vanished (a gloss alone) cannot serve as "the first one".
      const auto drop_empty = [](std::vector<std::string>& v) {
        std::erase_if(v, [](const std::string& s) { return !has_letter_or_digit(s); });
      };
      drop_empty(de);
      drop_empty(en);
      if (de.empty() || en.empty()) {
        ++stats_.dropped_empty_side;
        return 0;
      }
      for (const std::string& d : de) candidates.emplace_back(d, en[0]);
      for (std::size_t j = 1; j < en.size(); ++j) candidates.emplace_back(de[0], en[j]);
    }
    std::int64_t produced = 0;
    for (auto& [d, e] : candidates) {
      if (!has_letter_or_digit(d) || !has_letter_or_digit(e)) {
        ++stats_.dropped_empty_side;
        continue;
      }
      if (has_spaced_slash(d) || has_spaced_slash(e)) {
        ++stats_.dropped_inline_alternatives;
        continue;
      }
      ++produced;
      if (!seen_.emplace(d, e).second) {
        ++stats_.duplicate_pairs;
        continue;
      }
      const PairKind kind = classify_pair(d, e);
      switch (kind) {
        case PairKind::word:
          ++stats_.words;
          break;
        case PairKind::phrase:
          ++stats_.phrases;
          break;
        case PairKind::sentence:
          ++stats_.sentences;
          break;
      }
      out.push_back(TranslationPair{std::move(d), std::move(e), kind});
    }
    return produced;
  }

  BeolingusStats& stats_;
  std::unordered_set<std::pair<std::string, std::string>, PairKey> seen_;
};

}  // namespace

const char* pair_kind_name(PairKind kind) {
  switch (kind) {
    case PairKind::word:
      return "word";
    case PairKind::phrase:
      return "phrase";
    case PairKind::sentence:
      return "sentence";
  }
  return "word";
}

bool parse_pair_kind(const std::string& name, PairKind* kind) {
  for (const PairKind k : {PairKind::word, PairKind::phrase, PairKind::sentence}) {
    if (name == pair_kind_name(k)) {
      *kind = k;
      return true;
    }
  }
  return false;
}

std::string strip_annotations(const std::string& text) {
  // Groups removed (rule 4); each leaves a space so that "Aal(m)x" cannot glue words together.
  std::string kept;
  kept.reserve(text.size());
  int depth = 0;
  for (const char c : text) {
    if (is_open_bracket(c)) {
      ++depth;
      kept.push_back(' ');
    } else if (is_close_bracket(c)) {
      if (depth > 0) --depth;
      kept.push_back(' ');
    } else if (depth == 0) {
      kept.push_back(is_ascii_space(c) ? ' ' : c);
    }
  }
  // Whitespace collapsed and trimmed, and no space before , . ! ? : ; (rule 5).
  std::string out;
  out.reserve(kept.size());
  bool pending_space = false;
  for (const char c : kept) {
    if (c == ' ') {
      pending_space = !out.empty();
      continue;
    }
    const bool closing_punctuation = c == ',' || c == '.' || c == '!' || c == '?' || c == ':' || c == ';';
    if (pending_space && !closing_punctuation) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

PairKind classify_pair(const std::string& de, const std::string& en) {
  const std::size_t words = count_words(de);
  if (words <= 1) return PairKind::word;
  const bool sentence = words >= 3 && starts_upper_or_digit(de) && ends_sentence(de) && ends_sentence(en) &&
                        !ends_with_placeholder(de) && !ends_with_placeholder(en);
  return sentence ? PairKind::sentence : PairKind::phrase;
}

std::vector<TranslationPair> parse_beolingus(std::istream& in, BeolingusStats* stats) {
  BeolingusStats local;
  BeolingusStats& s = stats ? *stats : local;
  s = BeolingusStats{};
  Parser parser(s);
  std::vector<TranslationPair> pairs;
  std::string line;
  while (std::getline(in, line)) parser.parse_line(std::move(line), pairs);
  return pairs;
}

std::vector<TranslationPair> read_beolingus(const std::string& path, BeolingusStats* stats) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw IoError("dictionary '" + path +
                  "' does not exist (Debian's package trans-de-en provides it as /usr/share/trans/de-en)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("dictionary '" + path + "' cannot be opened for reading");
  std::vector<TranslationPair> pairs = parse_beolingus(in, stats);
  if (in.bad()) throw IoError("dictionary '" + path + "': read error");
  return pairs;
}

}  // namespace attnlab
