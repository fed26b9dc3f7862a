#include "translate_runner.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QThread>
#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace attnlab {
namespace {

constexpr std::size_t kCachedModels = 2;

bool is_blank(const std::string& text) { return text.find_first_not_of(" \t\r\n\f\v") == std::string::npos; }

// The files of a model folder with their sizes and modification times: a retrained folder gets
// another stamp. Empty when a file is missing (the load then names it).
std::string folder_stamp(const std::string& dir) {
  namespace fs = std::filesystem;
  std::string stamp;
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.model"}) {
    std::error_code error;
    const fs::path path = fs::path(dir) / name;
    const auto size = fs::file_size(path, error);
    if (error) return {};
    const auto time = fs::last_write_time(path, error);
    if (error) return {};
    stamp += std::to_string(size) + ":" + std::to_string(time.time_since_epoch().count()) + ";";
  }
  return stamp;
}

std::string piece_text(const TrainedModel& model, std::int32_t id) {
  if (id == model.config().eos_id) return "</s>";
  if (id == model.config().bos_id) return "<s>";
  return model.tokenizer().decode({id});
}

// An axis label for a piece: a piece that decodes to nothing visible (a lone word-start "▁")
// shows as "▁".
std::string label_of(const std::string& piece) {
  return piece.find_first_not_of(" \t\r\n") == std::string::npos ? std::string("\u2581") : piece;
}

std::string assignment_value(const nlohmann::json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

}  // namespace

TranslateOptions translate_options(const TranslateRequest& request) {
  TranslateOptions o;
  o.beam = request.beam;
  o.length_penalty = request.length_penalty;
  o.n_best = request.n_best;
  o.no_repeat_ngram = request.no_repeat_ngram;
  std::vector<std::string> params;
  if (!request.params.is_null()) {
    if (!request.params.is_object()) throw ParamError("attention parameters must be a JSON object, got " + request.params.dump());
    for (const auto& [key, value] : request.params.items()) params.push_back(key + "=" + assignment_value(value));
  }
  o.attention = make_attention_choice(request.attention, params, request.seed);
  return o;
}

// ---- JSON -----------------------------------------------------------------------------------------

nlohmann::json translation_to_json(const TranslateResult& r) {
  return translation_json(r.translation, r.request.attention, r.request.beam);
}

// ---- the runner -----------------------------------------------------------------------------------

TranslateRunner::TranslateRunner(QObject* parent) : QObject(parent) {}

TranslateRunner::~TranslateRunner() {
  for (Lane* lane : {&translation_, &measurement_}) {
    if (lane->token) lane->token->cancel();
    // The current thread of a lane joins the one before it: one join ends them all.
    if (lane->worker.joinable()) lane->worker.join();
  }
}

void TranslateRunner::stop(Lane& lane) {
  if (lane.token) lane.token->cancel();
  ++lane.generation;  // whatever the worker still posts is stale
  lane.running = false;
}

bool TranslateRunner::wait(const Lane& lane, int timeout_ms) const {
  QElapsedTimer timer;
  timer.start();
  while (lane.running && timer.elapsed() < timeout_ms) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    QThread::msleep(2);
  }
  return !lane.running;
}

bool TranslateRunner::waitForTranslation(int timeout_ms) { return wait(translation_, timeout_ms); }
bool TranslateRunner::waitForMeasure(int timeout_ms) { return wait(measurement_, timeout_ms); }

void TranslateRunner::cancelTranslation() { stop(translation_); }

void TranslateRunner::cancelMeasure() {
  const bool was_running = measurement_.running;
  stop(measurement_);
  if (was_running) emit measureCancelled();
}

void TranslateRunner::launch(Lane& lane, std::function<void(const CancelToken&, const Post&)> job,
                             std::function<void(const QString&)> fail) {
  stop(lane);
  lane.token = std::make_shared<CancelToken>();
  const int generation = lane.generation;
  lane.running = true;
  Lane* target = &lane;
  Post post = [this, target, generation](std::function<void()> f) {
    QMetaObject::invokeMethod(
        this,
        [target, generation, f = std::move(f)] {
          if (generation == target->generation) f();
        },
        Qt::QueuedConnection);
  };
  std::thread previous = std::move(lane.worker);
  lane.worker = std::thread([previous = std::move(previous), token = lane.token, post, job = std::move(job),
                             fail = std::move(fail), target]() mutable {
    // A cancelled job ends at its next check; this one starts only after it.
    if (previous.joinable()) previous.join();
    try {
      check_cancelled(token.get());
      job(*token, post);
    } catch (const CancelledError&) {
      // A newer request or Cancel took over; the receivers know.
    } catch (const std::exception& e) {
      post([target, fail, message = QString::fromUtf8(e.what())] {
        target->running = false;
        fail(message);
      });
    }
  });
}

std::shared_ptr<const TrainedModel> TranslateRunner::model_for(const std::string& dir) {
  const std::string stamp = folder_stamp(dir);
  {
    std::lock_guard lock(cache_mutex_);
    for (const CachedModel& c : cache_)
      if (!stamp.empty() && c.dir == dir && c.stamp == stamp) return c.model;
  }
  std::shared_ptr<const TrainedModel> model = TrainedModel::load(dir);  // throws naming the problem
  std::lock_guard lock(cache_mutex_);
  cache_.erase(std::remove_if(cache_.begin(), cache_.end(), [&](const CachedModel& c) { return c.dir == dir; }), cache_.end());
  if (cache_.size() == kCachedModels) cache_.erase(cache_.begin());
  cache_.push_back(CachedModel{dir, stamp, model});
  return model;
}

void TranslateRunner::translate(TranslateRequest request) {
  launch(
      translation_,
      [this, request = std::move(request)](const CancelToken& token, const Post& post) {
        const std::shared_ptr<const TrainedModel> model = model_for(request.model_dir);
        auto result = std::make_shared<TranslateResult>();
        result->request = request;
        result->model_description = model->describe();
        result->encoder_layers = static_cast<int>(model->config().encoder_layers);
        result->decoder_layers = static_cast<int>(model->config().decoder_layers);
        result->heads = static_cast<int>(model->config().heads);
        result->eos_id = model->config().eos_id;
        result->blank = is_blank(request.text);
        if (!result->blank) {
          TranslateOptions options = translate_options(request);
          options.cancel = &token;
          result->translation = attnlab::translate(*model, request.text, options);
          check_cancelled(&token);
          const Translation& t = result->translation;
          result->cross = AttentionStack::from_maps(t.cross_attention);
          result->encoder = AttentionStack::from_maps(t.encoder_attention);
          result->decoder = AttentionStack::from_maps(t.decoder_attention);
          for (const Token& tok : t.source_tokens) result->source_labels.push_back(tok.text);
          result->source_labels.push_back("</s>");
          for (const std::string& piece : t.target_tokens) result->target_labels.push_back(label_of(piece));
          if (t.finished) result->target_labels.push_back("</s>");
          result->decoder_labels.push_back("<s>");
          for (std::size_t i = 0; i + 1 < result->target_labels.size(); ++i) result->decoder_labels.push_back(result->target_labels[i]);
          for (const BeamNode& node : t.search.tree) {
            result->tree_pieces.push_back(node.parent < 0 ? std::string("<s>") : label_of(piece_text(*model, node.token)));
          }
        }
        post([this, result] {
          translation_.running = false;
          last_ = result;
          emit translated(result);
        });
      },
      [this](const QString& message) { emit translationFailed(message); });
}

void TranslateRunner::measure(QualityRequest request) {
  if (measurement_.running) cancelMeasure();
  launch(
      measurement_,
      [this, request = std::move(request)](const CancelToken& token, const Post& post) {
        namespace fs = std::filesystem;
        const std::string& dir = request.options.model_dir;
        const std::shared_ptr<const TrainedModel> model = model_for(dir);
        const fs::path de = fs::path(dir) / "test.de", en = fs::path(dir) / "test.en";
        if (!fs::is_regular_file(de) || !fs::is_regular_file(en)) {
          throw IoError("model folder '" + dir + "' has no test.de and test.en to measure quality on (one sentence per line)");
        }
        std::vector<std::string> sources = read_sentence_file(de.string()), references = read_sentence_file(en.string());
        if (sources.size() != references.size()) {
          throw ShapeError(de.string() + " has " + std::to_string(sources.size()) + " lines but test.en has " +
                           std::to_string(references.size()));
        }
        const std::size_t n = std::min(sources.size(), static_cast<std::size_t>(std::max(1, request.sentences)));
        sources.resize(n);
        references.resize(n);
        TranslateOptions options = translate_options(request.options);
        QualityRun run;
        run.options = request.options;
        run.options.text.clear();
        run.sentences = static_cast<int>(n);
        run.evaluation = evaluate_translation(
            *model, sources, references, options,
            [this, &post](std::int64_t done, std::int64_t total) {
              post([this, done, total] { emit measureProgress(static_cast<int>(done), static_cast<int>(total)); });
            },
            &token);
        post([this, run = std::move(run)] {
          measurement_.running = false;
          runs_.push_back(run);
          emit measured(static_cast<int>(runs_.size()) - 1);
        });
      },
      [this](const QString& message) { emit measureFailed(message); });
}

}  // namespace attnlab
