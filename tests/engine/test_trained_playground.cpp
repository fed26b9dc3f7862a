// Trained models in the playground ("trained:de-en", "trained:en-lm") on small model folders built
// here (seeded weights, a SentencePiece model trained on a syllable corpus): the layer maps equal
// encode/decode_all's and, for layer 0, a softmax written out in this file from the weights; the
// LM's maps are causal with rows summing to 1; a swapped-in variant is compared with exact softmax
// on the very q, k, v it ran on (a KL checked by hand); tokens' offsets point into the text; a
// missing folder is one line; the cache reloads when the folder changes.
#include <QTemporaryDir>
#include <QtTest>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "decode/translator.h"
#include "layers/multi_head_attention.h"
#include "models/playground.h"
#include "model_folder.h"
#include "test_support.h"
#include "text/sentencepiece_trainer.h"
#include "train/trainer.h"

using namespace attnlab;
using namespace attnlab::train;

namespace {

// config.json + model.safetensors (seeded, sharpened ×3 so the maps are far from uniform) + a copy
// of `tokenizer`; a language model has 3 layers, a translator 2+2.
void write_model_folder(const std::string& folder, const std::string& kind, std::uint64_t seed,
                        const std::string& tokenizer) {
  test::TinyModel m;
  m.kind = kind;
  m.decoder_layers = kind == "seq2seq" ? 2 : 3;
  m.seed = seed;
  m.sharpen = 3.0f;
  test::write_model_folder(folder, m, tokenizer);
}

// Records every observed layer's q, k and weights (what a probe of encode/decode_all sees).
class Recorder final : public AttentionProbe {
 public:
  std::vector<Tensor> q, k, weights;
  void observe(std::int64_t layer, const AttentionInput& input, const Tensor&, const Trace* trace) override {
    const auto i = static_cast<std::size_t>(layer);
    q.resize(std::max(q.size(), i + 1));
    k.resize(q.size());
    weights.resize(q.size());
    q[i] = input.q;
    k[i] = input.k;
    if (trace) weights[i] = trace->weights;
  }
};

// softmax(q·kᵀ/√d) per head in double, keys j > i masked when causal: [H][L][L].
std::vector<std::vector<std::vector<double>>> naive_softmax(const Tensor& q, const Tensor& k, bool causal) {
  const std::int64_t H = q.dim(0), L = q.dim(1), d = q.dim(2);
  std::vector<std::vector<std::vector<double>>> p(static_cast<std::size_t>(H));
  for (std::int64_t h = 0; h < H; ++h) {
    auto& head = p[static_cast<std::size_t>(h)];
    head.assign(static_cast<std::size_t>(L), std::vector<double>(static_cast<std::size_t>(L), 0.0));
    for (std::int64_t i = 0; i < L; ++i) {
      std::vector<double> s(static_cast<std::size_t>(L), -INFINITY);
      double m = -INFINITY;
      for (std::int64_t j = 0; j < L && (!causal || j <= i); ++j) {
        double dot = 0;
        for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(q.at(h, i, c)) * k.at(h, j, c);
        s[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
        m = std::max(m, s[static_cast<std::size_t>(j)]);
      }
      double z = 0;
      for (double& v : s) z += std::isinf(v) ? 0.0 : std::exp(v - m);
      for (std::int64_t j = 0; j < L; ++j) {
        const double v = s[static_cast<std::size_t>(j)];
        head[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = std::isinf(v) ? 0.0 : std::exp(v - m) / z;
      }
    }
  }
  return p;
}

// Layer 0's q and k straight from the weights: x = √D·E[id] + PE(pos), LayerNorm, x·W + b,
// split into heads [H, L, d] (written out here, not through the engine's inference code).
std::pair<Tensor, Tensor> first_layer_qk(const TrainedModel& model, const std::vector<std::int32_t>& ids) {
  const Transformer<float>& w = model.weights();
  const TransformerConfig& c = model.config();
  const AttentionSlots& s = c.has_encoder() ? w.encoder_layers()[0].self_attn : w.decoder_layers()[0].self_attn;
  const std::int64_t D = c.d_model, H = c.heads, d = D / H, L = static_cast<std::int64_t>(ids.size());
  const auto table = w.weight(w.embedding_slot());
  std::vector<std::vector<double>> a(static_cast<std::size_t>(L), std::vector<double>(static_cast<std::size_t>(D)));
  for (std::int64_t n = 0; n < L; ++n) {
    std::vector<double> x(static_cast<std::size_t>(D));
    for (std::int64_t i = 0; i < D; ++i) {
      const double angle = static_cast<double>(n) / std::pow(10000.0, static_cast<double>(i - i % 2) / static_cast<double>(D));
      x[static_cast<std::size_t>(i)] = std::sqrt(static_cast<double>(D)) * table(ids[static_cast<std::size_t>(n)], i) +
                                       (i % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
    double mean = 0, var = 0;
    for (double v : x) mean += v / static_cast<double>(D);
    for (double v : x) var += (v - mean) * (v - mean) / static_cast<double>(D);
    for (std::int64_t i = 0; i < D; ++i) {
      a[static_cast<std::size_t>(n)][static_cast<std::size_t>(i)] =
          (x[static_cast<std::size_t>(i)] - mean) / std::sqrt(var + 1e-5) * w.vector(s.norm.gain)(i) + w.vector(s.norm.bias)(i);
    }
  }
  auto project = [&](const LinearSlots& p) {
    Tensor out({H, L, d});
    for (std::int64_t n = 0; n < L; ++n) {
      for (std::int64_t col = 0; col < D; ++col) {
        double y = w.vector(p.bias)(col);
        for (std::int64_t i = 0; i < D; ++i) y += a[static_cast<std::size_t>(n)][static_cast<std::size_t>(i)] * w.weight(p.weight)(i, col);
        out.at(col / d, n, col % d) = static_cast<float>(y);
      }
    }
    return out;
  };
  return {project(s.q), project(s.k)};
}

double max_difference(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  double m = 0;
  for (std::int64_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::abs(a.data()[i] - b.data()[i])));
  return m;
}

double max_difference(const Tensor& a, const std::vector<std::vector<std::vector<double>>>& b) {
  double m = 0;
  for (std::int64_t h = 0; h < a.dim(0); ++h)
    for (std::int64_t i = 0; i < a.dim(1); ++i)
      for (std::int64_t j = 0; j < a.dim(2); ++j)
        m = std::max(m, std::abs(a.at(h, i, j) - b[static_cast<std::size_t>(h)][static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]));
  return m;
}

const std::string kGerman = "kalo schän öldr mitu berst.";
const std::string kEnglish = "wel za quix öldr ri?";

}  // namespace

class TestTrainedPlayground : public QObject {
  Q_OBJECT

  QTemporaryDir root_;  // root_/models/{de-en,en-lm}: the models folder the requests name
  std::string models_, tokenizer_;

  PlaygroundRequest request(const std::string& model, const std::string& text, const std::string& variant = "softmax") const {
    PlaygroundRequest r;
    r.model = model;
    r.text = text;
    r.variant = variant;
    r.trained_models_dir = models_;
    return r;
  }

  std::vector<std::int32_t> piece_ids(const TrainedModel& m, const std::string& text) const {
    return m.tokenizer().encode_ids(text);
  }

 private slots:
  void initTestCase() {
    QVERIFY(root_.isValid());
    const std::string spm_dir = root_.path().toStdString() + "/spm";
    std::filesystem::create_directories(spm_dir);
    try {
      tokenizer_ = test::train_syllable_tokenizer(spm_dir, 7);
      models_ = root_.path().toStdString() + "/models";
      write_model_folder(models_ + "/de-en", "seq2seq", 11, tokenizer_);
      write_model_folder(models_ + "/en-lm", "lm", 12, tokenizer_);
    } catch (const std::exception& e) {
      QFAIL(e.what());
    }
  }

  // The encoder's maps: what encode reports, and for layer 0 the softmax of q, k computed here.
  void translator_encoder_maps_equal_encode() {
    Playground playground;
    const PlaygroundResultPtr r = playground.run(request("trained:de-en", kGerman));
    const auto model = TrainedModel::load(models_ + "/de-en");
    std::vector<std::int32_t> ids = piece_ids(*model, kGerman);
    ids.push_back(model->config().eos_id);
    AttentionMaps maps;
    encode(*model, ids, {}, &maps);

    const auto L = static_cast<std::int64_t>(ids.size());
    QCOMPARE(r->length(), L);
    QCOMPARE(r->layers.size(), std::size_t(2));
    for (std::size_t l = 0; l < 2; ++l) {
      QCOMPARE(r->layers[l].weights.shape(), (Shape{2, L, L}));
      QVERIFY(max_difference(r->layers[l].weights, maps[l]) < 1e-6);
    }
    const auto [q, k] = first_layer_qk(*model, ids);
    const double error = max_difference(r->layers[0].weights, naive_softmax(q, k, false));
    QVERIFY2(error < 1e-4, qPrintable(QString::number(error)));

    QCOMPARE(r->tokens.back().id, model->config().eos_id);
    QCOMPARE(r->tokens.back().begin, kGerman.size());
    QCOMPARE(r->tokens.back().end, kGerman.size());
    QVERIFY(!r->causal);
    QVERIFY(test::contains(r->note, "never causal"));
    QCOMPARE(r->model.name, std::string("trained:de-en"));
    QCOMPARE(r->model.heads, std::int64_t(2));
    QCOMPARE(r->model.d_model, std::int64_t(16));
    QCOMPARE(r->model.layer_count(), std::int64_t(2));
    QCOMPARE(r->weights_source, models_ + "/de-en");
    QCOMPARE(r->tokenizer, model->tokenizer().describe());
    QCOMPARE(r->layer_types, std::vector<std::string>(2, "trained transformer"));
    QCOMPARE(r->layer_variants, std::vector<std::string>(2, "softmax"));
    QVERIFY(r->comparisons.empty());  // the trained softmax is the exact attention itself

    // The request's causal flag does not make the encoder causal.
    PlaygroundRequest causal = request("trained:de-en", kGerman);
    causal.causal = true;
    const PlaygroundResultPtr rc = playground.run(causal);
    QVERIFY(!rc->causal);
    QVERIFY(max_difference(rc->layers[1].weights, maps[1]) < 1e-6);
  }

  // The LM runs on <s> + pieces: maps equal decode_all's, are causal and have rows summing to 1,
  // also with a swapped-in variant.
  void language_model_maps_are_causal() {
    Playground playground;
    const PlaygroundResultPtr r = playground.run(request("trained:en-lm", kEnglish));
    const auto model = TrainedModel::load(models_ + "/en-lm");
    std::vector<std::int32_t> ids = {model->config().bos_id};
    for (const std::int32_t id : piece_ids(*model, kEnglish)) ids.push_back(id);
    AttentionMaps maps;
    decode_all(*model, nullptr, ids, {}, &maps, nullptr);

    const auto L = static_cast<std::int64_t>(ids.size());
    QCOMPARE(r->length(), L);
    QCOMPARE(r->tokens.front().id, model->config().bos_id);
    QCOMPARE(r->tokens.front().begin, std::size_t(0));
    QCOMPARE(r->tokens.front().end, std::size_t(0));
    QVERIFY(r->causal);
    QVERIFY(test::contains(r->note, "always causal"));
    QCOMPARE(r->layers.size(), std::size_t(3));
    QCOMPARE(r->model.layer_count(), std::int64_t(3));
    for (std::size_t l = 0; l < 3; ++l) QVERIFY(max_difference(r->layers[l].weights, maps[l]) < 1e-6);
    const auto [q, k] = first_layer_qk(*model, ids);
    QVERIFY(max_difference(r->layers[0].weights, naive_softmax(q, k, true)) < 1e-4);

    PlaygroundRequest swapped = request("trained:en-lm", kEnglish, "performer");
    swapped.params = {{"n_features", 16}};
    const PlaygroundResultPtr p = playground.run(swapped);
    for (const PlaygroundResultPtr& result : {r, p}) {
      for (const Trace& t : result->layers) {
        QCOMPARE(t.weights.shape(), (Shape{2, L, L}));
        for (std::int64_t h = 0; h < 2; ++h) {
          QVERIFY(std::abs(t.weights.at(h, 0, 0) - 1.0f) < 1e-6f);  // <s> sees only itself
          for (std::int64_t i = 0; i < L; ++i) {
            double sum = 0;
            for (std::int64_t j = 0; j < L; ++j) {
              if (j > i) QCOMPARE(t.weights.at(h, i, j), 0.0f);
              sum += t.weights.at(h, i, j);
            }
            QVERIFY(std::abs(sum - 1.0) < 1e-5);
          }
        }
      }
    }
    QVERIFY(p->causal);
    QCOMPARE(p->comparisons.size(), std::size_t(3));
    QVERIFY(p->comparisons[2].exact_weights.at(0, 1, 2) == 0.0f);  // the exact reference is causal too
  }

  // Performer on the encoder: the maps change; the comparison's exact weights are the softmax of
  // the very q, k performer ran on (recorded here through encode's probe), and one row's KL is
  // the hand-computed Σ p log(p / q̂).
  void swapped_variant_is_compared_on_the_same_qkv() {
    Playground playground;
    const PlaygroundResultPtr exact = playground.run(request("trained:de-en", kGerman));
    PlaygroundRequest req = request("trained:de-en", kGerman, "performer");
    req.params = {{"n_features", 8}};
    req.attention_seed = 5;
    const PlaygroundResultPtr r = playground.run(req);
    QCOMPARE(r->variant, std::string("performer"));
    QCOMPARE(r->layer_variants, std::vector<std::string>(2, "performer"));
    QVERIFY(max_difference(r->layers[0].weights, exact->layers[0].weights) > 1e-3);
    QCOMPARE(r->comparisons.size(), std::size_t(2));

    const auto model = TrainedModel::load(models_ + "/de-en");
    std::vector<std::int32_t> ids = piece_ids(*model, kGerman);
    ids.push_back(model->config().eos_id);
    Recorder recorder;
    encode(*model, ids, make_attention_choice("performer", {"n_features=8"}, 5), nullptr, nullptr, &recorder);
    QCOMPARE(recorder.q.size(), std::size_t(2));
    for (std::size_t l = 0; l < 2; ++l) {
      QVERIFY(max_difference(r->layers[l].weights, recorder.weights[l]) < 1e-6);  // same seed, same draws
      const auto reference = naive_softmax(recorder.q[l], recorder.k[l], false);
      QVERIFY(max_difference(r->comparisons[l].exact_weights, reference) < 1e-5);
      QCOMPARE(r->comparisons[l].per_head.size(), std::size_t(2));
    }
    // Layer 1's q, k come from a performer layer 0, so they differ from the softmax run's.
    QVERIFY(max_difference(r->comparisons[1].exact_weights, exact->layers[1].weights) > 1e-4);

    // KL(exact row ‖ performer row) of layer 1 by hand, every head and query.
    const auto reference = naive_softmax(recorder.q[1], recorder.k[1], false);
    const Tensor& a = r->layers[1].weights;
    const std::int64_t L = a.dim(2);
    double largest = 0;
    for (std::int64_t h = 0; h < 2; ++h) {
      for (std::int64_t i = 0; i < L; ++i) {
        double mass = 0, kl = 0;
        for (std::int64_t j = 0; j < L; ++j) mass += std::max(0.0f, a.at(h, i, j));
        for (std::int64_t j = 0; j < L; ++j) {
          const double p = reference[static_cast<std::size_t>(h)][static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
          const double qhat = std::max(std::max(0.0f, a.at(h, i, j)) / mass, kKlFloor);
          if (p > 0) kl += p * std::log(p / qhat);
        }
        const double reported = r->comparisons[1].row_kl.at(h, i);
        QVERIFY2(std::abs(reported - kl) < 1e-5 + 1e-3 * kl, qPrintable(QString("%1 vs %2").arg(reported).arg(kl)));
        largest = std::max(largest, kl);
      }
    }
    QVERIFY2(largest > 1e-3, qPrintable(QString::number(largest)));  // the variant really differs

    // compare_layer limits the comparison to the layer on screen.
    req.compare_layer = 1;
    const PlaygroundResultPtr one = playground.run(req);
    QVERIFY(one->comparisons[0].exact_weights.empty());
    QVERIFY(!one->comparisons[1].exact_weights.empty());
  }

  // Every piece's byte range is the piece's text in the input (multi-byte letters included).
  void tokens_point_into_the_text() {
    Playground playground;
    const std::vector<std::pair<std::string, std::string>> runs = {{"trained:de-en", kGerman}, {"trained:en-lm", kEnglish}};
    for (const auto& [model, text] : runs) {
      const PlaygroundResultPtr r = playground.run(request(model, text));
      std::size_t previous_end = 0, pieces = 0;
      for (const Token& t : r->tokens) {
        if (t.text == "<s>" || t.text == "</s>") {
          QCOMPARE(t.begin, t.end);
          continue;
        }
        ++pieces;
        QVERIFY(t.begin >= previous_end && t.begin < t.end && t.end <= text.size());
        std::string piece = t.text;
        const std::string marker = "\xE2\x96\x81";  // ▁, SentencePiece's word start
        if (piece.rfind(marker, 0) == 0) piece.erase(0, marker.size());
        std::string span = text.substr(t.begin, t.end - t.begin);
        span.erase(0, span.find_first_not_of(' '));
        QCOMPARE(span, piece);
        previous_end = t.end;
      }
      QCOMPARE(pieces + 1, r->tokens.size());
    }
  }

  void missing_folder_is_one_line() {
    QTemporaryDir empty;
    Playground playground;
    PlaygroundRequest r = request("trained:de-en", kGerman);
    r.trained_models_dir = empty.path().toStdString();
    const std::string message = test::error_message<IoError>([&] { playground.run(r); });
    QVERIFY2(test::contains(message, empty.path().toStdString() + "/de-en"), message.c_str());
    QVERIFY(test::contains(message, "installer/train-models.sh"));
    QVERIFY(test::contains(message, "docs/translation.md"));
    QVERIFY(message.find('\n') == std::string::npos);
    QCOMPARE(test::error_message<IoError>([&] { resolve_model_config("trained:de-en", r.trained_models_dir); }), message);

    r.model = "trained:../models/de-en";
    QVERIFY(test::contains(test::error_message<ParamError>([&] { playground.run(r); }), "trained:NAME"));
    PlaygroundRequest with_weights = request("trained:de-en", kGerman);
    with_weights.weights = "w.safetensors";
    QVERIFY(test::contains(test::error_message<ParamError>([&] { playground.run(with_weights); }), "own weights"));
    std::string long_text;
    for (int i = 0; i < 60; ++i) long_text += "kaber ";
    QVERIFY(test::contains(test::error_message<ParamError>([&] { playground.run(request("trained:en-lm", long_text)); }),
                           "at most 40"));

    // The listing says which are there, and for a missing one how to get it.
    for (const TrainedModelEntry& e : shipped_trained_models(empty.path().toStdString())) {
      QVERIFY(!e.available);
      QVERIFY2(test::contains(e.summary, "installer/train-models.sh"), e.summary.c_str());
    }
    const std::vector<TrainedModelEntry> here = shipped_trained_models(models_);
    QCOMPARE(here.size(), std::size_t(2));
    for (const TrainedModelEntry& e : here) QVERIFY2(e.available, e.summary.c_str());
    QCOMPARE(resolve_model_config(here[1].name, models_).layer_count(), std::int64_t(3));
  }

  // Same folder: cached. Rewritten weights (same sizes, a later modification time) or another
  // folder: reloaded, and the maps are the new weights'.
  void cache_reloads_when_the_folder_changes() {
    QTemporaryDir dir;
    const std::string models = dir.path().toStdString();
    write_model_folder(models + "/de-en", "seq2seq", 21, tokenizer_);
    Playground playground;
    PlaygroundRequest r = request("trained:de-en", kGerman);
    r.trained_models_dir = models;
    const PlaygroundResultPtr first = playground.run(r);
    QVERIFY(first->model_ms > 0.0);
    QVERIFY(playground.run(r)->model_ms == 0.0);

    const std::filesystem::path weights = models + "/de-en/model.safetensors";
    const auto old_time = std::filesystem::last_write_time(weights);
    const auto old_size = std::filesystem::file_size(weights);
    write_model_folder(models + "/de-en", "seq2seq", 22, tokenizer_);
    QCOMPARE(std::filesystem::file_size(weights), old_size);
    // Independent of the file system's time resolution: the rewrite is at least 2 s later.
    std::filesystem::last_write_time(weights, old_time + std::chrono::seconds(2));
    const PlaygroundResultPtr second = playground.run(r);
    QVERIFY(second->model_ms > 0.0);
    QVERIFY(max_difference(second->layers[0].weights, first->layers[0].weights) > 1e-3);
    const auto model = TrainedModel::load(models + "/de-en");
    std::vector<std::int32_t> ids = piece_ids(*model, kGerman);
    ids.push_back(model->config().eos_id);
    AttentionMaps maps;
    encode(*model, ids, {}, &maps);
    QVERIFY(max_difference(second->layers[0].weights, maps[0]) < 1e-6);

    r.trained_models_dir = models_;
    QVERIFY(playground.run(r)->model_ms > 0.0);
  }
};

QTEST_APPLESS_MAIN(TestTrainedPlayground)
#include "test_trained_playground.moc"
