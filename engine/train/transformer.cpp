#include "train/transformer.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"

namespace attnlab::train {

// ---- config ---------------------------------------------------------------------------------------

void TransformerConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ParamError(what);
  };
  need(kind == "seq2seq" || kind == "lm", "model kind '" + kind + "': expected seq2seq or lm");
  need(vocab >= 8 && vocab <= 1000000, "vocab=" + std::to_string(vocab) + ": allowed 8..1000000");
  need(d_model >= 2 && d_model <= 4096 && d_model % 2 == 0,
       "d_model=" + std::to_string(d_model) + ": allowed even values 2..4096");
  need(heads >= 1 && heads <= 64 && d_model % heads == 0,
       "heads=" + std::to_string(heads) + ": must divide d_model=" + std::to_string(d_model));
  need(d_ff >= 1 && d_ff <= 65536, "d_ff=" + std::to_string(d_ff) + ": allowed 1..65536");
  need(decoder_layers >= 1 && decoder_layers <= 64, "decoder_layers=" + std::to_string(decoder_layers) + ": allowed 1..64");
  if (kind == "seq2seq") {
    need(encoder_layers >= 1 && encoder_layers <= 64, "encoder_layers=" + std::to_string(encoder_layers) + ": allowed 1..64");
  } else {
    need(encoder_layers == 0, "encoder_layers=" + std::to_string(encoder_layers) + ": a language model has none (0)");
  }
  need(max_length >= 2 && max_length <= 65536, "max_length=" + std::to_string(max_length) + ": allowed 2..65536");
  need(label_smoothing >= 0 && label_smoothing < 1, "label_smoothing=" + std::to_string(label_smoothing) + ": allowed [0, 1)");
  for (const std::int32_t id : {pad_id, unk_id, bos_id, eos_id}) {
    need(id >= 0 && id < vocab, "special token id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(vocab));
  }
}

nlohmann::json TransformerConfig::to_json() const {
  return {{"kind", kind},
          {"vocab", vocab},
          {"d_model", d_model},
          {"heads", heads},
          {"d_ff", d_ff},
          {"encoder_layers", encoder_layers},
          {"decoder_layers", decoder_layers},
          {"max_length", max_length},
          {"label_smoothing", label_smoothing},
          {"pad_id", pad_id},
          {"unk_id", unk_id},
          {"bos_id", bos_id},
          {"eos_id", eos_id}};
}

TransformerConfig TransformerConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw FormatError("model config: expected a JSON object");
  TransformerConfig c;
  auto get_int = [&](const char* key, auto& out) {
    if (!j.contains(key)) throw FormatError(std::string("model config: missing \"") + key + "\"");
    if (!j.at(key).is_number_integer()) throw FormatError(std::string("model config: \"") + key + "\" must be an integer");
    out = j.at(key).get<std::decay_t<decltype(out)>>();
  };
  if (!j.contains("kind") || !j.at("kind").is_string()) throw FormatError("model config: missing \"kind\" (seq2seq or lm)");
  c.kind = j.at("kind").get<std::string>();
  get_int("vocab", c.vocab);
  get_int("d_model", c.d_model);
  get_int("heads", c.heads);
  get_int("d_ff", c.d_ff);
  get_int("encoder_layers", c.encoder_layers);
  get_int("decoder_layers", c.decoder_layers);
  get_int("max_length", c.max_length);
  get_int("pad_id", c.pad_id);
  get_int("unk_id", c.unk_id);
  get_int("bos_id", c.bos_id);
  get_int("eos_id", c.eos_id);
  if (j.contains("label_smoothing")) {
    if (!j.at("label_smoothing").is_number()) throw FormatError("model config: \"label_smoothing\" must be a number");
    c.label_smoothing = j.at("label_smoothing").get<double>();
  }
  c.validate();
  return c;
}

// ---- parameters -----------------------------------------------------------------------------------

template <typename T>
int Transformer<T>::add(const std::string& name, std::int64_t rows, std::int64_t cols, bool decay) {
  ParamEntry e;
  e.name = name;
  e.rows = rows;
  e.cols = cols;
  const std::int64_t end = entries_.empty() ? 0 : entries_.back().offset + entries_.back().size();
  e.offset = (end + 15) / 16 * 16;  // every entry starts 64-byte aligned
  e.decay = decay;
  entries_.push_back(e);
  return static_cast<int>(entries_.size()) - 1;
}

template <typename T>
NormSlots Transformer<T>::add_norm(const std::string& prefix) {
  return {add(prefix + ".gain", 1, config_.d_model, false), add(prefix + ".bias", 1, config_.d_model, false)};
}

template <typename T>
LinearSlots Transformer<T>::add_linear(const std::string& prefix, std::int64_t in, std::int64_t out) {
  return {add(prefix + ".weight", in, out, true), add(prefix + ".bias", 1, out, false)};
}

template <typename T>
AttentionSlots Transformer<T>::add_attention(const std::string& prefix) {
  const std::int64_t d = config_.d_model;
  AttentionSlots s;
  s.norm = add_norm(prefix + ".norm");
  s.q = add_linear(prefix + ".q", d, d);
  s.k = add_linear(prefix + ".k", d, d);
  s.v = add_linear(prefix + ".v", d, d);
  s.o = add_linear(prefix + ".o", d, d);
  return s;
}

template <typename T>
LayerSlots Transformer<T>::add_layer(const std::string& prefix, bool cross) {
  LayerSlots s;
  s.self_attn = add_attention(prefix + ".self_attn");
  s.has_cross = cross;
  if (cross) s.cross_attn = add_attention(prefix + ".cross_attn");
  s.ff_norm = add_norm(prefix + ".ff.norm");
  s.ff_in = add_linear(prefix + ".ff.in", config_.d_model, config_.d_ff);
  s.ff_out = add_linear(prefix + ".ff.out", config_.d_ff, config_.d_model);
  return s;
}

template <typename T>
Transformer<T>::Transformer(const TransformerConfig& config, std::uint64_t seed) : config_(config) {
  config_.validate();
  embed_ = add("embedding", config_.vocab, config_.d_model, false);
  for (std::int64_t l = 0; l < config_.encoder_layers; ++l) {
    encoder_.push_back(add_layer("encoder.layers." + std::to_string(l), false));
  }
  if (config_.has_encoder()) encoder_norm_ = add_norm("encoder.norm");
  for (std::int64_t l = 0; l < config_.decoder_layers; ++l) {
    decoder_.push_back(add_layer("decoder.layers." + std::to_string(l), config_.has_encoder()));
  }
  decoder_norm_ = add_norm("decoder.norm");
  const std::int64_t total = entries_.back().offset + entries_.back().size();
  values_.assign(static_cast<std::size_t>(total), T(0));
  grads_.assign(static_cast<std::size_t>(total), T(0));

  Rng rng(seed);
  for (const ParamEntry& e : entries_) {
    T* p = values_.data() + e.offset;
    const bool gain = e.name.size() > 5 && e.name.compare(e.name.size() - 5, 5, ".gain") == 0;
    double stddev = 0.0;
    if (&e == &entries_[static_cast<std::size_t>(embed_)]) {
      stddev = 1.0 / std::sqrt(static_cast<double>(config_.d_model));
    } else if (e.decay) {
      stddev = std::sqrt(2.0 / static_cast<double>(e.rows + e.cols));
    }
    for (std::int64_t i = 0; i < e.size(); ++i) {
      p[i] = gain ? T(1) : static_cast<T>(stddev * rng.normal());
    }
  }
}

template <typename T>
std::int64_t Transformer<T>::parameter_count() const {
  std::int64_t n = 0;
  for (const ParamEntry& e : entries_) n += e.size();
  return n;
}

template <typename T>
int Transformer<T>::find(const std::string& name) const {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

template <typename T>
MatMap<T> Transformer<T>::value(int slot) {
  const ParamEntry& e = entries_[static_cast<std::size_t>(slot)];
  return MatMap<T>(values_.data() + e.offset, e.rows, e.cols);
}
template <typename T>
Eigen::Map<const Mat<T>> Transformer<T>::weight(int slot) const {
  const ParamEntry& e = entries_[static_cast<std::size_t>(slot)];
  return Eigen::Map<const Mat<T>>(values_.data() + e.offset, e.rows, e.cols);
}
template <typename T>
Eigen::Map<const Vec<T>> Transformer<T>::vector(int slot) const {
  const ParamEntry& e = entries_[static_cast<std::size_t>(slot)];
  return Eigen::Map<const Vec<T>>(values_.data() + e.offset, e.size());
}
template <typename T>
MatMap<T> Transformer<T>::grad(int slot) {
  const ParamEntry& e = entries_[static_cast<std::size_t>(slot)];
  return MatMap<T>(grads_.data() + e.offset, e.rows, e.cols);
}
template <typename T>
VecMap<T> Transformer<T>::value_vec(int slot) {
  const ParamEntry& e = entries_[static_cast<std::size_t>(slot)];
  return VecMap<T>(values_.data() + e.offset, e.size());
}
template <typename T>
VecMap<T> Transformer<T>::grad_vec(int slot) {
  const ParamEntry& e = entries_[static_cast<std::size_t>(slot)];
  return VecMap<T>(grads_.data() + e.offset, e.size());
}

// ---- batches --------------------------------------------------------------------------------------

template <typename T>
void Transformer<T>::check_batch(const Batch& batch) const {
  auto check_ids = [&](const std::vector<std::int32_t>& ids, const char* what, bool allow_ignore) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int32_t id = ids[i];
      if ((id < 0 && !(allow_ignore && id == -1)) || id >= config_.vocab) {
        throw ParamError(std::string(what) + " token " + std::to_string(i) + " has id " + std::to_string(id) +
                         ", outside the vocabulary of " + std::to_string(config_.vocab));
      }
    }
  };
  auto check_layout = [&](const SeqLayout& layout, std::size_t rows, const char* what) {
    if (layout.offsets.empty() || layout.offsets.front() != 0 || layout.rows() != static_cast<std::int64_t>(rows)) {
      throw ShapeError(std::string(what) + " layout covers " + std::to_string(layout.offsets.empty() ? 0 : layout.rows()) +
                       " rows but there are " + std::to_string(rows) + " tokens");
    }
    for (std::int64_t b = 0; b < layout.count(); ++b) {
      if (layout.length(b) < 1 || layout.length(b) > config_.max_length) {
        throw ShapeError(std::string(what) + " sequence " + std::to_string(b) + " has " + std::to_string(layout.length(b)) +
                         " tokens; allowed 1.." + std::to_string(config_.max_length));
      }
    }
  };
  if (batch.tgt_in.size() != batch.tgt_out.size()) {
    throw ShapeError("target inputs have " + std::to_string(batch.tgt_in.size()) + " tokens but outputs " +
                     std::to_string(batch.tgt_out.size()));
  }
  check_layout(batch.tgt_layout, batch.tgt_in.size(), "target");
  check_ids(batch.tgt_in, "target input", false);
  check_ids(batch.tgt_out, "target output", true);
  if (config_.has_encoder()) {
    check_layout(batch.src_layout, batch.src.size(), "source");
    check_ids(batch.src, "source", false);
    if (batch.src_layout.count() != batch.tgt_layout.count()) {
      throw ShapeError("batch has " + std::to_string(batch.src_layout.count()) + " sources but " +
                       std::to_string(batch.tgt_layout.count()) + " targets");
    }
  } else if (!batch.src.empty()) {
    throw ShapeError("a language model takes no source tokens (got " + std::to_string(batch.src.size()) + ")");
  }
}

// ---- sublayers ------------------------------------------------------------------------------------

// x += (Attn(LN(x)·Wq, K·Wk, K·Wv))·Wo with K = LN(x) for self-attention or `memory` for cross.
template <typename T>
void Transformer<T>::attention_forward_(const AttentionSlots& s, Mat<T>& x, const Mat<T>* memory,
                                        const SeqLayout& q_layout, const SeqLayout& k_layout, bool causal,
                                        AttentionCache<T>& c) {
  c.x = x;
  layer_norm_forward<T>(x, value_vec(s.norm.gain), value_vec(s.norm.bias), c.normed, c.mean, c.rstd);
  const Mat<T>& kv_in = memory ? *memory : c.normed;
  linear_forward<T>(c.normed, value(s.q.weight), value_vec(s.q.bias), c.q);
  linear_forward<T>(kv_in, value(s.k.weight), value_vec(s.k.bias), c.k);
  linear_forward<T>(kv_in, value(s.v.weight), value_vec(s.v.bias), c.v);
  const AttentionShapeInfo info{&q_layout, &k_layout, config_.heads, causal, nullptr};
  attention_forward<T>(c.q, c.k, c.v, info, c.context, c.probs);
  Mat<T> out;
  linear_forward<T>(c.context, value(s.o.weight), value_vec(s.o.bias), out);
  x += out;
}

template <typename T>
void Transformer<T>::attention_backward_(const AttentionSlots& s, Mat<T>& dx, Mat<T>* dmemory, const Mat<T>* memory,
                                         const SeqLayout& q_layout, const SeqLayout& k_layout, bool causal,
                                         AttentionCache<T>& c) {
  Mat<T> dcontext = Mat<T>::Zero(c.context.rows(), c.context.cols());
  {
    MatMap<T> dw = grad(s.o.weight);
    VecMap<T> db = grad_vec(s.o.bias);
    linear_backward<T>(dx, c.context, value(s.o.weight), &dcontext, dw, db);
  }
  Mat<T> dq = Mat<T>::Zero(c.q.rows(), c.q.cols());
  Mat<T> dk = Mat<T>::Zero(c.k.rows(), c.k.cols());
  Mat<T> dv = Mat<T>::Zero(c.v.rows(), c.v.cols());
  const AttentionShapeInfo info{&q_layout, &k_layout, config_.heads, causal, nullptr};
  attention_backward<T>(dcontext, c.q, c.k, c.v, info, c.probs, dq, dk, dv);
  Mat<T> dnormed = Mat<T>::Zero(c.normed.rows(), c.normed.cols());
  const Mat<T>& kv_in = memory ? *memory : c.normed;
  Mat<T>* dkv_in = memory ? dmemory : &dnormed;
  auto back = [&](const LinearSlots& ls, const Mat<T>& dy, const Mat<T>& in, Mat<T>* din) {
    MatMap<T> dw = grad(ls.weight);
    VecMap<T> db = grad_vec(ls.bias);
    linear_backward<T>(dy, in, value(ls.weight), din, dw, db);
  };
  back(s.q, dq, c.normed, &dnormed);
  back(s.k, dk, kv_in, dkv_in);
  back(s.v, dv, kv_in, dkv_in);
  VecMap<T> dgain = grad_vec(s.norm.gain);
  VecMap<T> dbias = grad_vec(s.norm.bias);
  layer_norm_backward<T>(dnormed, c.x, c.mean, c.rstd, value_vec(s.norm.gain), dx, dgain, dbias);
}

// x += ReLU(LN(x)·W1 + b1)·W2 + b2
template <typename T>
void Transformer<T>::ff_forward_(const LayerSlots& s, Mat<T>& x, FeedForwardCache<T>& c) {
  c.x = x;
  layer_norm_forward<T>(x, value_vec(s.ff_norm.gain), value_vec(s.ff_norm.bias), c.normed, c.mean, c.rstd);
  linear_forward<T>(c.normed, value(s.ff_in.weight), value_vec(s.ff_in.bias), c.hidden);
  relu_forward<T>(c.hidden);
  Mat<T> out;
  linear_forward<T>(c.hidden, value(s.ff_out.weight), value_vec(s.ff_out.bias), out);
  x += out;
}

template <typename T>
void Transformer<T>::ff_backward_(const LayerSlots& s, Mat<T>& dx, FeedForwardCache<T>& c) {
  Mat<T> dhidden = Mat<T>::Zero(c.hidden.rows(), c.hidden.cols());
  {
    MatMap<T> dw = grad(s.ff_out.weight);
    VecMap<T> db = grad_vec(s.ff_out.bias);
    linear_backward<T>(dx, c.hidden, value(s.ff_out.weight), &dhidden, dw, db);
  }
  relu_backward<T>(c.hidden, dhidden);
  Mat<T> dnormed = Mat<T>::Zero(c.normed.rows(), c.normed.cols());
  {
    MatMap<T> dw = grad(s.ff_in.weight);
    VecMap<T> db = grad_vec(s.ff_in.bias);
    linear_backward<T>(dhidden, c.normed, value(s.ff_in.weight), &dnormed, dw, db);
  }
  VecMap<T> dgain = grad_vec(s.ff_norm.gain);
  VecMap<T> dbias = grad_vec(s.ff_norm.bias);
  layer_norm_backward<T>(dnormed, c.x, c.mean, c.rstd, value_vec(s.ff_norm.gain), dx, dgain, dbias);
}

// ---- the whole model ------------------------------------------------------------------------------

template <typename T>
CrossEntropySums Transformer<T>::forward_backward(const Batch& batch, bool backward, double grad_scale) {
  check_batch(batch);
  const bool seq2seq = config_.has_encoder();
  const MatMap<T> table = value(embed_);
  encoder_cache_.resize(encoder_.size());
  decoder_cache_.resize(decoder_.size());

  if (seq2seq) {
    embedding_forward<T>(table, batch.src, batch.src_layout, enc_x_);
    for (std::size_t l = 0; l < encoder_.size(); ++l) {
      attention_forward_(encoder_[l].self_attn, enc_x_, nullptr, batch.src_layout, batch.src_layout, false,
                         encoder_cache_[l].self_attn);
      ff_forward_(encoder_[l], enc_x_, encoder_cache_[l].ff);
    }
    layer_norm_forward<T>(enc_x_, value_vec(encoder_norm_.gain), value_vec(encoder_norm_.bias), memory_, enc_mean_,
                          enc_rstd_);
  }
  embedding_forward<T>(table, batch.tgt_in, batch.tgt_layout, dec_x_);
  for (std::size_t l = 0; l < decoder_.size(); ++l) {
    attention_forward_(decoder_[l].self_attn, dec_x_, nullptr, batch.tgt_layout, batch.tgt_layout, true,
                       decoder_cache_[l].self_attn);
    if (decoder_[l].has_cross) {
      attention_forward_(decoder_[l].cross_attn, dec_x_, &memory_, batch.tgt_layout, batch.src_layout, false,
                         decoder_cache_[l].cross_attn);
    }
    ff_forward_(decoder_[l], dec_x_, decoder_cache_[l].ff);
  }
  layer_norm_forward<T>(dec_x_, value_vec(decoder_norm_.gain), value_vec(decoder_norm_.bias), dec_final_, dec_mean_,
                        dec_rstd_);
  logits_.resize(dec_final_.rows(), config_.vocab);
  logits_.noalias() = dec_final_ * table.transpose();
  const CrossEntropySums sums =
      cross_entropy<T>(logits_, batch.tgt_out, config_.label_smoothing, grad_scale, backward ? &logits_ : nullptr);
  if (!backward) return sums;

  std::fill(grads_.begin(), grads_.end(), T(0));
  MatMap<T> dtable = grad(embed_);
  // logits = F·Eᵀ:  dE += dlogitsᵀ·F,  dF = dlogits·E
  dtable.noalias() += logits_.transpose() * dec_final_;
  const Mat<T> dfinal = logits_ * table;
  Mat<T> dx = Mat<T>::Zero(dec_x_.rows(), dec_x_.cols());
  {
    VecMap<T> dg = grad_vec(decoder_norm_.gain);
    VecMap<T> db = grad_vec(decoder_norm_.bias);
    layer_norm_backward<T>(dfinal, dec_x_, dec_mean_, dec_rstd_, value_vec(decoder_norm_.gain), dx, dg, db);
  }
  Mat<T> dmemory;
  if (seq2seq) dmemory = Mat<T>::Zero(memory_.rows(), memory_.cols());
  for (std::size_t l = decoder_.size(); l-- > 0;) {
    ff_backward_(decoder_[l], dx, decoder_cache_[l].ff);
    if (decoder_[l].has_cross) {
      attention_backward_(decoder_[l].cross_attn, dx, &dmemory, &memory_, batch.tgt_layout, batch.src_layout, false,
                          decoder_cache_[l].cross_attn);
    }
    attention_backward_(decoder_[l].self_attn, dx, nullptr, nullptr, batch.tgt_layout, batch.tgt_layout, true,
                        decoder_cache_[l].self_attn);
  }
  embedding_backward<T>(dx, batch.tgt_in, dtable);
  if (seq2seq) {
    Mat<T> denc = Mat<T>::Zero(enc_x_.rows(), enc_x_.cols());
    {
      VecMap<T> dg = grad_vec(encoder_norm_.gain);
      VecMap<T> db = grad_vec(encoder_norm_.bias);
      layer_norm_backward<T>(dmemory, enc_x_, enc_mean_, enc_rstd_, value_vec(encoder_norm_.gain), denc, dg, db);
    }
    for (std::size_t l = encoder_.size(); l-- > 0;) {
      ff_backward_(encoder_[l], denc, encoder_cache_[l].ff);
      attention_backward_(encoder_[l].self_attn, denc, nullptr, nullptr, batch.src_layout, batch.src_layout, false,
                          encoder_cache_[l].self_attn);
    }
    embedding_backward<T>(denc, batch.src, dtable);
  }
  return sums;
}

template class Transformer<float>;
template class Transformer<double>;

}  // namespace attnlab::train
