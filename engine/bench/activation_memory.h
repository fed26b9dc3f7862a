// Activation memory against depth: what a training forward pass must keep for backward, in a
// standard residual stack (grows with every layer) and in a reversible stack (the last outputs
// only), with the reversible stack's reconstruction error. Used by attnlab-bench and
// `attnlab-cli memory-depth`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attention/params.h"
#include "core/cancel.h"

namespace attnlab {

struct DepthMemoryPoint;

struct DepthMemoryOptions {
  int max_layers = 12;
  int length = 512;
  int d_model = 256;
  int heads = 8;
  int d_ff = 1024;
  std::string variant = "softmax";
  const Params* params = nullptr;  // the variant's; defaults when null
  std::uint64_t seed = 1;
  const CancelToken* cancel = nullptr;
  std::function<void(int done, int total)> progress;  // after each depth
  std::function<void(const DepthMemoryPoint&)> on_point;  // each depth's point as soon as it is measured
};

struct DepthMemoryPoint {
  int layers = 0;
  std::int64_t standard_bytes = 0;    // activations a standard stack keeps for backward
  std::int64_t reversible_bytes = 0;  // activations the reversible stack keeps
  double reconstruction_error = 0;    // max |x̂ − x| / max |x| after walking back through all layers
  double standard_ms = 0;
  double reversible_ms = 0;
};

// Depths 1..max_layers. Throws ParamError for sizes out of range, CancelledError.
std::vector<DepthMemoryPoint> measure_activation_memory(const DepthMemoryOptions& options);

}  // namespace attnlab
