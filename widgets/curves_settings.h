// What the Curves panel is set to, per mode, as a session saves it (the measurements are not
// saved: a reopened session shows the same controls and runs again on Run).
//
//   {"mode": "length",
//    "length":   {"variants": ["softmax", "model:tiny-encoder"], "lengths": [128, ...], "dim": 64,
//                 "heads": 1, "causal": false, "device": "cpu", "repeats": 3,
//                 "time_budget_ms": 10000, "seed": 1},
//    "decoding": {"methods": [...], "tokens": [256, ...], "dim": 64, "heads": 1, "repeats": 3,
//                 "time_budget_ms": 10000, "seed": 1},
//    "depth":    {"variant": "softmax", "length": 512, "d_model": 256, "heads": 8, "d_ff": 1024,
//                 "max_layers": 12, "seed": 1}}
//
// Every key is optional (absent: the default below); present keys are checked against the
// ranges the engine accepts (engine/bench/complexity.h, decoding.h, activation_memory.h) and
// the names it knows. Empty variant and method lists are allowed (nothing checked in the panel:
// Run says so).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/decoding.h"

namespace attnlab {

enum class CurvesMode { Length, Decoding, Depth };

// "length", "decoding", "depth"; parse throws ParamError listing them.
const char* curves_mode_name(CurvesMode mode);
CurvesMode parse_curves_mode(const std::string& name);

// 2^first, 2^(first+1), ... up to `last` (both powers of two or not: every power of two in
// [first, last], first rounded up to one).
std::vector<std::int64_t> powers_of_two(std::int64_t first, std::int64_t last);

struct LengthCurveSettings {
  std::vector<std::string> variants = {"softmax", "linear", "bigbird"};  // names and "model:NAME"
  std::vector<std::int64_t> lengths = powers_of_two(128, 65536);
  int dim = 64;
  int heads = 1;
  bool causal = false;
  std::string device = "cpu";  // "cpu" | "cuda"
  int repeats = 3;
  double time_budget_ms = 10000;
  std::uint64_t seed = 1;
};

struct DecodingCurveSettings {
  std::vector<std::string> methods = decoding_methods();
  std::vector<std::int64_t> tokens = powers_of_two(256, 16384);
  int dim = 64;
  int heads = 1;
  int repeats = 3;
  double time_budget_ms = 10000;
  std::uint64_t seed = 1;
};

struct DepthCurveSettings {
  std::string variant = "softmax";
  int length = 512;
  int d_model = 256;
  int heads = 8;
  int d_ff = 1024;
  int max_layers = 12;
  std::uint64_t seed = 1;
};

struct CurvesSettings {
  CurvesMode mode = CurvesMode::Length;
  LengthCurveSettings length;
  DecodingCurveSettings decoding;
  DepthCurveSettings depth;

  nlohmann::json to_json() const;
  // Missing keys take the defaults; throws ParamError naming the key for a wrong type, a value
  // out of range or an unknown name.
  static CurvesSettings from_json(const nlohmann::json& j);
  // The same checks for settings built in code (what the panel would run).
  void validate() const;
};

// The variants and model presets the length mode offers: every registered variant, then
// "model:NAME" for every built-in model.
std::vector<std::string> curves_length_choices();
// Seeds the panel's spin boxes can hold.
inline constexpr std::uint64_t kCurvesMaxSeed = 2'000'000'000ULL;

}  // namespace attnlab
