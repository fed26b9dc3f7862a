// A Transformer encoder: token embedding + sinusoidal positions, N pre-LN encoder layers, a
// final layer norm. Weights are seeded from a number (untrained) or loaded from safetensors
// with the names below.
//
//   ids: [L] -> embedding [L, D] -> layers -> final norm -> hidden [L, D]
//   trace per layer: weights [H, L, L] + the variant's extras
//
// safetensors names ([shape]): embed.weight [V, D];
//   layers.{i}.norm_attention.{gamma,beta} [D]; layers.{i}.attention.{w_q,w_k,w_v,w_o}.{weight [D, D], bias [D]};
//   layers.{i}.norm_ff.{gamma,beta} [D]; layers.{i}.ff.up.{weight [D, F], bias [F]};
//   layers.{i}.ff.down.{weight [F, D], bias [D]}; final_norm.{gamma,beta} [D]
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention.h"
#include "core/safetensors.h"
#include "layers/embedding.h"
#include "layers/encoder_layer.h"
#include "layers/weight_table.h"
#include "models/model_config.h"

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
  EncoderOutput forward(const std::vector<std::int32_t>& ids, const EncoderRunOptions& options) const;

 private:
  // Walks every weight with its safetensors name, for saving and loading alike.
  void visit_weights(WeightTable& table);

  ModelConfig config_;
  TokenEmbedding embedding_;
  std::vector<EncoderLayer> layers_;
  LayerNorm final_norm_;
};

}  // namespace attnlab
