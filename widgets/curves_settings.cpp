#include "curves_settings.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "attention/registry.h"
#include "core/error.h"
#include "core/json_field.h"
#include "models/model_config.h"

namespace attnlab {
namespace {

// The engine's ranges (complexity.h, decoding.h, activation_memory.h).
constexpr std::int64_t kMaxLength = std::int64_t{1} << 24;
constexpr std::int64_t kMaxTokens = std::int64_t{1} << 20;
constexpr double kMaxBudgetMs = 3.6e6;

[[noreturn]] void fail(const std::string& key, const std::string& why) { throw ParamError("curves " + key + ": " + why); }

template <typename T>
T field(const nlohmann::json& j, const std::string& section, const char* key, const T& fallback) {
  return json_field(j, key, fallback, section.empty() ? std::string("curves field") : "curves " + section + " field");
}

const nlohmann::json& section_of(const nlohmann::json& j, const char* key) {
  static const nlohmann::json empty = nlohmann::json::object();
  if (!j.contains(key) || j.at(key).is_null()) return empty;
  if (!j.at(key).is_object()) fail(key, "must be an object");
  return j.at(key);
}

void check_int(const std::string& key, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi) || std::floor(value) != value) {
    fail(key, "an integer in [" + std::to_string(static_cast<std::int64_t>(lo)) + ", " +
                  std::to_string(static_cast<std::int64_t>(hi)) + "], got " + std::to_string(value));
  }
}

void check_budget(const std::string& key, double ms) {
  if (!(ms >= 1 && ms <= kMaxBudgetMs)) fail(key, "milliseconds in [1, 3600000], got " + std::to_string(ms));
}

void check_seed(const std::string& key, std::uint64_t seed) {
  if (seed > kCurvesMaxSeed) fail(key, "seeds are limited to 0..2000000000");
}

void check_sizes(const std::string& key, const std::vector<std::int64_t>& sizes, std::int64_t lo, std::int64_t hi) {
  if (sizes.empty()) fail(key, "at least one value");
  std::set<std::int64_t> seen;
  for (const std::int64_t v : sizes) {
    if (v < lo || v > hi) fail(key, std::to_string(v) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    if (!seen.insert(v).second) fail(key, std::to_string(v) + " is listed twice");
  }
}

}  // namespace

const char* curves_mode_name(CurvesMode mode) {
  switch (mode) {
    case CurvesMode::Length: return "length";
    case CurvesMode::Decoding: return "decoding";
    case CurvesMode::Depth: return "depth";
  }
  return "length";
}

CurvesMode parse_curves_mode(const std::string& name) {
  for (const CurvesMode m : {CurvesMode::Length, CurvesMode::Decoding, CurvesMode::Depth})
    if (name == curves_mode_name(m)) return m;
  fail("mode", "'" + name + "' is not one of length, decoding, depth");
}

std::vector<std::int64_t> powers_of_two(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  std::int64_t v = 1;
  while (v < first && v < (std::int64_t{1} << 40)) v *= 2;
  for (; v <= last; v *= 2) out.push_back(v);
  return out;
}

std::vector<std::string> curves_length_choices() {
  std::vector<std::string> out = Registry::builtin().names();
  for (const ModelConfig& m : builtin_models()) out.push_back("model:" + m.name);
  return out;
}

void CurvesSettings::validate() const {
  const std::vector<std::string> choices = curves_length_choices();
  std::set<std::string> seen;
  for (const std::string& v : length.variants) {
    if (std::find(choices.begin(), choices.end(), v) == choices.end())
      fail("length.variants", "'" + v + "' is neither a registered variant nor model:<built-in model>");
    if (!seen.insert(v).second) fail("length.variants", "'" + v + "' is listed twice");
  }
  check_sizes("length.lengths", length.lengths, 2, kMaxLength);
  check_int("length.dim", length.dim, 1, 512);
  check_int("length.heads", length.heads, 1, 64);
  if (length.device != "cpu" && length.device != "cuda") fail("length.device", "'" + length.device + "' is not cpu or cuda");
  check_int("length.repeats", length.repeats, 1, 1000);
  check_budget("length.time_budget_ms", length.time_budget_ms);
  check_seed("length.seed", length.seed);

  const std::vector<std::string>& methods = decoding_methods();
  seen.clear();
  for (const std::string& m : decoding.methods) {
    if (std::find(methods.begin(), methods.end(), m) == methods.end()) {
      std::string known;
      for (const std::string& k : methods) known += (known.empty() ? "" : ", ") + k;
      fail("decoding.methods", "'" + m + "' is not a decoding method; known: " + known);
    }
    if (!seen.insert(m).second) fail("decoding.methods", "'" + m + "' is listed twice");
  }
  check_sizes("decoding.tokens", decoding.tokens, 1, kMaxTokens);
  check_int("decoding.dim", decoding.dim, 1, 512);
  check_int("decoding.heads", decoding.heads, 1, 64);
  check_int("decoding.repeats", decoding.repeats, 1, 100);
  check_budget("decoding.time_budget_ms", decoding.time_budget_ms);
  check_seed("decoding.seed", decoding.seed);

  if (!Registry::builtin().find(depth.variant)) fail("depth.variant", "'" + depth.variant + "' is not a registered variant");
  check_int("depth.length", depth.length, 1, 65536);
  check_int("depth.d_model", depth.d_model, 2, 4096);
  check_int("depth.heads", depth.heads, 1, 64);
  if (depth.d_model % depth.heads != 0) {
    fail("depth.d_model", "d_model " + std::to_string(depth.d_model) + " must be divisible by heads " +
                              std::to_string(depth.heads));
  }
  check_int("depth.d_ff", depth.d_ff, 1, 16384);
  check_int("depth.max_layers", depth.max_layers, 1, 96);
  check_seed("depth.seed", depth.seed);
}

nlohmann::json CurvesSettings::to_json() const {
  return nlohmann::json{{"mode", curves_mode_name(mode)},
                        {"length",
                         {{"variants", length.variants},
                          {"lengths", length.lengths},
                          {"dim", length.dim},
                          {"heads", length.heads},
                          {"causal", length.causal},
                          {"device", length.device},
                          {"repeats", length.repeats},
                          {"time_budget_ms", length.time_budget_ms},
                          {"seed", length.seed}}},
                        {"decoding",
                         {{"methods", decoding.methods},
                          {"tokens", decoding.tokens},
                          {"dim", decoding.dim},
                          {"heads", decoding.heads},
                          {"repeats", decoding.repeats},
                          {"time_budget_ms", decoding.time_budget_ms},
                          {"seed", decoding.seed}}},
                        {"depth",
                         {{"variant", depth.variant},
                          {"length", depth.length},
                          {"d_model", depth.d_model},
                          {"heads", depth.heads},
                          {"d_ff", depth.d_ff},
                          {"max_layers", depth.max_layers},
                          {"seed", depth.seed}}}};
}

CurvesSettings CurvesSettings::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("settings", "must be a JSON object");
  CurvesSettings s;
  s.mode = parse_curves_mode(field<std::string>(j, "", "mode", curves_mode_name(s.mode)));

  const nlohmann::json& l = section_of(j, "length");
  s.length.variants = field(l, "length", "variants", s.length.variants);
  s.length.lengths = field(l, "length", "lengths", s.length.lengths);
  s.length.dim = field(l, "length", "dim", s.length.dim);
  s.length.heads = field(l, "length", "heads", s.length.heads);
  s.length.causal = field(l, "length", "causal", s.length.causal);
  s.length.device = field(l, "length", "device", s.length.device);
  s.length.repeats = field(l, "length", "repeats", s.length.repeats);
  s.length.time_budget_ms = field(l, "length", "time_budget_ms", s.length.time_budget_ms);
  s.length.seed = field(l, "length", "seed", s.length.seed);

  const nlohmann::json& d = section_of(j, "decoding");
  s.decoding.methods = field(d, "decoding", "methods", s.decoding.methods);
  s.decoding.tokens = field(d, "decoding", "tokens", s.decoding.tokens);
  s.decoding.dim = field(d, "decoding", "dim", s.decoding.dim);
  s.decoding.heads = field(d, "decoding", "heads", s.decoding.heads);
  s.decoding.repeats = field(d, "decoding", "repeats", s.decoding.repeats);
  s.decoding.time_budget_ms = field(d, "decoding", "time_budget_ms", s.decoding.time_budget_ms);
  s.decoding.seed = field(d, "decoding", "seed", s.decoding.seed);

  const nlohmann::json& m = section_of(j, "depth");
  s.depth.variant = field(m, "depth", "variant", s.depth.variant);
  s.depth.length = field(m, "depth", "length", s.depth.length);
  s.depth.d_model = field(m, "depth", "d_model", s.depth.d_model);
  s.depth.heads = field(m, "depth", "heads", s.depth.heads);
  s.depth.d_ff = field(m, "depth", "d_ff", s.depth.d_ff);
  s.depth.max_layers = field(m, "depth", "max_layers", s.depth.max_layers);
  s.depth.seed = field(m, "depth", "seed", s.depth.seed);

  s.validate();
  return s;
}

}  // namespace attnlab
