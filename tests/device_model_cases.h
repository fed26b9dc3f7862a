// Models run through a compute backend (cuda/device_model.h) against the CPU Encoder on the same
// weights, ids and seeds: shared by tests/engine/test_device_model.cpp (the CPU backend) and
// tests/gpu/test_device_model_gpu.cpp (the CUDA backend).
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention/registry.h"
#include "cuda/device_model.h"
#include "models/encoder.h"
#include "models/layer_types.h"
#include "models/model_config.h"

namespace attnlab::test {

struct DeviceModelCase {
  std::string label;
  ModelConfig config;
  std::string variant = "softmax";
  nlohmann::json params = nlohmann::json::object();
  bool causal = false;
  std::int64_t length = 100;
};

inline LayerSpec window_layer(std::int64_t window) {
  LayerSpec s;
  s.type = "block_recurrent";
  s.ffn = "none";
  s.attention = "inherit";
  s.params = {{"window", window}, {"recurrent", false}};
  return s;
}

// Every kind of layer and attention the device path runs. `scale` multiplies the lengths (the GPU
// test runs them longer).
inline std::vector<DeviceModelCase> device_model_cases(std::int64_t scale = 1) {
  std::vector<DeviceModelCase> cases;
  const ModelConfig tiny = builtin_model("tiny-encoder");
  cases.push_back({"tiny softmax", tiny, "softmax", nlohmann::json::object(), false, 100 * scale});
  cases.push_back({"tiny softmax causal", tiny, "softmax", nlohmann::json::object(), true, 97 * scale});
  cases.push_back({"tiny linear causal", tiny, "linear", nlohmann::json::object(), true, 150 * scale});
  cases.push_back({"tiny linear", tiny, "linear", nlohmann::json::object(), false, 130 * scale});
  cases.push_back({"tiny bigbird block 64", tiny, "bigbird", {{"block_size", 64}}, false, 640 * scale});
  cases.push_back({"reformer (reversible LSH)", builtin_model("reformer"), "softmax", nlohmann::json::object(), false,
                   256 * scale});
  cases.push_back(
      {"reformer causal", builtin_model("reformer"), "softmax", nlohmann::json::object(), true, 192 * scale});
  {
    ModelConfig c = tiny;
    c.name = "windows and plain layers";
    LayerSpec no_ff;
    no_ff.ffn = "none";
    LayerSpec reversible;
    reversible.reversible = true;
    c.layers = {window_layer(64), window_layer(128), no_ff, reversible, reversible, LayerSpec{}};
    // 200 is not a multiple of the 64-token tile: the last block is partial.
    cases.push_back(
        {"sliding windows, no-FFN and reversible layers", c, "softmax", nlohmann::json::object(), false, 200 * scale});
  }
  for (const char* gate : {"lstm", "fixed", "full"}) {
    ModelConfig c = tiny;
    c.name = std::string("recurrent ") + gate;
    LayerSpec recurrent = window_layer(64);
    recurrent.params = {{"window", 64}, {"recurrent", true}, {"state_size", 8}, {"gate", gate}, {"gate_bias", 0.7}};
    c.layers = {window_layer(64), recurrent, LayerSpec{}};
    // 250 tokens: 4 windows, the last one short.
    cases.push_back({std::string("block-recurrent state, ") + gate + " gate", c, "softmax", nlohmann::json::object(),
                     false, 250 * scale});
  }
  {
    ModelConfig c = builtin_model("base-encoder");
    c.layers.resize(2);
    cases.push_back({"base-encoder head dim 64", c, "softmax", nlohmann::json::object(), true, 80 * scale});
  }
  return cases;
}

inline std::vector<std::int32_t> case_ids(std::int64_t n, std::int32_t vocab) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    ids[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((37 * i + 11) % vocab);
  return ids;
}

// max |device − encoder| / max |encoder| over the hidden state of case `c` on `backend`; the
// device side's attention seed may be changed to show that the comparison can fail.
inline double device_vs_encoder(const DeviceModelCase& c, const std::shared_ptr<gpu::ComputeBackend>& backend,
                                std::uint64_t device_seed = 11) {
  const Encoder encoder = Encoder::seeded(c.config, 5);
  const Attention& variant = Registry::builtin().get(c.variant);
  const Params params = schema_params(variant.spec().params, c.params);
  const std::vector<std::int32_t> ids = case_ids(c.length, c.config.vocab_size);

  EncoderRunOptions eo;
  eo.variant = &variant;
  eo.params = &params;
  eo.causal = c.causal;
  eo.attention_seed = 11;
  eo.trace = false;
  const RowMatrix want = encoder.forward(ids, eo).hidden;

  gpu::DeviceRunOptions o;
  o.variant = &variant;
  o.params = &params;
  o.causal = c.causal;
  o.attention_seed = device_seed;
  o.row_chunk = 37;  // several feed-forward chunks, the last one short
  const gpu::DeviceModel model(encoder, backend);
  const RowMatrix got = model.forward(ids, o).hidden;
  if (got.rows() != want.rows() || got.cols() != want.cols() || !got.allFinite()) return INFINITY;
  return (got - want).cwiseAbs().maxCoeff() / std::max(1e-30f, want.cwiseAbs().maxCoeff());
}

}  // namespace attnlab::test
