// The playground computation behind the GUI, the CLI `figure` command and sessions:
// text + model + variant + hyperparameters + seeds  ->  tokens and every layer's attention trace.
//
// A Playground keeps the last model it built, so re-running on edited text costs one forward
// pass; changing the model, its weights file or the weight seed rebuilds it.
//
// Trained models: the model name "trained:NAME" runs the trained model folder
// <trained models dir>/NAME (decode/translator.h) instead of a composed one:
//   - a translator (trained:de-en) runs its ENCODER on the text (German): non-causal; the tokens
//     are the text's SentencePiece pieces + "</s>" (the encoder always saw EOS last in training);
//   - a language model (trained:en-lm) runs its decoder on "<s>" + the pieces (English): causal.
// The special token is a row and a column of every map (rows keep summing to 1; the LM's first
// query sees only "<s>") and a token of the result, with the empty byte range at the end ("</s>")
// or the start ("<s>") of the text. `causal` comes from the model, never from the request.
// "softmax" is the trained attention; any other variant runs on the trained q, k, v of every
// self-attention layer, compared with exact softmax on those very q, k, v. The folder (files'
// sizes and times) is part of the cache key, so a retrained model is reloaded.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/approximation.h"
#include "attention/attention.h"
#include "core/device.h"
#include "models/encoder.h"
#include "text/tokenizer.h"

namespace attnlab {

class TrainedModel;

struct PlaygroundRequest {
  std::string text;
  std::string model = "tiny-encoder";  // a built-in preset name, the path of a model config .json, or "trained:NAME"
  nlohmann::json model_config;         // null, or a full model config (the composer's) that replaces `model`
  std::string weights;                 // optional safetensors file with trained weights; empty = seeded
  std::string variant = "softmax";
  nlohmann::json params = nlohmann::json::object();  // overrides of the variant's defaults
  bool causal = false;               // composed models only: a trained model decides it itself
  std::uint64_t weight_seed = 1;     // seeded (untrained) weights
  std::uint64_t attention_seed = 1;  // random draws of the attention variant
  bool compare_exact = true;         // also run exact softmax on the layer's q, k, v (not for softmax)
  int compare_layer = -1;            // the layer to compare (what the GUI shows); -1 = every layer
  int compare_topk = 8;              // k of the top-k overlap metric
  std::string trained_models_dir;    // where "trained:NAME" folders are; empty = default_trained_models_dir()
};

// One layer of a variant next to exact softmax attention on the same q, k, v.
struct LayerComparison {
  Tensor exact_weights;                        // [H, L, L]
  std::vector<ApproximationMetrics> per_head;  // [H]
  ApproximationMetrics all_heads;
  Tensor row_kl;            // [H, L] per query row (NaN: the row sees no key), for the lab's strip
  Tensor row_topk_overlap;  // [H, L]
};

struct PlaygroundResult {
  std::vector<Token> tokens;
  ModelConfig model;
  std::string weights_source;  // "seeded (seed 1)", the safetensors path, or a trained model's folder
  std::string tokenizer;       // Tokenizer::describe()
  std::string variant;
  Params params;
  bool causal = false;
  std::string note;  // one line on what the request did not decide (a trained model's fixed causality); may be empty
  std::uint64_t weight_seed = 0;
  std::uint64_t attention_seed = 0;
  std::vector<Trace> layers;  // per layer: weights [H, L, L] (empty: no attention), the variant's and the layer's extras
  // Per layer: its type (models/layer_types.h) and the attention it ran: a variant name (its own
  // or the inherited `variant`), the type's name for a layer with its own attention, or "none".
  std::vector<std::string> layer_types;
  std::vector<std::string> layer_variants;
  // Per layer when compared with exact softmax (else empty); a layer that was not compared has
  // an empty exact_weights tensor and no per_head entries.
  std::vector<LayerComparison> comparisons;
  DeviceInfo device;
  double model_ms = 0.0;    // building or loading the model (0 when cached)
  double forward_ms = 0.0;  // tokenize + forward pass with traces
  std::int64_t peak_bytes = 0;  // tensor bytes held at the peak of the forward pass

  std::int64_t length() const { return static_cast<std::int64_t>(tokens.size()); }
  std::int64_t heads() const { return model.heads; }
};

using PlaygroundResultPtr = std::shared_ptr<const PlaygroundResult>;

class Playground {
 public:
  // Throws ParamError (unknown model/variant, bad parameter, empty or too long text),
  // IoError/FormatError (model files), ResourceError (too long for memory), CancelledError.
  PlaygroundResultPtr run(const PlaygroundRequest& request, const CancelToken* cancel = nullptr);

 private:
  struct CachedModel {
    std::string key;
    std::shared_ptr<const Encoder> encoder;
    std::shared_ptr<const Tokenizer> tokenizer;
    std::string weights_source;
  };
  struct CachedTrainedModel {
    std::string key;  // folder + its files' sizes and modification times
    std::shared_ptr<const TrainedModel> model;
  };
  PlaygroundResultPtr run_trained(const PlaygroundRequest& request, const Attention& variant, Params params,
                                  const CancelToken* cancel);
  CachedModel cached_;
  CachedTrainedModel cached_trained_;
};

// A model config from a preset name, a .json path, or "trained:NAME" (the trained model's shape
// read from its config.json, as a plain stack: name, vocabulary, d_model, heads, d_ff, layers,
// its tokenizer.model; throws like trained_model_folder, then IoError/FormatError for config.json).
ModelConfig resolve_model_config(const std::string& model, const std::string& trained_models_dir = "");

// ---- trained models ----

inline constexpr const char* kTrainedModelPrefix = "trained:";
bool is_trained_model_name(const std::string& model);
// $ATTNLAB_MODELS when set, else <prefix>/share/attnlab/models beside an installed program's bin/,
// else <source>/assets/models (the CLI, the playground and the Translate panel all use this).
std::string default_trained_models_dir();
// The folder of "trained:NAME": <models_dir or the default>/NAME. Throws ParamError for a NAME that
// is not a plain folder name and IoError (one line: the folder, and installer/train-models.sh /
// docs/translation.md to create it) when the folder does not exist.
std::string trained_model_folder(const std::string& model, const std::string& models_dir = "");

// The trained models the product ships, for model lists: whether each is there, and a line that
// says what it gives or, when it is not there, why and how to get it. Reads only config.json.
struct TrainedModelEntry {
  std::string name;    // "trained:de-en"
  std::string folder;  // where it is looked for
  bool available = false;
  std::string summary;
};
std::vector<TrainedModelEntry> shipped_trained_models(const std::string& models_dir = "");

}  // namespace attnlab
