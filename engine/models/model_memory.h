// Memory cost model of a whole model forward pass (models/encoder.h), for refusing a length
// before running it: the bytes the pass holds at its peak beyond the model's weights and the ids.
//
// Coarse by design. It counts the engine tensors of the layer that holds the most (q, k, v and
// the attention variant's own cost model, Attention::workspace_bytes, or the tensors a
// block-recurrent or Perceiver AR layer allocates) and the Eigen activations the meter does not
// see — the running hidden state, layer inputs, norms, projections, the feed-forward's [L, d_ff]
// — with a few [L, d_model] to spare, plus a fixed allowance for the runtime's scratch (GEMM
// packing, per-thread buffers). With traces, every layer's weights [H, L, L] and its extras stay
// alive to the end and are added up. tests/engine/test_cost_model.cpp checks it against the
// memory meter and the process high-water mark on presets.
#pragma once

#include <cstdint>

#include "attention/attention.h"
#include "models/model_config.h"

namespace attnlab {

struct ForwardMemoryOptions {
  const Attention* variant = nullptr;  // what "inherit" layers run; null: softmax
  const Params* params = nullptr;      // its parameters; null: its defaults
  bool causal = false;
};

// Throws ParamError for a length < 1 or a config that does not validate.
std::int64_t estimate_forward_bytes(const ModelConfig& config, std::int64_t length, bool trace,
                                    const ForwardMemoryOptions& options = {});

}  // namespace attnlab
