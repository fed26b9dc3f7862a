// Reformer LSH attention ("reformer_lsh"): the typed trace the views draw, and the hashing
// primitives the tests check on their own. The variant itself lives in reformer_lsh.cpp; its
// header comment states the equations and the choices where the references disagree.
//
// Shapes (H heads, R = n_hashes rounds, L tokens, d head dim, n_b buckets per round,
// W = the longest chunk window in keys):
//   rotations        [H, R, d, n_b/2]
//   buckets, orders  [H, R, L]   (integers)
//   round_weights    [H, R, L, W]
//   cooccurrence     [H, L, L]
//   recall           [H, L, K],  K = min(L, 64)
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "analysis/lsh_analysis.h"
#include "attention/attention.h"

namespace attnlab {

// Integer arrays (buckets, sort orders, chunk numbers) whose bytes the engine's memory meter
// counts, like a Tensor's: every buffer that grows with L shows up in the measured peak.
class IndexArray {
 public:
  IndexArray() = default;
  explicit IndexArray(std::size_t count);
  IndexArray(const IndexArray& other);
  IndexArray(IndexArray&& other) noexcept;
  IndexArray& operator=(IndexArray other) noexcept;
  ~IndexArray();

  std::size_t size() const { return values_.size(); }
  std::int32_t* data() { return values_.data(); }
  const std::int32_t* data() const { return values_.data(); }
  std::int32_t& operator[](std::size_t i) { return values_[i]; }
  std::int32_t operator[](std::size_t i) const { return values_[i]; }
  const std::vector<std::int32_t>& values() const { return values_; }

 private:
  std::vector<std::int32_t> values_;
  std::size_t counted_bytes_ = 0;
};

// Sizes of one forward pass, resolved from the parameters and the length.
struct LshGeometry {
  std::int64_t length = 0;         // L: queries = keys
  std::int64_t n_hashes = 1;       // R rounds, each with its own rotation
  std::int64_t n_buckets = 2;      // per round; even
  std::int64_t chunk_size = 1;     // bucket_size: tokens per chunk of the sorted order
  std::int64_t n_chunks = 1;       // ceil(L / chunk_size); the last chunk may be shorter
  std::int64_t chunks_before = 0;  // previous chunks each chunk also attends to

  std::int64_t chunk_begin(std::int64_t chunk) const { return chunk * chunk_size; }
  std::int64_t chunk_end(std::int64_t chunk) const { return std::min(length, (chunk + 1) * chunk_size); }
  // Distinct chunks in a window: the chunk itself and up to chunks_before before it.
  std::int64_t window_chunk_count() const { return std::min(chunks_before, n_chunks - 1) + 1; }
  // The first (oldest) chunk of the window of `chunk`, wrapping around past chunk 0.
  std::int64_t window_first_chunk(std::int64_t chunk) const;
  // The chunks of the window of `chunk`, oldest first, ending with `chunk` itself.
  std::vector<std::int64_t> window_chunks(std::int64_t chunk) const;
  // Keys in the window of `chunk`, and the most any window holds.
  std::int64_t window_length(std::int64_t chunk) const;
  std::int64_t max_window_length() const;
  // Whether a query in `query_chunk` sees the keys of `key_chunk` (before causal/padding masks).
  bool sees(std::int64_t query_chunk, std::int64_t key_chunk) const;
};

// Reads n_hashes, bucket_size, n_buckets and chunks_before; throws ParamError for an odd
// n_buckets (or 1), naming the parameter and what is allowed.
LshGeometry resolve_lsh_geometry(const Params& params, std::int64_t length);

// ---- hashing primitives (pure functions; the variant and the tests use the same ones) --------

// Bucket of every row of x [n, d] under `rotation` [d, n_b/2]: the index of the largest entry of
// [x·R, −x·R] (first one on ties), in [0, n_b).
std::vector<std::int32_t> lsh_buckets(const RowMatrix& x, const RowMatrix& rotation);

// Positions ordered by (bucket, position): result[sorted position] = position. A stable counting
// sort, O(n + n_buckets).
std::vector<std::int32_t> lsh_sort_order(const std::vector<std::int32_t>& buckets, std::int64_t n_buckets);

// inverse[order[s]] = s: position -> sorted position (the un-sort).
std::vector<std::int32_t> inverse_permutation(const std::vector<std::int32_t>& order);

// The random rotations of a forward pass: [H, R, d, n_b/2] with N(0, 1) entries, head h and
// round r drawn from their own stream Rng::derive(seed, "reformer_lsh/h<h>/r<r>"), so adding
// rounds or heads never changes the rotations of the others.
Tensor lsh_rotations(std::uint64_t seed, std::int64_t heads, std::int64_t n_hashes, std::int64_t dim,
                     std::int64_t n_buckets);

// The variant's forward pass with the rotations given instead of drawn from the seed (the tests
// use it to give every round the same rotation). `rotations` must be [H, R, d, n_b/2].
Tensor reformer_lsh_forward(const AttentionInput& input, const Tensor& rotations, Trace* trace);

// ---- the trace -------------------------------------------------------------------------------

class ReformerLshExtras final : public TraceExtras {
 public:
  static constexpr float kSelfScore = -5e4f;  // a token's score with itself when shared_qk
  static constexpr std::int64_t kMaxRecallK = 64;

  std::string_view kind() const override { return "reformer_lsh"; }
  // Every head: settings_json() plus "heads": [head_to_json(h), ...].
  nlohmann::json to_json() const override;
  // The settings: kind, length, rounds, buckets, chunk size and starts, chunks_before, shared_qk,
  // dedup, causal, scale, self score, angle method, recall K.
  nlohmann::json settings_json() const;
  // One head: rotations, buckets, sort orders, chunks, round log-normalisers and shares,
  // co-occurrence counts, angle view, recall. Non-finite numbers are written as null.
  nlohmann::json head_to_json(std::int64_t head) const;

  // ---- settings ----
  LshGeometry geometry;
  std::int64_t heads = 0;
  std::int64_t head_dim = 0;
  bool shared_qk = true;
  bool dedup = false;
  bool causal = false;
  float scale = 1.0f;  // 1/sqrt(d)

  // ---- hashing and sorting ----
  Tensor rotations;         // [H, R, d, n_b/2]
  IndexArray query_buckets;  // [H, R, L]
  IndexArray key_buckets;    // [H, R, L]; equals query_buckets with shared_qk
  IndexArray query_order;    // [H, R, L] sorted position -> token
  IndexArray key_order;      // [H, R, L]
  IndexArray query_rank;     // [H, R, L] token -> sorted position (inverse of query_order)
  IndexArray key_rank;       // [H, R, L]

  // ---- attention ----
  Tensor round_logsumexp;  // [H, R, L] log of round r's softmax denominator per query; -inf: saw no key
  Tensor round_share;      // [H, R, L] exp(lse_r − logsumexp over rounds): round r's weight in the output
  // [H, R, L, W]: row = query at sorted position s, column t = the t-th key of window_keys(h, r,
  // s / chunk_size); the round's own softmax weights (rows sum to 1, 0 for hidden keys and padding).
  Tensor round_weights;
  Tensor cooccurrence;  // [H, L, L] rounds in which key j lies in query i's chunk window (masks aside)

  // ---- angle view ----
  LshAngleMethod angle_method = LshAngleMethod::Pca;
  std::vector<float> sector_boundaries;  // radians on the circle (SignAxis, RotatedPlane); empty for Pca
  std::int64_t angle_points_per_round = 0;  // L, or 2L without shared_qk (queries, then keys)
  Tensor angle_points;     // [H, R, P, 2]
  Tensor angle_anchors;    // [H, R, n_b, 2] the direction each bucket stands for
  Tensor angle_explained;  // [H, R, 2] variance share of the PCA axes (1, 0 for the exact methods)

  // ---- recall of the exact top-k ----
  std::int64_t recall_k = 0;  // K = min(L, 64)
  // [H, L, K]: entry k-1 = share of query i's k highest-scoring allowed keys (exact attention over
  // every key causal/padding allow, same scores) that LSH lets it see in some round. When fewer
  // than k keys are allowed, the share of those. NaN for a query with no allowed key.
  Tensor recall;
  Tensor mean_recall;  // [H, K] mean over queries with an allowed key

  // ---- lookups ----
  std::int64_t length() const { return geometry.length; }
  std::int64_t rounds() const { return geometry.n_hashes; }
  std::size_t index(std::int64_t head, std::int64_t round, std::int64_t position) const {
    return static_cast<std::size_t>((head * geometry.n_hashes + round) * geometry.length + position);
  }
  std::int64_t query_chunk(std::int64_t head, std::int64_t round, std::int64_t token) const {
    return query_rank[index(head, round, token)] / geometry.chunk_size;
  }
  std::int64_t key_chunk(std::int64_t head, std::int64_t round, std::int64_t token) const {
    return key_rank[index(head, round, token)] / geometry.chunk_size;
  }
  // Key tokens of the window of `chunk` in round `round`, in round_weights' column order.
  std::vector<std::int32_t> window_keys(std::int64_t head, std::int64_t round, std::int64_t chunk) const;
  // Round `round`'s own softmax weights in token order: [L, L] (query token, key token).
  RowMatrix round_matrix(std::int64_t head, std::int64_t round) const;
};

}  // namespace attnlab
