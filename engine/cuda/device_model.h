// A model (models/encoder.h) run on a compute backend (cuda/backend.h): its weights uploaded
// once, the forward pass issued as backend operations with every activation kept on the device,
// the hidden state copied back only at the end. On the CUDA backend this is the whole model on
// the GPU; on the CPU backend it is the same sequence of operations on the host, which the tests
// check against Encoder::forward (so the orchestration is verified without a GPU, and each CUDA
// operation is checked separately against the CPU backend).
//
//   ids [L] -> embed [L, D] -> layers -> final norm -> hidden [L, D]
//   transformer layer        x += W_o·merge(attn(split(LN(x)·W_q), …));  x += FFN(LN(x))
//   reversible run           x1 = x2 = x; per layer x1 += F(x2), x2 += G(x1); x = (x1 + x2)/2
//   block_recurrent layer    as transformer with the banded causal sliding window of W tokens
//   (recurrent = false)      (the attention of layers/block_recurrent.h)
//   block_recurrent layer    the same plus the S state vectors: the state steps run window by
//   (recurrent = true)       window (norm, four [S, D] projections, two small attentions, the
//                            gate), then the tokens of every window read their window's state in
//                            one batched attention; x += W_o·A + W_ox·A_state, then the FFN
//
// What runs: "transformer" layers with dense Q/K/V and a dense (or no) feed-forward, plain or
// reversible, with any attention the backend runs (ComputeBackend::unsupported); "block_recurrent"
// layers, with or without the recurrent state. Any other layer: ParamError at construction, naming it.
// No traces: the device path is for speed and long sequences; the views trace on the CPU engine.
// Seeds: layer i's attention draws from Rng::derive(attention_seed, "layer<i>"), as the Encoder,
// so the two paths compute the same function.
//
// Memory on the device beyond the weights, at the peak (one attention block): about 8·L·D
// floats (x, the normed input, a projection buffer, q, k, v, the attention output, the block's
// output) plus the variant's workspace; the feed-forward runs in chunks of `row_chunk` rows, so
// its [rows, d_ff] scratch stays bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "cuda/backend.h"
#include "models/encoder.h"

namespace attnlab::gpu {

struct DeviceRunOptions {
  const Attention* variant = nullptr;  // what "inherit" layers run (required)
  const Params* params = nullptr;      // its values; its defaults when null
  bool causal = false;
  std::uint64_t attention_seed = 0;
  const CancelToken* cancel = nullptr;             // checked between layers
  std::int64_t row_chunk = std::int64_t{1} << 16;  // feed-forward rows per chunk
  bool download_hidden = true;                     // false: only time and memory (a benchmark at 1M tokens)
};

struct DeviceForward {
  RowMatrix hidden;             // [L, D] when download_hidden
  double ms = 0;                // the pass on the device (CUDA events / a steady clock), without the download
  std::int64_t peak_bytes = 0;  // backend bytes at the pass's peak beyond what was allocated before it (the weights)
};

class DeviceModel {
 public:
  // Uploads the weights. Throws ParamError naming the first layer the device path cannot run.
  DeviceModel(const Encoder& encoder, std::shared_ptr<ComputeBackend> backend);

  const ModelConfig& config() const { return config_; }
  ComputeBackend& backend() const { return *backend_; }
  std::int64_t weight_bytes() const { return weight_bytes_; }  // what stays on the device between passes

  // Empty when every layer can run with `options` at `length` on the backend, else one line
  // naming the first layer that cannot and why.
  std::string unsupported(const DeviceRunOptions& options, std::int64_t length) const;

  // Throws ParamError (no tokens, too many, an id outside the vocabulary, unsupported()),
  // ResourceError (device memory), CancelledError, DeviceError.
  DeviceForward forward(const std::vector<std::int32_t>& ids, const DeviceRunOptions& options) const;

 private:
  struct LinearWeights {
    DeviceArray weight, bias;
  };
  struct NormWeights {
    DeviceArray gamma, beta;
  };
  struct Layer {
    std::string name;  // "layer 3 (transformer)" for messages
    bool reversible = false;
    std::int64_t window = 0;  // > 0: block_recurrent's sliding window
    const Attention* own_variant = nullptr;
    std::shared_ptr<const Params> own_params;
    NormWeights norm_attention;
    LinearWeights w_q, w_k, w_v, w_o;
    bool has_ff = false;
    NormWeights norm_ff;
    LinearWeights up, down;
    // block_recurrent with the recurrent state (layers/block_recurrent.h)
    bool recurrent = false;
    std::int64_t state_size = 0;
    std::string gate;  // "lstm", "fixed", "full"
    float gate_bias = 0.0f;
    LinearWeights token_state_q, token_state_o;
    DeviceArray initial_state, state_position;
    NormWeights norm_state;
    LinearWeights state_q_self, state_k, state_v, state_q_tokens;
    LinearWeights state_projection, gate_full, gate_forget, gate_input;  // [2D, D]
  };

  // LN(x) and its q, k, v split into heads [H, L, d]; `scratch` [L, D] is free for the caller.
  struct TokenProjections {
    DeviceArray normed, scratch, q, k, v;
  };
  TokenProjections project_tokens(const Layer& layer, const DeviceArray& x, std::int64_t length) const;
  AttentionCall call_for(std::size_t layer, const DeviceRunOptions& options, const Params& inherited,
                         std::int64_t length) const;
  DeviceArray attention_block(const Layer& layer, const AttentionCall& call, const DeviceArray& x,
                              std::int64_t length) const;
  DeviceArray recurrent_block(const Layer& layer, const AttentionCall& call, const DeviceArray& x, std::int64_t length,
                              const CancelToken* cancel) const;
  // y[rows, D] = [a ‖ b]·w + bias for w [2D, D] (the state's gate input), `scratch` [rows, D]
  void two_part_linear(const DeviceArray& a, const DeviceArray& b, const LinearWeights& w, DeviceArray& y,
                       DeviceArray& scratch, std::int64_t rows) const;
  DeviceArray feed_forward_block(const Layer& layer, const DeviceArray& x, std::int64_t length,
                                 std::int64_t row_chunk) const;

  ModelConfig config_;
  std::shared_ptr<ComputeBackend> backend_;
  DeviceArray embedding_;
  NormWeights final_norm_;
  DeviceArray zero_bias_;  // [D] zeros, for the second half of a two-part linear
  std::vector<Layer> layers_;
  std::int64_t weight_bytes_ = 0;
};

}  // namespace attnlab::gpu
