// Model configurations: JSON <-> struct, validated, plus the built-in presets.
//
// A model is token embedding + sinusoidal positions, a stack of layers, a final layer norm.
// "layers" is either a count of standard Transformer layers or a list of layer specs:
//
// {"name": "switch-moe", "kind": "encoder", "vocab_size": 8192, "d_model": 256, "heads": 8,
//  "d_ff": 1024, "max_length": 4096, "tokenizer": "word", "qk_gain": 2.0,
//  "layers": [
//    {"type": "transformer", "repeat": 2},
//    {"type": "transformer", "ffn": "moe", "ffn_params": {"experts": 8, "top_k": 2}},
//    {"type": "transformer", "attention": "reformer_lsh", "attention_params": {"n_hashes": 2},
//     "reversible": true, "repeat": 2}]}
//
// A layer spec: "type" (models/layer_types.h; default "transformer"), "attention" (a registered
// variant, or "inherit" = the variant the run asks for; default "inherit") with
// "attention_params" (overrides of that variant's defaults; only with an explicit variant),
// "ffn" (dense | moe | sparse_ff | none; default: the type's) with "ffn_params", "params" (the
// type's own schema), "reversible" (transformer layers only: consecutive reversible layers run as
// one RevNet stack), "recurrent" (block_recurrent only: shorthand for params.recurrent), and
// "repeat" (that many copies).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attnlab {

struct LayerSpec {
  std::string type = "transformer";
  std::string attention = "inherit";
  nlohmann::json attention_params = nlohmann::json::object();
  std::string ffn = "dense";
  nlohmann::json ffn_params = nlohmann::json::object();
  nlohmann::json params = nlohmann::json::object();
  bool reversible = false;

  // Checks every name and value against its schema; throws ParamError naming layer `index`.
  void validate(std::size_t index) const;
  // The full form (every key written, no "repeat").
  nlohmann::json to_json() const;
  // Unknown keys are refused; "repeat" is read by ModelConfig.
  static LayerSpec from_json(const nlohmann::json& j, std::size_t index);
  bool operator==(const LayerSpec&) const = default;
};

struct ModelConfig {
  std::string name;
  std::string kind = "encoder";
  std::int32_t vocab_size = 8192;
  std::int64_t d_model = 256;
  std::int64_t heads = 8;
  std::int64_t d_ff = 1024;
  std::int64_t max_length = 2048;  // longest token sequence accepted
  std::string tokenizer = "word";  // "word" or a SentencePiece model path (relative to the config file)
  float qk_gain = 1.0f;            // init gain of W_q, W_k for seeded (untrained) weights
  std::string description;
  std::vector<LayerSpec> layers = std::vector<LayerSpec>(4);

  std::int64_t head_dim() const { return d_model / heads; }
  std::int64_t layer_count() const { return static_cast<std::int64_t>(layers.size()); }
  // True when every layer is a plain Transformer layer inheriting the run's variant.
  bool is_plain() const;
  // Throws ParamError naming the field (and layer) and its allowed range.
  void validate() const;
  // "layers" is written as a count for a plain stack, else as specs with runs folded into "repeat".
  nlohmann::json to_json() const;
  // Unknown keys are refused (a typo would otherwise silently use a default).
  static ModelConfig from_json(const nlohmann::json& j);
  // Reads a JSON file; a relative tokenizer path is resolved against the file's folder.
  static ModelConfig load(const std::string& path);
};

// Built-in presets, smallest first.
const std::vector<ModelConfig>& builtin_models();
// A preset by name; throws ParamError listing the known names.
const ModelConfig& builtin_model(const std::string& name);

}  // namespace attnlab
