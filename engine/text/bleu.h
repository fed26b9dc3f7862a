// Corpus BLEU (Papineni et al. 2002) as sacreBLEU computes it by default: mteval-v13a
// tokenisation, case-sensitive, n-grams of order 1..4, brevity penalty, 'exp' smoothing. The same
// text gives the same score, precisions and lengths as `sacrebleu` (BLEU(), corpus_score).
//
// Shapes: hyps [S] strings, one sentence each; a reference stream [S] strings, one reference per
// hypothesis; several streams give several references per sentence.
//
// Rules (checked against sacreBLEU 2.x, metrics/bleu.py):
//  - Each line is (optionally) lowercased, stripped of trailing whitespace, tokenised by
//    tokenize_13a and split at single spaces into tokens.
//  - Per sentence, every hypothesis n-gram (n = 1..4) counts in total[n]; it is correct up to the
//    largest number of times it occurs in any one reference of that sentence (clipping by the
//    maximum over references). The sentence's reference length is that of the reference closest
//    in token count to the hypothesis, the shorter one on a tie.
//  - A reference line that is exactly "" is left out for its sentence (sacreBLEU's variable number
//    of references); a sentence with no reference left is a ParamError.
//  - Counts and lengths are summed over the corpus, then: c = hyp_len, r = ref_len;
//    BP = 1 if c >= r, exp(1 - r/c) if 0 < c < r, 0 if c == 0.
//  - No correct n-gram of any order: score 0, all precisions 0.
//  - Otherwise, for n = 1..4 in turn: if total[n] == 0, this and the higher orders keep precision
//    0 (and the score is 0); if correct[n] > 0, precision = 100 correct[n] / total[n]; if
//    correct[n] == 0, k (starting at 0) goes up by one and precision = 100 / (2^k total[n]).
//  - score = BP exp((ln p1 + ln p2 + ln p3 + ln p4) / 4), with a zero precision giving score 0.
//    Precisions and score are percentages (0..100).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab {

constexpr int kBleuMaxOrder = 4;

// mteval-v13a tokenisation (sacreBLEU's tokenize='13a') of one line, in this order:
//  1. remove "<skipped>"; delete "-\n" (a word hyphenated across lines is joined); "\n" -> " ";
//  2. "&quot;" -> '"', "&amp;" -> '&', "&lt;" -> '<', "&gt;" -> '>' (each over the whole line in
//     turn, so "&amp;lt;" becomes "<");
//  3. put a space before and after every ASCII symbol except ' , - . (that is ! " # $ % & ( ) * +
//     / : ; < = > ? @ [ \ ] ^ _ ` { | } ~);
//  4. split a period or comma from a preceding non-digit, then from a following non-digit (so
//     "1,000.5" stays whole and "end." becomes "end ."), and a dash from a preceding digit
//     ("1990-2000" -> "1990 - 2000"); each pass scans left to right over non-overlapping pairs;
//  5. collapse whitespace (Unicode whitespace as Python's str.split() sees it, no-break space
//     included) to single spaces and trim.
// Non-ASCII characters (umlauts, ’, „) are never split off; bytes that are not valid UTF-8 pass
// through unchanged.
std::string tokenize_13a(std::string_view line);

// Lowercasing for BleuOptions::lowercase: what Python's str.lower() does to Basic Latin,
// Latin-1, Latin Extended-A (İ becomes "i̇"), ẞ (-> ß) and basic Cyrillic (U+0400..U+042F).
// Letters of other scripts (Greek, Armenian, ...) are left as they are, where sacreBLEU would
// lowercase them too.
std::string lowercase_for_bleu(std::string_view text);

struct BleuOptions {
  bool lowercase = false;  // sacreBLEU's -lc
};

struct BleuResult {
  double score = 0.0;                                   // 0..100
  std::array<double, kBleuMaxOrder> precisions{};       // percent, after smoothing
  std::array<std::int64_t, kBleuMaxOrder> correct{};    // clipped matches per order
  std::array<std::int64_t, kBleuMaxOrder> total{};      // hypothesis n-grams per order
  double bp = 0.0;                                      // brevity penalty
  std::int64_t hyp_len = 0;                             // tokens
  std::int64_t ref_len = 0;                             // tokens (closest reference per sentence)

  double ratio() const { return ref_len > 0 ? static_cast<double>(hyp_len) / static_cast<double>(ref_len) : 0.0; }
  // sacreBLEU's score line:
  // "BLEU = 23.45 57.1/30.2/18.0/11.1 (BP = 0.981 ratio = 0.981 hyp_len = 1234 ref_len = 1258)".
  std::string signature_line() const;
};

// One reference per hypothesis. ShapeError when the counts differ; ParamError for an empty corpus
// or a sentence whose reference is "".
BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                       const BleuOptions& options = {});

// Several reference streams, each as long as `hyps`. ShapeError names the stream whose length
// differs; ParamError for no stream, an empty corpus, or a sentence whose references are all "".
BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& ref_streams,
                       const BleuOptions& options = {});

}  // namespace attnlab
