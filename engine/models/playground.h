// The playground computation behind the GUI, the CLI `figure` command and sessions:
// text + model + variant + hyperparameters + seeds  ->  tokens and every layer's attention trace.
//
// A Playground keeps the last model it built, so re-running on edited text costs one forward
// pass; changing the model, its weights file or the weight seed rebuilds it.
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

struct PlaygroundRequest {
  std::string text;
  std::string model = "tiny-encoder";  // a built-in preset name, or the path of a model config .json
  nlohmann::json model_config;         // null, or a full model config (the composer's) that replaces `model`
  std::string weights;                 // optional safetensors file with trained weights; empty = seeded
  std::string variant = "softmax";
  nlohmann::json params = nlohmann::json::object();  // overrides of the variant's defaults
  bool causal = false;
  std::uint64_t weight_seed = 1;     // seeded (untrained) weights
  std::uint64_t attention_seed = 1;  // random draws of the attention variant
  bool compare_exact = true;         // also run exact softmax on the layer's q, k, v (not for softmax)
  int compare_layer = -1;            // the layer to compare (what the GUI shows); -1 = every layer
  int compare_topk = 8;              // k of the top-k overlap metric
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
  std::string weights_source;  // "seeded (seed 1)" or the safetensors path
  std::string tokenizer;       // Tokenizer::describe()
  std::string variant;
  Params params;
  bool causal = false;
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
  CachedModel cached_;
};

// A model config from a preset name or a .json path.
ModelConfig resolve_model_config(const std::string& model);

}  // namespace attnlab
