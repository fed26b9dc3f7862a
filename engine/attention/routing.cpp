// Routing Transformer attention (Roy, Saffar, Vaswani, Grangier 2021), registered as "routing":
// online k-means routes queries and keys to clusters; attention is dense inside each cluster.
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   weights (trace only): [H, Lq, Lk], the routed matrix in token order; extras: RoutingExtras
//   (routing.h: centroids and nearest clusters per k-means step, members, counts, PCA plane).
//
// Per routed head (the heads from `local_heads` on):
//   1. Clustering runs on unit vectors: q̂_i = q_i/‖q_i‖ and k̂_j = k_j/‖k_j‖ (a zero vector
//      stays 0); padded keys take no part in routing at all. Queries and keys share the
//      centroids, as in both references.
//   2. Initial centroids μ⁰ (k of them): a seeded sample of k distinct points of the pool
//      {q̂_i} ∪ {k̂_j} (Floyd's algorithm on Rng(derive(seed, "routing/centroids/head<h>")),
//      numbered in pool order: queries first, then keys); when k exceeds the pool, the extra
//      centroids are seeded random unit vectors. Starting inside the data keeps clusters from
//      being empty from the start, which random directions in d = 32 would be.
//   3. kmeans_iters steps s = 1..T: every point goes to its nearest centroid (largest dot
//      product q̂·μ; ties to the lower cluster number), then
//        μ_c ← normalise(λ·μ_c + (1 − λ)·mean{x̂ assigned to c}),   λ = ema_decay,
//      a cluster that got no point keeps its centroid. λ = 0 gives plain batch means (spherical
//      k-means, Lloyd); λ → 1 leaves the initial centroids where they were. The official code
//      keeps EMA sums with Laplace smoothing across training steps and lucidrains updates after
//      backward with λ = 0.999; both assume training, where each forward moves the centroids a
//      little. We run one forward pass without training, so the default λ = 0.5 lets the
//      centroids converge within the default 10 steps (the start weighs 0.5¹⁰ ≈ 0.001) while the
//      step-through still shows the moving average at work.
//   4. Routing with the final centroids μᵀ: each cluster takes its wq queries and its wk keys
//      with the largest score x̂·μ_c (ties to the lower position), re-sorted by position.
//      wq = min(window, Lq), wk = min(window, unpadded keys); window 0 = ceil(Lk / k), k 0 =
//      round(√Lk). Unlike the nearest-centroid assignment, the top-w choice lets a token belong
//      to several clusters or to none.
//   5. Inside cluster c: A_c = softmax(Q_c K_cᵀ / √d) on the raw (not normalised) q and k, causal
//      by ORIGINAL position (key position > query position gets exactly 0), O_c = A_c V_c.
//   6. A query's output is the mean of O_c over the m clusters in which it sees at least one
//      key; with m = 0 (in no cluster, or — causal — only later keys in its clusters) its output
//      is 0 and its weight row is 0 ("unrouted"). The references divide by count + ε (10⁻² in
//      the official code, 10⁻⁵ in lucidrains), which leaves a routed row summing to 1/(1+ε); we
//      divide by m exactly, so every routed row sums to 1 and n_clusters = 1 with window ≥ L
//      equals softmax (ALGORITHMS.md §3 names this difference).
//   The trace's weights are W_ij = (1/m_i) Σ_c A_c(i, j) over those clusters, so W V == out.
// Local heads (h < local_heads) attend a window of `window` keys instead (lucidrains' local
// heads): causal: keys i−w+1 .. i; otherwise w keys centred on i: i − ⌊(w−1)/2⌋ .. i + ⌈(w−1)/2⌉,
// clipped at the ends.
//
// Causal masking puts exactly 0 on later keys, but the clusters are formed from every token: a
// later token can move a centroid and so change an earlier query's cluster and output (issue 3
// asks the view to show this rather than hide it).
//
// Execution: routed heads are independent; with at least as many of them as threads each thread
// runs whole heads, else every phase is spread over blocks of one head. Per-thread scratch rows
// are 64-byte aligned and every sum runs in a fixed order, so the numbers do not depend on the
// thread count or on which thread ran which task (tested bit for bit).
//
// Cost: k-means O(T·(Lq+Lk)·k·d), member choice O((Lq+Lk)·k·d), attention O(k·wq·wk·(d+dv)):
// O(L^1.5·d) for k = √L. No L×L matrix without a trace; every buffer that grows with L is a Tensor
// (index buffers are float Tensors holding exact integers, < 2²⁴), so the memory meter counts it.
// Refs: google-research routing_transformer/utils.py (online_kmeans, cluster attention),
// lucidrains routing_transformer.py (Kmeans, KmeansAttention); ALGORITHMS.md §3.
#include "attention/routing.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/projection.h"
#include "attention/variants.h"
#include "core/error.h"
#include "core/rng.h"

namespace attnlab {
namespace {

constexpr std::int64_t kPointBlock = 512;   // points per k-means assignment task
constexpr std::int64_t kClusterGroup = 16;  // centroids scored together when choosing members
constexpr std::int64_t kLocalBlock = 64;    // queries per local-window task

// Index buffers are float Tensors (counted by the memory meter); indices stay far below 2^24.
inline std::int64_t as_index(float x) { return static_cast<std::int64_t>(x); }
inline float index_value(std::int64_t i) { return static_cast<float>(i); }

// Runs body(task, thread) for every task in [0, count) on the OpenMP team. An exception may not
// leave an OpenMP region: the first one is kept and rethrown after it; cancellation likewise.
template <typename Body>
void parallel_tasks(std::int64_t count, const CancelToken* cancel, Body&& body) {
  if (count == 1) {  // no team (and no barrier) for a single task
    check_cancelled(cancel);
    body(0, 0);
    return;
  }
  std::atomic<bool> stop{false};
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t task = 0; task < count; ++task) {
    if (stop.load(std::memory_order_relaxed)) continue;
    if (cancel && cancel->cancelled()) {
      stop = true;
      continue;
    }
    try {
      body(task, omp_get_thread_num());
    } catch (...) {
#pragma omp critical(routing_error)
      if (!error) error = std::current_exception();
      stop = true;
    }
  }
  if (error) std::rethrow_exception(error);
  check_cancelled(cancel);
}

// Scratch rows for each thread of the team, allocated before the parallel region. Every thread's
// rows start 64-byte aligned: Eigen's vectorised sums handle an unaligned start apart, so an
// offset that depended on the thread would change the last bits of a result from run to run.
class ThreadScratch {
 public:
  ThreadScratch(std::int64_t rows, std::int64_t cols)
      : rows_(rows),
        cols_(cols),
        data_(Tensor::uninitialized({std::max(1, omp_get_max_threads()), (std::max<std::int64_t>(1, rows * cols) + 15) / 16 * 16})) {}
  UnalignedMatrixMap matrix(int thread, std::int64_t rows, std::int64_t cols) {
    return UnalignedMatrixMap(data_.data() + thread * data_.dim(1), rows, cols);
  }
  UnalignedMatrixMap matrix(int thread) { return matrix(thread, rows_, cols_); }
  float* row(int thread) { return data_.data() + thread * data_.dim(1); }

 private:
  std::int64_t rows_, cols_;
  Tensor data_;
};

// Softmax of logits(0 .. visible-1) in place, the rest set to exactly 0. Returns false (row all
// zero) when nothing is visible.
template <typename Row>
bool softmax_prefix(Row&& row, std::int64_t visible) {
  if (visible <= 0) {
    row.setZero();
    return false;
  }
  auto head = row.head(visible);
  const float m = head.maxCoeff();
  head = (head.array() - m).exp().matrix();
  head /= head.sum();
  if (visible < row.size()) row.tail(row.size() - visible).setZero();
  return true;
}

double row_norm_inverse(const Eigen::Ref<const RowVector>& x) {
  const double n = x.norm();
  return n > 0.0 ? 1.0 / n : 0.0;
}

class RoutingAttention final : public Attention {
 public:
  RoutingAttention() {
    spec_.name = "routing";
    spec_.title = "Routing Transformer (online k-means)";
    spec_.paper =
        "Roy, Saffar, Vaswani, Grangier 2021, Efficient Content-Based Sparse Attention with Routing Transformers "
        "(TACL; arXiv:2003.05997)";
    spec_.summary =
        "Online k-means groups queries and keys into clusters; each query attends only to the keys of its "
        "clusters.";
    spec_.params = {
        ParamSpec::integer("n_clusters", "Clusters", 0, 0, 256,
                           "Number of k-means clusters k; 0 = round(√L)."),
        ParamSpec::integer("window", "Window", 0, 0, 65536,
                           "Queries and keys each cluster takes (and the local heads' window); 0 = ceil(L / k)."),
        ParamSpec::integer("kmeans_iters", "k-means steps", 10, 0, 50,
                           "Assign-and-update steps of online k-means from the seeded start."),
        ParamSpec::real("ema_decay", "EMA decay", 0.5, 0.0, 1.0,
                        "μ ← decay·μ + (1 − decay)·mean of the assigned points; 0 = plain batch means, 1 = frozen."),
        ParamSpec::integer("local_heads", "Local heads", 0, 0, 64,
                           "The first heads attend a sliding window of `window` keys instead of routing."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }
  Tensor forward(const AttentionInput& input, Trace* trace) const override;
  std::int64_t workspace_bytes(const AttentionShape& shape, const Params& params) const override;

 private:
  VariantSpec spec_;
};

// One forward call: the input, the resolved settings and the buffers of every phase.
//
// Routed heads are independent. With at least as many routed heads as threads, each thread runs
// whole heads (one parallel region for all phases: few barriers, which matters on a busy
// machine); with fewer (one head of a long sequence), every phase is spread over its blocks.
class RoutingRun {
 public:
  RoutingRun(const AttentionInput& in, bool tracing);
  Tensor run(Trace* trace);

 private:
  void attend_local_heads(Tensor& out, Tensor* weights);
  void allocate_routing_buffers();
  // Scratch rows: for every phase at once (whole heads per thread), or phase by phase, each
  // freed before the next (so the peak holds one phase's scratch).
  enum class Phase { All, KMeans, Members, Attention };
  void allocate_scratch(Phase phase);
  void route_head(std::int64_t r, int thread, Tensor& out, Tensor* weights);  // every phase, one head

  // One routed head r's share of each phase; `thread` picks the scratch rows.
  void init_head(std::int64_t r);
  void assign_block(std::int64_t r, std::int64_t block, int thread, bool accumulate);
  void update_head(std::int64_t r);
  void record_step(std::int64_t r, std::int64_t step);
  void choose_group(std::int64_t r, bool keys, std::int64_t group, int thread);
  void attend_cluster(std::int64_t r, std::int64_t cluster, int thread);
  void combine_head(std::int64_t r, Tensor& out, Tensor* weights);
  void trace_head(std::int64_t r);

  std::int64_t head_of(std::int64_t routed) const { return settings_.local_heads + routed; }
  std::int64_t groups() const { return (k_ + kClusterGroup - 1) / kClusterGroup; }
  // Point p of the clustering pool: queries 0..Lq-1, then the unpadded keys.
  bool is_query(std::int64_t p) const { return p < Lq_; }
  std::int64_t key_of(std::int64_t p) const { return as_index(candidates_.data()[p - Lq_]); }
  // The unit vector of point p of head h (0 for a zero vector).
  template <typename Dst>
  void normalised_point(std::int64_t h, std::int64_t p, Dst&& dst) const;

  const AttentionInput& in_;
  bool tracing_;
  std::int64_t H_, Lq_, Lk_, d_, dv_;
  RoutingSettings settings_;
  std::int64_t k_ = 1, wq_ = 1, wk_ = 1, R_ = 0, pool_ = 0;
  std::int64_t query_blocks_ = 0, blocks_ = 0;  // assignment tasks per head: query blocks, then key blocks
  float scale_ = 1.0f;

  Tensor candidates_;      // [unpadded keys]: their positions
  Tensor query_inverse_;   // [R, Lq]: 1/‖q_i‖ (0 for a zero vector)
  Tensor key_inverse_;     // [R, Lk]
  Tensor centroids_;       // [R, k, d]
  Tensor nearest_;         // [R, Lq + Lk]: nearest centroid of every query, then every key (-1: padded)
  Tensor partial_sums_;    // [R, blocks, k, d]: per assignment task, sums of its points per cluster
  Tensor partial_counts_;  // [R, blocks, k]
  Tensor query_members_;   // [R, k, wq]: positions ascending
  Tensor key_members_;     // [R, k, wk]
  Tensor cluster_out_;     // [R, k, wq, dv]: O_c for every member query
  Tensor cluster_seen_;    // [R, k, wq]: 1 when that query sees a key in that cluster
  Tensor cluster_probs_;   // trace only: [R, k, wq, wk], A_c
  Tensor averaged_;        // [R, Lq]: m, the clusters averaged into each query's output
  // Scratch rows per thread.
  std::optional<ThreadScratch> scores_;        // [kPointBlock, k]: one block's scores
  std::optional<ThreadScratch> member_scores_; // [max(Lq, Lk), kClusterGroup]
  std::optional<ThreadScratch> column_, heap_; // [max(Lq, Lk)], [max(wq, wk)]
  std::optional<ThreadScratch> qc_, kc_, vc_, probs_;  // one cluster's q [wq, d], k [wk, d], v [wk, dv], A [wq, wk]

  std::vector<RoutingHeadTrace> head_traces_;  // trace only: [H]
};

RoutingRun::RoutingRun(const AttentionInput& in, bool tracing)
    : in_(in),
      tracing_(tracing),
      H_(in.q.dim(0)),
      Lq_(in.q.dim(1)),
      Lk_(in.k.dim(1)),
      d_(in.q.dim(2)),
      dv_(in.v.dim(2)) {
  const Params& p = *in.params;
  settings_.causal = in.causal;
  settings_.local_heads = p.get_int("local_heads");
  if (settings_.local_heads > H_) {
    throw ParamError("local_heads=" + std::to_string(settings_.local_heads) + " is more than the " +
                     std::to_string(H_) + " heads of this attention; allowed 0.." + std::to_string(H_));
  }
  k_ = p.get_int("n_clusters");
  if (k_ == 0) k_ = std::max<std::int64_t>(1, std::llround(std::sqrt(static_cast<double>(Lk_))));
  std::int64_t window = p.get_int("window");
  if (window == 0) window = (Lk_ + k_ - 1) / k_;
  settings_.n_clusters = k_;
  settings_.window = window;
  settings_.kmeans_iters = p.get_int("kmeans_iters");
  settings_.ema_decay = p.get_float("ema_decay");

  std::int64_t unpadded = 0;
  for (std::int64_t j = 0; j < Lk_; ++j) unpadded += !(in.key_padding && (*in.key_padding)[static_cast<std::size_t>(j)]);
  candidates_ = Tensor::uninitialized({unpadded});
  for (std::int64_t j = 0, n = 0; j < Lk_; ++j) {
    if (!(in.key_padding && (*in.key_padding)[static_cast<std::size_t>(j)])) candidates_.data()[n++] = index_value(j);
  }
  wq_ = std::min(window, Lq_);
  wk_ = std::min(window, unpadded);
  settings_.query_window = wq_;
  settings_.key_window = wk_;
  R_ = H_ - settings_.local_heads;
  pool_ = Lq_ + unpadded;
  query_blocks_ = (Lq_ + kPointBlock - 1) / kPointBlock;
  blocks_ = query_blocks_ + (Lk_ + kPointBlock - 1) / kPointBlock;
  scale_ = 1.0f / std::sqrt(static_cast<float>(d_));
}

template <typename Dst>
void RoutingRun::normalised_point(std::int64_t h, std::int64_t p, Dst&& dst) const {
  const std::int64_t r = h - settings_.local_heads;
  if (is_query(p)) {
    dst = in_.q.matrix(h).row(p) * query_inverse_.at(r, p);
  } else {
    const std::int64_t j = key_of(p);
    dst = in_.k.matrix(h).row(j) * key_inverse_.at(r, j);
  }
}

Tensor RoutingRun::run(Trace* trace) {
  Tensor out = Tensor::uninitialized({H_, Lq_, dv_});  // every row is written by one phase below
  Tensor weights;
  if (trace) weights = Tensor({H_, Lq_, Lk_});  // zeros: only attended entries are written
  Tensor* w = trace ? &weights : nullptr;
  if (tracing_) head_traces_.resize(static_cast<std::size_t>(H_));
  for (std::int64_t h = 0; h < settings_.local_heads && tracing_; ++h) head_traces_[static_cast<std::size_t>(h)].local = true;

  attend_local_heads(out, w);
  if (R_ > 0) {
    allocate_routing_buffers();
    if (R_ >= omp_get_max_threads()) {
      allocate_scratch(Phase::All);
      parallel_tasks(R_, in_.cancel, [&](std::int64_t r, int thread) { route_head(r, thread, out, w); });
    } else {
      allocate_scratch(Phase::KMeans);
      parallel_tasks(R_, in_.cancel, [&](std::int64_t r, int) { init_head(r); });
      const std::int64_t T = settings_.kmeans_iters;
      for (std::int64_t step = 0; step <= T; ++step) {
        if (step == T && !tracing_) break;  // the last assignment only feeds the trace
        parallel_tasks(R_ * blocks_, in_.cancel, [&](std::int64_t task, int thread) {
          assign_block(task / blocks_, task % blocks_, thread, step < T);
        });
        for (std::int64_t r = 0; r < R_ && tracing_; ++r) record_step(r, step);
        if (step < T) parallel_tasks(R_, in_.cancel, [&](std::int64_t r, int) { update_head(r); });
      }
      scores_.reset();
      partial_sums_ = Tensor();
      allocate_scratch(Phase::Members);
      const std::int64_t g = groups();
      parallel_tasks(R_ * 2 * g, in_.cancel, [&](std::int64_t task, int thread) {
        choose_group(task / (2 * g), (task / g) % 2 == 1, task % g, thread);
      });
      member_scores_.reset();
      column_.reset();
      allocate_scratch(Phase::Attention);
      parallel_tasks(R_ * k_, in_.cancel, [&](std::int64_t task, int thread) { attend_cluster(task / k_, task % k_, thread); });
      parallel_tasks(R_, in_.cancel, [&](std::int64_t r, int) {
        combine_head(r, out, w);
        if (tracing_) trace_head(r);
      });
    }
  }
  if (trace) {
    trace->weights = std::move(weights);
    trace->extras = std::make_shared<RoutingExtras>(settings_, Lq_, Lk_, std::move(head_traces_));
  }
  return out;
}

void RoutingRun::route_head(std::int64_t r, int thread, Tensor& out, Tensor* weights) {
  init_head(r);
  const std::int64_t T = settings_.kmeans_iters;
  for (std::int64_t step = 0; step <= T; ++step) {
    if (step == T && !tracing_) break;
    check_cancelled(in_.cancel);
    for (std::int64_t b = 0; b < blocks_; ++b) assign_block(r, b, thread, step < T);
    if (tracing_) record_step(r, step);
    if (step < T) update_head(r);
  }
  for (std::int64_t g = 0; g < groups(); ++g) {
    choose_group(r, false, g, thread);
    choose_group(r, true, g, thread);
  }
  check_cancelled(in_.cancel);
  for (std::int64_t c = 0; c < k_; ++c) attend_cluster(r, c, thread);
  combine_head(r, out, weights);
  if (tracing_) trace_head(r);
}

void RoutingRun::allocate_routing_buffers() {
  query_inverse_ = Tensor::uninitialized({R_, Lq_});
  key_inverse_ = Tensor({R_, Lk_});  // padded keys keep 0
  centroids_ = Tensor::uninitialized({R_, k_, d_});
  nearest_ = Tensor::uninitialized({R_, Lq_ + Lk_});
  partial_sums_ = Tensor::uninitialized({R_, blocks_, k_, d_});
  partial_counts_ = Tensor::uninitialized({R_, blocks_, k_});
  query_members_ = Tensor::uninitialized({R_, k_, wq_});
  key_members_ = Tensor::uninitialized({R_, k_, wk_});
  cluster_out_ = Tensor::uninitialized({R_, k_, wq_, dv_});
  cluster_seen_ = Tensor::uninitialized({R_, k_, wq_});
  if (tracing_) cluster_probs_ = Tensor::uninitialized({R_, k_, wq_, wk_});
  averaged_ = Tensor({R_, Lq_});
}

void RoutingRun::allocate_scratch(Phase phase) {
  const std::int64_t longest = std::max(Lq_, Lk_);
  if (phase == Phase::All || phase == Phase::KMeans) scores_.emplace(kPointBlock, k_);
  if (phase == Phase::All || phase == Phase::Members) {
    member_scores_.emplace(longest, kClusterGroup);
    column_.emplace(1, longest);
    heap_.emplace(1, std::max(wq_, wk_));
  }
  if (phase == Phase::All || phase == Phase::Attention) {
    qc_.emplace(wq_, d_);
    kc_.emplace(wk_, d_);
    vc_.emplace(wk_, dv_);
    probs_.emplace(wq_, wk_);
  }
}

// ---- local heads ---------------------------------------------------------------------------------

void RoutingRun::attend_local_heads(Tensor& out, Tensor* weights) {
  const std::int64_t local = settings_.local_heads;
  if (local == 0) return;
  const std::int64_t w = settings_.window;
  const std::int64_t before = in_.causal ? w - 1 : (w - 1) / 2;
  const std::int64_t after = in_.causal ? 0 : w - 1 - before;
  const std::int64_t span_max = std::min(Lk_, kLocalBlock + before + after);
  const std::int64_t blocks = (Lq_ + kLocalBlock - 1) / kLocalBlock;
  ThreadScratch logits(kLocalBlock, span_max);
  parallel_tasks(local * blocks, in_.cancel, [&](std::int64_t task, int thread) {
    const std::int64_t h = task / blocks;
    const std::int64_t q0 = (task % blocks) * kLocalBlock;
    const std::int64_t rows = std::min(kLocalBlock, Lq_ - q0);
    auto dst = out.matrix(h).middleRows(q0, rows);
    const std::int64_t lo = std::clamp<std::int64_t>(q0 - before, 0, Lk_);
    const std::int64_t hi = std::clamp<std::int64_t>(q0 + rows + after, 0, Lk_);
    if (lo >= hi) {  // queries beyond the keys' range (Lq > Lk) see nothing
      dst.setZero();
      return;
    }
    auto s = logits.matrix(thread, rows, hi - lo);
    s.noalias() = (in_.q.matrix(h).middleRows(q0, rows) * in_.k.matrix(h).middleRows(lo, hi - lo).transpose()) * scale_;
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = q0 + r;
      const std::int64_t first = std::max(lo, i - before), last = std::min(hi, i + after + 1);  // [first, last)
      auto row = s.row(r);
      float m = -std::numeric_limits<float>::infinity();
      for (std::int64_t j = first; j < last; ++j) {
        if (!(in_.key_padding && (*in_.key_padding)[static_cast<std::size_t>(j)])) m = std::max(m, row(j - lo));
      }
      float sum = 0.0f;
      for (std::int64_t j = lo; j < hi; ++j) {
        const bool visible = j >= first && j < last && !(in_.key_padding && (*in_.key_padding)[static_cast<std::size_t>(j)]);
        row(j - lo) = visible ? std::exp(row(j - lo) - m) : 0.0f;
        sum += row(j - lo);
      }
      if (sum > 0.0f) row /= sum;
    }
    dst.noalias() = s * in_.v.matrix(h).middleRows(lo, hi - lo);
    if (weights) weights->matrix(h).block(q0, lo, rows, hi - lo) = s;
  });
}

// ---- k-means ---------------------------------------------------------------------------------------

void RoutingRun::init_head(std::int64_t r) {
  const std::int64_t h = head_of(r);
  for (std::int64_t i = 0; i < Lq_; ++i) query_inverse_.at(r, i) = static_cast<float>(row_norm_inverse(in_.q.matrix(h).row(i)));
  for (std::int64_t c = 0; c < candidates_.size(); ++c) {
    const std::int64_t j = as_index(candidates_.data()[c]);
    key_inverse_.at(r, j) = static_cast<float>(row_norm_inverse(in_.k.matrix(h).row(j)));
  }
  // Floyd's sampling of min(k, pool) distinct pool points, without a buffer as long as the pool.
  Rng rng(Rng::derive(in_.seed, "routing/centroids/head" + std::to_string(h)));
  const std::int64_t sampled = std::min(k_, pool_);
  std::vector<std::int64_t> chosen;
  chosen.reserve(static_cast<std::size_t>(sampled));
  for (std::int64_t j = pool_ - sampled; j < pool_; ++j) {
    const auto t = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(j + 1)));
    chosen.push_back(std::find(chosen.begin(), chosen.end(), t) == chosen.end() ? t : j);
  }
  std::sort(chosen.begin(), chosen.end());
  auto mu = centroids_.matrix(r);
  RowVector x(d_);
  for (std::int64_t c = 0; c < k_; ++c) {
    if (c < sampled) normalised_point(h, chosen[static_cast<std::size_t>(c)], x);
    else x.setZero();
    // Extra centroids, and a sampled zero vector, become random unit vectors.
    while (x.squaredNorm() == 0.0f) {
      for (std::int64_t e = 0; e < d_; ++e) x(e) = static_cast<float>(rng.normal());
    }
    mu.row(c) = x.normalized();
  }
}

void RoutingRun::assign_block(std::int64_t r, std::int64_t b, int thread, bool accumulate) {
  const std::int64_t h = head_of(r);
  const bool keys = b >= query_blocks_;
  const std::int64_t i0 = (keys ? b - query_blocks_ : b) * kPointBlock;
  const std::int64_t rows = std::min(kPointBlock, (keys ? Lk_ : Lq_) - i0);
  const auto x = (keys ? in_.k : in_.q).matrix(h).middleRows(i0, rows);
  const float* inverse = (keys ? key_inverse_.data() + r * Lk_ : query_inverse_.data() + r * Lq_) + i0;
  // The nearest centroid does not depend on the length of x: score the raw rows.
  auto s = scores_->matrix(thread, rows, k_);
  s.noalias() = x * centroids_.matrix(r).transpose();
  float* nearest = nearest_.data() + r * (Lq_ + Lk_) + (keys ? Lq_ : 0) + i0;
  auto sums = partial_sums_.matrix(r * blocks_ + b);
  float* counts = partial_counts_.data() + (r * blocks_ + b) * k_;
  if (accumulate) {
    sums.setZero();
    std::fill(counts, counts + k_, 0.0f);
  }
  for (std::int64_t a = 0; a < rows; ++a) {
    if (keys && in_.key_padding && (*in_.key_padding)[static_cast<std::size_t>(i0 + a)]) {
      nearest[a] = -1.0f;
      continue;
    }
    // The first maximum: ties go to the lower cluster number. (A vectorised max, then a scan
    // for it, is faster than Eigen's scalar arg-max.)
    const auto row = s.row(a);
    const float top = row.maxCoeff();
    std::int64_t best = 0;
    while (row(best) != top) ++best;
    nearest[a] = index_value(best);
    if (accumulate) {
      sums.row(best) += x.row(a) * inverse[a];
      counts[best] += 1.0f;
    }
  }
}

void RoutingRun::update_head(std::int64_t r) {
  const float decay = static_cast<float>(settings_.ema_decay);
  auto mu = centroids_.matrix(r);
  RowVector sum(d_), next(d_);
  for (std::int64_t c = 0; c < k_; ++c) {
    sum.setZero();
    float count = 0.0f;
    for (std::int64_t b = 0; b < blocks_; ++b) {
      sum += partial_sums_.matrix(r * blocks_ + b).row(c);
      count += partial_counts_.data()[(r * blocks_ + b) * k_ + c];
    }
    if (count == 0.0f) continue;  // an empty cluster keeps its centroid
    next = decay * mu.row(c) + (1.0f - decay) * (sum / count);
    const float norm = next.norm();
    if (norm > 0.0f) mu.row(c) = next / norm;
  }
}

void RoutingRun::record_step(std::int64_t r, std::int64_t step) {
  const std::int64_t S = settings_.kmeans_iters + 1;
  RoutingHeadTrace& t = head_traces_[static_cast<std::size_t>(head_of(r))];
  if (step == 0) {
    t.steps = S;
    t.centroids = Tensor::uninitialized({S, k_, d_});
    t.query_nearest.assign(static_cast<std::size_t>(S * Lq_), 0);
    t.key_nearest.assign(static_cast<std::size_t>(S * Lk_), -1);
    t.query_occupancy.assign(static_cast<std::size_t>(S * k_), 0);
    t.key_occupancy.assign(static_cast<std::size_t>(S * k_), 0);
  }
  t.centroids.matrix(step) = centroids_.matrix(r);
  const float* nearest = nearest_.data() + r * (Lq_ + Lk_);
  for (std::int64_t i = 0; i < Lq_; ++i) {
    const auto c = static_cast<std::int32_t>(as_index(nearest[i]));
    t.query_nearest[static_cast<std::size_t>(step * Lq_ + i)] = c;
    ++t.query_occupancy[static_cast<std::size_t>(step * k_ + c)];
  }
  for (std::int64_t j = 0; j < Lk_; ++j) {
    const auto c = static_cast<std::int32_t>(as_index(nearest[Lq_ + j]));
    if (c < 0) continue;  // padded
    t.key_nearest[static_cast<std::size_t>(step * Lk_ + j)] = c;
    ++t.key_occupancy[static_cast<std::size_t>(step * k_ + c)];
  }
}

// ---- routing and attention --------------------------------------------------------------------------

void RoutingRun::choose_group(std::int64_t r, bool keys, std::int64_t g, int thread) {
  const std::int64_t h = head_of(r);
  const std::int64_t c0 = g * kClusterGroup, cs = std::min(kClusterGroup, k_ - c0);
  const std::int64_t w = keys ? wk_ : wq_;
  if (w == 0) return;
  const float* inverse = (keys ? key_inverse_.data() + r * Lk_ : query_inverse_.data() + r * Lq_);
  // Candidates: every query; for keys the unpadded ones (in position order either way).
  const std::int64_t n = keys ? candidates_.size() : Lq_;
  const auto position = [&](std::int64_t c) { return keys ? as_index(candidates_.data()[c]) : c; };
  auto s = member_scores_->matrix(thread, keys ? Lk_ : Lq_, cs);
  s.noalias() = (keys ? in_.k : in_.q).matrix(h) * centroids_.matrix(r).middleRows(c0, cs).transpose();
  float* score = column_->row(thread);
  float* best = heap_->row(thread);
  for (std::int64_t c = 0; c < cs; ++c) {
    for (std::int64_t e = 0; e < n; ++e) {
      const std::int64_t i = position(e);
      score[e] = s(i, c) * inverse[i];
    }
    // The w-th highest score t (a min-heap of the w highest: most candidates fail the first
    // comparison). Every candidate above t is taken, then candidates equal to t in position
    // order (ties go to the lower position) until w are taken: one pass in position order
    // keeps the members sorted.
    std::copy(score, score + w, best);
    std::make_heap(best, best + w, std::greater<float>());
    for (std::int64_t e = w; e < n; ++e) {
      if (score[e] <= best[0]) continue;
      std::pop_heap(best, best + w, std::greater<float>());
      best[w - 1] = score[e];
      std::push_heap(best, best + w, std::greater<float>());
    }
    const float t = best[0];
    std::int64_t above = 0;
    for (std::int64_t e = 0; e < n; ++e) above += score[e] > t;
    std::int64_t ties = w - above;
    float* members = (keys ? key_members_.data() + (r * k_ + c0 + c) * wk_ : query_members_.data() + (r * k_ + c0 + c) * wq_);
    for (std::int64_t e = 0, taken = 0; e < n && taken < w; ++e) {
      if (score[e] > t || (score[e] == t && ties-- > 0)) members[taken++] = index_value(position(e));
    }
  }
}

void RoutingRun::attend_cluster(std::int64_t r, std::int64_t c, int thread) {
  const std::int64_t h = head_of(r), cluster = r * k_ + c;
  const float* q_members = query_members_.data() + cluster * wq_;
  const float* k_members = key_members_.data() + cluster * wk_;
  auto Q = qc_->matrix(thread), K = kc_->matrix(thread), V = vc_->matrix(thread), P = probs_->matrix(thread);
  for (std::int64_t a = 0; a < wq_; ++a) Q.row(a) = in_.q.matrix(h).row(as_index(q_members[a]));
  for (std::int64_t b = 0; b < wk_; ++b) {
    K.row(b) = in_.k.matrix(h).row(as_index(k_members[b]));
    V.row(b) = in_.v.matrix(h).row(as_index(k_members[b]));
  }
  P.noalias() = (Q * K.transpose()) * scale_;
  float* seen = cluster_seen_.data() + cluster * wq_;
  for (std::int64_t a = 0; a < wq_; ++a) {
    // Keys are sorted by position, so the keys a causal query may see form a prefix.
    std::int64_t visible = wk_;
    if (in_.causal) visible = std::upper_bound(k_members, k_members + wk_, q_members[a]) - k_members;
    seen[a] = softmax_prefix(P.row(a), visible) ? 1.0f : 0.0f;
  }
  cluster_out_.matrix(cluster).noalias() = P * V;
  if (tracing_) cluster_probs_.matrix(cluster) = P;
}

void RoutingRun::combine_head(std::int64_t r, Tensor& out, Tensor* weights) {
  const std::int64_t h = head_of(r);
  auto o = out.matrix(h);
  o.setZero();
  float* m = averaged_.data() + r * Lq_;
  for (std::int64_t c = 0; c < k_; ++c) {
    const std::int64_t cluster = r * k_ + c;
    const float* q_members = query_members_.data() + cluster * wq_;
    const float* k_members = key_members_.data() + cluster * wk_;
    const float* seen = cluster_seen_.data() + cluster * wq_;
    const auto oc = cluster_out_.matrix(cluster);
    for (std::int64_t a = 0; a < wq_; ++a) {
      if (seen[a] == 0.0f) continue;
      const std::int64_t i = as_index(q_members[a]);
      o.row(i) += oc.row(a);
      m[i] += 1.0f;
      if (weights) {
        const auto pc = cluster_probs_.matrix(cluster);
        for (std::int64_t b = 0; b < wk_; ++b) weights->at(h, i, as_index(k_members[b])) += pc(a, b);
      }
    }
  }
  for (std::int64_t i = 0; i < Lq_; ++i) {
    if (m[i] <= 1.0f) continue;  // 0: output stays 0; 1: already the mean
    o.row(i) /= m[i];
    if (weights) weights->matrix(h).row(i) /= m[i];
  }
}

// ---- trace extras -----------------------------------------------------------------------------------

void RoutingRun::trace_head(std::int64_t r) {
  const std::int64_t h = head_of(r);
  RoutingHeadTrace& t = head_traces_[static_cast<std::size_t>(h)];
  const auto copy_members = [&](const Tensor& members, std::int64_t w, std::vector<std::int32_t>& dst,
                                std::vector<std::int32_t>& counts) {
    dst.resize(static_cast<std::size_t>(k_ * w));
    const float* src = members.data() + r * k_ * w;
    for (std::int64_t e = 0; e < k_ * w; ++e) {
      dst[static_cast<std::size_t>(e)] = static_cast<std::int32_t>(as_index(src[e]));
      ++counts[static_cast<std::size_t>(dst[static_cast<std::size_t>(e)])];
    }
  };
  t.query_clusters.assign(static_cast<std::size_t>(Lq_), 0);
  t.key_clusters.assign(static_cast<std::size_t>(Lk_), 0);
  copy_members(query_members_, wq_, t.query_members, t.query_clusters);
  copy_members(key_members_, wk_, t.key_members, t.key_clusters);
  t.query_averaged.resize(static_cast<std::size_t>(Lq_));
  for (std::int64_t i = 0; i < Lq_; ++i) {
    const auto m = static_cast<std::int32_t>(averaged_.at(r, i));
    t.query_averaged[static_cast<std::size_t>(i)] = m;
    if (m == 0) t.unrouted_queries.push_back(static_cast<std::int32_t>(i));
  }
  // One plane per head, fitted once to all its normalised points.
  RowMatrix pool(pool_, d_);
  for (std::int64_t p = 0; p < pool_; ++p) normalised_point(h, p, pool.row(p));
  const Projection2D plane = pca_2d(pool);
  t.explained[0] = plane.explained[0];
  t.explained[1] = plane.explained[1];
  t.query_xy = plane.coords.topRows(Lq_);
  RowMatrix keys(Lk_, d_);
  for (std::int64_t j = 0; j < Lk_; ++j) keys.row(j) = in_.k.matrix(h).row(j) * static_cast<float>(row_norm_inverse(in_.k.matrix(h).row(j)));
  t.key_xy = project(plane, keys);
  t.centroid_xy = Tensor::uninitialized({t.steps, k_, 2});
  for (std::int64_t st = 0; st < t.steps; ++st) t.centroid_xy.matrix(st) = project(plane, t.centroids.matrix(st));
}

Tensor RoutingAttention::forward(const AttentionInput& input, Trace* trace) const {
  RoutingRun run(input, trace != nullptr);
  return run.run(trace);
}

// Held throughout: the key positions [Lk], the output, the weights (trace). The local heads'
// logits per thread come and go first. Routed heads (R of them) then hold the buffers declared
// in RoutingRun (inverse norms, centroids, nearest clusters, partial sums and counts, members,
// cluster outputs and flags, averaged counts; A_c with a trace) and per-thread scratch rows:
// all phases' at once when each thread runs whole heads (R >= threads), else phase by phase
// (k-means scores with the partial sums; member scores; cluster q, k, v, A), the partial sums
// and each phase's scratch freed before the next. A trace adds each routed head's centroids per
// step [S, k, d] and their plane coordinates [S, k, 2].
std::int64_t RoutingAttention::workspace_bytes(const AttentionShape& s, const Params& p) const {
  const std::int64_t H = s.heads, Lq = s.lq, Lk = s.lk, d = s.d, dv = s.dv;
  const std::int64_t local = p.get_int("local_heads");
  if (local > H) throw ParamError("local_heads=" + std::to_string(local) + " is more than the " + std::to_string(H) + " heads");
  std::int64_t k = p.get_int("n_clusters");
  if (k == 0) k = std::max<std::int64_t>(1, std::llround(std::sqrt(static_cast<double>(Lk))));
  std::int64_t window = p.get_int("window");
  if (window == 0) window = (Lk + k - 1) / k;
  const std::int64_t wq = std::min(window, Lq), wk = std::min(window, Lk), R = H - local;
  const std::int64_t threads = std::max(1, omp_get_max_threads());
  const auto scratch = [&](std::int64_t rows, std::int64_t cols) {  // as ThreadScratch allocates
    return float_bytes(threads * ((std::max<std::int64_t>(1, rows * cols) + 15) / 16 * 16));
  };
  const std::int64_t held = float_bytes(Lk + H * Lq * dv + (s.trace ? H * Lq * Lk : 0));
  std::int64_t local_phase = 0;
  if (local > 0) {
    const std::int64_t before = s.causal ? window - 1 : (window - 1) / 2, after = s.causal ? 0 : window - 1 - before;
    local_phase = scratch(kLocalBlock, std::min(Lk, kLocalBlock + before + after));
  }
  if (R == 0) return held + local_phase;
  const std::int64_t blocks = (Lq + kPointBlock - 1) / kPointBlock + (Lk + kPointBlock - 1) / kPointBlock;
  const std::int64_t steps = p.get_int("kmeans_iters") + 1;
  const std::int64_t buffers =
      float_bytes(R * (Lq + Lk + k * d + Lq + Lk + k * wq + k * wk + k * wq * dv + k * wq + Lq) + (s.trace ? R * k * wq * wk : 0));
  const std::int64_t partial_sums = float_bytes(R * blocks * k * d), partial_counts = float_bytes(R * blocks * k);
  const std::int64_t kmeans = scratch(kPointBlock, k);
  const std::int64_t members = scratch(std::max(Lq, Lk), kClusterGroup) + scratch(1, std::max(Lq, Lk));
  const std::int64_t heap = scratch(1, std::max(wq, wk));
  const std::int64_t attention = scratch(wq, d) + scratch(wk, d) + scratch(wk, dv) + scratch(wq, wk);
  const std::int64_t centroids = s.trace ? float_bytes(R * steps * k * d) : 0;
  const std::int64_t planes = s.trace ? float_bytes(R * steps * k * 2) : 0;
  std::int64_t routed = 0;
  if (R >= threads) {
    routed = buffers + partial_sums + partial_counts + kmeans + members + heap + attention + centroids + planes;
  } else {
    routed = buffers + partial_counts + centroids +
             std::max({partial_sums + kmeans, members + heap, heap + attention + planes});
  }
  return held + std::max(local_phase, routed);
}

// ---- JSON -------------------------------------------------------------------------------------------

nlohmann::json int_table(const std::vector<std::int32_t>& values, std::int64_t rows, std::int64_t cols) {
  nlohmann::json table = nlohmann::json::array();
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto first = values.begin() + r * cols;
    table.push_back(std::vector<std::int32_t>(first, first + cols));
  }
  return table;
}

nlohmann::json float_table(const float* values, std::int64_t rows, std::int64_t cols) {
  nlohmann::json table = nlohmann::json::array();
  for (std::int64_t r = 0; r < rows; ++r) table.push_back(std::vector<float>(values + r * cols, values + (r + 1) * cols));
  return table;
}

nlohmann::json settings_json(const RoutingSettings& s) {
  return {{"n_clusters", s.n_clusters}, {"window", s.window},           {"query_window", s.query_window},
          {"key_window", s.key_window}, {"kmeans_iters", s.kmeans_iters}, {"ema_decay", s.ema_decay},
          {"local_heads", s.local_heads}, {"causal", s.causal}};
}

}  // namespace

std::int32_t RoutingHeadTrace::nearest_query_cluster(std::int64_t step, std::int64_t query) const {
  const std::int64_t L = steps > 0 ? static_cast<std::int64_t>(query_nearest.size()) / steps : 0;
  return query_nearest.at(static_cast<std::size_t>(step * L + query));
}

std::int32_t RoutingHeadTrace::nearest_key_cluster(std::int64_t step, std::int64_t key) const {
  const std::int64_t L = steps > 0 ? static_cast<std::int64_t>(key_nearest.size()) / steps : 0;
  return key_nearest.at(static_cast<std::size_t>(step * L + key));
}

nlohmann::json RoutingExtras::head_to_json(std::int64_t head) const {
  const RoutingHeadTrace& t = this->head(head);
  nlohmann::json j;
  j["kind"] = "routing";
  j["head"] = head;
  j["settings"] = settings_json(settings_);
  j["queries"] = queries_;
  j["keys"] = keys_;
  j["local"] = t.local;
  if (t.local) return j;
  const std::int64_t S = t.steps, k = settings_.n_clusters;
  j["steps"] = S;
  nlohmann::json centroids = nlohmann::json::array();
  for (std::int64_t s = 0; s < S; ++s) {
    centroids.push_back(float_table(t.centroids.data() + s * k * t.centroids.dim(2), k, t.centroids.dim(2)));
  }
  j["centroids"] = std::move(centroids);
  j["query_nearest"] = int_table(t.query_nearest, S, queries_);
  j["key_nearest"] = int_table(t.key_nearest, S, keys_);
  j["query_occupancy"] = int_table(t.query_occupancy, S, k);
  j["key_occupancy"] = int_table(t.key_occupancy, S, k);
  j["query_members"] = int_table(t.query_members, k, settings_.query_window);
  j["key_members"] = int_table(t.key_members, k, settings_.key_window);
  j["query_clusters"] = t.query_clusters;
  j["key_clusters"] = t.key_clusters;
  j["query_averaged"] = t.query_averaged;
  j["unrouted_queries"] = t.unrouted_queries;
  nlohmann::json pca;
  pca["explained"] = {t.explained[0], t.explained[1]};
  pca["query_xy"] = float_table(t.query_xy.data(), t.query_xy.rows(), 2);
  pca["key_xy"] = float_table(t.key_xy.data(), t.key_xy.rows(), 2);
  nlohmann::json cxy = nlohmann::json::array();
  for (std::int64_t s = 0; s < S; ++s) cxy.push_back(float_table(t.centroid_xy.data() + s * k * 2, k, 2));
  pca["centroid_xy"] = std::move(cxy);
  j["pca"] = std::move(pca);
  return j;
}

nlohmann::json RoutingExtras::to_json() const {
  nlohmann::json j;
  j["kind"] = "routing";
  j["settings"] = settings_json(settings_);
  j["queries"] = queries_;
  j["keys"] = keys_;
  nlohmann::json heads = nlohmann::json::array();
  for (std::int64_t h = 0; h < head_count(); ++h) heads.push_back(head_to_json(h));
  j["heads"] = std::move(heads);
  return j;
}

std::unique_ptr<Attention> make_routing_attention() { return std::make_unique<RoutingAttention>(); }

}  // namespace attnlab
