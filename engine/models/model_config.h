// Model configurations: JSON <-> struct, validated, plus the built-in presets.
//
// {"name": "tiny-encoder", "kind": "encoder", "vocab_size": 8192, "d_model": 256, "heads": 8,
//  "layers": 4, "d_ff": 1024, "max_length": 2048, "tokenizer": "word", "qk_gain": 2.0}
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace attnlab {

struct ModelConfig {
  std::string name;
  std::string kind = "encoder";
  std::int32_t vocab_size = 8192;
  std::int64_t d_model = 256;
  std::int64_t heads = 8;
  std::int64_t layers = 4;
  std::int64_t d_ff = 1024;
  std::int64_t max_length = 2048;  // longest token sequence accepted
  std::string tokenizer = "word";  // "word" or a SentencePiece model path (relative to the config file)
  float qk_gain = 1.0f;            // init gain of W_q, W_k for seeded (untrained) weights
  std::string description;

  std::int64_t head_dim() const { return d_model / heads; }
  // Throws ParamError naming the field and its allowed range.
  void validate() const;
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
