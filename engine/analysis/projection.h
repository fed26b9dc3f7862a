// Two-dimensional projections for views: principal component analysis of a point cloud.
//
//   points: [n, d]  ->  coords: [n, 2] on the two directions of largest variance
//
// The axes' signs are fixed (the largest-magnitude entry of each axis is positive), so the
// same points always give the same picture, and project() puts other points (centroids,
// another set of vectors) into the same plane.
#pragma once

#include "core/tensor.h"

namespace attnlab {

struct Projection2D {
  RowMatrix axes;            // [2, d], orthonormal rows
  RowVector mean;            // [d]
  RowMatrix coords;          // [n, 2] of the fitted points
  float explained[2] = {0, 0};  // share of the total variance along each axis, in [0, 1]
};

// Throws ShapeError for fewer than 1 point or 0 dimensions. With d == 1 the second axis is 0.
Projection2D pca_2d(const RowMatrix& points);

// Other points in the fitted plane: [m, d] -> [m, 2].
RowMatrix project(const Projection2D& projection, const RowMatrix& points);

}  // namespace attnlab
