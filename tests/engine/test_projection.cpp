// PCA projection against constructed point clouds whose principal axes are known.
#include <QtTest>
#include <cmath>

#include "analysis/projection.h"
#include "test_support.h"

using namespace attnlab;

class TestProjection : public QObject {
  Q_OBJECT

 private slots:
  // Points spread 10 along e2, 3 along e0, 0.1 along e1: the axes are ±e2 and ±e0, signs fixed.
  void finds_known_axes() {
    Rng rng(3);
    RowMatrix points(400, 3);
    for (int i = 0; i < 400; ++i) {
      points(i, 0) = static_cast<float>(3.0 * rng.normal()) + 5.0f;
      points(i, 1) = static_cast<float>(0.1 * rng.normal()) - 2.0f;
      points(i, 2) = static_cast<float>(10.0 * rng.normal());
    }
    const Projection2D p = pca_2d(points);
    QVERIFY(std::abs(p.axes(0, 2) - 1.0f) < 1e-3f);
    QVERIFY(std::abs(p.axes(1, 0) - 1.0f) < 1e-3f);
    QVERIFY(p.explained[0] > 0.85f && p.explained[0] < 0.95f);  // 100 / (100 + 9 + 0.01)
    QVERIFY(p.explained[1] > 0.05f && p.explained[1] < 0.12f);
    // coords = (x - mean) · axis, computed here in double for one point.
    double expected0 = 0;
    for (int c = 0; c < 3; ++c) expected0 += (static_cast<double>(points(7, c)) - p.mean(c)) * p.axes(0, c);
    QVERIFY(std::abs(p.coords(7, 0) - expected0) < 1e-4);
    QVERIFY(std::abs(p.coords(7, 0) - (points(7, 2) - p.mean(2))) < 0.05f);  // ≈ the e2 coordinate
    QCOMPARE(project(p, points.topRows(3)), RowMatrix(p.coords.topRows(3)));
  }

  void degenerate_inputs() {
    RowMatrix one(1, 4);
    one << 1, 2, 3, 4;
    const Projection2D p = pca_2d(one);
    QCOMPARE(p.coords.rows(), 1);
    QVERIFY(p.coords.cwiseAbs().maxCoeff() < 1e-6f);  // a single point sits at the origin
    RowMatrix line(5, 1);
    line << 1, 2, 3, 4, 5;
    const Projection2D q = pca_2d(line);
    QCOMPARE(q.axes(1, 0), 0.0f);
    EXPECT_ERROR(ShapeError, pca_2d(RowMatrix(0, 3)), "at least one point");
    EXPECT_ERROR(ShapeError, project(q, RowMatrix(2, 3)), "dimension 3");
  }
};

QTEST_GUILESS_MAIN(TestProjection)
#include "test_projection.moc"
