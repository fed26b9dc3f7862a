// A model built from a config (models/model_config.h): token embedding + sinusoidal positions,
// the configured stack of layers (models/model_layer.h), a final layer norm. Weights are seeded
// from a number (untrained) or loaded from safetensors with the names below.
//
//   ids: [L] -> embedding [L, D] -> layers -> final norm -> hidden [L, D]
//   trace per layer: attention weights [H, L, L] (empty for a layer without attention), the
//   variant's extras, and the layer's own extras (halting, experts, states, memories, ...)
//
// Consecutive reversible layers run as one RevNet stack (layers/reversible.h): the input is
// duplicated into two streams, y1 = x1 + F(x2), y2 = x2 + G(y1) per layer, and the stack's output
// is the mean of the two streams.
//
// safetensors names ([shape]): embed.weight [V, D]; final_norm.{gamma,beta} [D]; per layer
// "layers.{i}." + the layer's names (models/model_layer.h), e.g. for a plain layer
//   norm_attention.{gamma,beta} [D]; attention.{w_q,w_k,w_v,w_o}.{weight [D, D], bias [D]};
//   norm_ff.{gamma,beta} [D]; ff.up.{weight [D, F], bias [F]}; ff.down.{weight [F, D], bias [D]}
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention.h"
#include "core/safetensors.h"
#include "layers/embedding.h"
#include "layers/weight_table.h"
#include "models/model_config.h"
#include "models/model_layer.h"

namespace attnlab {

struct EncoderRunOptions {
  const Attention* variant = nullptr;  // required
  const Params* params = nullptr;
  bool causal = false;
  const std::vector<std::uint8_t>* key_padding = nullptr;
  std::uint64_t attention_seed = 0;  // each layer draws from Rng::derive(attention_seed, "layer<i>")
  bool trace = true;                 // record weights and extras of every layer
  const CancelToken* cancel = nullptr;
  AttentionProbe* probe = nullptr;   // sees every layer's attention call
};

struct EncoderOutput {
  RowMatrix hidden;           // [L, D]
  std::vector<Trace> traces;  // one per layer when options.trace
};

class Encoder {
 public:
  static Encoder seeded(const ModelConfig& config, std::uint64_t seed);
  // Throws FormatError naming a missing tensor or a tensor of the wrong shape.
  static Encoder from_weights(const ModelConfig& config, const SafetensorsFile& weights);
  SafetensorsFile to_weights() const;

  const ModelConfig& config() const { return config_; }
  const std::vector<ModelLayer>& layers() const { return layers_; }
  EncoderOutput forward(const std::vector<std::int32_t>& ids, const EncoderRunOptions& options) const;

 private:
  // Walks every weight with its safetensors name, for saving and loading alike.
  void visit_weights(WeightTable& table);

  ModelConfig config_;
  TokenEmbedding embedding_;
  std::vector<ModelLayer> layers_;
  LayerNorm final_norm_;
};

}  // namespace attnlab
