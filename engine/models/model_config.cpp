#include "models/model_config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace attnlab {
namespace {

void require_range(const char* field, std::int64_t value, std::int64_t min, std::int64_t max) {
  if (value < min || value > max) {
    throw ParamError(std::string("model ") + field + "=" + std::to_string(value) + " is not allowed; " + field +
                     ": an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
}

}  // namespace

void ModelConfig::validate() const {
  if (name.empty()) throw ParamError("model config needs a name");
  if (kind != "encoder") throw ParamError("model kind '" + kind + "' is not supported; allowed: encoder");
  require_range("vocab_size", vocab_size, 2, 1 << 22);
  require_range("d_model", d_model, 4, 8192);
  require_range("heads", heads, 1, 64);
  require_range("layers", layers, 1, 96);
  require_range("d_ff", d_ff, 4, 65536);
  require_range("max_length", max_length, 1, 1 << 20);
  if (d_model % heads != 0) {
    throw ParamError("model d_model=" + std::to_string(d_model) + " is not divisible by heads=" +
                     std::to_string(heads));
  }
  if (!(qk_gain > 0.0f && qk_gain <= 16.0f)) throw ParamError("model qk_gain must be in (0, 16]");
}

nlohmann::json ModelConfig::to_json() const {
  return nlohmann::json{{"name", name},       {"kind", kind},     {"vocab_size", vocab_size},
                        {"d_model", d_model}, {"heads", heads},   {"layers", layers},
                        {"d_ff", d_ff},       {"max_length", max_length}, {"tokenizer", tokenizer},
                        {"qk_gain", qk_gain}, {"description", description}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ParamError("model config must be a JSON object");
  ModelConfig c;
  for (const auto& [key, value] : j.items()) {
    try {
      if (key == "name") c.name = value.get<std::string>();
      else if (key == "kind") c.kind = value.get<std::string>();
      else if (key == "vocab_size") c.vocab_size = value.get<std::int32_t>();
      else if (key == "d_model") c.d_model = value.get<std::int64_t>();
      else if (key == "heads") c.heads = value.get<std::int64_t>();
      else if (key == "layers") c.layers = value.get<std::int64_t>();
      else if (key == "d_ff") c.d_ff = value.get<std::int64_t>();
      else if (key == "max_length") c.max_length = value.get<std::int64_t>();
      else if (key == "tokenizer") c.tokenizer = value.get<std::string>();
      else if (key == "qk_gain") c.qk_gain = value.get<float>();
      else if (key == "description") c.description = value.get<std::string>();
      else throw ParamError("model config has an unknown field '" + key + "'");
    } catch (const nlohmann::json::exception&) {
      throw ParamError("model config field '" + key + "' has the wrong type: " + value.dump());
    }
  }
  c.validate();
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open model config '" + path + "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError("model config '" + path + "' is not valid JSON: " + e.what());
  }
  ModelConfig c = from_json(j);
  if (c.tokenizer != "word" && std::filesystem::path(c.tokenizer).is_relative()) {
    c.tokenizer = (std::filesystem::path(path).parent_path() / c.tokenizer).string();
  }
  return c;
}

const std::vector<ModelConfig>& builtin_models() {
  static const std::vector<ModelConfig> models = [] {
    std::vector<ModelConfig> m;
    ModelConfig tiny;
    tiny.name = "tiny-encoder";
    tiny.vocab_size = 8192;
    tiny.d_model = 256;
    tiny.heads = 8;
    tiny.layers = 4;
    tiny.d_ff = 1024;
    tiny.max_length = 4096;
    tiny.qk_gain = 2.0f;
    tiny.description = "4 layers, d_model 256, 8 heads of 32, pre-LN; seeded weights";
    m.push_back(tiny);

    ModelConfig base = tiny;
    base.name = "base-encoder";
    base.vocab_size = 16384;
    base.d_model = 512;
    base.layers = 6;
    base.d_ff = 2048;
    base.description = "6 layers, d_model 512, 8 heads of 64, pre-LN; seeded weights";
    m.push_back(base);
    return m;
  }();
  return models;
}

const ModelConfig& builtin_model(const std::string& name) {
  std::string known;
  for (const auto& m : builtin_models()) {
    if (m.name == name) return m;
    known += (known.empty() ? "" : ", ") + m.name;
  }
  throw ParamError("unknown model '" + name + "'; known: " + known);
}

}  // namespace attnlab
