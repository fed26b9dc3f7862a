// Composable models: configs with layer specs, every preset end to end, weights round trips,
// reversible runs and per-layer attention variants.
#include <QtTest>
#include <cmath>

#include "attention/registry.h"
#include "layers/act.h"
#include "layers/moe.h"
#include "layers/sparse_qkv.h"
#include "layers/weight_table.h"
#include "models/encoder.h"
#include "models/layer_types.h"
#include "models/playground.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::contains;

namespace {

std::vector<std::int32_t> some_ids(std::size_t n) {
  std::vector<std::int32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>((37 * i + 11) % 8000 + 1);
  return ids;
}

EncoderRunOptions run_options(const char* variant = "softmax", bool trace = true) {
  EncoderRunOptions o;
  o.variant = &Registry::builtin().get(variant);
  o.trace = trace;
  o.attention_seed = 3;
  return o;
}

bool all_finite(const RowMatrix& m) { return m.allFinite(); }

ModelConfig small_config(std::vector<LayerSpec> layers) {
  ModelConfig c = builtin_model("tiny-encoder");
  c.name = "test";
  c.d_model = 32;
  c.heads = 4;
  c.d_ff = 64;
  c.vocab_size = 8192;
  c.layers = std::move(layers);
  return c;
}

}  // namespace

class TestModels : public QObject {
  Q_OBJECT

 private slots:
  void layer_specs_round_trip_with_repeats_folded() {
    const nlohmann::json j = nlohmann::json::parse(R"({
      "name": "mix", "d_model": 64, "heads": 4, "d_ff": 128,
      "layers": [
        {"type": "transformer", "repeat": 2},
        {"ffn": "moe", "ffn_params": {"experts": 4, "top_k": 2}},
        {"attention": "reformer_lsh", "attention_params": {"n_hashes": 2}, "reversible": true, "repeat": 2},
        {"type": "block_recurrent", "recurrent": true, "params": {"window": 16}},
        {"type": "gss"}]})");
    const ModelConfig c = ModelConfig::from_json(j);
    QCOMPARE(c.layer_count(), std::int64_t{7});
    QCOMPARE(c.layers[2].ffn, std::string("moe"));
    QCOMPARE(c.layers[4].attention, std::string("reformer_lsh"));
    QVERIFY(c.layers[4].reversible);
    QCOMPARE(c.layers[5].params["recurrent"], nlohmann::json(true));
    QCOMPARE(c.layers[5].ffn, std::string("none"));  // the type's default: it has its own FFN
    QCOMPARE(c.layers[6].ffn, std::string("none"));
    const nlohmann::json out = c.to_json();
    QCOMPARE(out["layers"].size(), std::size_t{5});
    QCOMPARE(out["layers"][0]["repeat"], nlohmann::json(2));
    QCOMPARE(ModelConfig::from_json(out).to_json(), out);
    // A plain stack is written as a count, as before.
    QCOMPARE(builtin_model("tiny-encoder").to_json()["layers"], nlohmann::json(4));
  }

  void bad_layer_specs_name_the_layer_and_the_problem() {
    const auto config = [](const char* layers) {
      return nlohmann::json{{"name", "x"}, {"d_model", 32}, {"heads", 4}, {"d_ff", 64},
                            {"layers", nlohmann::json::parse(layers)}};
    };
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"type": "lstm"}])")),
                 "unknown layer type 'lstm'; known: transformer, universal");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"colour": 1}])")),
                 "layer 0 (transformer) has an unknown field 'colour'");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{}, {"type": "block_recurrent", "ffn": "dense"}])")),
                 "layer 1 (block_recurrent) ends with its own feed-forward; its 'ffn' must be 'none', not 'dense'");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"type": "gss", "attention": "linear"}])")),
                 "layer 0 (gss) has no attention");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"attention_params": {"n_hashes": 2}}])")),
                 "inherits its variant");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"attention": "reformer_lsh", "attention_params": {"n_hashes": 99}}])")),
                 "layer 0 (transformer) attention 'reformer_lsh': ");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"ffn": "moe", "ffn_params": {"experts": 0}}])")),
                 "layer 0 (transformer) ffn 'moe': ");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"type": "mega", "reversible": true}])")),
                 "cannot be reversible");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"recurrent": true}])")),
                 "'recurrent' applies to block_recurrent layers only");
    EXPECT_ERROR(ParamError, ModelConfig::from_json(config(R"([{"ffn": "kan"}])")), "unknown feed-forward kind 'kan'");
  }

  // Every preset builds, runs a short text with traces, and carries the traces its layers promise.
  void every_preset_runs_with_its_traces() {
    const std::map<std::string, std::string> expected_extra = {
        {"universal-act", "halting"},     {"block-recurrent", "block_recurrent"}, {"switch-moe", "experts"},
        {"scaling-sparse", "sparse_ff"},  {"perceiver-ar", "perceiver"},          {"infinity-former", "memory"},
        {"mega", "mega"},                 {"gss", "gss"}};
    for (const ModelConfig& preset : builtin_models()) {
      if (preset.d_model > 256) continue;  // the large presets: the benchmark runs them
      ModelConfig c = preset;
      const Encoder model = Encoder::seeded(c, 7);
      const EncoderOutput out = model.forward(some_ids(150), run_options());
      QVERIFY2(all_finite(out.hidden), preset.name.c_str());
      QCOMPARE(out.hidden.rows(), Eigen::Index{150});
      QCOMPARE(out.traces.size(), preset.layers.size());
      const auto it = expected_extra.find(preset.name);
      if (it == expected_extra.end()) continue;
      bool found = false;
      for (const Trace& t : out.traces) found = found || t.layer_extra(it->second) != nullptr;
      QVERIFY2(found, (preset.name + " lacks its " + it->second + " trace").c_str());
    }
  }

  // Saving and loading every preset's weights gives the same model: the one weight list serves both.
  void every_preset_round_trips_its_weights() {
    for (const ModelConfig& preset : builtin_models()) {
      if (preset.d_model > 256) continue;
      const Encoder a = Encoder::seeded(preset, 9);
      const SafetensorsFile weights = a.to_weights();
      const Encoder b = Encoder::from_weights(preset, weights);
      const auto ids = some_ids(40);
      const EncoderRunOptions o = run_options("softmax", false);
      QVERIFY2(a.forward(ids, o).hidden == b.forward(ids, o).hidden, preset.name.c_str());
    }
  }

  // A layer that names its variant runs it whatever the run asks for; "inherit" layers follow the run.
  void layers_run_their_own_or_the_inherited_variant() {
    LayerSpec own;
    own.attention = "linear";
    const ModelConfig c = small_config({LayerSpec{}, own});
    const Encoder model = Encoder::seeded(c, 2);
    QCOMPARE(model.layers()[0].variant_name("softmax"), std::string("softmax"));
    QCOMPARE(model.layers()[1].variant_name("softmax"), std::string("linear"));
    const auto ids = some_ids(30);
    const EncoderOutput a = model.forward(ids, run_options("softmax"));
    const EncoderOutput b = model.forward(ids, run_options("bigbird"));
    QVERIFY(a.traces[0].weights.shape() == b.traces[0].weights.shape());
    QVERIFY(a.hidden != b.hidden);
    // Against the same model with both layers inheriting: the first layer's map is the same, the
    // second (linear, not softmax) is not.
    const Encoder softmax_model = Encoder::seeded(small_config({LayerSpec{}, LayerSpec{}}), 2);
    const EncoderOutput s = softmax_model.forward(ids, run_options("softmax"));
    QVERIFY(s.traces[0].weights.matrix(0) == a.traces[0].weights.matrix(0));  // same weights, same first layer
    QVERIFY(s.traces[1].weights.matrix(0) != a.traces[1].weights.matrix(0));
  }

  // A run of reversible layers: y1 = x1 + F(x2), y2 = x2 + G(y1), output the mean, recomputed here
  // from the layers' halves.
  void reversible_runs_follow_the_revnet_equations() {
    LayerSpec rev;
    rev.reversible = true;
    ModelConfig c = small_config({rev, rev, LayerSpec{}});
    const Encoder model = Encoder::seeded(c, 4);
    const auto ids = some_ids(25);
    const EncoderRunOptions o = run_options("softmax", false);
    const EncoderOutput out = model.forward(ids, o);
    // Reference: embedding from the saved table, then the equations.
    const SafetensorsFile w = model.to_weights();
    RowMatrix x(25, 32);
    const RowMatrix pe = sinusoidal_positions(25, 32);
    for (int i = 0; i < 25; ++i) x.row(i) = w.tensors.at("embed.weight").matrix().row(ids[static_cast<std::size_t>(i)]) * std::sqrt(32.0f) + pe.row(i);
    RowMatrix x1 = x, x2 = x;
    for (std::size_t i = 0; i < 2; ++i) {
      AttentionOptions ao{o.variant, nullptr, false, nullptr, Rng::derive(o.attention_seed, "layer" + std::to_string(i)), nullptr, nullptr,
                          static_cast<std::int64_t>(i)};
      x1 += model.layers()[i].reversible_f(x2, ao, nullptr);
      x2 += model.layers()[i].reversible_g(x1, ao, nullptr);
    }
    RowMatrix h = 0.5f * (x1 + x2);
    AttentionOptions ao{o.variant, nullptr, false, nullptr, Rng::derive(o.attention_seed, "layer2"), nullptr, nullptr, 2};
    h = model.layers()[2].forward(h, ao, nullptr);
    LayerNorm final_norm = LayerNorm::identity(32);
    h = final_norm.forward(h);
    QVERIFY((h - out.hidden).cwiseAbs().maxCoeff() < 1e-5f);
  }

  // The universal layer with a huge halting bias takes exactly one step for every token.
  void universal_layer_with_a_huge_halting_bias_takes_one_step() {
    LayerSpec u;
    u.type = "universal";
    u.params = {{"halting_bias", 20.0}, {"max_steps", 6}};
    const Encoder model = Encoder::seeded(small_config({u}), 5);
    const EncoderOutput out = model.forward(some_ids(20), run_options());
    const auto* halting = dynamic_cast<const HaltingTrace*>(out.traces[0].layer_extra("halting"));
    QVERIFY(halting);
    const nlohmann::json j = halting->to_json();
    for (const auto& n : j["steps"]) QCOMPARE(n.get<int>(), 1);
    QCOMPARE(out.traces[0].weights.shape(), (Shape{4, 20, 20}));
  }

  // A MoE layer with one expert and room for every token is the dense layer with that expert's weights.
  void one_expert_moe_layer_equals_the_dense_layer() {
    LayerSpec moe;
    moe.ffn = "moe";
    moe.ffn_params = {{"experts", 1}, {"capacity_factor", 2.0}};
    const Encoder moe_model = Encoder::seeded(small_config({moe}), 6);
    SafetensorsFile w = moe_model.to_weights();
    // Rename the expert's weights to the dense names; the router has nothing to choose.
    SafetensorsFile dense_w;
    for (const auto& [name, t] : w.tensors) {
      std::string n = name;
      const std::string from = "ff.experts.0.";
      if (const auto p = n.find(from); p != std::string::npos) n.replace(p, from.size(), "ff.");
      if (n.find("ff.router") != std::string::npos) continue;
      dense_w.tensors[n] = t;
    }
    const Encoder dense = Encoder::from_weights(small_config({LayerSpec{}}), dense_w);
    const auto ids = some_ids(33);
    const RowMatrix a = moe_model.forward(ids, run_options("softmax", false)).hidden;
    const RowMatrix b = dense.forward(ids, run_options("softmax", false)).hidden;
    QVERIFY((a - b).cwiseAbs().maxCoeff() < 1e-5f);
  }

  // A transformer layer with params.qkv = "sparse" feeds the attention the Scaling Transformers'
  // projections of its normalised input, saved under attention.sparse_qkv.* with no W_q/W_k/W_v.
  void sparse_qkv_layers_attend_with_the_sparse_projections() {
    LayerSpec sparse;
    sparse.params = {{"qkv", "sparse"}};
    const ModelConfig c = small_config({sparse});
    const Encoder model = Encoder::seeded(c, 8);
    const SafetensorsFile w = model.to_weights();
    QVERIFY(w.tensors.count("layers.0.attention.sparse_qkv.gating"));
    QVERIFY(w.tensors.count("layers.0.attention.w_o.weight"));
    QVERIFY(!w.tensors.count("layers.0.attention.w_q.weight"));

    struct Capture final : AttentionProbe {
      Tensor q, k, v;
      void observe(std::int64_t, const AttentionInput& in, const Tensor&, const Trace*) override {
        q = in.q;
        k = in.k;
        v = in.v;
      }
    } capture;
    const auto ids = some_ids(21);
    EncoderRunOptions o = run_options("softmax", false);
    o.probe = &capture;
    model.forward(ids, o);
    // The reference: the saved sparse weights in a SparseQkv of our own, applied to LN(embedding).
    SparseQkv reference = SparseQkv::seeded(32, 4, 64, Params(SparseQkv::schema()), 12345);
    WeightReader reader(w);
    reference.visit_weights("layers.0.attention.sparse_qkv.", reader);
    RowMatrix x(21, 32);
    const RowMatrix pe = sinusoidal_positions(21, 32);
    for (int i = 0; i < 21; ++i) x.row(i) = w.tensors.at("embed.weight").matrix().row(ids[static_cast<std::size_t>(i)]) * std::sqrt(32.0f) + pe.row(i);
    const SparseQkv::Projections p = reference.project(LayerNorm::identity(32).forward(x));
    QVERIFY((merge_heads(capture.q) - p.q).cwiseAbs().maxCoeff() < 1e-5f);
    QVERIFY((merge_heads(capture.k) - p.k).cwiseAbs().maxCoeff() < 1e-5f);
    QVERIFY((merge_heads(capture.v) - p.v).cwiseAbs().maxCoeff() < 1e-5f);
    EXPECT_ERROR(ParamError, ModelConfig::from_json(nlohmann::json{{"name", "x"}, {"d_model", 32}, {"heads", 4}, {"d_ff", 64},
                                                                   {"layers", {{{"params", {{"qkv", "lowrank"}}}}}}}),
                 "layer 0 (transformer) params: ");
  }

  void playground_reports_each_layers_type_and_attention() {
    Playground playground;
    PlaygroundRequest r;
    r.text = "Ein kleiner Test mit einigen Wörtern, damit jede Schicht etwas zu tun hat.";
    r.model = "gss";
    r.compare_exact = true;  // compares nothing: gss has no attention
    const PlaygroundResultPtr result = playground.run(r);
    QCOMPARE(result->layer_types.size(), std::size_t{4});
    QCOMPARE(result->layer_types[0], std::string("gss"));
    QCOMPARE(result->layer_variants[0], std::string("none"));
    QVERIFY(result->layers[0].weights.empty());
    r.model = "mega";
    const PlaygroundResultPtr mega = playground.run(r);
    QCOMPARE(mega->layer_variants[0], std::string("mega"));
    QCOMPARE(mega->layers[0].weights.dim(0), std::int64_t{1});
  }
};

QTEST_APPLESS_MAIN(TestModels)
#include "test_models.moc"
