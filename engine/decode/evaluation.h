// Measured translation quality: translate a test set with given options (beam, attention
// variant) and score it with corpus BLEU against the references; the GUI's "measured quality"
// and `attnlab-cli approx-quality` both call this.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "decode/translator.h"
#include "text/bleu.h"

namespace attnlab {

struct TranslationEvaluation {
  BleuResult bleu;
  std::vector<std::string> hypotheses;  // one per source ("" where the sentence could not be translated)
  std::int64_t failed = 0;              // sentences refused (too long for the model)
  double mean_ms = 0, max_ms = 0;       // per sentence
  double seconds = 0;
};

// Reads a one-sentence-per-line file (CR of CRLF removed, no extra line for a final newline).
std::vector<std::string> read_sentence_file(const std::string& path);

// `progress(done, total)` after each sentence (may be empty). Throws ShapeError when the lists
// differ in length, ParamError for an empty list, CancelledError.
TranslationEvaluation evaluate_translation(const TrainedModel& model, const std::vector<std::string>& sources,
                                           const std::vector<std::string>& references, const TranslateOptions& options,
                                           const std::function<void(std::int64_t, std::int64_t)>& progress = {},
                                           const CancelToken* cancel = nullptr);

}  // namespace attnlab
