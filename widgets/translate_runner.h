// Runs the Translate panel's work off the GUI thread: translating the German as it is typed
// (engine/decode/translator.h) and measuring quality on the model folder's test set
// (engine/decode/evaluation.h).
//
// Two lanes, each a std::thread at a time: translation and measurement, so that typing keeps
// translating while a measurement runs. In each lane the newest request wins: starting one sets
// the running job's CancelToken (the engine stops at its next check: per layer, per decoding
// step, per sentence) and begins a new generation, whose thread first joins the one before it;
// what a stale generation still posts is dropped. Results are posted to the runner's thread (the
// GUI thread) with queued calls, so receivers draw without locks. The destructor cancels and
// joins both lanes.
//
// Model folders are loaded on the worker and kept (the last two, keyed by folder and the files'
// modification times), so typing does not reload 30 MB of weights per keystroke and a retrained
// folder is picked up.
//
// The result carries, besides the engine's Translation, the maps with the averages the panel
// offers ("average of heads", "average of layers"), reduced here on the worker so that the GUI
// thread only draws.
#pragma once

#include <QObject>
#include <QString>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/cancel.h"
#include "decode/evaluation.h"
#include "decode/attention_stack.h"
#include "decode/translator.h"

namespace attnlab {

struct TranslateRequest {
  std::string model_dir;
  std::string text;  // German; blank: nothing to translate (the model is still loaded)
  int beam = 1;      // 1 = greedy
  float length_penalty = 1.0f;
  int n_best = 1;
  int no_repeat_ngram = 0;                          // 0 = off
  std::string attention = "softmax";                // self-attention variant (registry name)
  nlohmann::json params = nlohmann::json::object();  // its parameters (absent keys: defaults)
  std::uint64_t seed = 0;
};

// The engine's options for a request: make_attention_choice(attention, params as "key=value",
// seed), as `attnlab-cli translate --attention NAME --param k=v` builds them. Throws ParamError
// for an unknown variant or a bad value.
TranslateOptions translate_options(const TranslateRequest& request);


struct TranslateResult {
  TranslateRequest request;
  std::string model_description;  // TrainedModel::describe()
  int encoder_layers = 0, decoder_layers = 0, heads = 0;
  bool blank = false;         // the text was blank: no translation
  Translation translation;   // the engine's result (empty when blank)
  AttentionStack cross;      // [H, T, S] per layer: target pieces × source pieces
  AttentionStack encoder;    // [H, S, S]
  AttentionStack decoder;    // [H, T, T]
  // Axis labels: source pieces and "</s>" (S); the predicted pieces and "</s>" when finished (T,
  // the cross rows); the decoder's inputs "<s>" and the pieces before the last (T). A target
  // piece with no visible text (a lone word start) reads "▁".
  std::vector<std::string> source_labels, target_labels, decoder_labels;
  // Per node of translation.search.tree: its piece ("<s>" for the root, "</s>" for EOS, "▁" for
  // a piece with no visible text).
  std::vector<std::string> tree_pieces;
  std::int32_t eos_id = 0;
};
using TranslateResultPtr = std::shared_ptr<const TranslateResult>;

// The result as `attnlab-cli translate --json` prints it: {"source_tokens", "target_tokens",
// "translation", "cross_attention" [layer][head][target][source], "ms", "attention", "beam",
// "log_prob", "score", "finished"} and "nbest" for beam > 1.
nlohmann::json translation_to_json(const TranslateResult& result);

struct QualityRequest {
  TranslateRequest options;  // everything but the text
  int sentences = 100;       // the first N lines of test.de / test.en
};

struct QualityRun {
  TranslateRequest options;
  int sentences = 0;  // measured: N, or fewer where the test set is shorter
  TranslationEvaluation evaluation;
};

class TranslateRunner : public QObject {
  Q_OBJECT

 public:
  explicit TranslateRunner(QObject* parent = nullptr);
  ~TranslateRunner() override;

  // Translates on the translation lane, cancelling the translation before it. Problems (no model
  // folder, a sentence too long, a bad parameter) come back through translationFailed().
  void translate(TranslateRequest request);
  void cancelTranslation();
  bool isTranslating() const { return translation_.running; }
  // Blocks (processing events) until the translation lane is idle; true when it is (tests).
  bool waitForTranslation(int timeout_ms);
  // The last translation that succeeded.
  TranslateResultPtr lastResult() const { return last_; }

  // Measures quality on the measurement lane, cancelling a measurement running.
  void measure(QualityRequest request);
  void cancelMeasure();
  bool isMeasuring() const { return measurement_.running; }
  bool waitForMeasure(int timeout_ms);
  // Every measurement that finished, oldest first (not saved in sessions).
  const std::vector<QualityRun>& qualityRuns() const { return runs_; }

 signals:
  void translated(attnlab::TranslateResultPtr result);
  void translationFailed(const QString& message);
  void measureProgress(int done, int total);
  void measured(int run);  // index into qualityRuns()
  void measureFailed(const QString& message);
  void measureCancelled();

 private:
  struct Lane {
    std::thread worker;
    std::shared_ptr<CancelToken> token;
    int generation = 0;
    bool running = false;
  };
  using Post = std::function<void(std::function<void()>)>;
  // Runs `job` on a new thread of `lane` after the lane's previous one has ended; `job` gets the
  // run's token and a function that posts to this object's thread (dropped once stale). An
  // exception other than CancelledError goes to `fail` (on this thread).
  void launch(Lane& lane, std::function<void(const CancelToken&, const Post&)> job,
              std::function<void(const QString&)> fail);
  void stop(Lane& lane);
  bool wait(const Lane& lane, int timeout_ms) const;
  // The model of `dir`, from the cache or loaded (any thread).
  std::shared_ptr<const TrainedModel> model_for(const std::string& dir);

  Lane translation_, measurement_;
  TranslateResultPtr last_;
  std::vector<QualityRun> runs_;

  struct CachedModel {
    std::string dir, stamp;
    std::shared_ptr<const TrainedModel> model;
  };
  std::mutex cache_mutex_;
  std::vector<CachedModel> cache_;  // most recent last
};

}  // namespace attnlab
