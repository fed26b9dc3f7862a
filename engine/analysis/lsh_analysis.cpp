#include "analysis/lsh_analysis.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>

#include "analysis/projection.h"
#include "core/error.h"

namespace attnlab {
namespace {

constexpr float kTinyNorm = 1e-12f;

// The exact methods' bucket borders: halfway between the directions of neighbouring buckets.
std::vector<float> circle_boundaries(int sectors) {
  std::vector<float> out;
  const double step = 2.0 * std::numbers::pi / sectors;
  for (int s = 0; s < sectors; ++s) out.push_back(static_cast<float>(step * (s + 0.5)));
  return out;
}

LshAngleView sign_axis_view(const Eigen::Ref<const RowMatrix>& vectors, const Eigen::Ref<const RowMatrix>& rotation) {
  LshAngleView view;
  view.method = LshAngleMethod::SignAxis;
  const Eigen::Index n = vectors.rows();
  const float r_norm = rotation.col(0).norm();
  const RowVector r_hat = rotation.col(0).transpose() / std::max(r_norm, kTinyNorm);
  // Unit vectors, their cosine with r, and the part orthogonal to r.
  RowMatrix residual(n, vectors.cols());
  Eigen::VectorXf cosine(n);
  std::vector<bool> zero(static_cast<std::size_t>(n), false);
  for (Eigen::Index i = 0; i < n; ++i) {
    const float norm = vectors.row(i).norm();
    zero[static_cast<std::size_t>(i)] = norm < kTinyNorm;
    const RowVector u = zero[static_cast<std::size_t>(i)] ? RowVector::Zero(vectors.cols()) : RowVector(vectors.row(i) / norm);
    cosine(i) = std::clamp(u.dot(r_hat), -1.0f, 1.0f);
    residual.row(i) = u - cosine(i) * r_hat;
  }
  const Projection2D side = pca_2d(residual);
  view.points.resize(n, 2);
  for (Eigen::Index i = 0; i < n; ++i) {
    if (zero[static_cast<std::size_t>(i)]) {
      view.points.row(i).setZero();
      continue;
    }
    const float up = side.coords(i, 0) >= 0.0f ? 1.0f : -1.0f;
    view.points(i, 0) = cosine(i);
    view.points(i, 1) = up * std::sqrt(std::max(0.0f, 1.0f - cosine(i) * cosine(i)));
  }
  view.anchors.resize(2, 2);
  view.anchors << 1.0f, 0.0f, -1.0f, 0.0f;  // bucket 0: x·r >= 0; bucket 1: x·r < 0
  view.sector_boundaries = circle_boundaries(2);  // the vertical axis
  return view;
}

LshAngleView rotated_plane_view(const Eigen::Ref<const RowMatrix>& vectors, const Eigen::Ref<const RowMatrix>& rotation) {
  LshAngleView view;
  view.method = LshAngleMethod::RotatedPlane;
  const RowMatrix rotated = vectors * rotation;  // [P, 2]
  view.points.resize(rotated.rows(), 2);
  for (Eigen::Index i = 0; i < rotated.rows(); ++i) {
    const float norm = rotated.row(i).norm();
    if (norm < kTinyNorm) view.points.row(i).setZero();
    else view.points.row(i) = rotated.row(i) / norm;
  }
  // Buckets 0, 1 are +y₀, +y₁; buckets 2, 3 are −y₀, −y₁.
  view.anchors.resize(4, 2);
  view.anchors << 1.0f, 0.0f, 0.0f, 1.0f, -1.0f, 0.0f, 0.0f, -1.0f;
  view.sector_boundaries = circle_boundaries(4);  // 45°, 135°, 225°, 315°
  return view;
}

LshAngleView pca_view(const Eigen::Ref<const RowMatrix>& vectors, const Eigen::Ref<const RowMatrix>& rotation) {
  LshAngleView view;
  view.method = LshAngleMethod::Pca;
  RowMatrix rotated = vectors * rotation;  // [P, m]
  for (Eigen::Index i = 0; i < rotated.rows(); ++i) {
    const float norm = rotated.row(i).norm();
    if (norm >= kTinyNorm) rotated.row(i) /= norm;
  }
  const Eigen::Index m = rotation.cols();
  const Projection2D plane = pca_2d(rotated);
  RowMatrix axes(2 * m, m);
  axes.topRows(m).setIdentity();
  axes.bottomRows(m) = -RowMatrix::Identity(m, m);
  view.points = plane.coords;
  view.anchors = project(plane, axes);
  view.explained[0] = plane.explained[0];
  view.explained[1] = plane.explained[1];
  return view;
}

}  // namespace

const char* lsh_angle_method_name(LshAngleMethod method) {
  switch (method) {
    case LshAngleMethod::SignAxis: return "sign_axis";
    case LshAngleMethod::RotatedPlane: return "rotated_plane";
    case LshAngleMethod::Pca: return "pca";
  }
  return "?";
}

LshAngleView lsh_angle_view(const Eigen::Ref<const RowMatrix>& vectors, const Eigen::Ref<const RowMatrix>& rotation) {
  if (vectors.cols() != rotation.rows() || rotation.cols() < 1 || vectors.rows() < 1) {
    throw ShapeError("LSH angle view: vectors [" + std::to_string(vectors.rows()) + ", " +
                     std::to_string(vectors.cols()) + "] do not fit a rotation [" + std::to_string(rotation.rows()) +
                     ", " + std::to_string(rotation.cols()) + "]");
  }
  if (rotation.cols() == 1) return sign_axis_view(vectors, rotation);
  if (rotation.cols() == 2) return rotated_plane_view(vectors, rotation);
  return pca_view(vectors, rotation);
}

namespace {

// Scores as unsigned integers in the same order (negative floats reversed), so that
// comparisons and counts run on plain integers.
std::uint32_t ordered_bits(float score) {
  const auto bits = std::bit_cast<std::uint32_t>(score);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// A key whose descending order is (score descending, position ascending): unique per key.
std::uint64_t rank_key(std::uint32_t ordered, std::int32_t position) {
  return (static_cast<std::uint64_t>(ordered) << 32) | (0xffffffffu - static_cast<std::uint32_t>(position));
}

std::int64_t position_of(std::uint64_t key) { return static_cast<std::int64_t>(0xffffffffu - static_cast<std::uint32_t>(key)); }

// Scratch of one recall computation, reused from row to row.
struct RankScratch {
  std::vector<std::uint32_t> ordered;  // the row's scores as ordered integers, by position
  std::vector<std::uint64_t> chosen;   // rank keys of the row's top candidates
};

// How many of the n ordered scores are >= t; a branch-free loop the compiler vectorises.
std::int32_t count_at_least(const std::uint32_t* ordered, std::int32_t n, std::uint32_t t) {
  std::int32_t count = 0;
  for (std::int32_t c = 0; c < n; ++c) count += static_cast<std::int32_t>(ordered[c] >= t);
  return count;
}

// The keys that may be among the row's `top` highest: those scoring at least the top-th
// highest score, found by bisecting the integer score range with vectorised counts (one pass
// over the row per bit), then gathered without branches. Sorting or selecting instead
// mispredicts on every other comparison and cost most of the traced forward pass.
void choose_top(RankScratch& s, std::int32_t n, std::int32_t top) {
  const std::uint32_t* ordered = s.ordered.data();
  std::uint32_t lo = ordered[0], hi = ordered[0];
  for (std::int32_t c = 1; c < n; ++c) {
    lo = std::min(lo, ordered[c]);
    hi = std::max(hi, ordered[c]);
  }
  // Largest t with at least `top` scores >= t (lo qualifies: every score is >= lo).
  while (lo < hi) {
    const std::uint32_t mid = lo + static_cast<std::uint32_t>((static_cast<std::uint64_t>(hi) - lo + 1) / 2);
    if (count_at_least(ordered, n, mid) >= top) lo = mid;
    else hi = mid - 1;
  }
  std::size_t kept = 0;
  for (std::int32_t c = 0; c < n; ++c) {
    s.chosen[kept] = rank_key(ordered[c], c);
    kept += ordered[c] >= lo;
  }
  s.chosen.resize(kept);
}

}  // namespace

void lsh_recall(const Eigen::Ref<const RowMatrix>& scores, const Eigen::Ref<const RowMatrix>& cooccurrence,
                std::int64_t k_max, Eigen::Ref<RowMatrix> recall_out, float* mean_out) {
  const Eigen::Index L = scores.rows();
  if (scores.cols() != L || cooccurrence.rows() != L || cooccurrence.cols() != L || recall_out.rows() != L ||
      recall_out.cols() != k_max || k_max < 1) {
    throw ShapeError("LSH recall: scores, co-occurrence and output shapes do not match");
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<double> sum(static_cast<std::size_t>(k_max), 0.0);
  std::int64_t counted = 0;
  RankScratch s;
  s.ordered.resize(static_cast<std::size_t>(L));
  std::vector<std::int32_t> visible_at_rank(static_cast<std::size_t>(k_max));
  const std::uint32_t lowest_allowed = ordered_bits(std::numeric_limits<float>::lowest());
  for (Eigen::Index i = 0; i < L; ++i) {
    // Every key, with −inf (not allowed) mapped below every finite score: it never reaches the top.
    const auto row = scores.row(i);
    for (Eigen::Index j = 0; j < L; ++j) s.ordered[static_cast<std::size_t>(j)] = ordered_bits(row(j));
    const std::int32_t allowed = count_at_least(s.ordered.data(), static_cast<std::int32_t>(L), lowest_allowed);
    if (allowed == 0) {
      recall_out.row(i).setConstant(nan);
      continue;
    }
    const auto top = static_cast<std::int32_t>(std::min<std::int64_t>(k_max, allowed));
    s.chosen.resize(static_cast<std::size_t>(L));
    choose_top(s, static_cast<std::int32_t>(L), top);
    std::fill(visible_at_rank.begin(), visible_at_rank.end(), 0);
    const std::size_t chosen = s.chosen.size();
    if (chosen <= static_cast<std::size_t>(4 * top)) {
      // Each chosen key's rank among the chosen (= its rank in the row), counted without branches.
      for (std::size_t a = 0; a < chosen; ++a) {
        const std::uint64_t key = s.chosen[a];
        std::int32_t rank = 0;
        for (std::size_t b = 0; b < chosen; ++b) rank += s.chosen[b] > key;
        if (rank < top) visible_at_rank[static_cast<std::size_t>(rank)] = cooccurrence(i, position_of(key)) > 0.0f;
      }
    } else {  // many equal scores (a zero query): sorting is cheaper than counting
      std::sort(s.chosen.begin(), s.chosen.end(), std::greater<>());
      for (std::int64_t k = 0; k < top; ++k)
        visible_at_rank[static_cast<std::size_t>(k)] = cooccurrence(i, position_of(s.chosen[static_cast<std::size_t>(k)])) > 0.0f;
    }
    std::int64_t seen = 0;
    for (std::int64_t k = 0; k < k_max; ++k) {
      seen += visible_at_rank[static_cast<std::size_t>(k)];
      const auto denominator = std::min<std::int64_t>(k + 1, allowed);
      recall_out(i, k) = static_cast<float>(static_cast<double>(seen) / static_cast<double>(denominator));
      sum[static_cast<std::size_t>(k)] += recall_out(i, k);
    }
    ++counted;
  }
  for (std::int64_t k = 0; k < k_max; ++k) {
    mean_out[k] = counted ? static_cast<float>(sum[static_cast<std::size_t>(k)] / static_cast<double>(counted)) : nan;
  }
}

}  // namespace attnlab
