// What the Translate panel is set to, as a session saves it (the translation itself and the
// quality runs are not saved: a reopened session translates the same text again and gets the
// same picture).
//
//   {"text": "Ich habe keine Zeit.", "model": "", "beam": 4, "length_penalty": 1.0, "n_best": 3,
//    "no_repeat_ngram": 0, "attention": "performer", "params": {"n_features": 16}, "seed": 0, "quality_sentences": 100,
//    "tab": "alignment", "layer": -1, "head": -1}
//
// "model" is a model folder; "" means the default one (default_translation_model_dir()), so a
// session stays portable. "params" holds the variant's values that differ from its schema's
// defaults. "layer" and "head" select the map: 0-based, -1 for the average over that axis
// ("average of layers", "average of heads"). Every key is optional (absent: the default below);
// present keys are checked against the ranges the panel and the engine accept and the names the
// registry knows.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace attnlab {

// The panel's tabs: the cross-attention alignment, the encoder's and the decoder's
// self-attention, and the beam tree.
enum class TranslateTab { Alignment, Encoder, Decoder, Beam };

// "alignment", "encoder", "decoder", "beam"; parse throws ParamError listing them.
const char* translate_tab_name(TranslateTab tab);
TranslateTab parse_translate_tab(const std::string& name);

inline constexpr int kTranslateMaxBeam = 16;
inline constexpr double kTranslateMaxLengthPenalty = 5.0;  // translate() accepts 0..5
inline constexpr std::uint64_t kTranslateMaxSeed = 2'000'000'000ULL;
inline constexpr int kTranslateMaxQualitySentences = 100000;

struct TranslateSettings {
  std::string text = "Ich habe keine Zeit.";
  std::string model;  // model folder; "" = default_translation_model_dir()
  int beam = 1;       // 1 = greedy
  double length_penalty = 1.0;
  int n_best = 1;  // hypotheses listed (at most the beam width)
  int no_repeat_ngram = 0;  // 0 = off; n: no n-gram of pieces repeats (SearchOptions)
  std::string attention = "softmax";
  nlohmann::json params = nlohmann::json::object();
  std::uint64_t seed = 0;
  int quality_sentences = 100;  // first N lines of test.de / test.en
  TranslateTab tab = TranslateTab::Alignment;
  int layer = -1;  // -1: average of layers
  int head = -1;   // -1: average of heads

  nlohmann::json to_json() const;
  // Missing keys take the defaults; throws ParamError naming the key for a wrong type, a value
  // out of range, an unknown variant or a parameter its schema refuses.
  static TranslateSettings from_json(const nlohmann::json& j);
  // The same checks for settings built in code.
  void validate() const;
  // The folder the panel loads: `model`, or the default where it is empty.
  std::string model_dir() const;
};

// The shipped de→en model: default_trained_models_dir() + "/de-en", as `attnlab-cli translate`
// and the playground resolve it.
std::string default_translation_model_dir();

}  // namespace attnlab
