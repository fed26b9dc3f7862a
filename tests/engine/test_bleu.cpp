// Corpus BLEU (engine/text/bleu.h): the 13a tokeniser on cases worked out by hand from its rules,
// BLEU on small corpora whose n-gram counts are worked out by hand below, sacreBLEU's published
// README example, the errors, and a naive map-based BLEU on random corpora.
#include <QtTest>
#include <array>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_support.h"
#include "text/bleu.h"

using namespace attnlab;
using attnlab::test::contains;
using attnlab::test::error_message;

namespace {

using Tokens = std::vector<std::string>;
using Lines = std::vector<std::string>;  // one sentence per entry

// ---- naive reference: BLEU from token lists, std::map n-gram counts, the formula written out ----

struct NaiveBleu {
  std::array<std::int64_t, 4> correct{}, total{};
  std::array<double, 4> precisions{};
  std::int64_t hyp_len = 0, ref_len = 0;
  double bp = 0.0, score = 0.0;
};

std::map<Tokens, std::int64_t> naive_ngrams(const Tokens& tokens, std::size_t n) {
  std::map<Tokens, std::int64_t> counts;
  for (std::size_t i = 0; i + n <= tokens.size(); ++i) ++counts[Tokens(tokens.begin() + i, tokens.begin() + i + n)];
  return counts;
}

// hyps [S]; refs [S][R] (R references for each sentence).
NaiveBleu naive_bleu(const std::vector<Tokens>& hyps, const std::vector<std::vector<Tokens>>& refs) {
  NaiveBleu b;
  for (std::size_t s = 0; s < hyps.size(); ++s) {
    for (std::size_t n = 1; n <= 4; ++n) {
      std::map<Tokens, std::int64_t> best;
      for (const Tokens& ref : refs[s]) {
        for (const auto& [gram, count] : naive_ngrams(ref, n)) best[gram] = std::max(best[gram], count);
      }
      for (const auto& [gram, count] : naive_ngrams(hyps[s], n)) {
        b.total[n - 1] += count;
        b.correct[n - 1] += std::min(count, best.count(gram) ? best.at(gram) : 0);
      }
    }
    const auto c = static_cast<std::int64_t>(hyps[s].size());
    std::int64_t chosen = -1;
    for (const Tokens& ref : refs[s]) {
      const auto r = static_cast<std::int64_t>(ref.size());
      if (chosen < 0 || std::abs(c - r) < std::abs(c - chosen) || (std::abs(c - r) == std::abs(c - chosen) && r < chosen)) chosen = r;
    }
    b.hyp_len += c;
    b.ref_len += chosen;
  }
  b.bp = b.hyp_len >= b.ref_len ? 1.0 : (b.hyp_len == 0 ? 0.0 : std::exp(1.0 - double(b.ref_len) / double(b.hyp_len)));
  if (b.correct == std::array<std::int64_t, 4>{}) return b;
  int zeros = 0;
  bool stopped = false;
  for (int n = 0; n < 4; ++n) {
    if (stopped || b.total[n] == 0) {
      stopped = true;
      continue;
    }
    if (b.correct[n] == 0) {
      ++zeros;
      b.precisions[n] = 100.0 / (std::pow(2.0, zeros) * double(b.total[n]));
    } else {
      b.precisions[n] = 100.0 * double(b.correct[n]) / double(b.total[n]);
    }
  }
  double product = 1.0;
  for (const double p : b.precisions) product *= p;
  b.score = b.bp * std::pow(product, 0.25);
  return b;
}

std::string joined(const Tokens& tokens) {
  std::string s;
  for (const std::string& t : tokens) s += (s.empty() ? "" : " ") + t;
  return s;
}

bool nearly(double a, double b, double tol = 1e-9) { return std::abs(a - b) <= tol * std::max(1.0, std::abs(b)); }

}  // namespace

class TestBleu : public QObject {
  Q_OBJECT

 private slots:
  // ---- tokenize_13a ---------------------------------------------------------------------------

  void tokenizer_splits_symbols_and_sentence_punctuation() {
    // "!" is a symbol (padded); "," follows a letter (split from it and from the space after).
    QCOMPARE(tokenize_13a("Hello, world!"), std::string("Hello , world !"));
    // Every symbol of the 13a set is padded; the apostrophe is not in the set.
    QCOMPARE(tokenize_13a("$5 (50%) a/b x_y #tag @me {k} [i] \"q\" a+b=c; d:e? f<g>h \\ ^ | ~ `x` don't"),
             std::string("$ 5 ( 50 % ) a / b x _ y # tag @ me { k } [ i ] \" q \" a + b = c ; d : e ? f < g > h \\ ^ | ~ ` x ` don't"));
    // Periods and commas after letters: "e.g." becomes four tokens, as in mteval.
    QCOMPARE(tokenize_13a("e.g. this"), std::string("e . g . this"));
    QCOMPARE(tokenize_13a("a.b,c"), std::string("a . b , c"));
    QCOMPARE(tokenize_13a(""), std::string(""));
    QCOMPARE(tokenize_13a(" \t "), std::string(""));
  }

  void tokenizer_keeps_numbers_whole() {
    // Between digits neither rule applies: "1,000.5" stays one token; the final "." follows a
    // letter.
    QCOMPARE(tokenize_13a("1,000.5"), std::string("1,000.5"));
    QCOMPARE(tokenize_13a("It costs 1,000.5 euros."), std::string("It costs 1,000.5 euros ."));
    // A period after a digit and before a space: split by the "not followed by a digit" rule.
    QCOMPARE(tokenize_13a("pi is 3.14."), std::string("pi is 3.14 ."));
    // A comma after a digit followed by a space: split off by the same rule.
    QCOMPARE(tokenize_13a("5, 6"), std::string("5 , 6"));
    // A period after a space and before a digit: split by the "not preceded by a digit" rule.
    QCOMPARE(tokenize_13a("a .5 b"), std::string("a . 5 b"));
  }

  void tokenizer_splits_dashes_only_after_digits() {
    QCOMPARE(tokenize_13a("1990-2000"), std::string("1990 - 2000"));
    QCOMPARE(tokenize_13a("state-of-the-art"), std::string("state-of-the-art"));
    QCOMPARE(tokenize_13a("pre-1990"), std::string("pre-1990"));
    QCOMPARE(tokenize_13a("-5 and 3-"), std::string("-5 and 3 -"));
  }

  void tokenizer_unescapes_and_joins_lines() {
    QCOMPARE(tokenize_13a("&quot;x&quot;"), std::string("\" x \""));
    QCOMPARE(tokenize_13a("AT&amp;T &lt;b&gt;"), std::string("AT & T < b >"));
    // The replacements run one after the other: "&amp;lt;" -> "&lt;" -> "<".
    QCOMPARE(tokenize_13a("&amp;lt;"), std::string("<"));
    QCOMPARE(tokenize_13a("a <skipped> b"), std::string("a b"));
    QCOMPARE(tokenize_13a("hyphen-\nated line\nbreak"), std::string("hyphenated line break"));
  }

  void tokenizer_passes_utf8_through() {
    QCOMPARE(tokenize_13a("Größe: 5 Äpfel."), std::string("Größe : 5 Äpfel ."));
    // Non-ASCII punctuation is not in the 13a symbol set.
    QCOMPARE(tokenize_13a("it’s „gut“ — ja"), std::string("it’s „gut“ — ja"));
    // Unicode whitespace (no-break space, ideographic space) separates like a space, as in Python.
    QCOMPARE(tokenize_13a("a\u00a0b\u3000c\u2009d"), std::string("a b c d"));
    // A byte that is not UTF-8 stays.
    QCOMPARE(tokenize_13a("caf\xe9!"), std::string("caf\xe9 !"));
  }

  void lowercase_covers_latin_and_cyrillic() {
    QCOMPARE(lowercase_for_bleu("ÄÖÜ Straße ẞ ÀÞ × Ÿ Ĳ Ĺ Ł Ž"), std::string("äöü straße ß àþ × ÿ ĳ ĺ ł ž"));
    QCOMPARE(lowercase_for_bleu("İ"), std::string("i\xCC\x87"));  // as Python: i + combining dot
    QCOMPARE(lowercase_for_bleu("МОСКВА Ёж"), std::string("москва ёж"));
    QCOMPARE(lowercase_for_bleu("ı ĸ ŉ ß 123 ,."), std::string("ı ĸ ŉ ß 123 ,."));
    QCOMPARE(lowercase_for_bleu("A\xff" "B"), std::string("a\xff" "b"));
  }

  // ---- corpus BLEU on hand-counted cases ------------------------------------------------------

  void identical_corpus_scores_100() {
    // Sentence 1: "The cat sat on the mat ." = 7 tokens (13a splits the final period):
    //   7/7, 6/6, 5/5, 4/4. Sentence 2: "Hello , world !" = 4 tokens: 4/4, 3/3, 2/2, 1/1.
    //   Sums 11/11, 9/9, 7/7, 5/5: every precision 100, BP 1, BLEU 100.
    const std::vector<std::string> text = {"The cat sat on the mat.", "Hello, world!"};
    const BleuResult r = corpus_bleu(text, text);
    QCOMPARE(r.correct, (std::array<std::int64_t, 4>{11, 9, 7, 5}));
    QCOMPARE(r.total, (std::array<std::int64_t, 4>{11, 9, 7, 5}));
    QVERIFY(nearly(r.score, 100.0, 1e-12));
    QCOMPARE(r.bp, 1.0);
    QCOMPARE(r.signature_line(), std::string("BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 11 ref_len = 11)"));
  }

  void short_hypothesis_gets_the_brevity_penalty() {
    // hyp "the cat sat on the" (c = 5) against "the cat sat on the mat" (r = 6): every hyp n-gram
    // is in the reference ("the" twice in both): 5/5, 4/4, 3/3, 2/2, so precisions 100.
    // BP = exp(1 - 6/5) = exp(-0.2) = 0.818730753; BLEU = 81.8730753.
    const BleuResult r = corpus_bleu({"the cat sat on the"}, {"the cat sat on the mat"});
    QCOMPARE(r.correct, (std::array<std::int64_t, 4>{5, 4, 3, 2}));
    QCOMPARE(r.total, (std::array<std::int64_t, 4>{5, 4, 3, 2}));
    QCOMPARE(r.hyp_len, std::int64_t{5});
    QCOMPARE(r.ref_len, std::int64_t{6});
    QVERIFY(nearly(r.bp, std::exp(-0.2), 1e-14));
    QVERIFY(nearly(r.score, 100.0 * std::exp(-0.2), 1e-12));
    QCOMPARE(r.signature_line(), std::string("BLEU = 81.87 100.0/100.0/100.0/100.0 (BP = 0.819 ratio = 0.833 hyp_len = 5 ref_len = 6)"));
    // A longer hypothesis gets no penalty: BP = 1.
    QCOMPARE(corpus_bleu({"the cat sat on the mat today"}, {"the cat sat on the mat"}).bp, 1.0);
  }

  void missing_orders_use_exp_smoothing() {
    // hyp "the cat the dog", ref "the dog the cat" (4 tokens each, BP 1).
    //   unigrams: the x2, cat, dog: all in the ref (the x2)   -> 4/4
    //   bigrams: "the cat" yes, "cat the" no, "the dog" yes   -> 2/3
    //   trigrams: "the cat the", "cat the dog": neither      -> 0/2
    //   4-gram: "the cat the dog": no                         -> 0/1
    // exp smoothing: order 3 is the first zero order, k = 1: p3 = 100 / (2 * 2) = 25;
    // order 4 the second, k = 2: p4 = 100 / (4 * 1) = 25.
    // BLEU = (100 * 66.667 * 25 * 25)^(1/4) = (12500000/3)^(1/4) = 45.18010018.
    const BleuResult r = corpus_bleu({"the cat the dog"}, {"the dog the cat"});
    QCOMPARE(r.correct, (std::array<std::int64_t, 4>{4, 2, 0, 0}));
    QCOMPARE(r.total, (std::array<std::int64_t, 4>{4, 3, 2, 1}));
    QVERIFY(nearly(r.precisions[1], 200.0 / 3.0, 1e-14));
    QCOMPARE(r.precisions[2], 25.0);
    QCOMPARE(r.precisions[3], 25.0);
    QVERIFY(nearly(r.score, std::pow(12500000.0 / 3.0, 0.25), 1e-12));
    QCOMPARE(r.signature_line(), std::string("BLEU = 45.18 100.0/66.7/25.0/25.0 (BP = 1.000 ratio = 1.000 hyp_len = 4 ref_len = 4)"));
  }

  void degenerate_corpora_score_zero() {
    // No n-gram matches at all: score 0 and all precisions 0 (no smoothing applies); c = 2 < r = 3:
    // BP = exp(1 - 3/2) = exp(-0.5).
    const BleuResult none = corpus_bleu({"x y"}, {"a b c"});
    QCOMPARE(none.score, 0.0);
    QCOMPARE(none.precisions, (std::array<double, 4>{0, 0, 0, 0}));
    QCOMPARE(none.total, (std::array<std::int64_t, 4>{2, 1, 0, 0}));
    QVERIFY(nearly(none.bp, std::exp(-0.5), 1e-14));
    // Fewer than four tokens in the whole corpus: 2/2, 1/1, then no trigrams (total 0), so orders
    // 3 and 4 keep precision 0 and the score is 0 though every n-gram matched.
    const BleuResult short_corpus = corpus_bleu({"a b"}, {"a b"});
    QCOMPARE(short_corpus.precisions, (std::array<double, 4>{100, 100, 0, 0}));
    QCOMPARE(short_corpus.score, 0.0);
    QCOMPARE(short_corpus.signature_line(), std::string("BLEU = 0.00 100.0/100.0/0.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 2 ref_len = 2)"));
    // Empty hypotheses: c = 0, BP = 0 (sacreBLEU's README test: score 0).
    const BleuResult empty = corpus_bleu({"", ""}, Lines{"a b", "c"});
    QCOMPARE(empty.score, 0.0);
    QCOMPARE(empty.bp, 0.0);
    QCOMPARE(empty.hyp_len, std::int64_t{0});
    QCOMPARE(empty.ref_len, std::int64_t{3});
  }

  void corpus_bleu_is_not_the_mean_of_sentence_bleu() {
    // Sentence 1, identical "the cat sat on the mat" (6 tokens): 6/6, 5/5, 4/4, 3/3 -> 100.
    // Sentence 2, hyp "we like green tea", ref "we like black tea" (4 tokens):
    //   unigrams we, like, tea match, green not: 3/4; bigrams only "we like": 1/3;
    //   trigrams 0/2, 4-gram 0/1 -> smoothed 25, 25; sentence BLEU = (75 * 33.33 * 25 * 25)^(1/4)
    //   = 1562500^(1/4) = 25 sqrt(2) = 35.3553.
    // Mean of the two sentence scores: 67.6777.
    // Corpus: counts summed first: 9/10, 6/8, 4/6, 3/4 -> (90 * 75 * 66.667 * 75)^(1/4)
    //   = 33750000^(1/4) = 76.2199; BP 1 (10 tokens each).
    const std::vector<std::string> hyps = {"the cat sat on the mat", "we like green tea"};
    const std::vector<std::string> refs = {"the cat sat on the mat", "we like black tea"};
    const double s1 = corpus_bleu({hyps[0]}, {refs[0]}).score;
    const double s2 = corpus_bleu({hyps[1]}, {refs[1]}).score;
    QVERIFY(nearly(s1, 100.0, 1e-12));
    QVERIFY(nearly(s2, 25.0 * std::sqrt(2.0), 1e-12));
    const BleuResult corpus = corpus_bleu(hyps, refs);
    QCOMPARE(corpus.correct, (std::array<std::int64_t, 4>{9, 6, 4, 3}));
    QCOMPARE(corpus.total, (std::array<std::int64_t, 4>{10, 8, 6, 4}));
    QVERIFY(nearly(corpus.score, std::pow(33750000.0, 0.25), 1e-12));
    QVERIFY(std::abs(corpus.score - 0.5 * (s1 + s2)) > 8.0);  // 76.22 vs 67.68
  }

  void multiple_references_clip_by_the_max_and_pick_the_closest_length() {
    // hyp "the the the cat" (4 tokens); r1 "the cat sat" (3), r2 "the the dog sat down" (5).
    //   unigrams: the x3 clipped to max(1 in r1, 2 in r2) = 2, cat 1 -> 3/4
    //   bigrams: "the the" x2 clipped to 1 (r2), "the cat" 1 (r1)  -> 2/3
    //   trigrams "the the the", "the the cat": in neither -> 0/2; 4-gram 0/1
    //   -> 75, 66.667, 25, 25 (exp smoothing); BLEU = 3125000^(1/4) = 42.0448.
    //   Lengths 3 and 5 are both 1 away from 4: the shorter, 3, counts; c = 4 > 3: BP 1.
    const std::vector<std::string> hyps = {"the the the cat"};
    const std::vector<std::string> r1 = {"the cat sat"}, r2 = {"the the dog sat down"};
    const BleuResult both = corpus_bleu(hyps, std::vector<std::vector<std::string>>{r1, r2});
    QCOMPARE(both.correct, (std::array<std::int64_t, 4>{3, 2, 0, 0}));
    QCOMPARE(both.total, (std::array<std::int64_t, 4>{4, 3, 2, 1}));
    QCOMPARE(both.ref_len, std::int64_t{3});
    QCOMPARE(both.bp, 1.0);
    QVERIFY(nearly(both.score, std::pow(3125000.0, 0.25), 1e-12));
    QCOMPARE(both.signature_line(), std::string("BLEU = 42.04 75.0/66.7/25.0/25.0 (BP = 1.000 ratio = 1.333 hyp_len = 4 ref_len = 3)"));
    // The order of the streams does not matter.
    const BleuResult swapped = corpus_bleu(hyps, std::vector<std::vector<std::string>>{r2, r1});
    QCOMPARE(swapped.correct, both.correct);
    QCOMPARE(swapped.ref_len, both.ref_len);
    // r1 alone: "the" clipped to 1 -> 2/4, "the cat" -> 1/3: (50 * 33.33 * 25 * 25)^(1/4) = 31.947.
    const BleuResult alone = corpus_bleu(hyps, r1);
    QCOMPARE(alone.correct, (std::array<std::int64_t, 4>{2, 1, 0, 0}));
    QVERIFY(nearly(alone.score, std::pow(50.0 * 100.0 / 3.0 * 625.0, 0.25), 1e-12));
    // An empty line in one stream leaves that reference out: with r2 empty the result is r1's.
    const BleuResult gap = corpus_bleu(hyps, std::vector<std::vector<std::string>>{r1, {""}});
    QCOMPARE(gap.correct, alone.correct);
    QCOMPARE(gap.ref_len, alone.ref_len);
  }

  // sacreBLEU's README example (two reference streams), with the output it publishes:
  // BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18).
  void matches_sacrebleu_readme_example() {
    const std::vector<std::string> hyps = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
    const std::vector<std::vector<std::string>> refs = {
        {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
        {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};
    const BleuResult r = corpus_bleu(hyps, refs);
    QCOMPARE(r.signature_line(), std::string("BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"));
    QVERIFY(std::abs(r.score - 48.530827) < 1e-6);  // sacreBLEU's test_bleu.py value
    // Empty hypotheses score 0 (sacreBLEU's test_bleu.py as well).
    QCOMPARE(corpus_bleu({"", "", ""}, refs).score, 0.0);
  }

  void lowercase_option() {
    // Case-sensitive, only "den" matches: 1/4, then 0/3, 0/2, 0/1 smoothed to 100/(2*3),
    // 100/(4*2), 100/(8*1): BLEU = (25 * 16.667 * 12.5 * 12.5)^(1/4) = 15.97. Lowercased, the
    // lines are identical: 100.
    const std::vector<std::string> hyps = {"Über den Flüssen ÄRGER"};
    const std::vector<std::string> refs = {"über den flüssen ärger"};
    const BleuResult mixed = corpus_bleu(hyps, refs);
    QCOMPARE(mixed.correct, (std::array<std::int64_t, 4>{1, 0, 0, 0}));
    QVERIFY(nearly(mixed.score, std::pow(25.0 * 100.0 / 6.0 * 12.5 * 12.5, 0.25), 1e-12));
    BleuOptions lower;
    lower.lowercase = true;
    QVERIFY(nearly(corpus_bleu(hyps, refs, lower).score, 100.0, 1e-12));
    // Lowercasing happens before unescaping, as in sacreBLEU: "&QUOT;" becomes a quote.
    QCOMPARE(corpus_bleu({"&QUOT;a b c&QUOT;"}, {"\"a b c\""}, lower).correct, (std::array<std::int64_t, 4>{5, 4, 3, 2}));
  }

  void errors_name_the_problem() {
    const std::string counts = error_message<ShapeError>([] { corpus_bleu({"a", "b", "c"}, Lines{"a", "b"}); });
    QVERIFY2(contains(counts, "3 hypotheses") && contains(counts, "2 references"), counts.c_str());
    const std::string stream = error_message<ShapeError>(
        [] { corpus_bleu({"a", "b"}, std::vector<std::vector<std::string>>{{"a", "b"}, {"a"}}); });
    QVERIFY2(contains(stream, "2 hypotheses") && contains(stream, "stream 2 has 1"), stream.c_str());
    QVERIFY(contains(error_message<ParamError>([] { corpus_bleu({"a"}, std::vector<std::vector<std::string>>{}); }), "no reference"));
    QVERIFY(contains(error_message<ParamError>([] { corpus_bleu(std::vector<std::string>{}, std::vector<std::string>{}); }), "no sentences"));
    const std::string empty_ref = error_message<ParamError>([] { corpus_bleu({"a", "b"}, Lines{"a", ""}); });
    QVERIFY2(contains(empty_ref, "sentence 2") && contains(empty_ref, "empty"), empty_ref.c_str());
  }

  // ---- random corpora against the naive reference ---------------------------------------------

  void matches_naive_bleu_on_random_corpora() {
    const std::vector<std::string> words = {"the", "The", "cat", "dog", "sat", "on", "mat", "ran", "a"};
    std::mt19937 rng(20240607);
    const auto sentence = [&](int min_len, int max_len) {
      Tokens t(static_cast<std::size_t>(std::uniform_int_distribution<int>(min_len, max_len)(rng)));
      for (std::string& w : t) w = words[std::uniform_int_distribution<std::size_t>(0, words.size() - 1)(rng)];
      return t;
    };
    int compared = 0, smoothed = 0, zero = 0;
    const auto check = [&](const std::vector<Tokens>& hyp_tokens, const std::vector<std::vector<Tokens>>& ref_tokens) {
      std::vector<std::string> hyps;
      for (const Tokens& t : hyp_tokens) hyps.push_back(joined(t));
      std::vector<std::vector<std::string>> streams(ref_tokens[0].size());
      for (const auto& refs : ref_tokens)
        for (std::size_t k = 0; k < refs.size(); ++k) streams[k].push_back(joined(refs[k]));
      const BleuResult got = corpus_bleu(hyps, streams);
      const NaiveBleu want = naive_bleu(hyp_tokens, ref_tokens);
      QCOMPARE(got.correct, want.correct);
      QCOMPARE(got.total, want.total);
      QCOMPARE(got.hyp_len, want.hyp_len);
      QCOMPARE(got.ref_len, want.ref_len);
      QVERIFY(nearly(got.bp, want.bp, 1e-13));
      for (int n = 0; n < 4; ++n) QVERIFY(nearly(got.precisions[n], want.precisions[n], 1e-13));
      QVERIFY2(nearly(got.score, want.score, 1e-12), qPrintable(QString("%1 vs %2").arg(got.score).arg(want.score)));
      ++compared;
      smoothed += (want.correct[3] == 0 && want.total[3] > 0 && want.score > 0) ? 1 : 0;
      zero += want.score == 0.0 ? 1 : 0;
    };
    // 20 corpora of 10 sentence pairs (200 pairs), with 1, 2 or 3 reference streams; each pair is
    // also scored on its own (a one-sentence corpus reaches the smoothing and zero cases often).
    for (int corpus = 0; corpus < 20; ++corpus) {
      const std::size_t streams = 1 + static_cast<std::size_t>(corpus % 3);
      std::vector<Tokens> hyps;
      std::vector<std::vector<Tokens>> refs;
      for (int s = 0; s < 10; ++s) {
        hyps.push_back(sentence(0, 12));
        refs.emplace_back();
        for (std::size_t k = 0; k < streams; ++k) refs.back().push_back(sentence(1, 12));
        check({hyps.back()}, {refs.back()});
        if (QTest::currentTestFailed()) return;
      }
      check(hyps, refs);
      if (QTest::currentTestFailed()) return;
    }
    QCOMPARE(compared, 220);
    QVERIFY2(smoothed > 10 && zero > 10, qPrintable(QString("smoothed %1, zero %2: the random cases miss a branch").arg(smoothed).arg(zero)));
  }
};

QTEST_GUILESS_MAIN(TestBleu)
#include "test_bleu.moc"
