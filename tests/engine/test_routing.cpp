// Routing Transformer attention ("routing") against references written here in double
// precision: a dense (masked) softmax, a direct softmax inside each cluster the trace lists, a
// k-means step recomputed from the traced centroids, and a banded softmax for local heads.
// Plus the ALGORITHMS.md §3 properties: one cluster with a window ≥ L is softmax; every cluster
// holds exactly `window` queries and keys, by position; decay 0 gives normalised batch means; a
// query in m clusters gets the mean of its m outputs; causal weights are exactly 0 on later keys;
// fast path == traced path; W·V == out; seeds; parameter errors.
#include <omp.h>

#include <QtTest>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "analysis/projection.h"
#include "attention/registry.h"
#include "attention/routing.h"
#include "core/memory_meter.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

using Matrix = std::vector<std::vector<double>>;

const Attention& routing() { return Registry::builtin().get("routing"); }

struct Setup {
  std::int64_t n_clusters = 0, window = 0, kmeans_iters = 10, local_heads = 0;
  double ema_decay = 0.5;
  bool causal = false;
  std::uint64_t seed = 7;
  const std::vector<std::uint8_t>* padding = nullptr;
};

Params params_for(const Setup& s) {
  return test::params_of("routing", {{"n_clusters", s.n_clusters},
                                     {"window", s.window},
                                     {"kmeans_iters", s.kmeans_iters},
                                     {"ema_decay", s.ema_decay},
                                     {"local_heads", s.local_heads}});
}

struct Run {
  Tensor out;
  Trace trace;
  const RoutingExtras* extras = nullptr;
};

Run run_routing(const Tensor& q, const Tensor& k, const Tensor& v, const Setup& s, bool with_trace = true) {
  const Params p = params_for(s);
  Run run;
  run.out = run_attention(routing(), AttentionInput{q, k, v, s.causal, s.padding, &p, s.seed},
                          with_trace ? &run.trace : nullptr);
  if (with_trace) run.extras = dynamic_cast<const RoutingExtras*>(run.trace.extras.get());
  return run;
}

double dot(const Tensor& a, std::int64_t h, std::int64_t i, const Tensor& b, std::int64_t j) {
  double s = 0.0;
  for (std::int64_t c = 0; c < a.dim(2); ++c) s += static_cast<double>(a.at(h, i, c)) * b.at(h, j, c);
  return s;
}

// Softmax of q_i over the listed keys (visible ones only), in double: weights per listed key.
std::vector<double> softmax_over(const Tensor& q, const Tensor& k, std::int64_t h, std::int64_t i,
                                 const std::vector<std::int64_t>& keys, bool causal) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.dim(2)));
  std::vector<double> w(keys.size(), 0.0);
  double top = -1e300;
  for (std::size_t b = 0; b < keys.size(); ++b) {
    if (causal && keys[b] > i) continue;
    top = std::max(top, dot(q, h, i, k, keys[b]) * scale);
  }
  double total = 0.0;
  for (std::size_t b = 0; b < keys.size(); ++b) {
    if (causal && keys[b] > i) continue;
    w[b] = std::exp(dot(q, h, i, k, keys[b]) * scale - top);
    total += w[b];
  }
  for (double& x : w) x = total > 0 ? x / total : 0.0;
  return w;
}

// Dense softmax over every key (causal: j <= i), as an [Lq, Lk] matrix.
Matrix dense_weights(const Tensor& q, const Tensor& k, std::int64_t h, bool causal) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(k.dim(1)));
  for (std::size_t j = 0; j < all.size(); ++j) all[j] = static_cast<std::int64_t>(j);
  Matrix w;
  for (std::int64_t i = 0; i < q.dim(1); ++i) w.push_back(softmax_over(q, k, h, i, all, causal));
  return w;
}

std::vector<double> apply(const Matrix& w, const Tensor& v, std::int64_t h, std::int64_t i) {
  std::vector<double> o(static_cast<std::size_t>(v.dim(2)), 0.0);
  for (std::size_t j = 0; j < w[static_cast<std::size_t>(i)].size(); ++j)
    for (std::int64_t c = 0; c < v.dim(2); ++c) o[static_cast<std::size_t>(c)] += w[static_cast<std::size_t>(i)][j] * v.at(h, static_cast<std::int64_t>(j), c);
  return o;
}

double relative_error(const std::vector<double>& got, const std::vector<double>& want) {
  double diff = 0.0, norm = 0.0;
  for (std::size_t c = 0; c < want.size(); ++c) {
    diff += (got[c] - want[c]) * (got[c] - want[c]);
    norm += want[c] * want[c];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
}

std::vector<double> out_row(const Tensor& out, std::int64_t h, std::int64_t i) {
  std::vector<double> o;
  for (std::int64_t c = 0; c < out.dim(2); ++c) o.push_back(out.at(h, i, c));
  return o;
}

std::vector<double> unit(const Tensor& x, std::int64_t h, std::int64_t i) {
  std::vector<double> u;
  double n = 0.0;
  for (std::int64_t c = 0; c < x.dim(2); ++c) {
    u.push_back(x.at(h, i, c));
    n += u.back() * u.back();
  }
  n = std::sqrt(n);
  for (double& e : u) e = n > 0 ? e / n : 0.0;
  return u;
}

std::vector<std::int64_t> members_of(const std::vector<std::int32_t>& table, std::int64_t cluster, std::int64_t w) {
  return std::vector<std::int64_t>(table.begin() + cluster * w, table.begin() + (cluster + 1) * w);
}

// Centroid c of step s, from the trace, in double.
std::vector<double> centroid(const RoutingHeadTrace& t, std::int64_t s, std::int64_t c) {
  const std::int64_t k = t.centroids.dim(1), d = t.centroids.dim(2);
  std::vector<double> mu;
  for (std::int64_t e = 0; e < d; ++e) mu.push_back(t.centroids.data()[(s * k + c) * d + e]);
  return mu;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t e = 0; e < a.size(); ++e) s += a[e] * b[e];
  return s;
}

}  // namespace

class TestRouting : public QObject {
  Q_OBJECT

 private slots:
  // One cluster that takes every token is exact softmax (the official ÷(count+ε) is not used).
  void one_cluster_with_full_window_is_softmax() {
    for (bool causal : {false, true}) {
      const Tensor q = random_tensor({2, 37, 16}, 1), k = random_tensor({2, 37, 16}, 2), v = random_tensor({2, 37, 8}, 3);
      for (std::int64_t window : {std::int64_t{0}, std::int64_t{37}, std::int64_t{500}}) {
        Setup s;
        s.n_clusters = 1;
        s.window = window;
        s.causal = causal;
        const Run traced = run_routing(q, k, v, s);
        const Run fast = run_routing(q, k, v, s, false);
        for (std::int64_t h = 0; h < 2; ++h) {
          const Matrix w = dense_weights(q, k, h, causal);
          for (std::int64_t i = 0; i < 37; ++i) {
            const std::vector<double> want = apply(w, v, h, i);
            QVERIFY2(relative_error(out_row(fast.out, h, i), want) < 0.01, "fast path differs from dense softmax");
            QVERIFY2(relative_error(out_row(traced.out, h, i), want) < 0.01, "traced path differs from dense softmax");
            for (std::int64_t j = 0; j < 37; ++j) {
              QVERIFY(std::abs(traced.trace.weights.at(h, i, j) - w[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]) < 1e-5);
            }
          }
        }
      }
    }
  }

  // Every cluster holds exactly `window` queries and keys, distinct and ascending, and they are
  // the closest ones to the final centroid (score x̂·μ recomputed here).
  void clusters_hold_window_tokens_sorted_and_closest() {
    const Tensor q = random_tensor({2, 40, 12}, 4), k = random_tensor({2, 40, 12}, 5), v = random_tensor({2, 40, 6}, 6);
    Setup s;
    s.n_clusters = 6;
    s.window = 5;
    const Run run = run_routing(q, k, v, s);
    QVERIFY(run.extras);
    QCOMPARE(run.extras->settings().query_window, std::int64_t{5});
    QCOMPARE(run.extras->settings().key_window, std::int64_t{5});
    for (std::int64_t h = 0; h < 2; ++h) {
      const RoutingHeadTrace& t = run.extras->head(h);
      QCOMPARE(static_cast<std::int64_t>(t.query_members.size()), 6 * 5);
      QCOMPARE(static_cast<std::int64_t>(t.key_members.size()), 6 * 5);
      for (std::int64_t c = 0; c < 6; ++c) {
        const std::vector<double> mu = centroid(t, t.steps - 1, c);
        for (int side = 0; side < 2; ++side) {
          const Tensor& x = side ? k : q;
          const auto members = members_of(side ? t.key_members : t.query_members, c, 5);
          for (std::size_t a = 1; a < members.size(); ++a) QVERIFY(members[a - 1] < members[a]);
          double weakest = 1e300;
          for (auto m : members) weakest = std::min(weakest, dot(unit(x, h, m), mu));
          const std::set<std::int64_t> in(members.begin(), members.end());
          for (std::int64_t i = 0; i < 40; ++i) {
            if (!in.count(i)) QVERIFY(dot(unit(x, h, i), mu) <= weakest + 1e-5);
          }
        }
      }
    }
    // The window is clamped to the length.
    s.window = 100;
    const Run wide = run_routing(q, k, v, s);
    QCOMPARE(wide.extras->settings().query_window, std::int64_t{40});
    QCOMPARE(static_cast<std::int64_t>(wide.extras->head(0).query_members.size()), 6 * 40);
  }

  // Auto values: k = round(√L), window = ceil(L / k).
  void automatic_settings() {
    const Tensor q = random_tensor({1, 50, 8}, 1), k = random_tensor({1, 50, 8}, 2), v = random_tensor({1, 50, 8}, 3);
    const Run run = run_routing(q, k, v, Setup{});
    QCOMPARE(run.extras->settings().n_clusters, std::int64_t{7});  // round(7.07)
    QCOMPARE(run.extras->settings().window, std::int64_t{8});      // ceil(50 / 7)
    QCOMPARE(run.extras->head(0).steps, std::int64_t{11});
  }

  // ema_decay 0, one step: centroids = normalised means of the points nearest to the initial
  // centroids; with decay 0.5 the EMA of the two. Nearest clusters recomputed here in double.
  void kmeans_step_is_ema_of_batch_means() {
    const Tensor q = random_tensor({2, 30, 10}, 8), k = random_tensor({2, 30, 10}, 9), v = random_tensor({2, 30, 4}, 10);
    for (double decay : {0.0, 0.5, 0.9}) {
      Setup s;
      s.n_clusters = 5;
      s.kmeans_iters = 1;
      s.ema_decay = decay;
      const Run run = run_routing(q, k, v, s);
      for (std::int64_t h = 0; h < 2; ++h) {
        const RoutingHeadTrace& t = run.extras->head(h);
        QCOMPARE(t.steps, std::int64_t{2});
        std::vector<std::vector<double>> sums(5, std::vector<double>(10, 0.0));
        std::vector<int> counts(5, 0);
        for (int side = 0; side < 2; ++side) {
          for (std::int64_t i = 0; i < 30; ++i) {
            const std::vector<double> x = unit(side ? k : q, h, i);
            int best = 0;
            for (int c = 1; c < 5; ++c)
              if (dot(x, centroid(t, 0, c)) > dot(x, centroid(t, 0, best))) best = c;
            QCOMPARE(side ? t.nearest_key_cluster(0, i) : t.nearest_query_cluster(0, i), best);
            for (int e = 0; e < 10; ++e) sums[static_cast<std::size_t>(best)][static_cast<std::size_t>(e)] += x[static_cast<std::size_t>(e)];
            ++counts[static_cast<std::size_t>(best)];
          }
        }
        for (int c = 0; c < 5; ++c) {
          const std::vector<double> old = centroid(t, 0, c), got = centroid(t, 1, c);
          std::vector<double> want = old;
          if (counts[static_cast<std::size_t>(c)] > 0) {
            double n = 0.0;
            for (int e = 0; e < 10; ++e) {
              want[static_cast<std::size_t>(e)] = decay * old[static_cast<std::size_t>(e)] +
                                                  (1 - decay) * sums[static_cast<std::size_t>(c)][static_cast<std::size_t>(e)] / counts[static_cast<std::size_t>(c)];
              n += want[static_cast<std::size_t>(e)] * want[static_cast<std::size_t>(e)];
            }
            for (double& e : want) e /= std::sqrt(n);
          }
          for (int e = 0; e < 10; ++e) QVERIFY(std::abs(got[static_cast<std::size_t>(e)] - want[static_cast<std::size_t>(e)]) < 1e-5);
          QCOMPARE(t.query_occupancy[static_cast<std::size_t>(c)] + t.key_occupancy[static_cast<std::size_t>(c)], counts[static_cast<std::size_t>(c)]);
        }
      }
    }
  }

  // More clusters than points: the extra centroids are random unit vectors; one that no point is
  // nearest to keeps its centroid through every step.
  void empty_cluster_keeps_its_centroid() {
    const Tensor q = random_tensor({1, 6, 8}, 11), k = random_tensor({1, 6, 8}, 12), v = random_tensor({1, 6, 8}, 13);
    Setup s;
    s.n_clusters = 40;
    s.window = 2;
    s.kmeans_iters = 3;
    const Run run = run_routing(q, k, v, s);
    const RoutingHeadTrace& t = run.extras->head(0);
    int empty = 0;
    for (int c = 0; c < 40; ++c) {
      bool never = true;
      for (int step = 0; step < 3; ++step)
        never = never && t.query_occupancy[static_cast<std::size_t>(step * 40 + c)] == 0 && t.key_occupancy[static_cast<std::size_t>(step * 40 + c)] == 0;
      if (!never) continue;
      ++empty;
      QCOMPARE(centroid(t, 3, c), centroid(t, 0, c));
      QVERIFY(std::abs(dot(centroid(t, 0, c), centroid(t, 0, c)) - 1.0) < 1e-5);
    }
    QVERIFY(empty >= 28);  // at most 12 points can be nearest to distinct clusters
  }

  // A query in several clusters gets the mean of its outputs there: each cluster's attention is
  // recomputed here from the member lists (a direct softmax over the cluster's keys).
  void query_in_several_clusters_gets_the_mean() {
    for (bool causal : {false, true}) {
      const Tensor q = random_tensor({2, 24, 8}, 14), k = random_tensor({2, 24, 8}, 15), v = random_tensor({2, 24, 5}, 16);
      Setup s;
      s.n_clusters = 4;
      s.window = 12;
      s.causal = causal;
      const Run run = run_routing(q, k, v, s);
      const Run fast = run_routing(q, k, v, s, false);
      int multi = 0;
      for (std::int64_t h = 0; h < 2; ++h) {
        const RoutingHeadTrace& t = run.extras->head(h);
        std::vector<std::vector<double>> sum(24, std::vector<double>(5, 0.0));
        std::vector<int> m(24, 0);
        for (std::int64_t c = 0; c < 4; ++c) {
          const auto queries = members_of(t.query_members, c, 12), keys = members_of(t.key_members, c, 12);
          for (auto i : queries) {
            const std::vector<double> w = softmax_over(q, k, h, i, keys, causal);
            double total = 0.0;
            for (double x : w) total += x;
            if (total == 0.0) continue;  // sees no key in this cluster
            ++m[static_cast<std::size_t>(i)];
            for (std::size_t b = 0; b < keys.size(); ++b)
              for (int e = 0; e < 5; ++e) sum[static_cast<std::size_t>(i)][static_cast<std::size_t>(e)] += w[b] * v.at(h, keys[b], e);
          }
        }
        for (std::int64_t i = 0; i < 24; ++i) {
          const int mi = m[static_cast<std::size_t>(i)];
          QCOMPARE(t.query_averaged[static_cast<std::size_t>(i)], mi);
          multi += mi >= 2;
          std::vector<double> want(5, 0.0);
          for (int e = 0; e < 5; ++e) want[static_cast<std::size_t>(e)] = mi ? sum[static_cast<std::size_t>(i)][static_cast<std::size_t>(e)] / mi : 0.0;
          for (int e = 0; e < 5; ++e) {
            QVERIFY(std::abs(run.out.at(h, i, e) - want[static_cast<std::size_t>(e)]) < 1e-5);
            QVERIFY(std::abs(fast.out.at(h, i, e) - want[static_cast<std::size_t>(e)]) < 1e-5);
          }
          const bool listed = std::count(t.unrouted_queries.begin(), t.unrouted_queries.end(), static_cast<std::int32_t>(i)) == 1;
          QCOMPARE(listed, mi == 0);
          if (!causal) QCOMPARE(mi == 0, t.query_clusters[static_cast<std::size_t>(i)] == 0);
        }
      }
      QVERIFY2(multi > 0, "the setup must put some query in two clusters");
    }
  }

  // Cross-attention shapes (Lq != Lk) and keys that are all padded.
  void other_shapes_and_padding() {
    const Tensor q = random_tensor({2, 20, 8}, 50), k = random_tensor({2, 33, 8}, 51), v = random_tensor({2, 33, 3}, 52);
    Setup s;
    s.n_clusters = 1;
    s.window = 40;
    const Run run = run_routing(q, k, v, s);
    for (std::int64_t h = 0; h < 2; ++h) {
      const Matrix w = dense_weights(q, k, h, false);
      for (std::int64_t i = 0; i < 20; ++i) QVERIFY(relative_error(out_row(run.out, h, i), apply(w, v, h, i)) < 0.01);
    }
    QCOMPARE(run.extras->settings().query_window, std::int64_t{20});
    QCOMPARE(run.extras->settings().key_window, std::int64_t{33});
    s.n_clusters = 4;
    s.window = 6;
    s.local_heads = 1;
    const Run routed = run_routing(q, k, v, s);
    QCOMPARE(static_cast<std::int64_t>(routed.extras->head(1).key_nearest.size()), routed.extras->head(1).steps * 33);
    const std::vector<std::uint8_t> all_padded(33, 1);
    s.padding = &all_padded;
    const Run none = run_routing(q, k, v, s);
    for (std::int64_t e = 0; e < none.out.size(); ++e) QCOMPARE(none.out.data()[e], 0.0f);
    QCOMPARE(none.extras->settings().key_window, std::int64_t{0});
    QCOMPARE(static_cast<std::int64_t>(none.extras->head(1).unrouted_queries.size()), std::int64_t{20});
  }

  // Causal: exactly zero weight on later positions, rows of routed queries sum to 1, unrouted
  // queries have a zero row and output 0, and W·V == out.
  void weights_are_causal_normalised_and_applied() {
    for (bool causal : {false, true}) {
      const Tensor q = random_tensor({3, 45, 8}, 17), k = random_tensor({3, 45, 8}, 18), v = random_tensor({3, 45, 7}, 19);
      Setup s;
      s.n_clusters = 5;
      s.window = 7;
      s.causal = causal;
      s.local_heads = 1;
      const Run run = run_routing(q, k, v, s);
      int unrouted = 0;
      for (std::int64_t h = 0; h < 3; ++h) {
        const RoutingHeadTrace& t = run.extras->head(h);
        for (std::int64_t i = 0; i < 45; ++i) {
          double total = 0.0;
          std::vector<double> wv(7, 0.0);
          for (std::int64_t j = 0; j < 45; ++j) {
            const float w = run.trace.weights.at(h, i, j);
            QVERIFY(w >= 0.0f);
            if (causal && j > i) QCOMPARE(w, 0.0f);
            total += w;
            for (int e = 0; e < 7; ++e) wv[static_cast<std::size_t>(e)] += static_cast<double>(w) * v.at(h, j, e);
          }
          const bool routed = t.local || t.query_averaged[static_cast<std::size_t>(i)] > 0;
          QVERIFY(std::abs(total - (routed ? 1.0 : 0.0)) < 1e-5);
          for (int e = 0; e < 7; ++e) QVERIFY(std::abs(run.out.at(h, i, e) - wv[static_cast<std::size_t>(e)]) < 1e-5);
          if (!routed) {
            ++unrouted;
            for (int e = 0; e < 7; ++e) QCOMPARE(run.out.at(h, i, e), 0.0f);
          }
        }
      }
      if (causal) QVERIFY2(unrouted > 0, "with 5 clusters of 7, some causal query sees only later keys");
    }
  }

  // Local heads: a banded (causal) or centred sliding-window softmax built here.
  void local_heads_are_banded_softmax() {
    for (bool causal : {false, true}) {
      for (std::int64_t window : {std::int64_t{1}, std::int64_t{4}, std::int64_t{5}, std::int64_t{200}}) {
        const Tensor q = random_tensor({3, 150, 8}, 20), k = random_tensor({3, 150, 8}, 21), v = random_tensor({3, 150, 4}, 22);
        Setup s;
        s.window = window;
        s.local_heads = 2;
        s.causal = causal;
        const Run run = run_routing(q, k, v, s);
        const Run fast = run_routing(q, k, v, s, false);
        QVERIFY(run.extras->head(0).local && run.extras->head(1).local && !run.extras->head(2).local);
        const std::int64_t before = causal ? window - 1 : (window - 1) / 2, after = causal ? 0 : window - 1 - before;
        for (std::int64_t h = 0; h < 2; ++h) {
          for (std::int64_t i = 0; i < 150; ++i) {
            std::vector<std::int64_t> band;
            for (std::int64_t j = std::max<std::int64_t>(0, i - before); j <= std::min<std::int64_t>(149, i + after); ++j) band.push_back(j);
            const std::vector<double> w = softmax_over(q, k, h, i, band, causal);
            std::vector<double> want(4, 0.0);
            for (std::size_t b = 0; b < band.size(); ++b) {
              for (int e = 0; e < 4; ++e) want[static_cast<std::size_t>(e)] += w[b] * v.at(h, band[b], e);
            }
            std::size_t b = 0;
            for (std::int64_t j = 0; j < 150; ++j) {
              const bool in_band = b < band.size() && band[b] == j;
              const double expected = in_band ? w[b++] : 0.0;
              if (!in_band) QCOMPARE(run.trace.weights.at(h, i, j), 0.0f);
              QVERIFY(std::abs(run.trace.weights.at(h, i, j) - expected) < 1e-5);
            }
            for (int e = 0; e < 4; ++e) {
              QVERIFY(std::abs(run.out.at(h, i, e) - want[static_cast<std::size_t>(e)]) < 1e-4);
              QVERIFY(std::abs(fast.out.at(h, i, e) - want[static_cast<std::size_t>(e)]) < 1e-4);
            }
          }
        }
      }
    }
  }

  // The fast path (no trace) computes what the traced path computes.
  void fast_path_equals_traced_path() {
    std::vector<std::uint8_t> padding(64, 0);
    for (int j : {3, 17, 40, 63}) padding[static_cast<std::size_t>(j)] = 1;
    for (bool causal : {false, true}) {
      for (bool padded : {false, true}) {
        const Tensor q = random_tensor({4, 64, 16}, 23), k = random_tensor({4, 64, 16}, 24), v = random_tensor({4, 64, 8}, 25);
        Setup s;
        s.causal = causal;
        s.local_heads = 1;
        s.padding = padded ? &padding : nullptr;
        const Run traced = run_routing(q, k, v, s);
        const Run fast = run_routing(q, k, v, s, false);
        for (std::int64_t e = 0; e < fast.out.size(); ++e) QVERIFY(std::abs(fast.out.data()[e] - traced.out.data()[e]) < 1e-5);
        if (!padded) continue;
        // Padded keys are never members and never attended.
        for (std::int64_t h = 1; h < 4; ++h) {
          for (auto j : traced.extras->head(h).key_members) QVERIFY(!padding[static_cast<std::size_t>(j)]);
          QCOMPARE(traced.extras->head(h).key_nearest[3], -1);
        }
        for (std::int64_t h = 0; h < 4; ++h)
          for (std::int64_t i = 0; i < 64; ++i)
            for (int j : {3, 17, 40, 63}) QCOMPARE(traced.trace.weights.at(h, i, j), 0.0f);
      }
    }
  }

  // Nearest clusters at every step are the argmax over that step's centroids; the counts add up.
  void every_step_is_recorded() {
    const Tensor q = random_tensor({1, 33, 6}, 26), k = random_tensor({1, 33, 6}, 27), v = random_tensor({1, 33, 6}, 28);
    Setup s;
    s.n_clusters = 4;
    s.kmeans_iters = 5;
    const Run run = run_routing(q, k, v, s);
    const RoutingHeadTrace& t = run.extras->head(0);
    QCOMPARE(t.steps, std::int64_t{6});
    for (std::int64_t step = 0; step < 6; ++step) {
      int queries = 0, keys = 0;
      for (int c = 0; c < 4; ++c) {
        queries += t.query_occupancy[static_cast<std::size_t>(step * 4 + c)];
        keys += t.key_occupancy[static_cast<std::size_t>(step * 4 + c)];
      }
      QCOMPARE(queries, 33);
      QCOMPARE(keys, 33);
      for (std::int64_t i = 0; i < 33; ++i) {
        const std::vector<double> x = unit(q, 0, i);
        const int got = t.nearest_query_cluster(step, i);
        for (int c = 0; c < 4; ++c) QVERIFY(dot(x, centroid(t, step, c)) <= dot(x, centroid(t, step, got)) + 1e-6);
      }
    }
    // One PCA plane for all steps: centroid_xy[s] is centroid s projected with the plane that
    // maps the normalised points to query_xy / key_xy.
    RowMatrix pool(66, 6);
    for (std::int64_t i = 0; i < 33; ++i) {
      const auto uq = unit(q, 0, i), uk = unit(k, 0, i);
      for (int e = 0; e < 6; ++e) {
        pool(i, e) = static_cast<float>(uq[static_cast<std::size_t>(e)]);
        pool(33 + i, e) = static_cast<float>(uk[static_cast<std::size_t>(e)]);
      }
    }
    const Projection2D plane = pca_2d(pool);
    for (std::int64_t i = 0; i < 33; ++i) {
      for (int a = 0; a < 2; ++a) {
        QVERIFY(std::abs(t.query_xy(i, a) - plane.coords(i, a)) < 1e-4);
        QVERIFY(std::abs(t.key_xy(i, a) - plane.coords(33 + i, a)) < 1e-4);
      }
    }
    for (std::int64_t step = 0; step < 6; ++step) {
      const RowMatrix expected = project(plane, t.centroids.matrix(step));
      for (int c = 0; c < 4; ++c)
        for (int a = 0; a < 2; ++a) QVERIFY(std::abs(t.centroid_xy.matrix(step)(c, a) - expected(c, a)) < 1e-4);
    }
  }

  // Whole heads per thread or every phase spread over threads: the same numbers, bit for bit.
  void thread_count_does_not_change_the_result() {
    const Tensor q = random_tensor({3, 300, 16}, 40), k = random_tensor({3, 300, 16}, 41), v = random_tensor({3, 300, 8}, 42);
    Setup s;
    s.causal = true;
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const Run one = run_routing(q, k, v, s);
    omp_set_num_threads(4);
    const Run four = run_routing(q, k, v, s);
    const Run four_fast = run_routing(q, k, v, s, false);
    omp_set_num_threads(threads);
    for (std::int64_t e = 0; e < one.out.size(); ++e) {
      QCOMPARE(one.out.data()[e], four.out.data()[e]);
      QCOMPARE(one.out.data()[e], four_fast.out.data()[e]);
    }
    for (std::int64_t h = 0; h < 3; ++h) QCOMPARE(one.extras->head(h).key_members, four.extras->head(h).key_members);
  }

  void seeds_decide_the_clusters() {
    const Tensor q = random_tensor({2, 60, 8}, 29), k = random_tensor({2, 60, 8}, 30), v = random_tensor({2, 60, 8}, 31);
    Setup s;
    s.n_clusters = 6;
    const Run a = run_routing(q, k, v, s), b = run_routing(q, k, v, s);
    s.seed = 8;
    const Run c = run_routing(q, k, v, s);
    for (std::int64_t h = 0; h < 2; ++h) {
      QCOMPARE(a.extras->head(h).query_members, b.extras->head(h).query_members);
      QCOMPARE(a.extras->head(h).key_members, b.extras->head(h).key_members);
      QCOMPARE(std::vector<float>(a.extras->head(h).centroids.data(), a.extras->head(h).centroids.data() + a.extras->head(h).centroids.size()),
               std::vector<float>(b.extras->head(h).centroids.data(), b.extras->head(h).centroids.data() + b.extras->head(h).centroids.size()));
    }
    for (std::int64_t e = 0; e < a.out.size(); ++e) QCOMPARE(a.out.data()[e], b.out.data()[e]);
    QVERIFY(a.extras->head(0).centroids.matrix(0) != c.extras->head(0).centroids.matrix(0));
    QVERIFY(a.extras->head(0).query_members != c.extras->head(0).query_members ||
            a.extras->head(1).query_members != c.extras->head(1).query_members);
  }

  void parameter_errors_name_the_range() {
    Params p(routing().spec().params);
    EXPECT_ERROR(ParamError, p.set("n_clusters", std::int64_t{300}), "n_clusters: an integer in [0, 256]");
    EXPECT_ERROR(ParamError, p.set("kmeans_iters", std::int64_t{51}), "kmeans_iters: an integer in [0, 50]");
    EXPECT_ERROR(ParamError, p.set("ema_decay", 1.5), "ema_decay: a number in [0, 1]");
    EXPECT_ERROR(ParamError, p.set("window", std::int64_t{-1}), "window: an integer in [0, 65536]");
    EXPECT_ERROR(ParamError, p.set("local_heads", std::int64_t{65}), "local_heads: an integer in [0, 64]");
    const Tensor q = random_tensor({4, 10, 8}, 1);
    Setup s;
    s.local_heads = 5;
    EXPECT_ERROR(ParamError, run_routing(q, q, q, s), "local_heads=5 is more than the 4 heads of this attention; allowed 0..4");
    s.local_heads = 4;  // every head local is allowed
    const Run all_local = run_routing(q, q, q, s);
    QVERIFY(all_local.extras->head(3).local);
  }

  void schema_defaults() {
    const Params p(routing().spec().params);
    QCOMPARE(p.get_int("n_clusters"), std::int64_t{0});
    QCOMPARE(p.get_int("window"), std::int64_t{0});
    QCOMPARE(p.get_int("kmeans_iters"), std::int64_t{10});
    QCOMPARE(p.get_float("ema_decay"), 0.5);
    QCOMPARE(p.get_int("local_heads"), std::int64_t{0});
  }

  void cancellation_stops_the_run() {
    const Tensor q = random_tensor({2, 50, 8}, 1);
    const Params p(routing().spec().params);
    CancelToken token;
    token.cancel();
    EXPECT_ERROR(CancelledError, run_attention(routing(), AttentionInput{q, q, q, false, nullptr, &p, 1, &token}, nullptr), "cancelled");
  }

  // Without a trace nothing of size L×L is allocated.
  void fast_path_memory_is_far_below_l_squared() {
    const std::int64_t L = 2048;
    const Tensor q = random_tensor({1, L, 32}, 1), k = random_tensor({1, L, 32}, 2), v = random_tensor({1, L, 32}, 3);
    const Params p(routing().spec().params);
    Tensor out;
    const std::int64_t used =
        test::peak_bytes_of([&] { out = run_attention(routing(), AttentionInput{q, k, v, true, nullptr, &p, 1}, nullptr); });
    QVERIFY2(used < L * L * 4 / 8, ("peak " + std::to_string(used) + " bytes").c_str());
    QCOMPARE(out.dim(1), L);
  }

  void json_has_every_table() {
    const Tensor q = random_tensor({2, 12, 4}, 1), k = random_tensor({2, 12, 4}, 2);
    Setup s;
    s.n_clusters = 3;
    s.kmeans_iters = 2;
    s.local_heads = 1;
    const Run run = run_routing(q, k, k, s);
    const nlohmann::json j = run.extras->to_json();
    QCOMPARE(j["kind"].get<std::string>(), std::string("routing"));
    QCOMPARE(j["heads"].size(), std::size_t{2});
    QCOMPARE(j["heads"][0]["local"].get<bool>(), true);
    const nlohmann::json& h = j["heads"][1];
    QCOMPARE(h["centroids"].size(), std::size_t{3});
    QCOMPARE(h["centroids"][2].size(), std::size_t{3});
    QCOMPARE(h["centroids"][2][1].size(), std::size_t{4});
    QCOMPARE(h["query_nearest"][1].size(), std::size_t{12});
    QCOMPARE(h["query_members"].size(), std::size_t{3});
    QCOMPARE(h["query_members"][0].size(), std::size_t{4});
    QCOMPARE(h["pca"]["centroid_xy"][2].size(), std::size_t{3});
    QCOMPARE(h["query_members"][2][3].get<int>(), run.extras->head(1).query_members[11]);
    QCOMPARE(h["settings"]["window"].get<int>(), 4);
  }
};

QTEST_GUILESS_MAIN(TestRouting)
#include "test_routing.moc"
