// A session: everything the user set, saved as JSON so it reopens to the identical figure.
//
// {"format": "attnlab-session", "version": 1, "text": "...", "model": "tiny-encoder",
//  "weights": "", "variant": "softmax", "params": {...}, "causal": false,
//  "seeds": {"weights": 1, "attention": 1}, "layer": 0, "head": 0, "view": "heatmap",
//  "view_options": {}, "colormap": "viridis", "model_config": null, "curves": {...},
//  "translate": {...}}
//
// "view_options" holds the view's own settings (trace_view.h: the LSH round, the k-means step,
// ...), checked against that view's option specs. It is optional: sessions written before it
// existed read as the view's defaults (the version stays 1).
//
// "curves" holds the Curves panel's settings per mode (widgets/curves_settings.h), checked on
// load; absent: the panel's defaults (the version stays 1). Measurements are not saved.
//
// "translate" holds the Translate panel's settings (widgets/translate_settings.h: the German
// text, model folder, search, attention variant and parameters, seed, the map shown), checked on
// load; absent: the panel's defaults (the version stays 1). Translations are not saved.
//
// "model_config" is null, or the full config of a model built in the composer (or edited from a
// view, e.g. the halting threshold): then "model" is its name and the session runs this config,
// so the session reopens to the same model without any file beside it.
#pragma once

#include <QString>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "curves_settings.h"
#include "translate_settings.h"
#include "models/playground.h"

namespace attnlab {

struct Session {
  std::string text;
  std::string model = "tiny-encoder";
  std::string weights;  // optional safetensors path
  std::string variant = "softmax";
  nlohmann::json params = nlohmann::json::object();
  bool causal = false;
  std::uint64_t weight_seed = 1;
  std::uint64_t attention_seed = 1;
  int layer = 0;  // 0-based
  int head = 0;   // 0-based
  std::string view = "heatmap";  // a ViewSpec name: "heatmap", "heads", "buckets", ... (trace_view.h)
  nlohmann::json view_options = nlohmann::json::object();  // keys of that view's ViewSpec::options
  std::string colormap = "viridis";
  nlohmann::json model_config;  // null, or a ModelConfig as JSON that overrides `model`
  CurvesSettings curves;        // the Curves panel's controls
  TranslateSettings translate;  // the Translate panel's controls

  static Session with_default_example();  // the built-in example the window opens on

  nlohmann::json to_json() const;
  // Validates names and types (variant, params, view and its options, colormap, seeds); throws
  // ParamError.
  static Session from_json(const nlohmann::json& j);
  // Throws IoError / FormatError / ParamError naming the file.
  static Session load(const std::string& path);
  void save(const std::string& path) const;  // atomic

  PlaygroundRequest to_request() const;
};

// The text of a built-in example ("default", "coreference", "german", "long_paragraph").
std::string example_text(const std::string& name);

}  // namespace attnlab
