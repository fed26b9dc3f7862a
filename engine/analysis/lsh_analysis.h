// What the "LSH buckets" view shows beside the attention itself, computed in the engine from
// one head's hashed vectors and scores:
//
//   angle view:  vectors [P, d], rotation [d, m] (m = n_b/2)  ->  points [P, 2], anchors [n_b, 2]
//   recall:      scores [L, L], co-occurrence [L, L], K       ->  recall [L, K], mean [K]
//
// The angle view is chosen so that the picture shows the bucket decision faithfully:
//   n_b = 2 (m = 1): the bucket is the sign of x·r. A point sits on the unit circle at the angle θ
//     between x and r (horizontal = cos θ), above or below the axis by the sign of its coordinate
//     along the main direction of the vectors orthogonal to r (PCA of those residuals).
//     Buckets: right half (0), left half (1).
//   n_b = 4 (m = 2): the bucket is the largest of (y₀, y₁, −y₀, −y₁), y = x·R; a point sits at the
//     angle of (y₀, y₁) itself, so the buckets are exactly four 90° sectors centred on the axes.
//   n_b ≥ 6: the bucket is the nearest of the 2m signed axes ±e_i of the rotated space; points are
//     the rotated unit vectors y/|y| projected by PCA (analysis/projection.h), and the 2m axes are
//     projected into the same plane as anchors. This one is a projection, not exact: the share of
//     variance the plane explains is reported.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace attnlab {

enum class LshAngleMethod {
  SignAxis,      // n_b = 2
  RotatedPlane,  // n_b = 4
  Pca,           // n_b >= 6
};

const char* lsh_angle_method_name(LshAngleMethod method);  // "sign_axis", "rotated_plane", "pca"

struct LshAngleView {
  LshAngleMethod method = LshAngleMethod::Pca;
  RowMatrix points;   // [P, 2]; on the unit circle for the exact methods (origin for a zero vector)
  RowMatrix anchors;  // [n_b, 2]: where the direction of bucket b lies
  float explained[2] = {1.0f, 0.0f};  // PCA variance shares; {1, 0} for the exact methods
  std::vector<float> sector_boundaries;  // exact methods: the angles (radians) where the bucket changes
};

// Throws ShapeError unless vectors.cols() == rotation.rows() and rotation has >= 1 column.
LshAngleView lsh_angle_view(const Eigen::Ref<const RowMatrix>& vectors, const Eigen::Ref<const RowMatrix>& rotation);

// Recall of the exact top-k for every query i: the keys ranked by scores(i, ·) (highest first,
// the lower position first on ties) among the allowed ones (finite score; −inf = not allowed),
// and for k = 1..K the share of the first min(k, allowed) of them with cooccurrence(i, j) > 0.
// recall_out [L, K]; mean_out [K] over queries that have an allowed key; NaN for a query with none.
void lsh_recall(const Eigen::Ref<const RowMatrix>& scores, const Eigen::Ref<const RowMatrix>& cooccurrence,
                std::int64_t k_max, Eigen::Ref<RowMatrix> recall_out, float* mean_out);

}  // namespace attnlab
