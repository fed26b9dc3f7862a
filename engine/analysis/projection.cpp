#include "analysis/projection.h"

#include <Eigen/Eigenvalues>

#include "core/error.h"

namespace attnlab {

Projection2D pca_2d(const RowMatrix& points) {
  const Eigen::Index n = points.rows(), d = points.cols();
  if (n < 1 || d < 1) {
    throw ShapeError("PCA needs at least one point with at least one dimension, got [" + std::to_string(n) + ", " +
                     std::to_string(d) + "]");
  }
  Projection2D p;
  p.mean = points.colwise().mean();
  const Eigen::MatrixXd centred = (points.rowwise() - p.mean).cast<double>();
  const Eigen::MatrixXd covariance = centred.transpose() * centred / static_cast<double>(std::max<Eigen::Index>(1, n - 1));
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(covariance);
  // Eigenvalues come in increasing order: the last two columns are the principal axes.
  p.axes = RowMatrix::Zero(2, d);
  const double total = std::max(covariance.trace(), 1e-30);
  for (int a = 0; a < 2 && a < d; ++a) {
    Eigen::VectorXd axis = solver.eigenvectors().col(d - 1 - a);
    Eigen::Index largest = 0;
    axis.cwiseAbs().maxCoeff(&largest);
    if (axis(largest) < 0) axis = -axis;
    p.axes.row(a) = axis.transpose().cast<float>();
    p.explained[a] = static_cast<float>(std::max(0.0, solver.eigenvalues()(d - 1 - a)) / total);
  }
  p.coords = project(p, points);
  return p;
}

RowMatrix project(const Projection2D& projection, const RowMatrix& points) {
  if (points.cols() != projection.axes.cols()) {
    throw ShapeError("cannot project points of dimension " + std::to_string(points.cols()) + " into a plane fitted in " +
                     std::to_string(projection.axes.cols()) + " dimensions");
  }
  return (points.rowwise() - projection.mean) * projection.axes.transpose();
}

}  // namespace attnlab
