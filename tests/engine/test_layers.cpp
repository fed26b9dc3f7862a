// Layers and the encoder against independent references written here from the equations.
#include <QtTest>
#include <cmath>

#include "attention/registry.h"
#include "layers/embedding.h"
#include "layers/weight_table.h"
#include "models/model_layer.h"
#include "models/encoder.h"
#include "models/playground.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

RowMatrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  return random_tensor({rows, cols}, seed).matrix();
}

// softmax(q kᵀ/√d) v for one head, in double precision.
Eigen::MatrixXd naive_head(const Eigen::MatrixXd& q, const Eigen::MatrixXd& k, const Eigen::MatrixXd& v, bool causal) {
  Eigen::MatrixXd s = q * k.transpose() / std::sqrt(static_cast<double>(q.cols()));
  Eigen::MatrixXd out(q.rows(), v.cols());
  for (Eigen::Index i = 0; i < q.rows(); ++i) {
    const Eigen::Index n = causal ? i + 1 : k.rows();
    const double m = s.row(i).head(n).maxCoeff();
    Eigen::RowVectorXd w = (s.row(i).head(n).array() - m).exp();
    w /= w.sum();
    out.row(i) = w * v.topRows(n);
  }
  return out;
}

Eigen::MatrixXd naive_layer_norm(const Eigen::MatrixXd& x) {
  Eigen::MatrixXd y(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const double mean = x.row(i).mean();
    const double var = (x.row(i).array() - mean).square().mean();
    y.row(i) = (x.row(i).array() - mean) / std::sqrt(var + 1e-5);
  }
  return y;
}

Eigen::MatrixXd naive_mha(const MultiHeadAttention& mha, const Eigen::MatrixXd& x, bool causal) {
  const Eigen::MatrixXd q = x * mha.w_q.weight.cast<double>();
  const Eigen::MatrixXd k = x * mha.w_k.weight.cast<double>();
  const Eigen::MatrixXd v = x * mha.w_v.weight.cast<double>();
  const Eigen::Index d = q.cols() / mha.heads;
  Eigen::MatrixXd concat(x.rows(), q.cols());
  for (Eigen::Index h = 0; h < mha.heads; ++h) {
    concat.middleCols(h * d, d) = naive_head(q.middleCols(h * d, d), k.middleCols(h * d, d), v.middleCols(h * d, d), causal);
  }
  return concat * mha.w_o.weight.cast<double>();
}

double max_abs_diff(const RowMatrix& a, const Eigen::MatrixXd& b) { return (a.cast<double>() - b).cwiseAbs().maxCoeff(); }

}  // namespace

class TestLayers : public QObject {
  Q_OBJECT

 private slots:
  void linear_is_affine() {
    Linear l = Linear::seeded(6, 4, 1);
    l.bias = random_matrix(1, 4, 2);
    const RowMatrix x = random_matrix(3, 6, 3);
    const RowMatrix y = l.forward(x);
    for (int i = 0; i < 3; ++i)
      for (int o = 0; o < 4; ++o) {
        double sum = l.bias(o);
        for (int c = 0; c < 6; ++c) sum += static_cast<double>(x(i, c)) * l.weight(c, o);
        QVERIFY(std::abs(y(i, o) - sum) < 1e-5);
      }
    EXPECT_ERROR(ShapeError, l.forward(random_matrix(3, 5, 4)), "expects 6 input features");
  }

  void layer_norm_matches_definition() {
    const RowMatrix x = random_matrix(5, 16, 5) * 3.0f;
    LayerNorm n = LayerNorm::identity(16);
    QVERIFY(max_abs_diff(n.forward(x), naive_layer_norm(x.cast<double>())) < 1e-5);
    n.gamma.setConstant(2.0f);
    n.beta.setConstant(-1.0f);
    QVERIFY(max_abs_diff(n.forward(x), naive_layer_norm(x.cast<double>()).array() * 2.0 - 1.0) < 1e-5);
  }

  void gelu_matches_closed_form() {
    RowMatrix x(1, 5);
    x << -3.0f, -0.5f, 0.0f, 0.7f, 2.5f;
    RowMatrix y = x;
    gelu_inplace(y);
    for (int i = 0; i < 5; ++i) {
      const double v = x(0, i);
      QVERIFY(std::abs(y(0, i) - 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)))) < 1e-6);
    }
  }

  void sinusoidal_positions_follow_the_formula() {
    const RowMatrix pe = sinusoidal_positions(50, 16);
    for (int c = 0; c < 16; ++c) QCOMPARE(pe(0, c), c % 2 == 0 ? 0.0f : 1.0f);  // sin 0, cos 0
    for (int p : {1, 7, 49})
      for (int i = 0; i < 16; i += 2) {
        const double angle = p / std::pow(10000.0, i / 16.0);
        QVERIFY(std::abs(pe(p, i) - std::sin(angle)) < 1e-6);
        QVERIFY(std::abs(pe(p, i + 1) - std::cos(angle)) < 1e-6);
      }
  }

  void embedding_checks_ids() {
    const TokenEmbedding e = TokenEmbedding::seeded(10, 8, 1);
    const RowMatrix x = e.forward({3, 9});
    const RowMatrix pe = sinusoidal_positions(2, 8);
    QVERIFY((x.row(1) - (e.table.row(9) * std::sqrt(8.0f) + pe.row(1))).norm() < 1e-5f);
    EXPECT_ERROR(ParamError, e.forward({3, 10}), "token id 10 at position 1 is outside the vocabulary [0, 10)");
  }

  void multi_head_attention_matches_naive() {
    const MultiHeadAttention mha = MultiHeadAttention::seeded(32, 4, 7, 2.0f);
    const RowMatrix x = random_matrix(20, 32, 8);
    const Attention& softmax = Registry::builtin().get("softmax");
    for (bool causal : {false, true}) {
      for (bool traced : {false, true}) {
        AttentionOptions options;
        options.variant = &softmax;
        options.causal = causal;
        Trace trace;
        const RowMatrix y = mha.forward(x, options, traced ? &trace : nullptr);
        QVERIFY(max_abs_diff(y, naive_mha(mha, x.cast<double>(), causal)) < 1e-4);
        if (traced) QCOMPARE(trace.weights.shape(), (Shape{4, 20, 20}));
      }
    }
  }

  // A plain model layer, checked against a naive pre-LN layer built from its saved weights.
  void model_layer_is_pre_ln() {
    ModelConfig c;
    c.name = "t";
    c.d_model = 32;
    c.heads = 4;
    c.d_ff = 64;
    ModelLayer layer = ModelLayer::seeded(LayerSpec{}, c, 9);
    SafetensorsFile file;
    WeightWriter writer(file);
    layer.visit_weights("", writer);
    const auto linear = [&](const std::string& name) {
      return Linear{file.tensors.at(name + ".weight").matrix(),
                    Eigen::Map<const RowVector>(file.tensors.at(name + ".bias").data(), file.tensors.at(name + ".bias").size())};
    };
    MultiHeadAttention mha;
    mha.heads = 4;
    mha.w_q = linear("attention.w_q");
    mha.w_k = linear("attention.w_k");
    mha.w_v = linear("attention.w_v");
    mha.w_o = linear("attention.w_o");
    const Linear up = linear("ff.up"), down = linear("ff.down");
    const RowMatrix x = random_matrix(12, 32, 10);
    AttentionOptions options;
    options.variant = &Registry::builtin().get("softmax");
    const Eigen::MatrixXd xd = x.cast<double>();
    const Eigen::MatrixXd h = xd + naive_mha(mha, naive_layer_norm(xd), false);
    Eigen::MatrixXd pre = naive_layer_norm(h) * up.weight.cast<double>();
    pre.rowwise() += up.bias.cast<double>();
    const Eigen::MatrixXd act = pre.unaryExpr([](double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); });
    Eigen::MatrixXd expected = h + act * down.weight.cast<double>();
    expected.rowwise() += down.bias.cast<double>();
    QVERIFY(max_abs_diff(layer.forward(x, options, nullptr), expected) < 1e-4);
  }

  // Without positions, a non-causal layer is permutation-equivariant.
  void model_layer_is_permutation_equivariant() {
    ModelConfig c;
    c.name = "t";
    c.d_model = 16;
    c.heads = 2;
    c.d_ff = 32;
    const ModelLayer layer = ModelLayer::seeded(LayerSpec{}, c, 11);
    const RowMatrix x = random_matrix(9, 16, 12);
    Eigen::PermutationMatrix<Eigen::Dynamic> perm(9);
    perm.indices() << 3, 0, 8, 1, 7, 2, 6, 4, 5;
    AttentionOptions options;
    options.variant = &Registry::builtin().get("softmax");
    const RowMatrix a = perm * layer.forward(x, options, nullptr);
    const RowMatrix b = layer.forward(perm * x, options, nullptr);
    QVERIFY((a - b).cwiseAbs().maxCoeff() < 1e-5f);
  }

  // Causal encoder: changing token j leaves every hidden state before j bit-identical.
  void causal_encoder_is_causal() {
    ModelConfig c = builtin_model("tiny-encoder");
    c.layers.resize(2);
    const Encoder enc = Encoder::seeded(c, 3);
    std::vector<std::int32_t> ids(70);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(17 * i % 8000 + 1);
    EncoderRunOptions options;
    options.variant = &Registry::builtin().get("softmax");
    options.causal = true;
    options.trace = false;
    const RowMatrix base = enc.forward(ids, options).hidden;
    for (std::size_t j : {std::size_t{5}, std::size_t{64}, std::size_t{69}}) {
      auto changed_ids = ids;
      changed_ids[j] = 4242;
      const RowMatrix changed = enc.forward(changed_ids, options).hidden;
      const auto n = static_cast<Eigen::Index>(j);
      QVERIFY(std::memcmp(base.topRows(n).data(), changed.topRows(n).data(), sizeof(float) * static_cast<std::size_t>(n * base.cols())) == 0);
      QVERIFY(base.row(n) != changed.row(n));
    }
  }

  void weights_round_trip_through_safetensors_tables() {
    ModelConfig c = builtin_model("tiny-encoder");
    c.layers.resize(2);
    const Encoder a = Encoder::seeded(c, 5);
    const SafetensorsFile weights = a.to_weights();
    QCOMPARE(weights.tensors.size(), std::size_t{1 + 2 * 16 + 2});
    QCOMPARE(weights.tensors.at("layers.1.ff.up.weight").shape(), (Shape{256, 1024}));
    const Encoder b = Encoder::from_weights(c, weights);
    EncoderRunOptions options;
    options.variant = &Registry::builtin().get("softmax");
    const std::vector<std::int32_t> ids = {5, 6, 7, 8};
    const EncoderOutput oa = a.forward(ids, options), ob = b.forward(ids, options);
    QCOMPARE(oa.hidden, ob.hidden);
    QCOMPARE(oa.traces.size(), std::size_t{2});

    SafetensorsFile missing = weights;
    missing.tensors.erase("layers.0.attention.w_k.bias");
    EXPECT_ERROR(FormatError, Encoder::from_weights(c, missing), "lack the tensor 'layers.0.attention.w_k.bias'");
    SafetensorsFile wrong = weights;
    wrong.tensors["final_norm.gamma"] = Tensor({255});
    EXPECT_ERROR(FormatError, Encoder::from_weights(c, wrong), "'final_norm.gamma' has shape [255], expected [256]");
  }

  void model_configs_are_validated() {
    QCOMPARE(builtin_model("tiny-encoder").layer_count(), std::int64_t{4});
    EXPECT_ERROR(ParamError, builtin_model("huge"), "unknown model 'huge'; known: tiny-encoder, universal-act");
    nlohmann::json j = builtin_model("tiny-encoder").to_json();
    QCOMPARE(ModelConfig::from_json(j).to_json(), j);
    j["heads"] = 7;
    EXPECT_ERROR(ParamError, ModelConfig::from_json(j), "not divisible by heads=7");
    j["heads"] = 8;
    j["layers"] = 0;
    EXPECT_ERROR(ParamError, ModelConfig::from_json(j), "layers: an integer in [1, 96]");
    j["layers"] = 2;
    j["colour"] = "red";
    EXPECT_ERROR(ParamError, ModelConfig::from_json(j), "unknown field 'colour'");
    EXPECT_ERROR(IoError, ModelConfig::load("/nonexistent/model.json"), "/nonexistent/model.json");
  }

  void playground_runs_and_refuses_bad_requests() {
    Playground playground;
    PlaygroundRequest request;
    request.text = "The quick brown fox jumps over the lazy dog.";
    const PlaygroundResultPtr r = playground.run(request);
    QCOMPARE(r->length(), 10);
    QCOMPARE(r->layers.size(), std::size_t{4});
    QCOMPARE(r->heads(), 8);
    QCOMPARE(r->layers[0].weights.shape(), (Shape{8, 10, 10}));
    QCOMPARE(r->tokens[9].text, std::string("."));
    // Same request, same numbers; another weight seed, other numbers.
    const PlaygroundResultPtr again = playground.run(request);
    QCOMPARE(again->layers[3].weights.matrix(5), r->layers[3].weights.matrix(5));
    request.weight_seed = 2;
    QVERIFY(playground.run(request)->layers[3].weights.matrix(5) != r->layers[3].weights.matrix(5));

    PlaygroundRequest bad = request;
    bad.text = "   ";
    EXPECT_ERROR(ParamError, playground.run(bad), "no tokens");
    bad = request;
    bad.variant = "nope";
    EXPECT_ERROR(ParamError, playground.run(bad), "unknown attention variant");
    bad = request;
    bad.params = nlohmann::json{{"x", 1}};
    EXPECT_ERROR(ParamError, playground.run(bad), "unknown parameter 'x'");
    bad = request;
    bad.text = std::string(10000, 'a');
    for (std::size_t i = 1; i < bad.text.size(); i += 2) bad.text[i] = ' ';
    EXPECT_ERROR(ParamError, playground.run(bad), "takes at most 4096");
    bad = request;
    bad.weights = "/nonexistent/weights.safetensors";
    EXPECT_ERROR(IoError, playground.run(bad), "/nonexistent/weights.safetensors");
    // After errors, the playground still works.
    QCOMPARE(playground.run(request)->length(), 10);
    CancelToken cancel;
    cancel.cancel();
    QVERIFY_THROWS_EXCEPTION(CancelledError, playground.run(request, &cancel));
  }
};

QTEST_GUILESS_MAIN(TestLayers)
#include "test_layers.moc"
