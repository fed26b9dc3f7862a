// Reader of the BEOLINGUS German–English dictionary (Frank Richter, TU Chemnitz; GPL-2+; shipped
// by Debian's trans-de-en as /usr/share/trans/de-en) into clean (German, English) pairs.
//
// Format: '#' starts a comment line; an entry is `German side :: English side`; each side holds
// alternatives separated by '|' (singular | plural | example phrase | example sentence ...),
// aligned by position across the two sides; an alternative holds synonyms separated by ';'.
//
// Cleaning rules (chosen after reading the real file; every rule applies to both sides):
//  1. `/ABBR/` (a slash-delimited run without spaces, standing alone: "/WITWAY/", "/:-)/") is
//     removed first, so that an abbreviation holding a bracket ("/:-)/") cannot unbalance a line.
//     Of a British / American spelling pair "A [Br.] / B [Am.]" (B without brackets, slashes,
//     '|' or ';', at most 4 words) only A stays: "data analyser [Br.]/analyzer [Am.]" → "data
//     analyser", "theatre [Br.] / theater [Am.] scene" → "theatre scene".
//  2. Brackets ( ) [ ] { } < > must balance on each side, else the line is skipped (a handful
//     of lines use '<' / '>' as "less / greater than", or lose their " :: " inside a gloss).
//  3. '|' and ';' split only outside brackets: "{hid; hidden}" or "(coal maceral; maceral
//     group)" stay inside their group.
//  4. Every bracketed group is removed with what it holds (nesting included): grammar
//     `{m} {f} {pl} {vt} {adj} {hid; hidden}`, labels `[ugs.] [cook.] [Br.]`, spelling variants
//     and search keys `<Brennhölzer> <>`, and glosses `(auf der Speisekarte)`. In example
//     sentences the parenthesised parts are optional words ("What’s so funny (about it)?",
//     "Den Abschluss (des Berichts) bildet ein Anhang."); dropping them leaves a grammatical
//     sentence on each side, while keeping them would pair words one side lacks.
//  5. Whitespace is collapsed and trimmed; a space that a removed group left before , . ! ? : ;
//     is removed ("I have about a dollar in (small) change." → "... in change.").
//  6. Synonyms pair by position when both sides have as many; otherwise every German synonym
//     pairs with the first English one and the first German one with every English one.
//  7. A pair is dropped when a side has no letter or digit left ("? :: National Institute ..."),
//     or holds a spaced slash ("Wasser aufsetzen / Wasser kochen", "just / still"): such
//     inline alternatives have no clear scope. Unspaced slashes stay ("sb./sth.", "km/h",
//     "flicks/movies"): they are ordinary text in the dictionary's style.
//  8. Exact duplicate pairs are removed, keeping the first occurrence (file order).
// Kinds (on the cleaned text): `word` when the German side is one word; `sentence` when the
// German side has at least 3 words and starts with an uppercase letter or digit, both sides end
// with . ! or ?, and neither ends with a dictionary placeholder (etw. jdn. jdm. jds. jd. sth. sb.),
// which marks a pattern like "Gewinde schneiden in etw." rather than a sentence; else `phrase`.
// Text stays UTF-8 as in the file (umlauts, ß, ’ “ ” „).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace attnlab {

enum class PairKind { word, phrase, sentence };

// "word", "phrase", "sentence".
const char* pair_kind_name(PairKind kind);
// Inverse of pair_kind_name; false for anything else.
bool parse_pair_kind(const std::string& name, PairKind* kind);

struct TranslationPair {
  std::string de, en;
  PairKind kind = PairKind::word;
  bool operator==(const TranslationPair&) const = default;
};

struct BeolingusStats {
  std::int64_t lines = 0;          // every line read, = comment + blank + entries + skipped
  std::int64_t comment_lines = 0;  // starting with '#'
  std::int64_t blank_lines = 0;
  std::int64_t entries = 0;  // lines that gave at least one pair
  // Lines skipped (never thrown), by reason:
  std::int64_t skipped_no_separator = 0;         // no " :: ", or more than one
  std::int64_t skipped_unbalanced_brackets = 0;  // ( [ { < without their partner, or the reverse
  std::int64_t skipped_alternative_counts = 0;   // the sides have different numbers of '|' parts
  std::int64_t skipped_empty = 0;                // no pair left after stripping
  // Pairs dropped inside lines that were kept:
  std::int64_t dropped_empty_side = 0;           // a side without letters or digits
  std::int64_t dropped_inline_alternatives = 0;  // a spaced slash on a side
  std::int64_t duplicate_pairs = 0;
  // Pairs returned, per kind:
  std::int64_t words = 0, phrases = 0, sentences = 0;

  std::int64_t skipped_lines() const {
    return skipped_no_separator + skipped_unbalanced_brackets + skipped_alternative_counts + skipped_empty;
  }
  std::int64_t pairs() const { return words + phrases + sentences; }
};

// Cleans one side's synonym (rules 4 and 5 above): bracketed groups removed, whitespace collapsed.
std::string strip_annotations(const std::string& text);

// The kind of a cleaned pair (rules in the header comment).
PairKind classify_pair(const std::string& de, const std::string& en);

// All pairs of the dictionary text in file order; malformed lines are skipped and counted in
// `stats` (may be null), never thrown.
std::vector<TranslationPair> parse_beolingus(std::istream& in, BeolingusStats* stats);

// The same for a file; throws IoError naming `path` when it cannot be read.
std::vector<TranslationPair> read_beolingus(const std::string& path, BeolingusStats* stats);

}  // namespace attnlab
