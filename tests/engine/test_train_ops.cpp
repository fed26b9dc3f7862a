// The training engine's backward passes against central finite differences, in double precision
// (the ops are templated on the scalar), op by op and for whole models; forwards against naive
// loops written from the formulas.
//
// Each check: a random scalar objective J = Σ w ⊙ f(θ) with fixed random w; the backward with
// dy = w gives ∂J/∂θ; every coordinate of θ is perturbed by ±h (h = 1e-6) and
// (J(θ+h) − J(θ−h)) / 2h must match to 1e-6 relative (1e-7 absolute).
#include <QtTest>
#include <cmath>
#include <functional>
#include <random>

#include "core/error.h"
#include "test_support.h"
#include "train/ops.h"
#include "train/transformer.h"

using namespace attnlab;
using namespace attnlab::train;
using M = Mat<double>;

namespace {

M random_matrix(std::int64_t rows, std::int64_t cols, std::mt19937_64& gen, double scale = 1.0) {
  std::normal_distribution<double> normal(0.0, scale);
  M m(rows, cols);
  for (std::int64_t i = 0; i < m.size(); ++i) m.data()[i] = normal(gen);
  return m;
}

double dot(const M& a, const M& b) { return (a.array() * b.array()).sum(); }

// Compares the analytic gradient `grad` of J with central differences over every entry of `theta`
// (perturbed in place; `objective` recomputes J from the current theta).
void check_gradient(double* theta, const double* grad, std::int64_t n, const std::function<double()>& objective,
                    const char* what) {
  const double h = 1e-6;
  double worst = 0.0;
  std::int64_t worst_i = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    const double keep = theta[i];
    theta[i] = keep + h;
    const double up = objective();
    theta[i] = keep - h;
    const double down = objective();
    theta[i] = keep;
    const double numeric = (up - down) / (2 * h);
    const double err = std::abs(numeric - grad[i]) / std::max(1e-1, std::abs(numeric));
    if (err > worst) {
      worst = err;
      worst_i = i;
    }
  }
  if (worst > 1e-6) {
    QFAIL(qPrintable(QString("%1: worst relative gradient error %2 at index %3").arg(what).arg(worst).arg(worst_i)));
  }
}

SeqLayout layout_of(std::initializer_list<std::int64_t> lengths) {
  SeqLayout l;
  for (const std::int64_t n : lengths) l.add(n);
  return l;
}

}  // namespace

class TestTrainOps : public QObject {
  Q_OBJECT

 private slots:
  void linear_backward_matches_finite_differences() {
    std::mt19937_64 gen(1);
    M x = random_matrix(5, 4, gen), w = random_matrix(4, 3, gen), b = random_matrix(1, 3, gen);
    const M wy = random_matrix(5, 3, gen);
    auto objective = [&] {
      M y;
      linear_forward<double>(x, MatMap<double>(w.data(), 4, 3), VecMap<double>(b.data(), 3), y);
      return dot(y, wy);
    };
    M dx = M::Zero(5, 4), dw = M::Zero(4, 3), db = M::Zero(1, 3);
    MatMap<double> dwm(dw.data(), 4, 3);
    VecMap<double> dbm(db.data(), 3);
    linear_backward<double>(wy, x, MatMap<double>(w.data(), 4, 3), &dx, dwm, dbm);
    check_gradient(x.data(), dx.data(), x.size(), objective, "linear dx");
    check_gradient(w.data(), dw.data(), w.size(), objective, "linear dw");
    check_gradient(b.data(), db.data(), b.size(), objective, "linear db");
  }

  void layer_norm_matches_formula_and_finite_differences() {
    std::mt19937_64 gen(2);
    M x = random_matrix(6, 7, gen, 2.0), g = random_matrix(1, 7, gen), b = random_matrix(1, 7, gen);
    const M wy = random_matrix(6, 7, gen);
    std::vector<double> mean, rstd;
    M y;
    layer_norm_forward<double>(x, VecMap<double>(g.data(), 7), VecMap<double>(b.data(), 7), y, mean, rstd);
    for (int i = 0; i < 6; ++i) {  // naive: (x − μ)/√(σ² + 1e-5)·g + b, σ² with 1/D
      double mu = 0, var = 0;
      for (int c = 0; c < 7; ++c) mu += x(i, c) / 7.0;
      for (int c = 0; c < 7; ++c) var += (x(i, c) - mu) * (x(i, c) - mu) / 7.0;
      for (int c = 0; c < 7; ++c) QVERIFY(std::abs(y(i, c) - ((x(i, c) - mu) / std::sqrt(var + 1e-5) * g(0, c) + b(0, c))) < 1e-12);
    }
    auto objective = [&] {
      std::vector<double> m, r;
      M out;
      layer_norm_forward<double>(x, VecMap<double>(g.data(), 7), VecMap<double>(b.data(), 7), out, m, r);
      return dot(out, wy);
    };
    M dx = M::Zero(6, 7), dg = M::Zero(1, 7), db = M::Zero(1, 7);
    VecMap<double> dgm(dg.data(), 7), dbm(db.data(), 7);
    layer_norm_backward<double>(wy, x, mean, rstd, VecMap<double>(g.data(), 7), dx, dgm, dbm);
    check_gradient(x.data(), dx.data(), x.size(), objective, "layer norm dx");
    check_gradient(g.data(), dg.data(), g.size(), objective, "layer norm dgain");
    check_gradient(b.data(), db.data(), b.size(), objective, "layer norm dbias");
  }

  void relu_backward_matches_finite_differences() {
    std::mt19937_64 gen(3);
    M x = random_matrix(4, 9, gen);
    for (std::int64_t i = 0; i < x.size(); ++i) {  // keep away from the kink, where FD is undefined
      if (std::abs(x.data()[i]) < 0.05) x.data()[i] = 0.3;
    }
    const M wy = random_matrix(4, 9, gen);
    auto objective = [&] {
      M y = x;
      relu_forward<double>(y);
      return dot(y, wy);
    };
    M y = x;
    relu_forward<double>(y);
    M dy = wy;
    relu_backward<double>(y, dy);
    check_gradient(x.data(), dy.data(), x.size(), objective, "relu");
  }

  // Self-attention (causal and not), cross-attention with other key lengths, padded keys
  // including a query row that sees none: forward against a naive loop, backward against FD.
  void attention_matches_naive_loop_and_finite_differences_data() {
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("cross");
    QTest::addColumn<bool>("padding");
    QTest::newRow("self") << false << false << false;
    QTest::newRow("self causal") << true << false << false;
    QTest::newRow("cross") << false << true << false;
    QTest::newRow("cross padded") << false << true << true;
    QTest::newRow("self causal padded") << true << false << true;
  }
  void attention_matches_naive_loop_and_finite_differences() {
    QFETCH(bool, causal);
    QFETCH(bool, cross);
    QFETCH(bool, padding);
    std::mt19937_64 gen(4);
    const std::int64_t heads = 2, d = 6, dh = d / heads;
    const SeqLayout ql = layout_of({3, 5, 1});
    const SeqLayout kl = cross ? layout_of({4, 2, 3}) : ql;
    M q = random_matrix(ql.rows(), d, gen), k = random_matrix(kl.rows(), d, gen), v = random_matrix(kl.rows(), d, gen);
    std::vector<std::uint8_t> pad(static_cast<std::size_t>(kl.rows()), 0);
    if (padding) {
      pad[1] = 1;  // a key in the middle of sequence 0
      pad[static_cast<std::size_t>(kl.begin(1))] = 1;  // the first key of sequence 1: causal query 0 sees nothing
      if (cross) pad[static_cast<std::size_t>(kl.begin(1)) + 1] = 1;  // all of sequence 1's keys
    }
    const AttentionShapeInfo info{&ql, &kl, heads, causal, padding ? &pad : nullptr};
    M out;
    std::vector<M> probs;
    attention_forward<double>(q, k, v, info, out, probs);

    // Naive: for each sequence, head, query: softmax over the visible keys of q·k/√dh.
    for (std::int64_t b = 0; b < ql.count(); ++b) {
      for (std::int64_t h = 0; h < heads; ++h) {
        for (std::int64_t i = 0; i < ql.length(b); ++i) {
          std::vector<double> logit;
          std::vector<std::int64_t> keys;
          for (std::int64_t j = 0; j < kl.length(b); ++j) {
            if ((causal && j > i) || pad[static_cast<std::size_t>(kl.begin(b) + j)]) continue;
            double s = 0;
            for (std::int64_t c = 0; c < dh; ++c) s += q(ql.begin(b) + i, h * dh + c) * k(kl.begin(b) + j, h * dh + c);
            logit.push_back(s / std::sqrt(static_cast<double>(dh)));
            keys.push_back(j);
          }
          double mx = -1e300, sum = 0;
          for (double s : logit) mx = std::max(mx, s);
          for (double& s : logit) sum += (s = std::exp(s - mx));
          for (std::int64_t c = 0; c < dh; ++c) {
            double o = 0;
            for (std::size_t n = 0; n < keys.size(); ++n) o += logit[n] / sum * v(kl.begin(b) + keys[n], h * dh + c);
            QVERIFY2(std::abs(out(ql.begin(b) + i, h * dh + c) - o) < 1e-12, "forward differs from the naive loop");
          }
        }
      }
    }
    const M wy = random_matrix(out.rows(), out.cols(), gen);
    auto objective = [&] {
      M o;
      std::vector<M> p;
      attention_forward<double>(q, k, v, info, o, p);
      return dot(o, wy);
    };
    M dq = M::Zero(q.rows(), d), dk = M::Zero(k.rows(), d), dv = M::Zero(v.rows(), d);
    attention_backward<double>(wy, q, k, v, info, probs, dq, dk, dv);
    check_gradient(q.data(), dq.data(), q.size(), objective, "attention dq");
    check_gradient(k.data(), dk.data(), k.size(), objective, "attention dk");
    check_gradient(v.data(), dv.data(), v.size(), objective, "attention dv");
  }

  void embedding_backward_matches_finite_differences() {
    std::mt19937_64 gen(5);
    M table = random_matrix(7, 6, gen);
    const std::vector<std::int32_t> tokens = {3, 1, 3, 6, 0, 3};
    const SeqLayout layout = layout_of({4, 2});
    M x;
    embedding_forward<double>(MatMap<double>(table.data(), 7, 6), tokens, layout, x);
    // Row 4 is position 0 of sequence 1: √6·table[0] + PE(0) = √6·table[0] + (0, 1, 0, 1, 0, 1).
    for (int c = 0; c < 6; ++c) QVERIFY(std::abs(x(4, c) - (std::sqrt(6.0) * table(0, c) + (c % 2 ? 1.0 : 0.0))) < 1e-12);
    // Row 2 is position 2: PE(2, 2i) = sin(2 / 10000^(2i/6)).
    QVERIFY(std::abs(x(2, 2) - (std::sqrt(6.0) * table(3, 2) + std::sin(2.0 / std::pow(10000.0, 2.0 / 6.0)))) < 1e-12);
    const M wy = random_matrix(6, 6, gen);
    auto objective = [&] {
      M out;
      embedding_forward<double>(MatMap<double>(table.data(), 7, 6), tokens, layout, out);
      return dot(out, wy);
    };
    M dtable = M::Zero(7, 6);
    MatMap<double> dm(dtable.data(), 7, 6);
    embedding_backward<double>(wy, tokens, dm);
    check_gradient(table.data(), dtable.data(), table.size(), objective, "embedding");
  }

  void cross_entropy_matches_formula_and_finite_differences() {
    std::mt19937_64 gen(6);
    M logits = random_matrix(5, 9, gen, 3.0);
    const std::vector<std::int32_t> targets = {2, -1, 8, 0, 2};
    const double eps = 0.1;
    M grad;
    const CrossEntropySums sums = cross_entropy<double>(logits, targets, eps, 0.5, &grad);
    double loss = 0, nll = 0;
    for (int i = 0; i < 5; ++i) {
      if (targets[static_cast<std::size_t>(i)] < 0) continue;
      double z = 0;
      for (int j = 0; j < 9; ++j) z += std::exp(logits(i, j));
      for (int j = 0; j < 9; ++j) {
        const double qj = (j == targets[static_cast<std::size_t>(i)] ? 1 - eps : 0) + eps / 9;
        loss -= qj * std::log(std::exp(logits(i, j)) / z);
      }
      nll -= std::log(std::exp(logits(i, targets[static_cast<std::size_t>(i)])) / z);
    }
    QCOMPARE(sums.tokens, std::int64_t(4));
    QVERIFY(std::abs(sums.loss - loss) < 1e-10);
    QVERIFY(std::abs(sums.nll - nll) < 1e-10);
    QVERIFY(grad.row(1).isZero());
    auto objective = [&] { return 0.5 * cross_entropy<double>(logits, targets, eps, 1.0, nullptr).loss; };
    check_gradient(logits.data(), grad.data(), logits.size(), objective, "cross-entropy");
    // The gradient may overwrite the logits (what the model does to save a [N, V] buffer).
    M inplace = logits;
    cross_entropy<double>(inplace, targets, eps, 0.5, &inplace);
    QVERIFY((inplace - grad).cwiseAbs().maxCoeff() < 1e-15);
  }

  // Every parameter of small translators and language models, through the whole forward pass.
  void whole_model_gradient_matches_finite_differences_data() {
    QTest::addColumn<QString>("kind");
    QTest::newRow("seq2seq") << "seq2seq";
    QTest::newRow("lm") << "lm";
  }
  void whole_model_gradient_matches_finite_differences() {
    QFETCH(QString, kind);
    TransformerConfig config;
    config.kind = kind.toStdString();
    config.vocab = 13;
    config.d_model = 8;
    config.heads = 2;
    config.d_ff = 12;
    config.encoder_layers = config.kind == "seq2seq" ? 2 : 0;
    config.decoder_layers = 2;
    config.max_length = 16;
    config.label_smoothing = 0.1;
    Transformer<double> model(config, 7);
    // Nonzero biases and gains so that every term of the backward is exercised.
    std::mt19937_64 gen(8);
    std::normal_distribution<double> normal(0.0, 0.3);
    for (const ParamEntry& e : model.entries()) {
      if (!e.decay && e.name != "embedding") {
        for (std::int64_t i = 0; i < e.size(); ++i) model.values()[static_cast<std::size_t>(e.offset + i)] += normal(gen);
      }
    }
    Batch batch;
    if (config.kind == "seq2seq") {
      batch.src = {4, 5, 6, 3, 7, 3, 8, 9, 10, 11, 3};
      batch.src_layout = layout_of({4, 2, 5});
    }
    batch.tgt_in = {2, 5, 5, 2, 12, 2, 9, 4, 1};
    batch.tgt_out = {5, 5, 3, 12, 3, 9, 4, 1, 3};
    batch.tgt_layout = layout_of({3, 2, 4});
    const std::int64_t tokens = static_cast<std::int64_t>(batch.tgt_out.size());
    const CrossEntropySums sums = model.forward_backward(batch, true, 1.0 / static_cast<double>(tokens));
    QCOMPARE(sums.tokens, tokens);
    const ParamArray<double> grad = model.grads();
    auto objective = [&] { return model.forward_backward(batch, false).loss / static_cast<double>(tokens); };
    // ReLU kinks: with these seeds no hidden unit sits within h of zero (a failure names the index).
    check_gradient(model.values().data(), grad.data(), static_cast<std::int64_t>(model.values().size()), objective, "whole model");
  }

  void float_model_follows_the_double_model() {
    TransformerConfig config;
    config.vocab = 20;
    config.d_model = 16;
    config.heads = 4;
    config.d_ff = 32;
    config.encoder_layers = 1;
    config.decoder_layers = 1;
    Transformer<float> f(config, 3);
    Transformer<double> d(config, 3);
    Batch batch;
    batch.src = {4, 5, 6, 3};
    batch.src_layout = layout_of({4});
    batch.tgt_in = {2, 7, 8};
    batch.tgt_out = {7, 8, 3};
    batch.tgt_layout = layout_of({3});
    const double lf = f.forward_backward(batch, true).loss, ld = d.forward_backward(batch, true).loss;
    QVERIFY(std::abs(lf - ld) < 1e-4 * std::abs(ld));
    double worst = 0;
    for (std::size_t i = 0; i < d.grads().size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(f.grads()[i]) - d.grads()[i]));
    }
    QVERIFY2(worst < 1e-4, qPrintable(QString("float/double gradient difference %1").arg(worst)));
  }

  void bad_batches_and_configs_are_one_line_errors() {
    TransformerConfig config;
    config.vocab = 10;
    config.d_model = 8;
    config.heads = 2;
    config.d_ff = 8;
    config.encoder_layers = 1;
    config.decoder_layers = 1;
    config.max_length = 4;
    Transformer<float> model(config, 1);
    Batch batch;
    batch.src = {4, 5};
    batch.src_layout = layout_of({2});
    batch.tgt_in = {2, 12};
    batch.tgt_out = {5, 3};
    batch.tgt_layout = layout_of({2});
    QVERIFY(test::error_message<ParamError>([&] { model.forward_backward(batch, false); }).find("id 12") != std::string::npos);
    batch.tgt_in = {2, 5, 6, 7, 8};
    batch.tgt_out = {5, 6, 7, 8, 3};
    batch.tgt_layout = layout_of({5});
    QVERIFY(test::error_message<ShapeError>([&] { model.forward_backward(batch, false); }).find("5 tokens") != std::string::npos);
    config.heads = 3;
    QVERIFY(test::error_message<ParamError>([&] { Transformer<float>(config, 1); }).find("heads=3") != std::string::npos);
    config.heads = 2;
    config.kind = "lm";
    QVERIFY(test::error_message<ParamError>([&] { Transformer<float>(config, 1); }).find("encoder_layers") != std::string::npos);
    QVERIFY(!test::error_message<FormatError>([&] { TransformerConfig::from_json({{"kind", "seq2seq"}}); }).empty());
  }
};

QTEST_APPLESS_MAIN(TestTrainOps)
#include "test_train_ops.moc"
