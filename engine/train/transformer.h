// The trainable Transformer: an encoder–decoder translator or a decoder-only language model.
//
//   pre-LN layers (Xiong et al. 2020), ReLU feed-forward, sinusoidal positions, one embedding
//   table shared by source, target and output (tied, Press & Wolf 2017).
//
//   encoder:  x = √D·E[src] + PE;  per layer  x += SelfAttn(LN(x));  x += FF(LN(x));  M = LN(x)
//   decoder:  y = √D·E[tgt_in] + PE; per layer y += CausalSelfAttn(LN(y)); [y += CrossAttn(LN(y), M)];
//             y += FF(LN(y));  logits = LN(y)·Eᵀ
//   (a language model has no encoder and no cross-attention)
//
// Shapes: a Batch packs B sequences end to end — src [Ns] ids, tgt_in/tgt_out [Nt] ids — with
// SeqLayouts giving each sequence's rows; activations are [N, D], logits [Nt, V].
//
// All parameters live in one flat array (values_, and grads_ beside it) described by a table of
// named [rows, cols] entries: the optimizer works on the flat arrays, checkpoints and the
// shipped safetensors use the names. forward_backward() keeps every activation its backward
// needs in per-layer caches (see ops.h for the backward design).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "train/ops.h"

namespace attnlab::train {

struct TransformerConfig {
  std::string kind = "seq2seq";  // "seq2seq" (translator) or "lm" (decoder-only language model)
  std::int64_t vocab = 8000;
  std::int64_t d_model = 256;
  std::int64_t heads = 4;
  std::int64_t d_ff = 1024;
  std::int64_t encoder_layers = 3;  // 0 for "lm"
  std::int64_t decoder_layers = 3;
  std::int64_t max_length = 128;    // longest sequence (tokens, BOS/EOS included) the model accepts
  double label_smoothing = 0.1;
  std::int32_t pad_id = 0, unk_id = 1, bos_id = 2, eos_id = 3;

  bool has_encoder() const { return kind == "seq2seq"; }
  // Throws ParamError naming the first value out of range.
  void validate() const;
  nlohmann::json to_json() const;
  // Throws FormatError for a missing or mistyped field, ParamError for a value out of range.
  static TransformerConfig from_json(const nlohmann::json& j);
};

struct ParamEntry {
  std::string name;  // "decoder.layers.1.cross_attn.q.weight"
  std::int64_t rows = 1, cols = 1;
  std::int64_t offset = 0;  // into the flat arrays; a multiple of 16 floats (64 bytes)
  bool decay = false;       // AdamW weight decay applies (matrices other than the embedding)
  std::int64_t size() const { return rows * cols; }
};

struct Batch {
  std::vector<std::int32_t> src;  // empty for a language model
  SeqLayout src_layout;
  std::vector<std::int32_t> tgt_in;   // BOS y1 … yn per sequence
  std::vector<std::int32_t> tgt_out;  // y1 … yn EOS per sequence
  SeqLayout tgt_layout;
  std::int64_t tokens() const { return static_cast<std::int64_t>(src.size() + tgt_in.size()); }
};

// Indices of one layer's parameter entries.
struct LinearSlots {
  int weight = -1, bias = -1;
};
struct NormSlots {
  int gain = -1, bias = -1;
};
struct AttentionSlots {
  NormSlots norm;
  LinearSlots q, k, v, o;
};
struct LayerSlots {
  AttentionSlots self_attn;
  bool has_cross = false;
  AttentionSlots cross_attn;
  NormSlots ff_norm;
  LinearSlots ff_in, ff_out;
};

template <typename T>
struct AttentionCache {
  Mat<T> x;  // residual stream entering the sublayer (the layer norm's input)
  Mat<T> normed;
  std::vector<T> mean, rstd;
  Mat<T> q, k, v, context;
  std::vector<Mat<T>> probs;
};

template <typename T>
struct FeedForwardCache {
  Mat<T> x, normed, hidden;
  std::vector<T> mean, rstd;
};

template <typename T>
struct LayerCache {
  AttentionCache<T> self_attn, cross_attn;
  FeedForwardCache<T> ff;
};

template <typename T>
class Transformer {
 public:
  // Weights from `seed`: Normal(0, 2/(in+out)) matrices (Glorot), embedding Normal(0, 1/D), zero
  // biases, unit gains. Throws ParamError for an invalid config.
  Transformer(const TransformerConfig& config, std::uint64_t seed);

  const TransformerConfig& config() const { return config_; }
  const std::vector<ParamEntry>& entries() const { return entries_; }
  ParamArray<T>& values() { return values_; }
  const ParamArray<T>& values() const { return values_; }
  ParamArray<T>& grads() { return grads_; }
  // Trainable numbers (the flat arrays are slightly longer: entries start 64-byte aligned).
  std::int64_t parameter_count() const;
  // The entry of that name, or -1.
  int find(const std::string& name) const;

  MatMap<T> value(int slot);
  MatMap<T> grad(int slot);
  // Read-only views for inference code.
  Eigen::Map<const Mat<T>> weight(int slot) const;
  Eigen::Map<const Vec<T>> vector(int slot) const;
  VecMap<T> value_vec(int slot);
  VecMap<T> grad_vec(int slot);

  // Runs the batch; with `backward` also sets grads_ (zeroed first) to the gradient of
  // grad_scale · Σ loss (pass 1/tokens for the mean). Throws ShapeError / ParamError for a batch
  // that does not fit the config (token ids, lengths, layouts).
  CrossEntropySums forward_backward(const Batch& batch, bool backward, double grad_scale = 1.0);

  // The layers, for inference code that reuses the weights (decode/translator).
  const std::vector<LayerSlots>& encoder_layers() const { return encoder_; }
  const std::vector<LayerSlots>& decoder_layers() const { return decoder_; }
  int embedding_slot() const { return embed_; }
  NormSlots encoder_norm() const { return encoder_norm_; }
  NormSlots decoder_norm() const { return decoder_norm_; }

  // Checks a batch against the config (ids in range, lengths ≤ max_length, layouts consistent).
  void check_batch(const Batch& batch) const;

 private:
  int add(const std::string& name, std::int64_t rows, std::int64_t cols, bool decay);
  AttentionSlots add_attention(const std::string& prefix);
  LayerSlots add_layer(const std::string& prefix, bool cross);
  NormSlots add_norm(const std::string& prefix);
  LinearSlots add_linear(const std::string& prefix, std::int64_t in, std::int64_t out);

  void attention_forward_(const AttentionSlots& s, Mat<T>& x, const Mat<T>* memory, const SeqLayout& q_layout,
                          const SeqLayout& k_layout, bool causal, AttentionCache<T>& c);
  void attention_backward_(const AttentionSlots& s, Mat<T>& dx, Mat<T>* dmemory, const Mat<T>* memory,
                           const SeqLayout& q_layout, const SeqLayout& k_layout, bool causal, AttentionCache<T>& c);
  void ff_forward_(const LayerSlots& s, Mat<T>& x, FeedForwardCache<T>& c);
  void ff_backward_(const LayerSlots& s, Mat<T>& dx, FeedForwardCache<T>& c);

  TransformerConfig config_;
  std::vector<ParamEntry> entries_;
  ParamArray<T> values_, grads_;
  int embed_ = -1;
  std::vector<LayerSlots> encoder_, decoder_;
  NormSlots encoder_norm_, decoder_norm_;

  // Activations of the last forward_backward (kept between steps to reuse their storage).
  std::vector<LayerCache<T>> encoder_cache_, decoder_cache_;
  Mat<T> enc_x_, memory_, dec_x_, dec_final_, logits_;
  std::vector<T> enc_mean_, enc_rstd_, dec_mean_, dec_rstd_;
};

extern template class Transformer<float>;
extern template class Transformer<double>;

}  // namespace attnlab::train
