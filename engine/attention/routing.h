// The trace of the Routing Transformer variant ("routing", routing.cpp): everything the
// "Routing clusters" view draws, computed by the engine in trace mode.
//
// Shapes, for one attention call with H heads, Lq queries, Lk keys, head dim d, k clusters,
// S = kmeans_iters + 1 k-means steps (step 0 = the initial centroids, step s = after s updates),
// wq / wk = the number of queries / keys each cluster takes:
//   centroids        [S, k, d]    unit vectors
//   query_nearest    [S, Lq]      cluster whose centroid is nearest (largest dot product) at step s
//   key_nearest      [S, Lk]      the same for keys; -1 for a padded key (never clustered)
//   query_occupancy  [S, k]       how many queries are nearest to each centroid at step s
//   key_occupancy    [S, k]
//   query_members    [k, wq]      the wq queries closest to each final centroid, positions ascending
//   key_members      [k, wk]
//   query_clusters   [Lq]         in how many clusters query i is a member
//   key_clusters     [Lk]
//   query_averaged   [Lq]         in how many clusters query i sees at least one key: its output is
//                                 the mean over these (0: output 0, zero weight row)
//   unrouted_queries              ascending positions i with query_averaged[i] == 0
//   query_xy [Lq, 2], key_xy [Lk, 2], centroid_xy [S, k, 2]: one PCA plane per head, fitted to
//                                 the normalised queries and (unpadded) keys; the centroids of
//                                 every step are projected into that same plane.
// Integer tables are row-major in std::vector<int32_t>. A local head (the first `local_heads`
// heads attend a sliding window instead of routing) has local = true and every table empty.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "attention/attention.h"
#include "core/tensor.h"

namespace attnlab {

// The values forward() used, after resolving the automatic ones (0 = auto) for this length.
struct RoutingSettings {
  std::int64_t n_clusters = 1;     // k
  std::int64_t window = 1;         // as resolved: the given window, or ceil(Lk / k)
  std::int64_t query_window = 1;   // wq = min(window, Lq)
  std::int64_t key_window = 1;     // wk = min(window, unpadded keys)
  std::int64_t kmeans_iters = 0;
  double ema_decay = 0.0;
  std::int64_t local_heads = 0;
  bool causal = false;
};

struct RoutingHeadTrace {
  bool local = false;
  std::int64_t steps = 0;  // S; 0 for a local head
  Tensor centroids;        // [S, k, d]
  std::vector<std::int32_t> query_nearest;    // [S, Lq]
  std::vector<std::int32_t> key_nearest;      // [S, Lk]
  std::vector<std::int32_t> query_occupancy;  // [S, k]
  std::vector<std::int32_t> key_occupancy;    // [S, k]
  std::vector<std::int32_t> query_members;    // [k, wq]
  std::vector<std::int32_t> key_members;      // [k, wk]
  std::vector<std::int32_t> query_clusters;   // [Lq]
  std::vector<std::int32_t> key_clusters;     // [Lk]
  std::vector<std::int32_t> query_averaged;   // [Lq]
  std::vector<std::int32_t> unrouted_queries;
  RowMatrix query_xy;   // [Lq, 2]
  RowMatrix key_xy;     // [Lk, 2]
  Tensor centroid_xy;   // [S, k, 2]
  float explained[2] = {0, 0};  // share of variance along each PCA axis

  std::int32_t nearest_query_cluster(std::int64_t step, std::int64_t query) const;
  std::int32_t nearest_key_cluster(std::int64_t step, std::int64_t key) const;
};

class RoutingExtras final : public TraceExtras {
 public:
  RoutingExtras(RoutingSettings settings, std::int64_t queries, std::int64_t keys, std::vector<RoutingHeadTrace> heads)
      : settings_(settings), queries_(queries), keys_(keys), heads_(std::move(heads)) {}

  std::string_view kind() const override { return "routing"; }
  // {"kind": "routing", "settings": {...}, "queries": Lq, "keys": Lk, "heads": [head_to_json(h)...]}
  nlohmann::json to_json() const override;
  // One head: settings, local flag, and every table above (nested arrays in the shapes given).
  nlohmann::json head_to_json(std::int64_t head) const;

  const RoutingSettings& settings() const { return settings_; }
  std::int64_t queries() const { return queries_; }
  std::int64_t keys() const { return keys_; }
  std::int64_t head_count() const { return static_cast<std::int64_t>(heads_.size()); }
  const RoutingHeadTrace& head(std::int64_t h) const { return heads_.at(static_cast<std::size_t>(h)); }

 private:
  RoutingSettings settings_;
  std::int64_t queries_ = 0, keys_ = 0;
  std::vector<RoutingHeadTrace> heads_;
};

}  // namespace attnlab
