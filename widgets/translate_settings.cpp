#include "translate_settings.h"

#include <cmath>
#include <cstdlib>

#include "attention/params.h"
#include "attention/registry.h"
#include "core/error.h"
#include "core/json_field.h"
#include "decode/search.h"
#include "models/playground.h"


namespace attnlab {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& why) { throw ParamError("translate " + key + ": " + why); }

template <typename T>
T field(const nlohmann::json& j, const char* key, const T& fallback) {
  return json_field(j, key, fallback, "translate field");
}

void check_int(const char* key, std::int64_t value, std::int64_t lo, std::int64_t hi) {
  if (value < lo || value > hi) {
    fail(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(value));
  }
}

}  // namespace

const char* translate_tab_name(TranslateTab tab) {
  switch (tab) {
    case TranslateTab::Alignment: return "alignment";
    case TranslateTab::Encoder: return "encoder";
    case TranslateTab::Decoder: return "decoder";
    case TranslateTab::Beam: return "beam";
  }
  return "alignment";
}

TranslateTab parse_translate_tab(const std::string& name) {
  for (const TranslateTab t : {TranslateTab::Alignment, TranslateTab::Encoder, TranslateTab::Decoder, TranslateTab::Beam})
    if (name == translate_tab_name(t)) return t;
  fail("tab", "'" + name + "' is not one of alignment, encoder, decoder, beam");
}

std::string default_translation_model_dir() { return default_trained_models_dir() + "/de-en"; }

std::string TranslateSettings::model_dir() const { return model.empty() ? default_translation_model_dir() : model; }

void TranslateSettings::validate() const {
  check_int("beam", beam, 1, kTranslateMaxBeam);
  if (!(length_penalty >= 0.0 && length_penalty <= kTranslateMaxLengthPenalty)) {
    fail("length_penalty", "a number in [0, 5], got " + std::to_string(length_penalty));
  }
  check_int("n_best", n_best, 1, kTranslateMaxBeam);
  check_int("no_repeat_ngram", no_repeat_ngram, 0, kMaxNoRepeatNgram);
  const Attention* variant = Registry::builtin().find(attention);
  if (!variant) fail("attention", "'" + attention + "' is not a registered variant");
  if (!params.is_object()) fail("params", "must be a JSON object, got " + params.dump());
  try {
    Params(variant->spec().params).set_from_json(params);
  } catch (const ParamError& e) {
    fail("params", e.what());
  }
  if (seed > kTranslateMaxSeed) fail("seed", "seeds are limited to 0..2000000000");
  check_int("quality_sentences", quality_sentences, 1, kTranslateMaxQualitySentences);
  check_int("layer", layer, -1, 1024);
  check_int("head", head, -1, 1024);
}

nlohmann::json TranslateSettings::to_json() const {
  return nlohmann::json{{"text", text},
                        {"model", model},
                        {"beam", beam},
                        {"length_penalty", length_penalty},
                        {"n_best", n_best},
                        {"no_repeat_ngram", no_repeat_ngram},
                        {"attention", attention},
                        {"params", params},
                        {"seed", seed},
                        {"quality_sentences", quality_sentences},
                        {"tab", translate_tab_name(tab)},
                        {"layer", layer},
                        {"head", head}};
}

TranslateSettings TranslateSettings::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("settings", "must be a JSON object");
  TranslateSettings s;
  s.text = field(j, "text", s.text);
  s.model = field(j, "model", s.model);
  s.beam = field(j, "beam", s.beam);
  s.length_penalty = field(j, "length_penalty", s.length_penalty);
  s.n_best = field(j, "n_best", s.n_best);
  s.no_repeat_ngram = field(j, "no_repeat_ngram", s.no_repeat_ngram);
  s.attention = field(j, "attention", s.attention);
  if (j.contains("params") && !j.at("params").is_null()) s.params = j.at("params");
  s.seed = field(j, "seed", s.seed);
  s.quality_sentences = field(j, "quality_sentences", s.quality_sentences);
  s.tab = parse_translate_tab(field<std::string>(j, "tab", translate_tab_name(s.tab)));
  s.layer = field(j, "layer", s.layer);
  s.head = field(j, "head", s.head);
  s.validate();
  return s;
}

}  // namespace attnlab
