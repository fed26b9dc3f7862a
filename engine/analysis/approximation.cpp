#include "analysis/approximation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"

namespace attnlab {
namespace {

// The k largest entries of row[0..n) (ties to the lower index), ascending by index, in O(n·k).
void top_k(const float* row, std::int64_t n, int k, std::vector<std::int64_t>& index) {
  index.clear();
  auto insert = [&](std::int64_t j) {
    // index holds the current top k sorted by (value desc, index asc); the last is the weakest.
    if (static_cast<int>(index.size()) == k) {
      if (!(row[j] > row[index.back()])) return;  // equal values keep the lower index already held
      index.pop_back();
    }
    auto at = index.begin();
    while (at != index.end() && (row[*at] > row[j] || (row[*at] == row[j] && *at < j))) ++at;
    index.insert(at, j);
  };
  std::int64_t j = 0;
  for (; j < n && static_cast<int>(index.size()) < k; ++j) insert(j);
  // Once k are held, a block of keys matters only if one of them beats the weakest held value:
  // one vectorised comparison per 16 keys instead of a scalar test per key.
  constexpr std::int64_t kBlock = 16;
  for (; j + kBlock <= n; j += kBlock) {
    const float bar = row[index.back()];
    if (!(Eigen::Map<const Eigen::Array<float, kBlock, 1>>(row + j) > bar).any()) continue;
    for (std::int64_t b = j; b < j + kBlock; ++b) insert(b);
  }
  for (; j < n; ++j) insert(j);
  std::sort(index.begin(), index.end());
}

// Sums over the rows of one head, combined into metrics afterwards.
struct HeadSums {
  double diff = 0, norm = 0, kl = 0, overlap = 0;
  std::int64_t rows = 0;
};

// Also the per-row KL and overlap into row_kl / row_overlap (length Lq, may be null).
HeadSums head_sums(const Tensor& exact_weights, const Tensor& exact_out, const Tensor& weights, const Tensor& out,
                   int k, std::int64_t h, float* row_kl = nullptr, float* row_overlap = nullptr) {
  const std::int64_t Lq = weights.dim(1), Lk = weights.dim(2);
  HeadSums s;
  const auto e_out = exact_out.matrix(h), a_out = out.matrix(h);
  s.diff = (a_out - e_out).cast<double>().squaredNorm();
  s.norm = e_out.cast<double>().squaredNorm();
  std::vector<std::int64_t> exact_top, approx_top, common;
  Eigen::ArrayXf p(Lk), q(Lk);
  for (std::int64_t i = 0; i < Lq; ++i) {
    const Eigen::Map<const Eigen::ArrayXf> e(exact_weights.data() + (h * Lq + i) * Lk, Lk);
    const Eigen::Map<const Eigen::ArrayXf> a(weights.data() + (h * Lq + i) * Lk, Lk);
    const double exact_mass = e.cast<double>().sum();
    if (exact_mass <= 0.0) continue;  // a query that sees no key exactly: nothing to compare
    const double approx_mass = a.max(0.0f).cast<double>().sum();
    p = e / static_cast<float>(exact_mass);
    q = approx_mass > 0.0 ? (a.max(0.0f) / static_cast<float>(approx_mass)).eval() : Eigen::ArrayXf::Zero(Lk).eval();
    q = q.max(static_cast<float>(kKlFloor));
    // Σ p log(p/q) over p > 0, vectorised: a p = 0 term is 0 · log(1e-38 / q), a finite log
    // (q ≥ kKlFloor), so it adds exactly 0 without a select (which Eigen 3.4 evaluates one scalar
    // log at a time).
    const double kl = (p * (p.max(1e-38f) / q).log()).cast<double>().sum();
    s.kl += kl;
    top_k(e.data(), Lk, k, exact_top);
    top_k(a.data(), Lk, k, approx_top);
    common.clear();
    std::set_intersection(exact_top.begin(), exact_top.end(), approx_top.begin(), approx_top.end(),
                          std::back_inserter(common));
    const double overlap = static_cast<double>(common.size()) / k;
    s.overlap += overlap;
    ++s.rows;
    if (row_kl) row_kl[i] = static_cast<float>(kl);
    if (row_overlap) row_overlap[i] = static_cast<float>(overlap);
  }
  return s;
}

ApproximationMetrics metrics_from(const HeadSums& s, int k) {
  ApproximationMetrics m;
  m.topk = k;
  m.rows = s.rows;
  m.rel_output_error = s.norm > 0.0 ? std::sqrt(s.diff / s.norm) : std::sqrt(s.diff);
  if (s.rows > 0) {
    m.mean_row_kl = s.kl / static_cast<double>(s.rows);
    m.topk_overlap = s.overlap / static_cast<double>(s.rows);
  }
  return m;
}

void check_shapes(const Tensor& exact_weights, const Tensor& exact_out, const Tensor& weights, const Tensor& out) {
  if (exact_weights.shape() != weights.shape() || exact_out.shape() != out.shape() || exact_weights.rank() != 3 ||
      exact_out.rank() != 3 || exact_weights.dim(0) != exact_out.dim(0) || exact_weights.dim(1) != exact_out.dim(1)) {
    throw ShapeError("cannot compare attention of shapes weights " + weights.shape_string() + " / exact " +
                     exact_weights.shape_string() + ", outputs " + out.shape_string() + " / exact " +
                     exact_out.shape_string());
  }
}

int effective_k(int topk, std::int64_t keys) { return static_cast<int>(std::min<std::int64_t>(std::max(topk, 1), keys)); }

}  // namespace

nlohmann::json ApproximationMetrics::to_json() const {
  return nlohmann::json{{"rel_output_error", rel_output_error},
                        {"mean_row_kl", mean_row_kl},
                        {"topk_overlap", topk_overlap},
                        {"topk", topk},
                        {"rows", rows}};
}

ApproximationMetrics compare_attention(const Tensor& exact_weights, const Tensor& exact_out, const Tensor& weights,
                                       const Tensor& out, int topk, int head) {
  check_shapes(exact_weights, exact_out, weights, out);
  const std::int64_t H = weights.dim(0);
  if (head >= H) throw ShapeError("head " + std::to_string(head) + " does not exist; heads 0.." + std::to_string(H - 1));
  const int k = effective_k(topk, weights.dim(2));
  if (head >= 0) return metrics_from(head_sums(exact_weights, exact_out, weights, out, k, head), k);
  return compare_attention_by_head(exact_weights, exact_out, weights, out, topk).all_heads;
}

HeadwiseMetrics compare_attention_by_head(const Tensor& exact_weights, const Tensor& exact_out, const Tensor& weights,
                                          const Tensor& out, int topk) {
  check_shapes(exact_weights, exact_out, weights, out);
  const std::int64_t H = weights.dim(0);
  const int k = effective_k(topk, weights.dim(2));
  const std::int64_t Lq = weights.dim(1);
  HeadwiseMetrics result;
  result.row_kl = Tensor::uninitialized({H, Lq});
  result.row_topk_overlap = Tensor::uninitialized({H, Lq});
  std::fill_n(result.row_kl.data(), result.row_kl.size(), std::numeric_limits<float>::quiet_NaN());
  std::fill_n(result.row_topk_overlap.data(), result.row_topk_overlap.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<HeadSums> sums(static_cast<std::size_t>(H));
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t h = 0; h < H; ++h)
    sums[static_cast<std::size_t>(h)] = head_sums(exact_weights, exact_out, weights, out, k, h,
                                                  result.row_kl.data() + h * Lq, result.row_topk_overlap.data() + h * Lq);
  HeadSums total;
  for (const HeadSums& s : sums) {
    result.per_head.push_back(metrics_from(s, k));
    total.diff += s.diff;
    total.norm += s.norm;
    total.kl += s.kl;
    total.overlap += s.overlap;
    total.rows += s.rows;
  }
  result.all_heads = metrics_from(total, k);
  return result;
}

}  // namespace attnlab
