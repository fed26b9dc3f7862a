// Greedy and beam search over a model that decodes one token at a time with a cache per
// hypothesis (an encoder–decoder with its KV cache, or a causal language model).
//
// The model is an IncrementalDecoder: it holds `slots` hypotheses; step(tokens) feeds one token
// per slot and returns the next-token log-probabilities [slots, vocab]; reorder(parents) makes
// new slot i a copy of old slot parents[i]. The search never sees the model's cache.
//
// Beam search (fairseq style): at every step the candidates are (live hypothesis, next token)
// pairs scored by cumulative log-probability; the top 2·beam are taken best first (ties: lower
// token id, then lower slot). A candidate ending in EOS finishes when it ranks within the top
// `beam`; the best `beam` candidates not ending in EOS stay live (the decoder is reordered to
// their parents). Scores use the GNMT length penalty (Wu et al. 2016, §7):
//   score = log P(Y) / ((5 + |Y|) / 6)^alpha,   |Y| = generated tokens including EOS,
// alpha = 0 giving the raw log-probability. The search stops
//   - when `beam` hypotheses have finished and no live hypothesis can still beat the beam-th
//     best of them: log-probabilities only fall as tokens are added and the penalty grows with
//     length, so the best any continuation of a live hypothesis with log-probability L can
//     reach is L / ((5 + max_length) / 6)^alpha (with alpha = 0 simply L);
//   - when no hypothesis is live (every candidate finished);
//   - after max_length tokens: the live hypotheses then count as results with finished = false.
// The stop is exact: the n_best results equal those of the same search run to max_length (it
// relies on step() returning log-probabilities ≤ 0, as a log-softmax does; a NaN counts as −∞). With
// alpha = 0, beam 1 is greedy search; with alpha > 0 beam 1 may go on past the EOS greedy stops
// at (its result then scores at least as well as greedy's).
//
// Cost per step: one pass over the [slots, vocab] log-probabilities with a heap of the best
// 2·beam candidates so far (a partial sort); entries that cannot enter it are skipped with a
// float comparison, mostly 16 at a time. Nothing is allocated per vocab entry.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cancel.h"
#include "core/tensor.h"

namespace attnlab {

// A model that extends several hypotheses ("slots") one token at a time and keeps a cache per
// slot.
class IncrementalDecoder {
 public:
  virtual ~IncrementalDecoder() = default;
  virtual std::int32_t vocab_size() const = 0;
  // Forgets every slot and starts `count` empty hypotheses.
  virtual void start(std::int64_t count) = 0;
  // Feeds tokens[i] to slot i (tokens.size() == live slot count; the first call feeds BOS) and
  // returns log-probabilities of the next token: [slots, vocab] (rows sum to 1 in prob space).
  virtual RowMatrix step(const std::vector<std::int32_t>& tokens) = 0;
  // New slot i continues old slot parents[i] (cache and anything recorded per slot); parents may
  // repeat an old slot or drop it; the slot count becomes parents.size().
  virtual void reorder(const std::vector<std::int64_t>& parents) = 0;
};

// Largest beam width beam_search accepts.
inline constexpr int kMaxBeam = 1024;
inline constexpr int kMaxNoRepeatNgram = 16;

struct SearchOptions {
  int beam = 1;                 // 1 … kMaxBeam (greedy_search: exactly 1)
  float length_penalty = 0.0f;  // GNMT alpha ≥ 0 (finite); 0 = raw log-probability
  int max_length = 64;          // ≥ 1: generated tokens, BOS excluded, EOS included
  std::int32_t bos = 0;         // in [0, vocab)
  std::int32_t eos = 1;         // in [0, vocab)
  int n_best = 1;               // 1 … beam: how many hypotheses the result lists
  // 0 = off; n ≥ 1: no hypothesis repeats an n-gram of its generated tokens (fairseq's
  // --no-repeat-ngram-size): a token that would complete an n-gram the hypothesis already holds
  // gets log-probability −∞ in its row before the candidates are chosen. The reported
  // log-probabilities stay the model's. Allowed 0 … kMaxNoRepeatNgram.
  int no_repeat_ngram = 0;
  const CancelToken* cancel = nullptr;  // checked before every step(); CancelledError when set
};

struct Hypothesis {
  std::vector<std::int32_t> tokens;      // generated tokens, no BOS, no EOS
  double log_prob = 0.0;                 // sum of token_log_probs
  double score = 0.0;                    // log_prob under the length penalty
  std::vector<float> token_log_probs;    // one per emitted token, EOS included when finished
  bool finished = false;                 // ended with EOS (false: cut at max_length)
  // steps_slots[t]: the slot (row) of the t-th step() call whose distribution produced token t
  // (t = tokens.size() is the EOS of a finished hypothesis); size == token_log_probs.size().
  // Per-step records of the model (cross-attention rows) of this hypothesis are at these rows.
  std::vector<std::int64_t> steps_slots;
};

// One node of the beam tree. tree[0] is the root (BOS: step 0, parent -1, log_prob 0); a node
// of step t (its t-th generated token) has a parent of step t − 1.
struct BeamNode {
  int step = 0;
  std::int32_t token = 0;
  std::int64_t parent = -1;  // index into SearchResult::tree; -1 for the root
  double log_prob = 0.0;     // cumulative, BOS excluded
  double score = 0.0;        // log_prob under the length penalty at length `step`
  bool finished = false;     // an EOS that became a result
  bool kept = false;         // stayed in the beam (false: finished, or pruned)
};

struct SearchResult {
  std::vector<Hypothesis> hypotheses;  // best score first, size ≤ n_best
  // The root, then per step the 2·beam best candidates that beam search looked at: the `beam`
  // it kept, the EOS that finished, and the rest as pruned (kept = false, finished = false).
  // Greedy search lists only its path.
  std::vector<BeamNode> tree;
  int steps = 0;  // step() calls made
};

// GNMT length penalty ((5 + length) / 6)^alpha.
double length_penalty_factor(int length, double alpha);

// One slot, the most likely token each step (ties: lower token id). Throws ParamError for
// options out of range (beam and n_best must be 1), ShapeError when step() returns another shape
// than [1, vocab], CancelledError.
SearchResult greedy_search(IncrementalDecoder& decoder, const SearchOptions& options);

// Beam search as described at the top. Throws ParamError for options out of range, ShapeError
// when step() returns another shape than [live slots, vocab], CancelledError.
SearchResult beam_search(IncrementalDecoder& decoder, const SearchOptions& options);

}  // namespace attnlab
