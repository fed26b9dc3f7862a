// Greedy and beam search (decode/search.h) over toy decoders written here.
//
// The main toy decoder draws the next-token distribution from a seeded hash of the WHOLE prefix
// each slot has been fed, and tracks those prefixes only through start/step/reorder, so a wrong
// reorder (or a wrong feed) changes the results. Checked:
//   - beam search wide enough to keep every candidate equals an exhaustive enumeration of all
//     sequences up to max_length (finished or cut), under alpha 0 and 0.6, n-best list included;
//   - narrow beams equal a naive beam search written here (full sort of every candidate, prefixes
//     copied, no early stop), also with many exactly tied log-probabilities;
//   - beam 1 equals greedy (tokens, log-probabilities, steps_slots, steps), and greedy equals the
//     argmax chain computed here; with alpha > 0 beam 1 scores at least as well as greedy;
//   - a hand-built model where greedy is wrong and beam 2 finds the better sequence;
//   - exact ties go to the lower token, then the lower slot; NaN log-probabilities lose;
//   - steps_slots points at the step() rows whose recorded prefix is the hypothesis' own;
//   - the beam tree is well formed and holds the best hypothesis' path;
//   - bad options, a wrong step() shape and cancellation are refused with one-line errors.
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/error.h"
#include "core/rng.h"
#include "decode/search.h"
#include "test_support.h"

using namespace attnlab;

namespace {

using Tokens = std::vector<std::int32_t>;

// The toy model: log-probabilities of the next token after `prefix` (BOS included), from a hash
// of the whole prefix. `tied` draws integer logits 0..2, so many log-probabilities tie exactly.
struct ToyModel {
  std::int32_t vocab = 5;
  std::int32_t bos = 4;
  std::int32_t eos = 0;
  std::uint64_t seed = 1;
  bool tied = false;
  double eos_bias = 0.0;  // added to the EOS logit: higher ends sequences sooner
  bool uniform = false;   // every token equally likely (all candidates of a step tie)

  std::vector<float> log_probs(const Tokens& prefix) const {
    std::uint64_t h = seed;
    for (const std::int32_t t : prefix) h = Rng::derive(h, static_cast<std::uint64_t>(t));
    Rng rng(h);
    std::vector<double> logits(static_cast<std::size_t>(vocab));
    for (double& x : logits) x = uniform ? 0.0 : tied ? static_cast<double>(rng.below(3)) : 1.5 * rng.normal();
    logits[static_cast<std::size_t>(eos)] += eos_bias;
    const double m = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (const double x : logits) sum += std::exp(x - m);
    std::vector<float> out(logits.size());
    for (std::size_t v = 0; v < out.size(); ++v) out[v] = static_cast<float>(logits[v] - m - std::log(sum));
    return out;
  }
};

// An IncrementalDecoder over ToyModel that keeps each slot's prefix itself and records, per step()
// call, every slot's generated prefix (BOS excluded) whose distribution that row is.
class PrefixDecoder : public IncrementalDecoder {
 public:
  explicit PrefixDecoder(ToyModel model) : model_(model) {}

  std::int32_t vocab_size() const override { return model_.vocab; }
  void start(std::int64_t count) override {
    slots_.assign(static_cast<std::size_t>(count), Tokens{});
    history.clear();
  }
  RowMatrix step(const Tokens& tokens) override {
    if (tokens.size() != slots_.size()) throw std::logic_error("step fed a token count other than the slot count");
    if (cancel_after >= 0 && static_cast<int>(history.size()) == cancel_after) cancel_token->cancel();
    const auto live_slots = static_cast<std::int64_t>(slots_.size());
    RowMatrix out(live_slots, model_.vocab - (wrong_width ? 1 : 0));
    std::vector<Tokens> record;
    for (std::int64_t s = 0; s < live_slots; ++s) {
      Tokens& prefix = slots_[static_cast<std::size_t>(s)];
      if (prefix.empty() && tokens[static_cast<std::size_t>(s)] != model_.bos)
        throw std::logic_error("the first token fed to a slot is not BOS");
      prefix.push_back(tokens[static_cast<std::size_t>(s)]);
      const std::vector<float> lp = model_.log_probs(prefix);
      for (std::int64_t v = 0; v < out.cols(); ++v) out(s, v) = lp[static_cast<std::size_t>(v)];
      record.emplace_back(prefix.begin() + 1, prefix.end());
    }
    history.push_back(std::move(record));
    if (wrong_rows_at_step >= 0 && static_cast<int>(history.size()) == wrong_rows_at_step + 1)
      return out.topRows(out.rows() - 1);
    return out;
  }
  void reorder(const std::vector<std::int64_t>& parents) override {
    std::vector<Tokens> next;
    for (const std::int64_t p : parents) {
      if (p < 0 || p >= static_cast<std::int64_t>(slots_.size())) throw std::logic_error("reorder to a missing slot");
      next.push_back(slots_[static_cast<std::size_t>(p)]);
    }
    slots_ = std::move(next);
  }

  std::vector<std::vector<Tokens>> history;  // [step call][slot] → generated prefix of that row
  bool wrong_width = false;                  // step() returns one column too few
  int wrong_rows_at_step = -1;               // step() call (0-based) that returns one row too few
  int cancel_after = -1;                     // step() calls after which cancel_token is set
  CancelToken* cancel_token = nullptr;

 private:
  ToyModel model_;
  std::vector<Tokens> slots_;
};

double penalty(std::size_t length, double alpha) { return std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha); }

// A complete sequence of the reference searches.
struct Sequence {
  Tokens tokens;  // no EOS
  double log_prob = 0.0;
  double score = 0.0;
  bool finished = false;
};

// Every sequence the model can produce within max_length tokens: ended by EOS, or cut at
// max_length; best score first (no ties occur with continuous random logits).
std::vector<Sequence> enumerate_all(const ToyModel& model, int max_length, double alpha) {
  std::vector<Sequence> all;
  std::vector<std::pair<Tokens, double>> frontier{{Tokens{}, 0.0}};
  for (int t = 1; t <= max_length; ++t) {
    std::vector<std::pair<Tokens, double>> next;
    for (const auto& [prefix, lp] : frontier) {
      Tokens fed{model.bos};
      fed.insert(fed.end(), prefix.begin(), prefix.end());
      const std::vector<float> dist = model.log_probs(fed);
      for (std::int32_t v = 0; v < model.vocab; ++v) {
        const double total = lp + static_cast<double>(dist[static_cast<std::size_t>(v)]);
        if (v == model.eos) {
          all.push_back({prefix, total, total / penalty(prefix.size() + 1, alpha), true});
        } else {
          Tokens longer = prefix;
          longer.push_back(v);
          if (t == max_length)
            all.push_back({longer, total, total / penalty(longer.size(), alpha), false});
          else
            next.emplace_back(std::move(longer), total);
        }
      }
    }
    frontier = std::move(next);
  }
  std::stable_sort(all.begin(), all.end(), [](const Sequence& a, const Sequence& b) { return a.score > b.score; });
  return all;
}

// Beam search straight from its definition: every candidate scored and fully sorted (higher
// log-probability, then lower token, then lower slot), the top 2·beam taken, EOS within the top
// `beam` finished, the first `beam` others live; prefixes copied; no early stop: it runs until
// max_length or until nothing is live. Results: finished in the order found, then the cut ones,
// stably sorted by score, n_best kept.
std::vector<Sequence> naive_beam(const ToyModel& model, int beam, int max_length, double alpha, int n_best) {
  struct Hyp {
    Tokens tokens;
    double log_prob;
  };
  struct Cand {
    double log_prob;
    std::int32_t token;
    std::size_t slot;
  };
  std::vector<Hyp> live{{Tokens{}, 0.0}};
  std::vector<Sequence> found;
  for (int t = 1; t <= max_length && !live.empty(); ++t) {
    std::vector<Cand> cands;
    for (std::size_t s = 0; s < live.size(); ++s) {
      Tokens fed{model.bos};
      fed.insert(fed.end(), live[s].tokens.begin(), live[s].tokens.end());
      const std::vector<float> dist = model.log_probs(fed);
      for (std::int32_t v = 0; v < model.vocab; ++v)
        cands.push_back({live[s].log_prob + static_cast<double>(dist[static_cast<std::size_t>(v)]), v, s});
    }
    std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
      if (a.log_prob != b.log_prob) return a.log_prob > b.log_prob;
      if (a.token != b.token) return a.token < b.token;
      return a.slot < b.slot;
    });
    std::vector<Hyp> next;
    for (std::size_t r = 0; r < cands.size() && r < static_cast<std::size_t>(2 * beam); ++r) {
      const Cand& c = cands[r];
      if (c.token == model.eos) {
        if (r < static_cast<std::size_t>(beam))
          found.push_back({live[c.slot].tokens, c.log_prob, c.log_prob / penalty(live[c.slot].tokens.size() + 1, alpha),
                           true});
      } else if (next.size() < static_cast<std::size_t>(beam)) {
        Tokens longer = live[c.slot].tokens;
        longer.push_back(c.token);
        next.push_back({longer, c.log_prob});
      }
    }
    live = std::move(next);
  }
  for (const Hyp& h : live) found.push_back({h.tokens, h.log_prob, h.log_prob / penalty(h.tokens.size(), alpha), false});
  std::stable_sort(found.begin(), found.end(), [](const Sequence& a, const Sequence& b) { return a.score > b.score; });
  if (found.size() > static_cast<std::size_t>(n_best)) found.resize(static_cast<std::size_t>(n_best));
  return found;
}

SearchOptions options_for(const ToyModel& model, int beam, int max_length, float alpha, int n_best = 1) {
  SearchOptions o;
  o.beam = beam;
  o.length_penalty = alpha;
  o.max_length = max_length;
  o.bos = model.bos;
  o.eos = model.eos;
  o.n_best = n_best;
  return o;
}

QString describe(const Tokens& tokens) {
  QStringList parts;
  for (const std::int32_t t : tokens) parts << QString::number(t);
  return "[" + parts.join(' ') + "]";
}

// Expects the search's hypotheses to equal the reference sequences (tokens, finished, log_prob,
// score to 1e-12 relative).
void expect_same(const std::vector<Hypothesis>& got, const std::vector<Sequence>& want, const QString& what) {
  QVERIFY2(got.size() == want.size(),
           qPrintable(what + QString(": %1 hypotheses, expected %2").arg(got.size()).arg(want.size())));
  for (std::size_t i = 0; i < got.size(); ++i) {
    const QString at =
        what + QString(" #%1: got %2, expected %3").arg(i).arg(describe(got[i].tokens), describe(want[i].tokens));
    QVERIFY2(got[i].tokens == want[i].tokens, qPrintable(at));
    QVERIFY2(got[i].finished == want[i].finished, qPrintable(at + " (finished differs)"));
    QVERIFY2(std::abs(got[i].log_prob - want[i].log_prob) <= 1e-12 * std::max(1.0, std::abs(want[i].log_prob)),
             qPrintable(at + QString(" log_prob %1 vs %2").arg(got[i].log_prob).arg(want[i].log_prob)));
    QVERIFY2(std::abs(got[i].score - want[i].score) <= 1e-12 * std::max(1.0, std::abs(want[i].score)),
             qPrintable(at + QString(" score %1 vs %2").arg(got[i].score).arg(want[i].score)));
  }
}

// Whether `tokens` holds some n-gram twice (n ≥ 1).
bool repeats_an_ngram(const Tokens& tokens, int n) {
  const auto m = static_cast<std::size_t>(n);
  for (std::size_t i = 0; i + m <= tokens.size(); ++i)
    for (std::size_t j = i + 1; j + m <= tokens.size(); ++j)
      if (std::equal(tokens.begin() + static_cast<std::ptrdiff_t>(i), tokens.begin() + static_cast<std::ptrdiff_t>(i + m),
                     tokens.begin() + static_cast<std::ptrdiff_t>(j)))
        return true;
  return false;
}

// Greedy search with n-gram blocking straight from its definition: at every step the most likely
// token (lower id on ties) among those whose addition repeats no n-gram.
Tokens naive_blocked_greedy(const ToyModel& model, int max_length, int n, bool* finished) {
  Tokens generated;
  *finished = false;
  for (int t = 1; t <= max_length; ++t) {
    Tokens fed{model.bos};
    fed.insert(fed.end(), generated.begin(), generated.end());
    const std::vector<float> dist = model.log_probs(fed);
    std::int32_t best = -1;
    for (std::int32_t v = 0; v < model.vocab; ++v) {
      Tokens longer = generated;
      longer.push_back(v);
      if (repeats_an_ngram(longer, n)) continue;
      if (best < 0 || dist[static_cast<std::size_t>(v)] > dist[static_cast<std::size_t>(best)]) best = v;
    }
    if (best == model.eos) {
      *finished = true;
      break;
    }
    generated.push_back(best);
  }
  return generated;
}

// A decoder with a fixed table: probabilities of the next token after a generated prefix.
class TableDecoder : public IncrementalDecoder {
 public:
  TableDecoder(std::map<Tokens, std::vector<float>> table, std::vector<float> otherwise)
      : table_(std::move(table)), otherwise_(std::move(otherwise)) {}
  std::int32_t vocab_size() const override { return static_cast<std::int32_t>(otherwise_.size()); }
  void start(std::int64_t count) override { slots_.assign(static_cast<std::size_t>(count), Tokens{}); }
  RowMatrix step(const Tokens& tokens) override {
    RowMatrix out(static_cast<std::int64_t>(slots_.size()), vocab_size());
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      slots_[s].push_back(tokens[s]);
      const auto found = table_.find(Tokens(slots_[s].begin() + 1, slots_[s].end()));  // BOS dropped
      const std::vector<float>& p = found == table_.end() ? otherwise_ : found->second;
      for (std::size_t v = 0; v < p.size(); ++v)
        out(static_cast<std::int64_t>(s), static_cast<std::int64_t>(v)) = std::log(p[v]);
    }
    return out;
  }
  void reorder(const std::vector<std::int64_t>& parents) override {
    std::vector<Tokens> next;
    for (const std::int64_t p : parents) next.push_back(slots_[static_cast<std::size_t>(p)]);
    slots_ = std::move(next);
  }

 private:
  std::map<Tokens, std::vector<float>> table_;
  std::vector<float> otherwise_;
  std::vector<Tokens> slots_;  // tokens fed per slot, BOS first
};

}  // namespace

class TestSearch : public QObject {
  Q_OBJECT

 private slots:
  // Vocab 5, max_length up to 4: at the last step 64 live prefixes × 5 tokens = 320 candidates,
  // so beam 320 keeps or finishes every candidate and must find exactly what enumeration finds.
  // --no-repeat-ngram: greedy equals the definition above on long outputs (EOS made unlikely, so
  // the model would repeat), and a beam wide enough to keep every candidate finds exactly the
  // best sequences of the enumeration that repeat no n-gram.
  void no_repeat_ngram_blocks_exactly_the_repeating_tokens() {
    for (const int n : {1, 2, 3}) {
      for (std::uint64_t seed = 1; seed <= 8; ++seed) {
        ToyModel model;
        model.seed = seed;
        model.eos_bias = -3.0;
        bool finished = false;
        const Tokens want = naive_blocked_greedy(model, 12, n, &finished);
        PrefixDecoder greedy_decoder(model);
        SearchOptions o = options_for(model, 1, 12, 0.0f);
        o.no_repeat_ngram = n;
        const SearchResult g = greedy_search(greedy_decoder, o);
        const QString what = QString("n %1 seed %2").arg(n).arg(seed);
        QVERIFY2(g.hypotheses[0].tokens == want,
                 qPrintable(what + ": greedy " + describe(g.hypotheses[0].tokens) + ", expected " + describe(want)));
        QCOMPARE(g.hypotheses[0].finished, finished);
        QVERIFY(!repeats_an_ngram(g.hypotheses[0].tokens, n));

        model.eos_bias = 0.0;
        std::vector<Sequence> allowed;
        for (Sequence& q : enumerate_all(model, 4, 0.6f))
          if (!repeats_an_ngram(q.tokens, n)) allowed.push_back(std::move(q));
        const int n_best = std::min<int>(10, static_cast<int>(allowed.size()));
        PrefixDecoder beam_decoder(model);
        SearchOptions b = options_for(model, 320, 4, 0.6f, n_best);
        b.no_repeat_ngram = n;
        expect_same(beam_search(beam_decoder, b).hypotheses,
                    std::vector<Sequence>(allowed.begin(), allowed.begin() + n_best), what + " beam");
        if (QTest::currentTestFailed()) return;
      }
    }
    // Without blocking, the same greedy repeats (so the test above can tell blocking from none).
    ToyModel model;
    model.eos_bias = -3.0;
    PrefixDecoder decoder(model);
    QVERIFY(repeats_an_ngram(greedy_search(decoder, options_for(model, 1, 12, 0.0f)).hypotheses[0].tokens, 2));
    SearchOptions bad = options_for(model, 1, 12, 0.0f);
    bad.no_repeat_ngram = kMaxNoRepeatNgram + 1;
    const std::string message = test::error_message<ParamError>([&] { greedy_search(decoder, bad); });
    QVERIFY2(test::contains(message, "no_repeat_ngram=17"), message.c_str());
  }

  void wide_beam_equals_exhaustive_enumeration() {
    for (const float alpha : {0.0f, 0.6f}) {
      for (std::uint64_t seed = 1; seed <= 8; ++seed) {
        for (int max_length = 1; max_length <= 4; ++max_length) {
          ToyModel model;
          model.seed = seed;
          const std::vector<Sequence> all = enumerate_all(model, max_length, alpha);
          const int n_best = std::min<int>(10, static_cast<int>(all.size()));
          PrefixDecoder decoder(model);
          const SearchResult r = beam_search(decoder, options_for(model, 320, max_length, alpha, n_best));
          expect_same(r.hypotheses, std::vector<Sequence>(all.begin(), all.begin() + n_best),
                      QString("alpha %1 seed %2 max_length %3").arg(alpha).arg(seed).arg(max_length));
          if (QTest::currentTestFailed()) return;
        }
      }
    }
  }

  void narrow_beams_equal_a_naive_beam_search() {
    // eos_bias > 0 makes hypotheses finish early, so the early stop (beam finished, no live one
    // can still win) is taken often; with alpha > 0 its bound must use the penalty at max_length.
    struct Case {
      std::int32_t vocab;
      int beam, max_length, n_best;
      float alpha;
      bool tied;
      double eos_bias;
    };
    const std::vector<Case> cases = {
        {5, 1, 6, 1, 0.0f, false, 0.0},  {5, 2, 6, 2, 0.0f, false, 0.0},  {6, 3, 8, 3, 0.6f, false, 0.0},
        {7, 4, 9, 2, 1.2f, false, 0.0},  {40, 5, 7, 5, 0.6f, false, 0.0}, {40, 3, 10, 1, 0.0f, false, 0.0},
        {9, 4, 8, 4, 0.0f, true, 0.0},   {30, 6, 6, 6, 0.0f, true, 0.0},  {3, 8, 5, 8, 0.0f, false, 0.0},
        {6, 2, 12, 2, 0.0f, false, 2.0}, {6, 2, 12, 2, 1.0f, false, 2.0}, {6, 3, 14, 3, 2.0f, false, 2.5},
        {20, 4, 16, 4, 3.0f, false, 3.0}, {9, 2, 8, 2, 0.0f, true, 0.0},   {9, 1, 8, 1, 0.6f, true, 1.0},
        {12, 2, 8, 2, 1.0f, true, 1.0},
    };
    int early_stops = 0;
    for (const Case& c : cases) {
      for (std::uint64_t seed = 1; seed <= 12; ++seed) {
        ToyModel model;
        model.vocab = c.vocab;
        model.bos = c.vocab - 1;
        model.eos = 1;
        model.seed = seed * 977;
        model.tied = c.tied;
        model.eos_bias = c.eos_bias;
        PrefixDecoder decoder(model);
        const SearchResult r = beam_search(decoder, options_for(model, c.beam, c.max_length, c.alpha, c.n_best));
        expect_same(r.hypotheses, naive_beam(model, c.beam, c.max_length, c.alpha, c.n_best),
                    QString("vocab %1 beam %2 alpha %3 tied %4 eos_bias %5 seed %6")
                        .arg(c.vocab).arg(c.beam).arg(c.alpha).arg(c.tied).arg(c.eos_bias).arg(seed));
        if (QTest::currentTestFailed()) return;
        if (r.steps < c.max_length) ++early_stops;  // nothing live can only happen with vocab 1
      }
    }
    QVERIFY2(early_stops > 20, qPrintable(QString("only %1 searches stopped early").arg(early_stops)));
  }

  void beam_one_equals_greedy() {
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
      ToyModel model;
      model.vocab = 6;
      model.bos = 5;
      model.eos = static_cast<std::int32_t>(seed % 3);
      model.seed = seed;
      model.tied = seed % 4 == 0;
      const int max_length = 1 + static_cast<int>(seed % 12);
      PrefixDecoder greedy_decoder(model), beam_decoder(model);
      const SearchResult g = greedy_search(greedy_decoder, options_for(model, 1, max_length, 0.0f));
      const SearchResult b = beam_search(beam_decoder, options_for(model, 1, max_length, 0.0f));
      QCOMPARE(g.hypotheses.size(), std::size_t{1});
      QCOMPARE(b.hypotheses.size(), std::size_t{1});
      const Hypothesis& gh = g.hypotheses[0];
      const Hypothesis& bh = b.hypotheses[0];
      QCOMPARE(bh.tokens, gh.tokens);
      QCOMPARE(bh.log_prob, gh.log_prob);
      QCOMPARE(bh.steps_slots, gh.steps_slots);
      QCOMPARE(bh.token_log_probs, gh.token_log_probs);
      QCOMPARE(bh.finished, gh.finished);
      QCOMPARE(b.steps, g.steps);

      // Greedy against the argmax chain computed here (first maximum on ties).
      Tokens fed{model.bos}, chain;
      double lp = 0.0;
      bool ended = false;
      for (int t = 0; t < max_length && !ended; ++t) {
        const std::vector<float> dist = model.log_probs(fed);
        const auto best = static_cast<std::int32_t>(std::max_element(dist.begin(), dist.end()) - dist.begin());
        lp += dist[static_cast<std::size_t>(best)];
        ended = best == model.eos;
        if (!ended) chain.push_back(best);
        fed.push_back(best);
      }
      QCOMPARE(gh.tokens, chain);
      QCOMPARE(gh.finished, ended);
      QVERIFY(std::abs(gh.log_prob - lp) <= 1e-12 * std::max(1.0, std::abs(lp)));
      QCOMPARE(gh.steps_slots, std::vector<std::int64_t>(gh.token_log_probs.size(), 0));

      // With a length penalty, beam 1 may go past greedy's EOS, but never ends worse.
      PrefixDecoder greedy_alpha(model), beam_alpha(model);
      const SearchResult ga = greedy_search(greedy_alpha, options_for(model, 1, max_length, 0.6f));
      const SearchResult ba = beam_search(beam_alpha, options_for(model, 1, max_length, 0.6f));
      QCOMPARE(ga.hypotheses[0].tokens, gh.tokens);
      const double greedy_score = lp / penalty(gh.token_log_probs.size(), static_cast<double>(0.6f));
      QVERIFY(std::abs(ga.hypotheses[0].score - greedy_score) <= 1e-12 * std::abs(lp) + 1e-15);
      QVERIFY(ba.hypotheses[0].score >= ga.hypotheses[0].score - 1e-12);
    }
  }

  // Tokens: 0 EOS, 1 "a", 2 "b", 3 BOS (never generated: probability 0, log −∞).
  //   after BOS:   EOS 0.1, a 0.5, b 0.4
  //   after a:     EOS 0.4, a 0.3, b 0.3
  //   after b:     EOS 0.9, a 0.05, b 0.05
  //   otherwise:   EOS 0.98, a 0.01, b 0.01
  // Greedy takes a (0.5), then EOS (0.4): P = 0.2. Beam 2 keeps a and b, then finishes
  // b EOS = 0.4 · 0.9 = 0.36 and a EOS = 0.2 at step 2; a a and a b (0.15 each) cannot beat 0.2,
  // so it stops after 2 steps with [b] first and [a] second.
  void beam_two_beats_greedy_on_a_hand_built_model() {
    const std::map<Tokens, std::vector<float>> table = {
        {Tokens{}, {0.1f, 0.5f, 0.4f, 0.0f}},
        {Tokens{1}, {0.4f, 0.3f, 0.3f, 0.0f}},
        {Tokens{2}, {0.9f, 0.05f, 0.05f, 0.0f}},
    };
    const std::vector<float> otherwise = {0.98f, 0.01f, 0.01f, 0.0f};
    SearchOptions o;
    o.bos = 3;
    o.eos = 0;
    o.max_length = 5;

    TableDecoder greedy_decoder(table, otherwise);
    const SearchResult g = greedy_search(greedy_decoder, o);
    QCOMPARE(g.hypotheses[0].tokens, (Tokens{1}));
    QVERIFY(g.hypotheses[0].finished);
    QVERIFY(std::abs(g.hypotheses[0].log_prob - std::log(0.2)) < 1e-6);

    o.beam = 2;
    o.n_best = 2;
    TableDecoder beam_decoder(table, otherwise);
    const SearchResult b = beam_search(beam_decoder, o);
    QCOMPARE(b.hypotheses.size(), std::size_t{2});
    QCOMPARE(b.hypotheses[0].tokens, (Tokens{2}));
    QVERIFY(b.hypotheses[0].finished);
    QVERIFY(std::abs(b.hypotheses[0].log_prob - std::log(0.36)) < 1e-6);
    QCOMPARE(b.hypotheses[0].steps_slots, (std::vector<std::int64_t>{0, 1}));  // b was slot 1 of step 2
    QCOMPARE(b.hypotheses[1].tokens, (Tokens{1}));
    QVERIFY(std::abs(b.hypotheses[1].log_prob - std::log(0.2)) < 1e-6);
    QCOMPARE(b.steps, 2);
  }

  // Every token equally likely (vocab 6, EOS 0, BOS 5), beam 2, alpha 2, max_length 3: all
  // candidates of a step tie, so ranks follow token id, then slot.
  //   step 1 (one slot): EOS, 1, 2, 3 → EOS finishes [], [1] and [2] stay, 3 is pruned.
  //   step 2: EOS from [1], EOS from [2], 1 from [1], 1 from [2] → [1] and [2] finish,
  //           [1 1] and [2 1] stay; 2 finished but a live one may still win: 2c/pen(3) > 2c/pen(2).
  //   step 3 = max_length: [1 1] and [2 1] finish, [1 1 1] and [2 1 1] are cut.
  // Scores (c = log 1/6, pen(n) = ((5 + n)/6)^2): [] c, [1] and [2] 2c/pen(2), the rest
  // 3c/pen(3); best: [] then [1] (found before [2]).
  void ties_go_to_the_lower_token_then_the_lower_slot() {
    ToyModel model;
    model.vocab = 6;
    model.eos = 0;
    model.bos = 5;
    model.uniform = true;
    PrefixDecoder decoder(model);
    const SearchResult r = beam_search(decoder, options_for(model, 2, 3, 2.0f, 2));
    QCOMPARE(r.steps, 3);
    QCOMPARE(r.hypotheses.size(), std::size_t{2});
    QCOMPARE(r.hypotheses[0].tokens, Tokens{});
    QVERIFY(r.hypotheses[0].finished);
    QCOMPARE(r.hypotheses[1].tokens, (Tokens{1}));
    const double c = static_cast<double>(std::log(1.0f / 6.0f));
    QVERIFY(std::abs(r.hypotheses[1].score - 2 * c / std::pow(7.0 / 6.0, 2.0)) < 1e-5);
    // The tree, step by step: (token, parent's token path, finished, kept).
    struct Expected {
      int step;
      Tokens path;  // tokens from the root to this node
      bool finished, kept;
    };
    const std::vector<Expected> expected = {
        {1, {0}, true, false},       {1, {1}, false, true},       {1, {2}, false, true},       {1, {3}, false, false},
        {2, {1, 0}, true, false},    {2, {2, 0}, true, false},    {2, {1, 1}, false, true},    {2, {2, 1}, false, true},
        {3, {1, 1, 0}, true, false}, {3, {2, 1, 0}, true, false}, {3, {1, 1, 1}, false, true}, {3, {2, 1, 1}, false, true},
    };
    QCOMPARE(r.tree.size(), expected.size() + 1);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const BeamNode& n = r.tree[i + 1];
      Tokens path;
      for (std::int64_t a = static_cast<std::int64_t>(i + 1); a > 0; a = r.tree[static_cast<std::size_t>(a)].parent)
        path.insert(path.begin(), r.tree[static_cast<std::size_t>(a)].token);
      QVERIFY2(path == expected[i].path, qPrintable(QString("node %1 is %2").arg(i + 1).arg(describe(path))));
      QCOMPARE(n.step, expected[i].step);
      QCOMPARE(n.finished, expected[i].finished);
      QCOMPARE(n.kept, expected[i].kept);
    }
  }

  // Token 1 gets a NaN log-probability everywhere; EOS 0.2, token 2 0.8; max_length 3. Greedy:
  // [2 2 2] (cut, P = 0.512). Beam 2 (n_best 2): the results are [2 2 2] (log 0.512), then []
  // (finished at once, log 0.2) ahead of [2] EOS (0.16) and [2 2] EOS (0.128); token 1 may fill
  // an empty beam place but only with log-probability −∞.
  void nan_log_probabilities_count_as_impossible() {
    const std::vector<float> otherwise = {0.2f, std::nanf(""), 0.8f, 0.0f};
    SearchOptions o;
    o.bos = 3;
    o.eos = 0;
    o.max_length = 3;
    TableDecoder greedy_decoder({}, otherwise);
    const SearchResult g = greedy_search(greedy_decoder, o);
    QCOMPARE(g.hypotheses[0].tokens, (Tokens{2, 2, 2}));
    QVERIFY(!g.hypotheses[0].finished);
    o.beam = 2;
    o.n_best = 2;
    TableDecoder beam_decoder({}, otherwise);
    const SearchResult b = beam_search(beam_decoder, o);
    QCOMPARE(b.hypotheses.size(), std::size_t{2});
    QCOMPARE(b.hypotheses[0].tokens, (Tokens{2, 2, 2}));
    QVERIFY(std::abs(b.hypotheses[0].log_prob - std::log(0.512)) < 1e-6);
    QCOMPARE(b.hypotheses[1].tokens, Tokens{});
    QVERIFY(b.hypotheses[1].finished);
    QVERIFY(std::abs(b.hypotheses[1].log_prob - std::log(0.2)) < 1e-6);
    for (const BeamNode& n : b.tree) {
      QVERIFY(!std::isnan(n.log_prob) && !std::isnan(n.score));
      if (n.token == 1) QVERIFY(std::isinf(n.log_prob) && n.log_prob < 0);
    }
  }

  void steps_slots_point_at_the_hypothesis_rows() {
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
      ToyModel model;
      model.vocab = 7;
      model.bos = 6;
      model.eos = 2;
      model.seed = seed * 31;
      PrefixDecoder decoder(model);
      const SearchResult r = beam_search(decoder, options_for(model, 4, 10, 0.6f, 4));
      QCOMPARE(static_cast<int>(decoder.history.size()), r.steps);
      for (const Hypothesis& h : r.hypotheses) {
        QCOMPARE(h.steps_slots.size(), h.token_log_probs.size());
        QCOMPARE(h.token_log_probs.size(), h.tokens.size() + (h.finished ? 1 : 0));
        for (std::size_t t = 0; t < h.steps_slots.size(); ++t) {
          const std::vector<Tokens>& rows = decoder.history[t];
          const std::int64_t slot = h.steps_slots[t];
          QVERIFY(slot >= 0 && slot < static_cast<std::int64_t>(rows.size()));
          const Tokens prefix(h.tokens.begin(), h.tokens.begin() + static_cast<std::ptrdiff_t>(t));
          QCOMPARE(rows[static_cast<std::size_t>(slot)], prefix);
          // The token's log-probability is that row's entry for it.
          Tokens fed{model.bos};
          fed.insert(fed.end(), prefix.begin(), prefix.end());
          const std::int32_t token = t < h.tokens.size() ? h.tokens[t] : model.eos;
          QCOMPARE(h.token_log_probs[t], model.log_probs(fed)[static_cast<std::size_t>(token)]);
        }
      }
    }
  }

  void tree_is_well_formed_and_holds_the_best_path() {
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
      ToyModel model;
      model.vocab = 12;
      model.bos = 11;
      model.eos = 3;
      model.seed = seed * 7;
      const int beam = 3;
      PrefixDecoder decoder(model);
      const SearchResult r = beam_search(decoder, options_for(model, beam, 9, 0.0f, 3));
      const std::vector<BeamNode>& tree = r.tree;
      QVERIFY(!tree.empty());
      QCOMPARE(tree[0].parent, std::int64_t{-1});
      QCOMPARE(tree[0].step, 0);
      QCOMPARE(tree[0].token, model.bos);
      std::vector<int> kept_per_step(static_cast<std::size_t>(r.steps + 1), 0);
      std::vector<int> nodes_per_step(static_cast<std::size_t>(r.steps + 1), 0);
      for (std::size_t i = 1; i < tree.size(); ++i) {
        const BeamNode& n = tree[i];
        QVERIFY(n.parent >= 0 && n.parent < static_cast<std::int64_t>(i));
        const BeamNode& p = tree[static_cast<std::size_t>(n.parent)];
        QCOMPARE(p.step, n.step - 1);
        QVERIFY(p.kept);  // only beam members have children
        QVERIFY(!(n.kept && n.finished));
        if (n.finished) QCOMPARE(n.token, model.eos);
        if (n.kept) QVERIFY(n.token != model.eos);
        // Cumulative log-probability: the parent's plus the model's value for this token.
        Tokens fed{model.bos};
        for (std::int64_t a = n.parent; a > 0; a = tree[static_cast<std::size_t>(a)].parent)
          fed.insert(fed.begin() + 1, tree[static_cast<std::size_t>(a)].token);
        const double expected = p.log_prob + static_cast<double>(model.log_probs(fed)[static_cast<std::size_t>(n.token)]);
        QVERIFY(std::abs(n.log_prob - expected) <= 1e-12 * std::max(1.0, std::abs(expected)));
        QVERIFY(n.step >= 1 && n.step <= r.steps);
        kept_per_step[static_cast<std::size_t>(n.step)] += n.kept ? 1 : 0;
        nodes_per_step[static_cast<std::size_t>(n.step)] += 1;
      }
      for (int t = 1; t <= r.steps; ++t) {
        QVERIFY(kept_per_step[static_cast<std::size_t>(t)] <= beam);
        QVERIFY(nodes_per_step[static_cast<std::size_t>(t)] <= 2 * beam);
      }
      // Every hypothesis ends at a node whose path spells it.
      for (const Hypothesis& h : r.hypotheses) {
        Tokens spelled = h.tokens;
        if (h.finished) spelled.push_back(model.eos);
        bool found = false;
        for (std::size_t i = 1; i < tree.size() && !found; ++i) {
          if (tree[i].step != static_cast<int>(spelled.size()) || tree[i].finished != h.finished) continue;
          Tokens path;
          for (std::int64_t a = static_cast<std::int64_t>(i); a > 0; a = tree[static_cast<std::size_t>(a)].parent)
            path.insert(path.begin(), tree[static_cast<std::size_t>(a)].token);
          found = path == spelled && tree[i].log_prob == h.log_prob && tree[i].score == h.score;
        }
        QVERIFY2(found, qPrintable("no tree node for " + describe(spelled)));
      }
    }
    // Greedy lists its path only: root, then one node per step.
    ToyModel model;
    PrefixDecoder decoder(model);
    const SearchResult g = greedy_search(decoder, options_for(model, 1, 6, 0.0f));
    QCOMPARE(static_cast<int>(g.tree.size()), g.steps + 1);
    for (std::size_t i = 1; i < g.tree.size(); ++i) QCOMPARE(g.tree[i].parent, static_cast<std::int64_t>(i - 1));
  }

  void a_vocab_of_only_eos_finishes_at_once() {
    ToyModel model;
    model.vocab = 1;
    model.bos = 0;
    model.eos = 0;
    PrefixDecoder decoder(model);
    const SearchResult r = beam_search(decoder, options_for(model, 3, 5, 0.0f));
    QCOMPARE(r.steps, 1);
    QCOMPARE(r.hypotheses.size(), std::size_t{1});
    QVERIFY(r.hypotheses[0].tokens.empty());
    QVERIFY(r.hypotheses[0].finished);
    QCOMPARE(r.hypotheses[0].log_prob, 0.0);
  }

  void bad_options_are_refused() {
    ToyModel model;  // vocab 5
    PrefixDecoder decoder(model);
    const auto refused = [&](SearchOptions o, const std::string& part, bool greedy = false) {
      const std::string message = test::error_message<ParamError>([&] {
        if (greedy)
          greedy_search(decoder, o);
        else
          beam_search(decoder, o);
      });
      QVERIFY2(test::contains(message, part), ("message '" + message + "' lacks '" + part + "'").c_str());
      QVERIFY2(message.find('\n') == std::string::npos, message.c_str());
    };
    const SearchOptions good = options_for(model, 2, 5, 0.0f);
    SearchOptions o = good;
    o.beam = 0;
    refused(o, "beam=0");
    o.beam = kMaxBeam + 1;
    refused(o, "beam=" + std::to_string(kMaxBeam + 1));
    o = good;
    o.n_best = 3;
    refused(o, "n_best=3");
    o.n_best = 0;
    refused(o, "n_best=0");
    o = good;
    o.max_length = 0;
    refused(o, "max_length=0");
    o = good;
    o.eos = 5;
    refused(o, "eos=5");
    o.eos = -1;
    refused(o, "eos=-1");
    o = good;
    o.bos = 7;
    refused(o, "bos=7");
    o = good;
    o.length_penalty = -0.5f;
    refused(o, "length_penalty");
    o.length_penalty = std::nanf("");
    refused(o, "length_penalty");
    refused(good, "beam=2", true);
    o = good;
    o.max_length = 0;
    o.beam = 1;
    o.n_best = 1;
    refused(o, "max_length=0", true);
    QVERIFY(decoder.history.empty());  // nothing was decoded
  }

  void a_wrong_step_shape_is_a_shape_error() {
    ToyModel model;  // vocab 5
    for (const bool greedy : {false, true}) {
      PrefixDecoder decoder(model);
      decoder.wrong_width = true;
      const std::string message = test::error_message<ShapeError>([&] {
        if (greedy)
          greedy_search(decoder, options_for(model, 1, 5, 0.0f));
        else
          beam_search(decoder, options_for(model, 3, 5, 0.0f));
      });
      QVERIFY2(test::contains(message, "[1, 4]") && test::contains(message, "[1, 5]"), message.c_str());
      QVERIFY(message.find('\n') == std::string::npos);
    }
    // The second step has three live slots; the decoder returns two rows.
    PrefixDecoder decoder(model);
    decoder.wrong_rows_at_step = 1;
    const std::string message =
        test::error_message<ShapeError>([&] { beam_search(decoder, options_for(model, 3, 5, 0.0f)); });
    QVERIFY2(test::contains(message, "[2, 5]") && test::contains(message, "[3, 5]"), message.c_str());
  }

  void cancel_stops_between_steps() {
    ToyModel model;
    model.eos = 0;
    for (const bool greedy : {false, true}) {
      const SearchOptions base = options_for(model, greedy ? 1 : 3, 30, 0.0f);
      // Set before the search: no step at all.
      CancelToken already;
      already.cancel();
      PrefixDecoder idle(model);
      SearchOptions o = base;
      o.cancel = &already;
      EXPECT_ERROR(CancelledError, greedy ? greedy_search(idle, o) : beam_search(idle, o), "cancelled");
      QVERIFY(idle.history.empty());
      // Set during the third step() call: that step completes, the fourth never starts. Seeds
      // whose search would end before four steps do not show it, so look for one that runs on.
      bool seen = false;
      for (std::uint64_t seed = 1; seed <= 40 && !seen; ++seed) {
        model.seed = seed;
        PrefixDecoder probe(model);
        const SearchResult full = greedy ? greedy_search(probe, base) : beam_search(probe, base);
        if (full.steps < 4) continue;
        CancelToken token;
        PrefixDecoder decoder(model);
        decoder.cancel_token = &token;
        decoder.cancel_after = 2;
        o = base;
        o.cancel = &token;
        EXPECT_ERROR(CancelledError, greedy ? greedy_search(decoder, o) : beam_search(decoder, o), "cancelled");
        QCOMPARE(decoder.history.size(), std::size_t{3});
        seen = true;
      }
      QVERIFY2(seen, "no seed decodes four steps");
    }
  }
};

QTEST_APPLESS_MAIN(TestSearch)
#include "test_search.moc"
