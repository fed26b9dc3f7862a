// Word-by-word dictionary baseline for German → English: the floor a trained translator must
// beat. Built from pairs of kind `word`: each German word maps to its most frequent English
// translation among those pairs (a leading "to " of English verbs stripped first, so "to go" and
// "go" count together); ties go to the translation seen first, which in BEOLINGUS is the
// dictionary's main sense.
//
// translate(): the German text is split into words (letters, digits, and ' - inside a word) and
// single punctuation characters; each word is looked up exactly, then lowercased, then with its
// first letter uppercased (nouns), and copied when unknown; the output joins the pieces with
// spaces, attaching punctuation to the previous piece (opening brackets and quotes „ ‚ ( [ to the
// next), and uppercases its first letter.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "train/beolingus.h"

namespace attnlab {

class WordBaseline {
 public:
  WordBaseline() = default;

  // From the pairs of kind `word` in `pairs` (others are ignored).
  static WordBaseline build(const std::vector<TranslationPair>& pairs);

  // Word by word; the sentence's first word is looked up lowercased first, every other word by lookup().
  std::string translate(std::string_view german) const;
  // The entry for `word` by the exact / lowercase / first-uppercase lookup, if any.
  std::optional<std::string> lookup(std::string_view word) const;
  std::size_t size() const { return table_.size(); }

  // TSV: German <TAB> English, one entry per line, sorted by German (bytewise).
  // Throws IoError naming the path when it cannot be written / read, FormatError naming the
  // path and line number of a line without exactly two non-empty fields.
  void save_tsv(const std::string& path) const;
  static WordBaseline load_tsv(const std::string& path);

 private:
  std::unordered_map<std::string, std::string> table_;
};

}  // namespace attnlab
