// Inference with a model folder: the inference forward equals the training forward, the KV-cached
// steps equal the full decoder, a swapped-in registry variant runs (and the registry's softmax
// reproduces the trained path), greedy translation equals an argmax loop written here, beam search
// scores at least as well, the maps have their stated shapes, and bad input is one line.
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attention/registry.h"
#include "core/error.h"
#include "decode/translator.h"
#include "model_folder.h"
#include "test_support.h"
#include "text/sentencepiece_trainer.h"
#include "train/trainer.h"

using namespace attnlab;
using namespace attnlab::train;

namespace {

struct Folder {
  QTemporaryDir dir;
  std::string path() const { return dir.path().toStdString(); }
};

// A model folder with its own tokenizer (corpus seed 1) and seeded weights.
void write_model(const std::string& folder, const std::string& kind, std::uint64_t seed) {
  const std::string spm = test::train_syllable_tokenizer(folder, 1);
  test::TinyModel m;
  m.kind = kind;
  m.seed = seed;
  test::write_model_folder(folder, m, spm);
}

RowMatrix log_softmax(const RowMatrix& z) {
  RowMatrix out = z;
  for (Eigen::Index i = 0; i < z.rows(); ++i) {
    const double m = z.row(i).maxCoeff();
    double s = 0;
    for (Eigen::Index j = 0; j < z.cols(); ++j) s += std::exp(z(i, j) - m);
    for (Eigen::Index j = 0; j < z.cols(); ++j) out(i, j) = static_cast<float>(z(i, j) - m - std::log(s));
  }
  return out;
}

}  // namespace

class TestTranslator : public QObject {
  Q_OBJECT

  Folder seq2seq_, lm_;
  std::shared_ptr<const TrainedModel> model_, lm_model_;

 private slots:
  void initTestCase() {
    try {
      write_model(seq2seq_.path(), "seq2seq", 3);
    } catch (const std::exception& e) {
      QFAIL(e.what());
    }
    write_model(lm_.path(), "lm", 4);
    model_ = TrainedModel::load(seq2seq_.path());
    lm_model_ = TrainedModel::load(lm_.path());
  }

  // −Σ log p from decode_all's logits = the training forward's nll on the same pair.
  void inference_forward_equals_training_forward() {
    const std::vector<std::int32_t> src = {10, 20, 30, 40, 3}, tgt_in = {2, 50, 60, 70}, tgt_out = {50, 60, 70, 3};
    const RowMatrix memory = encode(*model_, src, {}, nullptr);
    const RowMatrix logp = log_softmax(decode_all(*model_, &memory, tgt_in, {}, nullptr, nullptr));
    double nll = 0;
    for (std::size_t t = 0; t < tgt_out.size(); ++t) nll -= logp(static_cast<Eigen::Index>(t), tgt_out[t]);
    Transformer<float> trained(model_->config(), 0);
    trained.values() = model_->weights().values();
    Batch b;
    b.src = src;
    b.src_layout.add(5);
    b.tgt_in = tgt_in;
    b.tgt_out = tgt_out;
    b.tgt_layout.add(4);
    const double expected = trained.forward_backward(b, false).nll;
    QVERIFY2(std::abs(nll - expected) < 1e-4 * std::abs(expected), qPrintable(QString("%1 vs %2").arg(nll).arg(expected)));
  }

  // The KV-cached steps (three slots, reordered midway) give the full decoder's rows.
  void cached_steps_equal_the_full_decoder() {
    const std::vector<std::int32_t> src = {11, 12, 13, 3};
    const RowMatrix memory = encode(*model_, src, {}, nullptr);
    TranslationDecoder decoder(*model_, memory, {});
    decoder.start(3);
    const std::vector<std::vector<std::int32_t>> prefixes = {{2, 40, 41, 42}, {2, 50, 51, 52}, {2, 60, 61, 62}};
    std::vector<std::vector<std::int32_t>> fed(3);
    for (int t = 0; t < 4; ++t) {
      std::vector<std::int32_t> tokens;
      for (int s = 0; s < 3; ++s) tokens.push_back(prefixes[static_cast<std::size_t>(s)][static_cast<std::size_t>(t)]);
      for (int s = 0; s < 3; ++s) fed[static_cast<std::size_t>(s)].push_back(tokens[static_cast<std::size_t>(s)]);
      const RowMatrix logp = decoder.step(tokens);
      for (int s = 0; s < 3; ++s) {
        const RowMatrix full = log_softmax(decode_all(*model_, &memory, fed[static_cast<std::size_t>(s)], {}, nullptr, nullptr));
        QVERIFY((logp.row(s) - full.row(full.rows() - 1)).cwiseAbs().maxCoeff() < 1e-4f);
      }
      if (t == 1) {  // slot 0 continues slot 2's history twice; slot 1 is dropped
        decoder.reorder({2, 2, 0});
        fed = {fed[2], fed[2], fed[0]};
      }
    }
  }

  // The registry's softmax variant (no cache: the prefix is rerun each step) reproduces the
  // trained path; another variant runs and changes the numbers.
  void swapped_attention_runs_through_the_registry() {
    const std::vector<std::int32_t> src = {15, 16, 17, 18, 3};
    AttentionChoice registry_softmax;
    registry_softmax.variant = &Registry::builtin().get("softmax");
    registry_softmax.params = Params(registry_softmax.variant->spec().params);
    const RowMatrix m0 = encode(*model_, src, {}, nullptr), m1 = encode(*model_, src, registry_softmax, nullptr);
    QVERIFY((m0 - m1).cwiseAbs().maxCoeff() < 1e-4f);
    TranslationDecoder cached(*model_, m0, {}), rerun(*model_, m1, registry_softmax);
    cached.start(1);
    rerun.start(1);
    for (const std::int32_t tok : {2, 30, 31}) QVERIFY((cached.step({tok}) - rerun.step({tok})).cwiseAbs().maxCoeff() < 1e-3f);

    const AttentionChoice performer = make_attention_choice("performer", {"n_features=8"}, 1);
    AttentionMaps maps;
    const RowMatrix m2 = encode(*model_, src, performer, &maps);
    QVERIFY((m0 - m2).cwiseAbs().maxCoeff() > 1e-3f);
    QCOMPARE(maps.size(), std::size_t(2));
    QCOMPARE(maps[0].shape(), (Shape{2, 5, 5}));
    TranslateOptions o;
    o.attention = performer;
    const Translation t = translate(*model_, "kalo mitu.", o);
    QCOMPARE(t.cross_attention.size(), std::size_t(2));
    QCOMPARE(t.encoder_attention[0].dim(0), std::int64_t(2));
  }

  // Greedy = an argmax loop over decode_all written here; beam search scores at least as well.
  void greedy_matches_an_argmax_loop_and_beam_is_no_worse() {
    const std::string text = "kalo mitu berst ri fonu.";
    TranslateOptions o;
    o.max_length = 12;
    const Translation greedy = translate(*model_, text, o);
    std::vector<std::int32_t> src;
    for (const Token& t : model_->tokenizer().encode(text)) src.push_back(t.id);
    src.push_back(3);
    const RowMatrix memory = encode(*model_, src, {}, nullptr);
    std::vector<std::int32_t> in = {2}, out;
    double logp_sum = 0;
    for (int t = 0; t < 12; ++t) {
      const RowMatrix logp = log_softmax(decode_all(*model_, &memory, in, {}, nullptr, nullptr));
      Eigen::Index best = 0;
      logp.row(logp.rows() - 1).maxCoeff(&best);
      logp_sum += logp(logp.rows() - 1, best);
      if (best == 3) break;
      out.push_back(static_cast<std::int32_t>(best));
      in.push_back(static_cast<std::int32_t>(best));
    }
    QCOMPARE(greedy.search.hypotheses.front().tokens, out);
    QVERIFY(std::abs(greedy.log_prob - logp_sum) < 1e-3);
    QCOMPARE(greedy.text, model_->tokenizer().decode(out));

    o.beam = 6;
    o.length_penalty = 0.0f;
    o.n_best = 3;
    const Translation beam = translate(*model_, text, o);
    QVERIFY(beam.log_prob >= greedy.log_prob - 1e-4 || !greedy.finished);
    QVERIFY(beam.nbest_text.size() <= 3 && !beam.nbest_text.empty());
    QVERIFY(beam.search.tree.size() > greedy.search.tree.size());

    // Maps of the best hypothesis: cross [H, T, S] with rows summing to 1; encoder [H, S, S].
    const std::int64_t S = static_cast<std::int64_t>(src.size());
    const std::int64_t T = static_cast<std::int64_t>(greedy.search.hypotheses.front().token_log_probs.size());
    QCOMPARE(greedy.cross_attention.size(), std::size_t(2));
    QCOMPARE(greedy.cross_attention[1].shape(), (Shape{2, T, S}));
    QCOMPARE(greedy.encoder_attention[0].shape(), (Shape{2, S, S}));
    QCOMPARE(greedy.decoder_attention[0].shape(), (Shape{2, T, T}));
    for (std::int64_t t = 0; t < T; ++t) {
      QVERIFY(std::abs(greedy.cross_attention[0].matrix(1).row(t).sum() - 1.0f) < 1e-5f);
    }
    QCOMPARE(greedy.source_tokens.size(), static_cast<std::size_t>(S - 1));
    QVERIFY(greedy.ms > 0);
  }

  // Perplexity sums = −Σ log p from the training forward of the language model.
  void language_model_score_equals_training_nll() {
    const std::vector<std::string> sentences = {"wel za quix.", "öldr apem hoeitz?"};
    const ScoreSums s = score_language_model(*lm_model_, sentences, {});
    Transformer<float> trained(lm_model_->config(), 0);
    trained.values() = lm_model_->weights().values();
    double expected = 0;
    std::int64_t tokens = 0;
    for (const std::string& text : sentences) {
      const std::vector<std::int32_t> ids = lm_model_->tokenizer().encode_ids(text);
      Batch b;
      b.tgt_in = {2};
      b.tgt_in.insert(b.tgt_in.end(), ids.begin(), ids.end());
      b.tgt_out = ids;
      b.tgt_out.push_back(3);
      b.tgt_layout.add(static_cast<std::int64_t>(b.tgt_in.size()));
      expected += trained.forward_backward(b, false).nll;
      tokens += static_cast<std::int64_t>(b.tgt_out.size());
    }
    QCOMPARE(s.tokens, tokens);
    QVERIFY(std::abs(s.nll - expected) < 1e-4 * expected);
  }

  void bad_input_is_one_line() {
    QTemporaryDir empty;
    QVERIFY(test::error_message<IoError>([&] { TrainedModel::load(empty.path().toStdString()); }).find("config.json") !=
            std::string::npos);
    TranslateOptions o;
    QVERIFY(test::error_message<ParamError>([&] { translate(*model_, "   ", o); }).find("empty") != std::string::npos);
    std::string long_text;
    for (int i = 0; i < 60; ++i) long_text += "kaber ";
    QVERIFY(test::error_message<ParamError>([&] { translate(*model_, long_text, o); }).find("at most 40") != std::string::npos);
    QVERIFY(test::error_message<ParamError>([&] { translate(*lm_model_, "kalo", o); }).find("language model") != std::string::npos);
    o.beam = 0;
    QVERIFY(test::error_message<ParamError>([&] { translate(*model_, "kalo", o); }).find("beam=0") != std::string::npos);
    QVERIFY(!test::error_message<ParamError>([&] { make_attention_choice("nope", {}, 0); }).empty());
    QVERIFY(test::error_message<ParamError>([&] { make_attention_choice("performer", {"n_features=0"}, 0); }).find("n_features") !=
            std::string::npos);
    // A tokenizer that does not match the config is refused.
    Folder other;
    write_model(other.path(), "seq2seq", 1);
    nlohmann::json c = model_->config().to_json();
    c["vocab"] = 300;
    std::ofstream(other.path() + "/config.json") << c.dump();
    QVERIFY(!test::error_message<Error>([&] { TrainedModel::load(other.path()); }).empty());
  }
};

QTEST_APPLESS_MAIN(TestTranslator)
#include "test_translator.moc"
