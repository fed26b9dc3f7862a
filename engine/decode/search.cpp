// Greedy and beam search over an IncrementalDecoder (see search.h for the rules).
//
// Hypotheses are not copied from step to step: each one is a node of the beam tree, and the
// tokens, per-token log-probabilities and step() rows of a result are read back along its
// parent links at the end. Per node, beside the public BeamNode, the search keeps the token's
// own log-probability and the step() row it came from.
#include "decode/search.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "core/error.h"

namespace attnlab {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// A (live slot, next token) pair; `log_prob` is the slot's cumulative log-probability plus the
// token's.
struct Candidate {
  double log_prob;
  std::int32_t token;
  std::int64_t slot;
};

// Higher log-probability first; ties: lower token id, then lower slot.
bool better(const Candidate& a, const Candidate& b) {
  if (a.log_prob != b.log_prob) return a.log_prob > b.log_prob;
  if (a.token != b.token) return a.token < b.token;
  return a.slot < b.slot;
}

// A NaN from the model counts as impossible, so the ordering stays a strict weak ordering.
double sanitized(double log_prob) { return std::isnan(log_prob) ? kNegInf : log_prob; }

// A float below which a token's log-probability x cannot give base + x ≥ worst in double
// arithmetic: worst − base lowered by far more than the rounding of the sums, then rounded down
// to a float. Entries under it are skipped with one float comparison (a NaN fails it too).
float cutoff_for(double worst, double base) {
  const double gap = worst - base;
  if (std::isnan(gap) || gap == kNegInf) return -std::numeric_limits<float>::infinity();
  if (gap == -kNegInf) return std::numeric_limits<float>::infinity();  // base −∞: nothing reaches `worst`
  const double lowered = gap - 1e-9 * (1.0 + std::abs(worst) + std::abs(base));
  if (lowered >= static_cast<double>(std::numeric_limits<float>::max())) return std::numeric_limits<float>::infinity();
  if (lowered <= -static_cast<double>(std::numeric_limits<float>::max()))
    return -std::numeric_limits<float>::infinity();
  return std::nextafter(static_cast<float>(lowered), -std::numeric_limits<float>::infinity());
}

// The best `k` candidates over all rows of `log_probs` [slots, vocab], row s extending a
// hypothesis of log-probability bases[s]; `best` is filled best first. One heap of size k (worst
// on top) for all rows: after it fills, an entry is looked at closely only when it passes the
// float cutoff, and blocks of entries that all fail it are skipped with one vectorisable test.
void select_best(const RowMatrix& log_probs, const double* bases, std::size_t k, std::vector<Candidate>& best) {
  constexpr std::int32_t kBlock = 16;
  const auto vocab = static_cast<std::int32_t>(log_probs.cols());
  best.clear();
  for (std::int64_t s = 0; s < log_probs.rows(); ++s) {
    const double base = bases[s];
    const float* row = log_probs.data() + s * vocab;
    std::int32_t v = 0;
    for (; v < vocab && best.size() < k; ++v) {
      best.push_back(Candidate{sanitized(base + static_cast<double>(row[v])), v, s});
      std::push_heap(best.begin(), best.end(), better);
    }
    if (v == vocab) continue;
    float cutoff = cutoff_for(best.front().log_prob, base);
    const auto offer = [&](std::int32_t token) {
      if (!(row[token] >= cutoff)) return;
      const Candidate c{sanitized(base + static_cast<double>(row[token])), token, s};
      if (!better(c, best.front())) return;
      std::pop_heap(best.begin(), best.end(), better);
      best.back() = c;
      std::push_heap(best.begin(), best.end(), better);
      cutoff = cutoff_for(best.front().log_prob, base);
    };
    for (; v + kBlock <= vocab; v += kBlock) {
      bool any = false;
      for (std::int32_t i = 0; i < kBlock; ++i) any |= row[v + i] >= cutoff;
      if (!any) continue;
      for (std::int32_t i = 0; i < kBlock; ++i) offer(v + i);
    }
    for (; v < vocab; ++v) offer(v);
  }
  std::sort_heap(best.begin(), best.end(), better);
}

void validate(const SearchOptions& o, std::int32_t vocab) {
  if (o.beam < 1 || o.beam > kMaxBeam)
    throw ParamError("beam=" + std::to_string(o.beam) + ": allowed 1.." + std::to_string(kMaxBeam));
  if (o.n_best < 1 || o.n_best > o.beam)
    throw ParamError("n_best=" + std::to_string(o.n_best) + ": allowed 1..beam (" + std::to_string(o.beam) + ")");
  if (o.max_length < 1) throw ParamError("max_length=" + std::to_string(o.max_length) + ": must be at least 1");
  if (!std::isfinite(o.length_penalty) || o.length_penalty < 0.0f)
    throw ParamError("length_penalty=" + std::to_string(o.length_penalty) + ": must be a finite number >= 0");
  if (o.no_repeat_ngram < 0 || o.no_repeat_ngram > kMaxNoRepeatNgram)
    throw ParamError("no_repeat_ngram=" + std::to_string(o.no_repeat_ngram) + ": allowed 0.." +
                     std::to_string(kMaxNoRepeatNgram) + " (0 = off)");
  if (vocab < 1) throw ParamError("decoder vocab_size=" + std::to_string(vocab) + ": must be at least 1");
  if (o.eos < 0 || o.eos >= vocab)
    throw ParamError("eos=" + std::to_string(o.eos) + ": allowed 0.." + std::to_string(vocab - 1) + " (vocab " +
                     std::to_string(vocab) + ")");
  if (o.bos < 0 || o.bos >= vocab)
    throw ParamError("bos=" + std::to_string(o.bos) + ": allowed 0.." + std::to_string(vocab - 1) + " (vocab " +
                     std::to_string(vocab) + ")");
}

void check_step_shape(const RowMatrix& log_probs, std::int64_t slot_count, std::int32_t vocab) {
  if (log_probs.rows() != slot_count || log_probs.cols() != vocab)
    throw ShapeError("decoder step() returned log-probabilities of shape " +
                     shape_to_string({log_probs.rows(), log_probs.cols()}) + "; expected " +
                     shape_to_string({slot_count, vocab}) + " (live slots, vocab)");
}

// The beam tree and, per node, what results are rebuilt from.
class Tree {
 public:
  explicit Tree(std::int32_t bos) {
    nodes_.push_back(BeamNode{0, bos, -1, 0.0, 0.0, false, true});
    token_log_probs_.push_back(0.0f);
    rows_.push_back(-1);
  }

  std::int64_t add(const BeamNode& node, float token_log_prob, std::int64_t row) {
    nodes_.push_back(node);
    token_log_probs_.push_back(token_log_prob);
    rows_.push_back(row);
    return static_cast<std::int64_t>(nodes_.size()) - 1;
  }

  const BeamNode& operator[](std::int64_t i) const { return nodes_[static_cast<std::size_t>(i)]; }

  // The hypothesis ending at node `leaf` (a finished EOS node or a live node cut at max_length).
  Hypothesis hypothesis(std::int64_t leaf) const {
    const BeamNode& end = (*this)[leaf];
    Hypothesis h;
    h.finished = end.finished;
    h.log_prob = end.log_prob;
    h.score = end.score;
    const auto length = static_cast<std::size_t>(end.step);
    h.token_log_probs.resize(length);
    h.steps_slots.resize(length);
    h.tokens.resize(length);
    for (std::int64_t n = leaf; nodes_[static_cast<std::size_t>(n)].parent >= 0;) {
      const auto i = static_cast<std::size_t>(n);
      const auto t = static_cast<std::size_t>(nodes_[i].step - 1);
      h.tokens[t] = nodes_[i].token;
      h.token_log_probs[t] = token_log_probs_[i];
      h.steps_slots[t] = rows_[i];
      n = nodes_[i].parent;
    }
    if (h.finished) h.tokens.pop_back();  // the EOS
    return h;
  }

  std::vector<BeamNode> take_nodes() { return std::move(nodes_); }

 private:
  std::vector<BeamNode> nodes_;
  std::vector<float> token_log_probs_;
  std::vector<std::int64_t> rows_;
};

// Results in the order they were found, sorted best score first (stable, so equal scores keep
// that order), cut to n_best.
std::vector<Hypothesis> ranked(const Tree& tree, const std::vector<std::int64_t>& leaves, int n_best) {
  std::vector<std::int64_t> order = leaves;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return tree[a].score > tree[b].score; });
  if (order.size() > static_cast<std::size_t>(n_best)) order.resize(static_cast<std::size_t>(n_best));
  std::vector<Hypothesis> out;
  out.reserve(order.size());
  for (const std::int64_t leaf : order) out.push_back(tree.hypothesis(leaf));
  return out;
}

// n-gram blocking: in row `slot`, every token that would complete an n-gram already in the
// generated tokens of the hypothesis ending at tree node `node` gets −∞. O(t·n) per row.
void block_repeated_ngrams(RowMatrix& log_probs, std::int64_t slot, const Tree& tree, std::int64_t node, int n,
                           std::vector<std::int32_t>& scratch) {
  scratch.clear();
  for (std::int64_t k = node; tree[k].parent >= 0; k = tree[k].parent) scratch.push_back(tree[k].token);
  std::reverse(scratch.begin(), scratch.end());  // generated tokens in order, BOS excluded
  const auto m = static_cast<std::size_t>(n - 1);  // the new token's context
  if (scratch.size() < m) return;
  const auto tail = scratch.end() - static_cast<std::ptrdiff_t>(m);
  for (std::size_t i = 0; i + m < scratch.size(); ++i) {
    if (std::equal(tail, scratch.end(), scratch.begin() + static_cast<std::ptrdiff_t>(i)))
      log_probs(slot, scratch[i + m]) = -std::numeric_limits<float>::infinity();
  }
}

// A live hypothesis: its tree node and cumulative log-probability (slot = index in the beam).
struct Live {
  std::int64_t node;
  double log_prob;
};

}  // namespace

double length_penalty_factor(int length, double alpha) {
  if (alpha == 0.0) return 1.0;
  return std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

SearchResult greedy_search(IncrementalDecoder& decoder, const SearchOptions& options) {
  const std::int32_t vocab = decoder.vocab_size();
  validate(options, vocab);
  if (options.beam != 1)
    throw ParamError("greedy search takes beam=1, got beam=" + std::to_string(options.beam) + "; use beam search");
  const double alpha = options.length_penalty;

  Tree tree(options.bos);
  SearchResult result;
  std::int64_t node = 0;
  double log_prob = 0.0;
  std::vector<std::int32_t> feed{options.bos};
  std::vector<Candidate> best;
  std::vector<std::int32_t> scratch;
  best.reserve(1);
  decoder.start(1);
  for (int t = 1; t <= options.max_length; ++t) {
    check_cancelled(options.cancel);
    RowMatrix log_probs = decoder.step(feed);
    result.steps = t;
    check_step_shape(log_probs, 1, vocab);
    if (options.no_repeat_ngram > 0) block_repeated_ngrams(log_probs, 0, tree, node, options.no_repeat_ngram, scratch);
    // The same selection as beam search's, with k = 1: ties go to the lower token id.
    select_best(log_probs, &log_prob, 1, best);
    const std::int32_t best_token = best[0].token;
    log_prob = best[0].log_prob;
    const bool finished = best_token == options.eos;
    node = tree.add(BeamNode{t, best_token, node, log_prob, log_prob / length_penalty_factor(t, alpha), finished,
                             !finished},
                    static_cast<float>(sanitized(static_cast<double>(log_probs(0, best_token)))), 0);
    if (finished) break;
    feed[0] = best_token;
  }
  result.hypotheses.push_back(tree.hypothesis(node));
  result.tree = tree.take_nodes();
  return result;
}

SearchResult beam_search(IncrementalDecoder& decoder, const SearchOptions& options) {
  const std::int32_t vocab = decoder.vocab_size();
  validate(options, vocab);
  const int beam = options.beam;
  const double alpha = options.length_penalty;
  // The most any continuation of a live hypothesis can score, per unit of its log-probability
  // (which is ≤ 0): the longest length has the largest penalty factor.
  const double best_continuation_factor = 1.0 / length_penalty_factor(options.max_length, alpha);

  Tree tree(options.bos);
  SearchResult result;
  std::vector<Live> live{Live{0, 0.0}};
  std::vector<Live> next_live;
  std::vector<std::int64_t> leaves;         // finished results in the order found, then the cut ones
  std::vector<double> best_finished;        // the best `beam` finished scores, best first
  std::vector<std::int32_t> feed{options.bos};
  std::vector<std::int64_t> parents;
  std::vector<double> bases;                // the live log-probabilities, by slot
  std::vector<Candidate> pool;              // the step's best 2·beam candidates, best first
  std::vector<std::int32_t> scratch;        // a hypothesis's tokens, for n-gram blocking
  const auto per_step = static_cast<std::size_t>(2 * beam);
  bases.reserve(static_cast<std::size_t>(beam));
  pool.reserve(per_step);
  next_live.reserve(static_cast<std::size_t>(beam));
  parents.reserve(static_cast<std::size_t>(beam));

  decoder.start(1);
  for (int t = 1; t <= options.max_length; ++t) {
    check_cancelled(options.cancel);
    const auto slot_count = static_cast<std::int64_t>(live.size());
    RowMatrix log_probs = decoder.step(feed);
    result.steps = t;
    check_step_shape(log_probs, slot_count, vocab);
    if (options.no_repeat_ngram > 0) {
      for (std::size_t i = 0; i < live.size(); ++i)
        block_repeated_ngrams(log_probs, static_cast<std::int64_t>(i), tree, live[i].node, options.no_repeat_ngram, scratch);
    }

    bases.resize(live.size());
    for (std::size_t i = 0; i < live.size(); ++i) bases[i] = live[i].log_prob;
    select_best(log_probs, bases.data(), per_step, pool);
    const std::size_t taken = pool.size();

    const double factor = 1.0 / length_penalty_factor(t, alpha);
    next_live.clear();
    parents.clear();
    for (std::size_t rank = 0; rank < taken; ++rank) {
      const Candidate& c = pool[rank];
      const std::int64_t parent = live[static_cast<std::size_t>(c.slot)].node;
      const auto token_log_prob = static_cast<float>(sanitized(static_cast<double>(log_probs(c.slot, c.token))));
      const double score = c.log_prob * factor;
      if (c.token == options.eos && rank < static_cast<std::size_t>(beam)) {
        leaves.push_back(tree.add(BeamNode{t, c.token, parent, c.log_prob, score, true, false}, token_log_prob, c.slot));
        best_finished.insert(std::upper_bound(best_finished.begin(), best_finished.end(), score, std::greater<>()),
                             score);
        if (best_finished.size() > static_cast<std::size_t>(beam)) best_finished.pop_back();
      } else if (c.token != options.eos && next_live.size() < static_cast<std::size_t>(beam)) {
        next_live.push_back(Live{tree.add(BeamNode{t, c.token, parent, c.log_prob, score, false, true}, token_log_prob,
                                          c.slot),
                                 c.log_prob});
        parents.push_back(c.slot);
      } else {
        tree.add(BeamNode{t, c.token, parent, c.log_prob, score, false, false}, token_log_prob, c.slot);
      }
    }
    live.swap(next_live);
    if (live.empty()) break;
    if (t == options.max_length) {
      for (const Live& l : live) leaves.push_back(l.node);
      break;
    }
    // live[0] has the highest log-probability of the beam.
    if (best_finished.size() == static_cast<std::size_t>(beam) &&
        live.front().log_prob * best_continuation_factor <= best_finished.back())
      break;
    decoder.reorder(parents);
    feed.resize(live.size());
    for (std::size_t i = 0; i < live.size(); ++i) feed[i] = tree[live[i].node].token;
  }
  result.hypotheses = ranked(tree, leaves, options.n_best);
  result.tree = tree.take_nodes();
  return result;
}

}  // namespace attnlab
