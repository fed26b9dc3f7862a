// Scaling-Transformer sparse Q/K/V: multiplicative dense then causal (length × module)
// convolutions, against naive double-precision loops written here from the equations.
#include <QtTest>
#include <cmath>
#include <map>

#include "layers/sparse_qkv.h"
#include "layers/weight_table.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

RowMatrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, float stddev = 1.0f) {
  return random_tensor({rows, cols}, seed, stddev).matrix();
}

Params qkv_params(std::int64_t length_kernel, std::int64_t module_kernel) {
  Params p(SparseQkv::schema());
  p.set("length_kernel", length_kernel);
  p.set("module_kernel", module_kernel);
  return p;
}

// Every weight random, biases included (seeded biases are zero).
SparseQkv layer(std::int64_t D, std::int64_t S, std::int64_t T, std::int64_t J, std::uint64_t seed) {
  SparseQkv p = SparseQkv::seeded(D, S, 4 * D, qkv_params(T, J), seed);
  p.bias = random_matrix(1, D, seed + 1, 0.3f);
  p.conv_q.bias = random_matrix(1, D / S, seed + 2, 0.3f);
  p.conv_k.bias = random_matrix(1, D / S, seed + 3, 0.3f);
  p.conv_v.bias = random_matrix(1, D / S, seed + 4, 0.3f);
  return p;
}

// u[l, s, m] = Σ_d x[l, d]·G[s, d]·E[d, m] + b[s·M + m]
Eigen::MatrixXd naive_multiplicative(const SparseQkv& p, const RowMatrix& x) {
  const std::int64_t L = x.rows(), D = p.d_model, S = p.modules, M = D / S;
  Eigen::MatrixXd u(L, D);
  for (std::int64_t l = 0; l < L; ++l)
    for (std::int64_t s = 0; s < S; ++s)
      for (std::int64_t m = 0; m < M; ++m) {
        double acc = p.bias(s * M + m);
        for (std::int64_t d = 0; d < D; ++d) acc += double(x(l, d)) * p.gating(s, d) * p.projection(d, m);
        u(l, s * M + m) = acc;
      }
  return u;
}

// out[l, s, o] = c[o] + Σ_τ Σ_j Σ_i u[l − τ, s + j − (J−1)/2, i] · K[(τ·J + j)·M + i, o], zero outside.
Eigen::MatrixXd naive_conv(const Eigen::MatrixXd& u, const SparseQkv::Conv& c, std::int64_t S, std::int64_t T) {
  const std::int64_t L = u.rows(), D = u.cols(), M = D / S, J = c.module_kernel;
  Eigen::MatrixXd out(L, D);
  for (std::int64_t l = 0; l < L; ++l)
    for (std::int64_t s = 0; s < S; ++s)
      for (std::int64_t o = 0; o < M; ++o) {
        double acc = c.bias(o);
        for (std::int64_t tau = 0; tau < T; ++tau)
          for (std::int64_t j = 0; j < J; ++j) {
            const std::int64_t src_l = l - tau, src_s = s + j - (J - 1) / 2;
            if (src_l < 0 || src_s < 0 || src_s >= S) continue;
            for (std::int64_t i = 0; i < M; ++i) acc += u(src_l, src_s * M + i) * c.kernel((tau * J + j) * M + i, o);
          }
        out(l, s * M + o) = acc;
      }
  return out;
}

double max_abs_diff(const RowMatrix& a, const Eigen::MatrixXd& b) { return (a.cast<double>() - b).cwiseAbs().maxCoeff(); }

class ShapeRecorder final : public WeightTable {
 public:
  std::map<std::string, Shape> shapes;
  void matrix(const std::string& name, RowMatrix&, std::int64_t rows, std::int64_t cols) override { shapes[name] = {rows, cols}; }
  void vector(const std::string& name, RowVector&, std::int64_t size) override { shapes[name] = {size}; }
};

}  // namespace

class TestSparseQkv : public QObject {
  Q_OBJECT

 private slots:
  void projections_match_the_naive_loops() {
    for (const auto& [D, S, T, J, L] : std::vector<std::tuple<int, int, int, int, int>>{
             {16, 4, 3, 3, 11}, {24, 3, 2, 5, 9}, {12, 1, 3, 3, 7}, {32, 8, 1, 1, 5}, {16, 4, 5, 3, 3}, {16, 2, 3, 3, 1}}) {
      const SparseQkv p = layer(D, S, T, J, 7);
      const RowMatrix x = random_matrix(L, D, 8);
      const Eigen::MatrixXd u = naive_multiplicative(p, x);
      QVERIFY(max_abs_diff(p.multiplicative(x), u) < 1e-4);
      const SparseQkv::Projections out = p.project(x);
      QVERIFY(max_abs_diff(out.q, naive_conv(u, p.conv_q, S, T)) < 1e-4);
      QVERIFY(max_abs_diff(out.k, naive_conv(u, p.conv_k, S, T)) < 1e-4);
      QVERIFY(max_abs_diff(out.v, naive_conv(u, p.conv_v, S, T)) < 1e-4);
      QCOMPARE(p.conv_v.module_kernel, std::int64_t{1});
      QCOMPARE(p.conv_q.module_kernel, std::int64_t{J});
    }
  }

  void outputs_are_causal_over_length() {
    const SparseQkv p = layer(16, 4, 3, 3, 9);
    const RowMatrix x = random_matrix(12, 16, 10);
    const SparseQkv::Projections a = p.project(x);
    for (const int j : {0, 5, 11}) {
      RowMatrix changed = x;
      changed.row(j).array() += 1.0f;
      const SparseQkv::Projections b = p.project(changed);
      for (const auto& [before, after] : {std::pair{&a.q, &b.q}, std::pair{&a.k, &b.k}, std::pair{&a.v, &b.v}}) {
        QVERIFY(before->topRows(j) == after->topRows(j));      // rows before j bit-identical
        QVERIFY(before->row(j) != after->row(j));              // row j sees its own token
      }
    }
  }

  // One module, kernels of width 1: each projection is the dense map x·(diag(G)·E)·K + ... .
  void one_module_width_one_is_a_dense_projection() {
    const SparseQkv p = layer(8, 1, 1, 1, 11);
    const RowMatrix x = random_matrix(6, 8, 12);
    const Eigen::MatrixXd dense = p.gating.row(0).transpose().cast<double>().asDiagonal() * p.projection.cast<double>();
    Eigen::MatrixXd u = x.cast<double>() * dense;
    u.rowwise() += p.bias.cast<double>();
    Eigen::MatrixXd q = u * p.conv_q.kernel.cast<double>();
    q.rowwise() += p.conv_q.bias.cast<double>();
    QVERIFY(max_abs_diff(p.project(x).q, q) < 1e-5);
  }

  void weights_are_listed_once() {
    SparseQkv p = SparseQkv::seeded(24, 4, 96, qkv_params(3, 3), 13);
    ShapeRecorder table;
    p.visit_weights("layers.0.qkv.", table);
    const std::map<std::string, Shape> expected{
        {"layers.0.qkv.gating", {4, 24}},           {"layers.0.qkv.projection", {24, 6}},
        {"layers.0.qkv.bias", {24}},                {"layers.0.qkv.conv_q.kernel", {54, 6}},
        {"layers.0.qkv.conv_q.bias", {6}},          {"layers.0.qkv.conv_k.kernel", {54, 6}},
        {"layers.0.qkv.conv_k.bias", {6}},          {"layers.0.qkv.conv_v.kernel", {18, 6}},
        {"layers.0.qkv.conv_v.bias", {6}}};
    QVERIFY(table.shapes == expected);
  }

  void bad_inputs_are_refused() {
    EXPECT_ERROR(ParamError, SparseQkv::seeded(24, 5, 96, qkv_params(3, 3), 1), "d_model=24, heads=5");
    EXPECT_ERROR(ParamError, SparseQkv::seeded(24, 4, 96, qkv_params(3, 4), 1), "module_kernel=4 must be odd");
    Params p(SparseQkv::schema());
    EXPECT_ERROR(ParamError, p.set("length_kernel", std::int64_t{0}), "length_kernel: an integer in [1, 16]");
    const SparseQkv qkv = SparseQkv::seeded(24, 4, 96, qkv_params(3, 3), 1);
    EXPECT_ERROR(ShapeError, qkv.project(random_matrix(3, 23, 1)), "sparse QKV expects");
  }
};

QTEST_APPLESS_MAIN(TestSparseQkv)
#include "test_sparse_qkv.moc"
