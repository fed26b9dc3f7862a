// Word-by-word dictionary baseline (German → English); rules in word_baseline.h.
#include "train/word_baseline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "text/utf8.h"

namespace attnlab {
namespace {



bool is_space(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x202F; }

// Letters and digits of any script; ASCII punctuation, Latin-1 symbols and General Punctuation
// (– … ’ “ ” „) are not.
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  if (c < 0xC0 || c == 0xD7 || c == 0xF7) return false;
  return !(c >= 0x2000 && c <= 0x206F);
}

// Case of ASCII and the Latin-1 letters (Ä Ö Ü ...); ß and other scripts stay as they are.
char32_t to_lower(char32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 0x20;
  return c;
}
char32_t to_upper(char32_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 0x20;
  return c;
}

std::string lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::size_t length = 1;
    append_utf8(out, to_lower(decode_utf8(text, i, length)));
    i += length;
  }
  return out;
}

std::string first_uppercased(std::string_view text) {
  if (text.empty()) return {};
  std::size_t length = 1;
  const char32_t first = decode_utf8(text, 0, length);
  std::string out;
  append_utf8(out, to_upper(first));
  out.append(text.substr(length));
  return out;
}

struct Piece {
  std::string text;
  bool word = false;
};

// Words (word characters, with ' or - between two of them) and single non-space characters.
std::vector<Piece> split_words(std::string_view text) {
  std::vector<Piece> pieces;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, i, length);
    if (is_space(c)) {
      i += length;
      continue;
    }
    std::size_t end = i + length;
    const bool word = is_word_char(c);
    if (word) {
      while (end < text.size()) {
        std::size_t next = 1;
        const char32_t d = decode_utf8(text, end, next);
        if (is_word_char(d)) {
          end += next;
          continue;
        }
        std::size_t after = 1;
        if ((d == '\'' || d == '-') && end + 1 < text.size() && is_word_char(decode_utf8(text, end + 1, after))) {
          end += 1 + after;
          continue;
        }
        break;
      }
    }
    pieces.push_back(Piece{std::string(text.substr(i, end - i)), word});
    i = end;
  }
  return pieces;
}

bool opens(const std::string& punctuation) {
  return punctuation == "(" || punctuation == "[" || punctuation == "\xE2\x80\x9E" /* „ */ ||
         punctuation == "\xE2\x80\x9A" /* ‚ */;
}

std::string without_leading_to(const std::string& english) {
  return english.rfind("to ", 0) == 0 && english.size() > 3 ? english.substr(3) : english;
}

}  // namespace

WordBaseline WordBaseline::build(const std::vector<TranslationPair>& pairs) {
  // Per German word: its translations in first-seen order with their counts.
  std::unordered_map<std::string, std::vector<std::pair<std::string, std::int64_t>>> counts;
  for (const TranslationPair& p : pairs) {
    if (p.kind != PairKind::word) continue;
    const std::string english = without_leading_to(p.en);
    auto& options = counts[p.de];
    const auto it = std::find_if(options.begin(), options.end(), [&](const auto& o) { return o.first == english; });
    if (it == options.end())
      options.emplace_back(english, 1);
    else
      ++it->second;
  }
  WordBaseline baseline;
  for (auto& [german, options] : counts) {
    const auto* best = &options.front();
    for (const auto& o : options)
      if (o.second > best->second) best = &o;  // strictly more: ties keep the first seen
    baseline.table_.emplace(german, best->first);
  }
  return baseline;
}

std::optional<std::string> WordBaseline::lookup(std::string_view word) const {
  for (const std::string& key : {std::string(word), lowercase(word), first_uppercased(word)}) {
    const auto it = table_.find(key);
    if (it != table_.end()) return it->second;
  }
  return std::nullopt;
}

std::string WordBaseline::translate(std::string_view german) const {
  std::string out;
  bool attach_next = false;  // after an opening bracket or quote
  bool sentence_start = true;
  for (const Piece& piece : split_words(german)) {
    std::string text = piece.text;
    if (piece.word) {
      // A sentence's first word is capitalised by position, not because it is a noun: look it up
      // lowercased first ("Ich" is "I", not the noun "Ich" = "ego").
      std::optional<std::string> english;
      if (sentence_start) {
        const auto it = table_.find(lowercase(piece.text));
        if (it != table_.end()) english = it->second;
      }
      if (!english) english = lookup(piece.text);
      if (english) text = *english;
      sentence_start = false;
    }
    const bool attach_to_previous = !piece.word && !opens(piece.text);
    if (!out.empty() && !attach_next && !attach_to_previous) out.push_back(' ');
    out += text;
    attach_next = !piece.word && opens(piece.text);
  }
  // The first letter of the result uppercased (skipping leading punctuation such as „).
  for (std::size_t i = 0; i < out.size();) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(out, i, length);
    if (is_word_char(c)) {
      std::string upper;
      append_utf8(upper, to_upper(c));
      out.replace(i, length, upper);
      break;
    }
    i += length;
  }
  return out;
}

void WordBaseline::save_tsv(const std::string& path) const {
  std::vector<std::pair<std::string, std::string>> rows(table_.begin(), table_.end());
  std::sort(rows.begin(), rows.end());
  for (const auto& [german, english] : rows) {
    if ((german + english).find_first_of("\t\n\r") != std::string::npos) {
      throw ParamError("baseline entry '" + german + "' holds a tab or line break and cannot be written as TSV");
    }
  }
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& [german, english] : rows) out << german << '\t' << english << '\n';
  });
}

WordBaseline WordBaseline::load_tsv(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw IoError("baseline file '" + path + "' does not exist");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("baseline file '" + path + "' cannot be opened for reading");
  WordBaseline baseline;
  std::string line;
  std::int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::size_t tab = line.find('\t');
    if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos || tab == 0 ||
        tab + 1 == line.size()) {
      throw FormatError(path + ":" + std::to_string(number) +
                        ": expected 'German<TAB>English' with two non-empty fields");
    }
    baseline.table_[line.substr(0, tab)] = line.substr(tab + 1);
  }
  if (in.bad()) throw IoError("baseline file '" + path + "': read error");
  return baseline;
}

}  // namespace attnlab
