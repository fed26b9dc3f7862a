// Perceiver AR layer: with no prefix it is a causal pre-LN Transformer (checked against a naive
// double reference written here); causality of the latents, prefix dropout, prefix rows,
// trace sums, memory linear in L, weights, errors.
#include <QtTest>

#include <functional>

#include "attention/registry.h"
#include "core/safetensors.h"
#include "layers/perceiver_ar.h"
#include "layers/weight_table.h"
#include "naive_reference.h"
#include "test_support.h"

using namespace attnlab;
using namespace attnlab::test::naive;  // layer_norm, affine, options, max_relative, ...

namespace {

using DMatrix = Eigen::MatrixXd;

Params perceiver_params(const nlohmann::json& values) {
  Params p(PerceiverArLayer::schema());
  p.set_from_json(values);
  return p;
}

// ---- naive double-precision causal pre-LN Transformer layer -------------------------------------

// x + MHA_causal(LN_a(x)), then + FFN(LN_f(·)), by loops.
DMatrix causal_layer(const DMatrix& x, const LayerNorm& norm_a, const MultiHeadAttention& mha, const LayerNorm& norm_f,
                     const FeedForward& ff) {
  const std::int64_t L = x.rows(), H = mha.heads, d = x.cols() / H;
  const DMatrix u = layer_norm(norm_a, x);
  const DMatrix q = affine(mha.w_q, u), k = affine(mha.w_k, u), v = affine(mha.w_v, u);
  DMatrix a = DMatrix::Zero(L, x.cols());
  for (std::int64_t h = 0; h < H; ++h) {
    for (std::int64_t i = 0; i < L; ++i) {
      std::vector<double> w(static_cast<std::size_t>(i + 1));
      double m = -INFINITY, sum = 0;
      for (std::int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (std::int64_t c = 0; c < d; ++c) dot += q(i, h * d + c) * k(j, h * d + c);
        w[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
        m = std::max(m, w[static_cast<std::size_t>(j)]);
      }
      for (double& e : w) sum += (e = std::exp(e - m));
      for (std::int64_t j = 0; j <= i; ++j)
        for (std::int64_t c = 0; c < d; ++c) a(i, h * d + c) += w[static_cast<std::size_t>(j)] / sum * v(j, h * d + c);
    }
  }
  const DMatrix h = x + affine(mha.w_o, a);
  return h + feed_forward(ff, layer_norm(norm_f, h));
}

const PerceiverTrace& perceiver_trace(const Trace& t) {
  return dynamic_cast<const PerceiverTrace&>(*t.layer_extra("perceiver"));
}

}  // namespace

class TestPerceiverAr : public QObject {
  Q_OBJECT

 private slots:
  // N ≥ L leaves no prefix: the cross-attention is causal self-attention over all positions, so
  // the layer is a stack of 1 + latent_layers causal pre-LN layers with the same weights.
  void without_prefix_it_is_a_causal_transformer() {
    const std::int64_t L = 23, D = 32;
    for (const std::int64_t latents : {23, 40}) {
      for (const std::int64_t depth : {0, 2}) {
        const PerceiverArLayer layer =
            PerceiverArLayer::seeded(D, 4, 48, perceiver_params({{"latents", latents}, {"latent_layers", depth}}), 5);
        const RowMatrix x = random_input(L, D, 6);
        DMatrix reference = causal_layer(x.cast<double>(), layer.norm_cross, layer.cross_attention, layer.norm_ff,
                                         layer.feed_forward);
        for (const EncoderLayer& l : layer.latent_layers)
          reference = causal_layer(reference, l.norm_attention, l.attention, l.norm_ff, l.feed_forward);
        AttentionOptions o = options();
        o.causal = false;  // the layer is causal whatever the options say
        const double error = max_relative(layer.forward(x, o, nullptr), reference);
        QVERIFY2(error < 1e-4, qPrintable(QString("N=%1 depth=%2 error %3").arg(latents).arg(depth).arg(error)));
      }
    }
  }

  // Latent i (absolute Lp + i) depends on no token after Lp + i: perturbing token j leaves every
  // latent output before j bit-identical, and the prefix rows are the input rows.
  void later_tokens_never_change_earlier_latents() {
    const std::int64_t L = 150, D = 16, N = 70, Lp = L - N;
    const PerceiverArLayer layer =
        PerceiverArLayer::seeded(D, 2, 32, perceiver_params({{"latents", N}, {"latent_layers", 2}}), 7);
    const RowMatrix x = random_input(L, D, 8);
    const RowMatrix a = layer.forward(x, options(), nullptr);
    for (const std::int64_t j : {Lp + 0, Lp + 1, Lp + 37, Lp + 64, Lp + 65, L - 1}) {
      RowMatrix changed = x;
      changed.row(j) = random_input(1, D, 9 + static_cast<std::uint64_t>(j)).row(0);
      const RowMatrix b = layer.forward(changed, options(), nullptr);
      QVERIFY2(rows_identical(a, b, Lp, j - Lp), qPrintable(QString("token %1").arg(j)));
      QVERIFY(a.row(j) != b.row(j));
    }
    // A prefix token reaches every latent.
    RowMatrix changed = x;
    changed.row(3) *= 2.0f;
    const RowMatrix b = layer.forward(changed, options(), nullptr);
    QVERIFY(a.row(Lp) != b.row(Lp));
  }

  void prefix_rows_are_returned_unchanged() {
    const std::int64_t L = 90, D = 16, N = 20;
    const PerceiverArLayer layer = PerceiverArLayer::seeded(D, 2, 32, perceiver_params({{"latents", N}}), 10);
    const RowMatrix x = random_input(L, D, 11);
    Trace trace;
    for (Trace* t : {static_cast<Trace*>(nullptr), &trace}) {
      const RowMatrix y = layer.forward(x, options(), t);
      QCOMPARE(y.rows(), L);
      QCOMPARE(y.cols(), D);
      QVERIFY(rows_identical(x, y, 0, L - N));
      QVERIFY(y.bottomRows(N) != x.bottomRows(N));
    }
  }

  // prefix_dropout = 0 ignores the seed; with dropout the seed decides which prefix keys are
  // hidden, the same seed hiding the same ones, and a hidden key gets weight exactly 0.
  void prefix_dropout_is_seeded_and_zero_is_deterministic() {
    const std::int64_t L = 200, D = 16, N = 32, Lp = L - N;
    const RowMatrix x = random_input(L, D, 12);
    const PerceiverArLayer plain = PerceiverArLayer::seeded(D, 2, 32, perceiver_params({{"latents", N}}), 13);
    QVERIFY(plain.forward(x, options(false, nullptr, 1), nullptr) == plain.forward(x, options(false, nullptr, 2), nullptr));
    Trace plain_trace;
    plain.forward(x, options(false, nullptr, 1), &plain_trace);
    QVERIFY(perceiver_trace(plain_trace).dropped_prefix.empty());

    const PerceiverArLayer dropping =
        PerceiverArLayer::seeded(D, 2, 32, perceiver_params({{"latents", N}, {"prefix_dropout", 0.5}}), 13);
    QVERIFY(dropping.forward(x, options(false, nullptr, 1), nullptr) == dropping.forward(x, options(false, nullptr, 1), nullptr));
    QVERIFY(dropping.forward(x, options(false, nullptr, 1), nullptr) != dropping.forward(x, options(false, nullptr, 2), nullptr));
    Trace trace;
    dropping.forward(x, options(false, nullptr, 1), &trace);
    const PerceiverTrace& t = perceiver_trace(trace);
    const auto dropped = t.dropped_prefix;
    const auto count = static_cast<std::int64_t>(dropped.size());
    QVERIFY(count > Lp / 4 && count < 3 * Lp / 4);  // about half of 168
    for (const std::int64_t j : dropped) {
      QVERIFY(j >= 0 && j < Lp);
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < N; ++i) QCOMPARE(t.cross_weights.at(h, i, j), 0.0f);
    }
    // The latents are never dropped, and rows still sum to 1.
    for (std::int64_t i = 0; i < N; ++i) QVERIFY(t.cross_weights.at(0, i, Lp + i) > 0.0f);
  }

  void trace_rows_sum_to_one_and_have_the_documented_shapes() {
    const std::int64_t L = 100, D = 16, N = 30, Lp = L - N, H = 2, depth = 2;
    const PerceiverArLayer layer =
        PerceiverArLayer::seeded(D, H, 32, perceiver_params({{"latents", N}, {"latent_layers", depth}}), 14);
    const RowMatrix x = random_input(L, D, 15);
    Trace trace;
    const RowMatrix traced = layer.forward(x, options(), &trace);
    QVERIFY((traced - layer.forward(x, options(), nullptr)).cwiseAbs().maxCoeff() < 1e-5f);
    const PerceiverTrace& t = perceiver_trace(trace);
    QCOMPARE(t.kind(), std::string_view("perceiver"));
    QCOMPARE(t.latents, N);
    QCOMPARE(t.prefix_length, Lp);
    QCOMPARE(t.cross_weights.shape(), (Shape{H, N, L}));
    QCOMPARE(t.prefix_mass.shape(), (Shape{H, N}));
    QCOMPARE(t.recent_mass.shape(), (Shape{H, N}));
    QCOMPARE(t.latent_weights.shape(), (Shape{depth, H, N, N}));
    QCOMPARE(trace.weights.shape(), (Shape{H, L, L}));
    for (std::int64_t h = 0; h < H; ++h) {
      for (std::int64_t i = 0; i < N; ++i) {
        double sum = 0, prefix = 0, recent = 0;
        for (std::int64_t j = 0; j < L; ++j) {
          const float a = t.cross_weights.at(h, i, j);
          if (j > Lp + i) QCOMPARE(a, 0.0f);
          QCOMPARE(trace.weights.at(h, Lp + i, j), a);
          sum += a;
          (j < Lp ? prefix : recent) += a;
        }
        QVERIFY(std::abs(sum - 1.0) < 1e-5);
        QVERIFY(std::abs(prefix - t.prefix_mass.at(h, i)) < 1e-5);
        QVERIFY(std::abs(recent - t.recent_mass.at(h, i)) < 1e-5);
        QVERIFY(t.prefix_mass.at(h, i) > 0.0f && t.prefix_mass.at(h, i) < 1.0f);
      }
      for (std::int64_t i = 0; i < Lp; ++i)
        for (std::int64_t j = 0; j < L; ++j) QCOMPARE(trace.weights.at(h, i, j), 0.0f);
      for (std::int64_t l = 0; l < depth; ++l) {
        for (std::int64_t i = 0; i < N; ++i) {
          double sum = 0;
          for (std::int64_t j = 0; j < N; ++j) {
            const float a = t.latent_weights.data()[((l * H + h) * N + i) * N + j];
            if (j > i) QCOMPARE(a, 0.0f);
            sum += a;
          }
          QVERIFY(std::abs(sum - 1.0) < 1e-5);
        }
      }
    }
    const nlohmann::json j = t.to_json();
    for (const char* key : {"latents", "prefix_length", "cross_weights", "prefix_mass", "recent_mass", "latent_weights"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j["cross_weights"][1][4].size(), std::size_t(L));
    QCOMPARE(j["latent_weights"].size(), std::size_t(depth));
  }

  // With N fixed, the memory the layer allocates grows linearly in L: the meter's peak at
  // L = 4096 is far below one L×L float matrix and about twice the peak at L = 2048.
  void memory_grows_linearly_in_length() {
    const std::int64_t D = 32, N = 64;
    const PerceiverArLayer layer =
        PerceiverArLayer::seeded(D, 4, 64, perceiver_params({{"latents", N}, {"latent_layers", 1}}), 16);
    std::vector<std::int64_t> peaks;
    for (const std::int64_t L : {1024, 2048, 4096}) {
      const RowMatrix x = random_input(L, D, 17);
      peaks.push_back(attnlab::test::peak_bytes_of([&] { layer.forward(x, options(), nullptr); }));
    }
    QVERIFY2(peaks[2] < std::int64_t{4096} * 4096 * 4 / 16, qPrintable(QString("peak %1 bytes").arg(peaks[2])));
    const double ratio = static_cast<double>(peaks[2]) / static_cast<double>(peaks[1]);
    QVERIFY2(ratio > 1.5 && ratio < 2.5, qPrintable(QString("peak ratio 4096 / 2048: %1").arg(ratio)));
  }

  // Every weight is visited once under its name; loading them into a layer seeded otherwise
  // reproduces the output exactly.
  void weights_round_trip_through_the_weight_table() {
    const Params p = perceiver_params({{"latents", 8}, {"latent_layers", 2}});
    PerceiverArLayer a = PerceiverArLayer::seeded(16, 2, 24, p, 18);
    PerceiverArLayer b = PerceiverArLayer::seeded(16, 2, 24, p, 19);
    SafetensorsFile file;
    WeightWriter writer(file);
    a.visit_weights("layers.1.", writer);
    QCOMPARE(file.tensors.size(), std::size_t{3 * 16});  // norms 4 + attention 8 + FFN 4, three times
    QCOMPARE(file.tensors.at("layers.1.latent_layers.1.feed_forward.up.weight").shape(), (Shape{16, 24}));
    QVERIFY(file.tensors.count("layers.1.cross_attention.w_k.weight"));
    WeightReader reader(file);
    b.visit_weights("layers.1.", reader);
    const RowMatrix x = random_input(20, 16, 20);
    QVERIFY(a.forward(x, options(), nullptr) == b.forward(x, options(), nullptr));
  }

  void bad_params_and_inputs_are_refused() {
    Params p(PerceiverArLayer::schema());
    EXPECT_ERROR(ParamError, p.set("latents", std::int64_t{0}), "latents: an integer in [1, 65536]");
    EXPECT_ERROR(ParamError, p.set("latent_layers", std::int64_t{49}), "latent_layers: an integer in [0, 48]");
    EXPECT_ERROR(ParamError, p.set("prefix_dropout", 0.95), "prefix_dropout: a number in [0, 0.9]");
    EXPECT_ERROR(ParamError, PerceiverArLayer::seeded(18, 4, 32, p, 1), "heads=4 does not divide d_model=18");
    EXPECT_ERROR(ParamError, PerceiverArLayer::seeded(16, 0, 32, p, 1), "heads=0");
    const PerceiverArLayer layer = PerceiverArLayer::seeded(16, 2, 32, p, 1);
    EXPECT_ERROR(ShapeError, layer.forward(random_input(5, 8, 2), options(), nullptr), "[L, 16]");
    EXPECT_ERROR(ShapeError, layer.forward(RowMatrix(0, 16), options(), nullptr), "at least one token");
    RowMatrix bad = random_input(5, 16, 3);
    bad(4, 0) = INFINITY;
    EXPECT_ERROR(ShapeError, layer.forward(bad, options(), nullptr), "non-finite");
    CancelToken token;
    token.cancel();
    AttentionOptions o = options();
    o.cancel = &token;
    EXPECT_ERROR(CancelledError, layer.forward(random_input(300, 16, 4), o, nullptr), "cancelled");
  }
};

QTEST_APPLESS_MAIN(TestPerceiverAr)
#include "test_perceiver_ar.moc"
