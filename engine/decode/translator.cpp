#include "decode/translator.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <omp.h>
#include <sstream>

#include "attention/registry.h"
#include "core/error.h"
#include "core/rng.h"
#include "layers/multi_head_attention.h"
#include "train/trainer.h"

namespace attnlab {

using train::AttentionSlots;
using train::LayerSlots;
using train::NormSlots;

// ---- loading --------------------------------------------------------------------------------------

std::shared_ptr<const TrainedModel> TrainedModel::load(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) {
    throw IoError("no model folder '" + dir + "' (train one with `attnlab-cli train`, see docs/translation.md)");
  }
  auto file = [&](const char* name) {
    const fs::path p = fs::path(dir) / name;
    if (!fs::is_regular_file(p)) throw IoError("model folder '" + dir + "' has no " + name);
    return p.string();
  };
  // A folder whose training is still running has only its checkpoint: its latest weights load.
  const bool in_training = !fs::exists(fs::path(dir) / "model.safetensors") &&
                           fs::exists(fs::path(dir) / "checkpoint.safetensors") && fs::exists(fs::path(dir) / "config.json");
  const std::string config_path = file("config.json"),
                    weights_path = file(in_training ? "checkpoint.safetensors" : "model.safetensors"),
                    tokenizer_path = file("tokenizer.model");
  std::ifstream in(config_path);
  if (!in) throw IoError("cannot read " + config_path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception&) {
    throw FormatError(config_path + ": not valid JSON");
  }
  auto model = std::shared_ptr<TrainedModel>(new TrainedModel());
  model->dir_ = dir;
  model->in_training_ = in_training;
  model->weights_ = std::make_unique<train::Transformer<float>>(train::TransformerConfig::from_json(j), 0);
  train::load_weights(*model->weights_, weights_path);
  model->tokenizer_ = std::make_unique<SentencePieceTokenizer>(tokenizer_path);
  if (model->tokenizer_->vocab_size() != model->config().vocab) {
    throw ParamError(tokenizer_path + " has " + std::to_string(model->tokenizer_->vocab_size()) +
                     " pieces but the model was trained with " + std::to_string(model->config().vocab));
  }
  return model;
}

std::string TrainedModel::describe() const {
  const train::TransformerConfig& c = config();
  std::ostringstream os;
  os.precision(2);
  os << c.kind << ", " << std::fixed << static_cast<double>(weights_->parameter_count()) / 1e6 << "M parameters, d_model "
     << c.d_model << ", " << c.heads << " heads, ";
  if (c.has_encoder()) os << c.encoder_layers << "+";
  os << c.decoder_layers << " layers, " << c.vocab << " pieces";
  if (in_training_) os << ", checkpoint of a run in training";
  return os.str();
}

AttentionChoice make_attention_choice(const std::string& name, const std::vector<std::string>& params,
                                      std::uint64_t seed) {
  AttentionChoice choice;
  choice.seed = seed;
  if (name == "softmax" && params.empty()) return choice;
  const Attention& variant = Registry::builtin().get(name);
  choice.variant = &variant;
  choice.params = Params(variant.spec().params);
  for (const std::string& p : params) choice.params.set_from_assignment(p);
  return choice;
}

// ---- layers (forward only) ------------------------------------------------------------------------

namespace {

using ConstMat = Eigen::Map<const RowMatrix>;

RowMatrix layer_norm(const train::Transformer<float>& w, const NormSlots& s, const RowMatrix& x) {
  const auto gain = w.vector(s.gain), bias = w.vector(s.bias);
  RowMatrix y(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const float mean = x.row(i).mean();
    const float var = (x.row(i).array() - mean).square().mean();
    const float rstd = 1.0f / std::sqrt(var + 1e-5f);
    y.row(i) = ((x.row(i).array() - mean) * rstd * gain.array() + bias.array()).matrix();
  }
  return y;
}

RowMatrix affine(const train::Transformer<float>& w, const train::LinearSlots& s, const RowMatrix& x) {
  RowMatrix y = x * w.weight(s.weight);
  y.rowwise() += w.vector(s.bias);
  return y;
}

RowMatrix embed(const train::Transformer<float>& w, const std::vector<std::int32_t>& tokens, std::int64_t first_position) {
  const auto table = w.weight(w.embedding_slot());
  const std::int64_t d = table.cols();
  RowMatrix x(static_cast<Eigen::Index>(tokens.size()), d);
  for (std::size_t n = 0; n < tokens.size(); ++n) {
    train::positional_encoding<float>(first_position + static_cast<std::int64_t>(n), d, x.row(static_cast<Eigen::Index>(n)).data());
    x.row(static_cast<Eigen::Index>(n)) += std::sqrt(static_cast<float>(d)) * table.row(tokens[n]);
  }
  return x;
}

// Exact softmax attention of one sequence through the training op (the very same numbers).
RowMatrix softmax_attention(const RowMatrix& q, const RowMatrix& k, const RowMatrix& v, std::int64_t heads, bool causal,
                            Tensor* weights) {
  train::SeqLayout ql, kl;
  ql.add(q.rows());
  kl.add(k.rows());
  const train::AttentionShapeInfo info{&ql, &kl, heads, causal, nullptr};
  RowMatrix out;
  std::vector<RowMatrix> probs;
  train::attention_forward<float>(q, k, v, info, out, probs);
  if (weights) {
    *weights = Tensor({heads, q.rows(), k.rows()});
    for (std::int64_t h = 0; h < heads; ++h) weights->matrix(h) = probs[static_cast<std::size_t>(h)];
  }
  return out;
}

// x += Attn(LN(x)) (self, with the chosen variant) or x += Attn(LN(x), memory) (cross, softmax).
// `probe` (self-attention only) sees the layer's q, k, v [H, L, d], output and trace.
void attention_sublayer(const TrainedModel& model, const AttentionSlots& s, RowMatrix& x, const RowMatrix* memory,
                        bool causal, const AttentionChoice& choice, std::int64_t layer, AttentionMaps* maps,
                        const CancelToken* cancel, AttentionProbe* probe) {
  const train::Transformer<float>& w = model.weights();
  const std::int64_t heads = model.config().heads;
  const RowMatrix a = layer_norm(w, s.norm, x);
  const RowMatrix& kv_in = memory ? *memory : a;
  const RowMatrix q = affine(w, s.q, a), k = affine(w, s.k, kv_in), v = affine(w, s.v, kv_in);
  Tensor* map_out = nullptr;
  if (maps) {
    maps->resize(std::max<std::size_t>(maps->size(), static_cast<std::size_t>(layer) + 1));
    map_out = &(*maps)[static_cast<std::size_t>(layer)];
  }
  if (memory) probe = nullptr;
  const bool traced = map_out || probe;
  const std::uint64_t seed = Rng::derive(choice.seed, static_cast<std::uint64_t>(layer));
  RowMatrix context;
  if (!probe && (memory || !choice.variant)) {
    context = softmax_attention(q, k, v, heads, causal, map_out);
  } else {
    const Tensor qh = split_heads(q, heads), kh = split_heads(k, heads), vh = split_heads(v, heads);
    AttentionInput input{qh, kh, vh};
    input.causal = causal;
    input.params = choice.variant ? &choice.params : nullptr;
    input.seed = seed;
    input.cancel = cancel;
    Trace trace;
    Tensor attended;
    if (choice.variant) {
      attended = run_attention(*choice.variant, input, traced ? &trace : nullptr);
    } else {
      // The trained softmax, observed: the training op's numbers, its probabilities as the trace.
      const RowMatrix merged = softmax_attention(q, k, v, heads, causal, &trace.weights);
      attended = split_heads(merged, heads);
    }
    if (probe) probe->observe(layer, input, attended, &trace);
    context = merge_heads(attended);
    if (map_out) *map_out = std::move(trace.weights);
  }
  x += affine(w, s.o, context);
}

void feed_forward_sublayer(const train::Transformer<float>& w, const LayerSlots& s, RowMatrix& x) {
  RowMatrix h = affine(w, s.ff_in, layer_norm(w, s.ff_norm, x));
  h = h.cwiseMax(0.0f);
  x += affine(w, s.ff_out, h);
}

RowMatrix log_softmax_rows(const RowMatrix& logits) {
  RowMatrix out(logits.rows(), logits.cols());
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const float m = logits.row(i).maxCoeff();
    const float lse = m + std::log((logits.row(i).array() - m).exp().sum());
    out.row(i) = logits.row(i).array() - lse;
  }
  return out;
}

void check_ids(const TrainedModel& model, const std::vector<std::int32_t>& ids, const char* what) {
  if (ids.empty()) throw ParamError(std::string(what) + " is empty");
  if (static_cast<std::int64_t>(ids.size()) > model.config().max_length) {
    throw ParamError(std::string(what) + " has " + std::to_string(ids.size()) + " tokens; the model takes at most " +
                     std::to_string(model.config().max_length));
  }
  for (const std::int32_t id : ids) {
    if (id < 0 || id >= model.config().vocab) throw ParamError(std::string(what) + " has token id " + std::to_string(id) + " outside the vocabulary");
  }
}

}  // namespace

RowMatrix encode(const TrainedModel& model, const std::vector<std::int32_t>& src, const AttentionChoice& attention,
                 AttentionMaps* maps, const CancelToken* cancel, AttentionProbe* probe) {
  if (!model.config().has_encoder()) throw ParamError("a language model has no encoder");
  check_ids(model, src, "the source");
  const train::Transformer<float>& w = model.weights();
  RowMatrix x = embed(w, src, 0);
  for (std::size_t l = 0; l < w.encoder_layers().size(); ++l) {
    check_cancelled(cancel);
    attention_sublayer(model, w.encoder_layers()[l].self_attn, x, nullptr, false, attention, static_cast<std::int64_t>(l), maps,
                       cancel, probe);
    feed_forward_sublayer(w, w.encoder_layers()[l], x);
  }
  return layer_norm(w, w.encoder_norm(), x);
}

RowMatrix decode_all(const TrainedModel& model, const RowMatrix* memory, const std::vector<std::int32_t>& tgt_in,
                     const AttentionChoice& attention, AttentionMaps* self_maps, AttentionMaps* cross_maps,
                     const CancelToken* cancel, AttentionProbe* probe) {
  check_ids(model, tgt_in, "the target");
  if (model.config().has_encoder() != (memory != nullptr)) {
    throw ParamError(model.config().has_encoder() ? "the translator needs the encoder's memory" : "a language model takes no memory");
  }
  const train::Transformer<float>& w = model.weights();
  RowMatrix y = embed(w, tgt_in, 0);
  for (std::size_t l = 0; l < w.decoder_layers().size(); ++l) {
    check_cancelled(cancel);
    const LayerSlots& s = w.decoder_layers()[l];
    attention_sublayer(model, s.self_attn, y, nullptr, true, attention, static_cast<std::int64_t>(l), self_maps, cancel, probe);
    if (s.has_cross) {
      attention_sublayer(model, s.cross_attn, y, memory, false, attention, static_cast<std::int64_t>(l), cross_maps, cancel,
                         nullptr);
    }
    feed_forward_sublayer(w, s, y);
  }
  return layer_norm(w, w.decoder_norm(), y) * w.weight(w.embedding_slot()).transpose();
}

// ---- incremental decoding -------------------------------------------------------------------------

TranslationDecoder::TranslationDecoder(const TrainedModel& model, const RowMatrix& memory, const AttentionChoice& attention)
    : model_(model), memory_(memory), attention_(attention) {
  const train::Transformer<float>& w = model.weights();
  for (const LayerSlots& s : w.decoder_layers()) {
    cross_keys_.push_back(affine(w, s.cross_attn.k, memory));
    cross_values_.push_back(affine(w, s.cross_attn.v, memory));
  }
}

std::int32_t TranslationDecoder::vocab_size() const { return static_cast<std::int32_t>(model_.config().vocab); }

void TranslationDecoder::start(std::int64_t count) {
  slots_.assign(static_cast<std::size_t>(count), Slot{});
  for (Slot& s : slots_) {
    s.keys.assign(model_.weights().decoder_layers().size(), RowMatrix(0, model_.config().d_model));
    s.values = s.keys;
  }
}

RowMatrix TranslationDecoder::step(const std::vector<std::int32_t>& tokens) {
  if (tokens.size() != slots_.size()) {
    throw ShapeError("step got " + std::to_string(tokens.size()) + " tokens for " + std::to_string(slots_.size()) + " hypotheses");
  }
  const train::Transformer<float>& w = model_.weights();
  const std::int64_t heads = model_.config().heads, d = model_.config().d_model;
  const auto n = static_cast<Eigen::Index>(slots_.size());
  RowMatrix logits(n, model_.config().vocab);
  if (attention_.variant) {
    // No cache: rerun the decoder over each prefix, keep the last row.
    for (Eigen::Index i = 0; i < n; ++i) {
      Slot& slot = slots_[static_cast<std::size_t>(i)];
      slot.prefix.push_back(tokens[static_cast<std::size_t>(i)]);
      const RowMatrix all = decode_all(model_, &memory_, slot.prefix, attention_, nullptr, nullptr, nullptr);
      logits.row(i) = all.row(all.rows() - 1);
    }
    return log_softmax_rows(logits);
  }
  // KV cache: all slots' new tokens as one [n, D] block through the projections.
  const std::int64_t position = slots_.empty() ? 0 : static_cast<std::int64_t>(slots_[0].prefix.size());
  RowMatrix x(n, d);
  for (Eigen::Index i = 0; i < n; ++i) {
    Slot& slot = slots_[static_cast<std::size_t>(i)];
    if (static_cast<std::int64_t>(slot.prefix.size()) != position) throw std::logic_error("decoder slots out of step");
    slot.prefix.push_back(tokens[static_cast<std::size_t>(i)]);
    x.row(i) = embed(w, {tokens[static_cast<std::size_t>(i)]}, position).row(0);
  }
  if (position + 1 > model_.config().max_length) {
    throw ParamError("the translation reached the model's limit of " + std::to_string(model_.config().max_length) + " tokens");
  }
  for (std::size_t l = 0; l < w.decoder_layers().size(); ++l) {
    const LayerSlots& s = w.decoder_layers()[l];
    {
      const RowMatrix a = layer_norm(w, s.self_attn.norm, x);
      const RowMatrix q = affine(w, s.self_attn.q, a), k = affine(w, s.self_attn.k, a), v = affine(w, s.self_attn.v, a);
      RowMatrix context(n, d);
      for (Eigen::Index i = 0; i < n; ++i) {
        Slot& slot = slots_[static_cast<std::size_t>(i)];
        RowMatrix& keys = slot.keys[l];
        RowMatrix& values = slot.values[l];
        keys.conservativeResize(keys.rows() + 1, d);
        values.conservativeResize(values.rows() + 1, d);
        keys.row(keys.rows() - 1) = k.row(i);
        values.row(values.rows() - 1) = v.row(i);
        context.row(i) = softmax_attention(q.row(i), keys, values, heads, false, nullptr).row(0);
      }
      x += affine(w, s.self_attn.o, context);
    }
    {
      const RowMatrix a = layer_norm(w, s.cross_attn.norm, x);
      const RowMatrix q = affine(w, s.cross_attn.q, a);
      RowMatrix context(n, d);
      for (Eigen::Index i = 0; i < n; ++i) {
        context.row(i) = softmax_attention(q.row(i), cross_keys_[l], cross_values_[l], heads, false, nullptr).row(0);
      }
      x += affine(w, s.cross_attn.o, context);
    }
    feed_forward_sublayer(w, s, x);
  }
  logits.noalias() = layer_norm(w, w.decoder_norm(), x) * w.weight(w.embedding_slot()).transpose();
  return log_softmax_rows(logits);
}

void TranslationDecoder::reorder(const std::vector<std::int64_t>& parents) {
  std::vector<Slot> next;
  next.reserve(parents.size());
  for (const std::int64_t p : parents) {
    if (p < 0 || p >= static_cast<std::int64_t>(slots_.size())) throw std::logic_error("reorder: parent out of range");
    next.push_back(slots_[static_cast<std::size_t>(p)]);
  }
  slots_ = std::move(next);
}

// ---- translate ------------------------------------------------------------------------------------

SingleThreaded::SingleThreaded() : previous_(omp_get_max_threads()) { omp_set_num_threads(1); }
SingleThreaded::~SingleThreaded() { omp_set_num_threads(previous_); }

Translation translate(const TrainedModel& model, const std::string& text, const TranslateOptions& options) {
  const SingleThreaded one_thread;
  const auto start = std::chrono::steady_clock::now();
  if (!model.config().has_encoder()) throw ParamError("model '" + model.dir() + "' is a language model, not a translator");
  if (options.beam < 1 || options.beam > 64) throw ParamError("beam=" + std::to_string(options.beam) + ": allowed 1..64");
  if (!(options.length_penalty >= 0 && options.length_penalty <= 5)) {
    throw ParamError("length penalty " + std::to_string(options.length_penalty) + ": allowed 0..5");
  }
  Translation out;
  out.source_tokens = model.tokenizer().encode(text);
  if (out.source_tokens.empty()) throw ParamError("nothing to translate: the sentence is empty");
  std::vector<std::int32_t> src;
  for (const Token& t : out.source_tokens) src.push_back(t.id);
  src.push_back(model.config().eos_id);
  if (static_cast<std::int64_t>(src.size()) > model.config().max_length) {
    throw ParamError("the sentence has " + std::to_string(src.size()) + " tokens; the model takes at most " +
                     std::to_string(model.config().max_length) + " (split it into shorter sentences)");
  }
  const RowMatrix memory = encode(model, src, options.attention, &out.encoder_attention, options.cancel);
  TranslationDecoder decoder(model, memory, options.attention);
  SearchOptions search;
  search.beam = options.beam;
  search.length_penalty = options.beam > 1 ? options.length_penalty : 0.0f;
  const int limit = static_cast<int>(model.config().max_length - 1);
  search.max_length = options.max_length > 0 ? std::min(options.max_length, limit)
                                             : std::min(2 * static_cast<int>(src.size()) + 10, limit);
  search.bos = model.config().bos_id;
  search.eos = model.config().eos_id;
  search.n_best = std::max(1, std::min(options.n_best, options.beam));
  search.no_repeat_ngram = options.no_repeat_ngram;
  search.cancel = options.cancel;
  out.search = options.beam == 1 ? greedy_search(decoder, search) : beam_search(decoder, search);
  const Hypothesis& best = out.search.hypotheses.front();
  out.log_prob = best.log_prob;
  out.score = best.score;
  out.finished = best.finished;
  out.text = model.tokenizer().decode(best.tokens);
  for (const Hypothesis& h : out.search.hypotheses) out.nbest_text.push_back(model.tokenizer().decode(h.tokens));
  for (const std::int32_t id : best.tokens) out.target_tokens.push_back(model.tokenizer().decode({id}));
  // Maps of the chosen hypothesis, teacher-forced: BOS + tokens predicts tokens + EOS.
  std::vector<std::int32_t> tgt_in = {model.config().bos_id};
  tgt_in.insert(tgt_in.end(), best.tokens.begin(), best.tokens.end());
  if (!best.finished) tgt_in.pop_back();
  decode_all(model, &memory, tgt_in, options.attention, &out.decoder_attention, &out.cross_attention, options.cancel);
  out.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return out;
}

nlohmann::json translation_json(const Translation& t, const std::string& attention, int beam) {
  nlohmann::json source = nlohmann::json::array(), target = nlohmann::json::array(), cross = nlohmann::json::array();
  for (const Token& tok : t.source_tokens) source.push_back(tok.text);
  source.push_back("</s>");
  for (const std::string& piece : t.target_tokens) target.push_back(piece);
  if (t.finished) target.push_back("</s>");
  for (const Tensor& layer : t.cross_attention) cross.push_back(tensor_to_json(layer));
  nlohmann::json j = {{"source_tokens", source}, {"target_tokens", target}, {"translation", t.text},
                      {"cross_attention", cross},  {"ms", t.ms},              {"attention", attention},
                      {"beam", beam},              {"log_prob", t.log_prob},   {"score", t.score},
                      {"finished", t.finished}};
  if (beam > 1) j["nbest"] = t.nbest_text;
  return j;
}

ScoreSums score_language_model(const TrainedModel& model, const std::vector<std::string>& sentences,
                               const AttentionChoice& attention, const CancelToken* cancel) {
  if (model.config().has_encoder()) throw ParamError("model '" + model.dir() + "' is a translator, not a language model");
  const SingleThreaded one_thread;
  ScoreSums sums;
  for (const std::string& s : sentences) {
    check_cancelled(cancel);
    std::vector<std::int32_t> ids = model.tokenizer().encode_ids(s);
    if (ids.empty()) continue;
    if (static_cast<std::int64_t>(ids.size()) + 1 > model.config().max_length) ids.resize(static_cast<std::size_t>(model.config().max_length - 1));
    std::vector<std::int32_t> in = {model.config().bos_id};
    in.insert(in.end(), ids.begin(), ids.end());
    ids.push_back(model.config().eos_id);
    const RowMatrix logp = log_softmax_rows(decode_all(model, nullptr, in, attention, nullptr, nullptr, cancel));
    for (std::size_t t = 0; t < ids.size(); ++t) sums.nll -= static_cast<double>(logp(static_cast<Eigen::Index>(t), ids[t]));
    sums.tokens += static_cast<std::int64_t>(ids.size());
  }
  return sums;
}

}  // namespace attnlab
