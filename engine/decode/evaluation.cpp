#include "decode/evaluation.h"

#include <chrono>
#include <fstream>

#include "core/error.h"

namespace attnlab {

std::vector<std::string> read_sentence_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read " + path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

TranslationEvaluation evaluate_translation(const TrainedModel& model, const std::vector<std::string>& sources,
                                           const std::vector<std::string>& references, const TranslateOptions& options,
                                           const std::function<void(std::int64_t, std::int64_t)>& progress,
                                           const CancelToken* cancel) {
  if (sources.size() != references.size()) {
    throw ShapeError(std::to_string(sources.size()) + " source sentences but " + std::to_string(references.size()) +
                     " references");
  }
  if (sources.empty()) throw ParamError("no sentences to evaluate");
  const auto start = std::chrono::steady_clock::now();
  TranslationEvaluation e;
  TranslateOptions o = options;
  o.cancel = cancel;
  double total_ms = 0;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    check_cancelled(cancel);
    try {
      const Translation t = translate(model, sources[i], o);
      e.hypotheses.push_back(t.text);
      total_ms += t.ms;
      e.max_ms = std::max(e.max_ms, t.ms);
    } catch (const ParamError&) {
      e.hypotheses.emplace_back();
      ++e.failed;
    }
    if (progress) progress(static_cast<std::int64_t>(i) + 1, static_cast<std::int64_t>(sources.size()));
  }
  const auto translated = static_cast<double>(sources.size()) - static_cast<double>(e.failed);
  e.mean_ms = translated > 0 ? total_ms / translated : 0;
  e.bleu = corpus_bleu(e.hypotheses, references);
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return e;
}

}  // namespace attnlab
