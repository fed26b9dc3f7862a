#include "layers/block_recurrent.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/cancel.h"
#include "core/error.h"
#include "core/rng.h"
#include "layers/masked_softmax.h"

namespace attnlab {
namespace {

constexpr std::int64_t kQueryBlock = 64;  // queries (or states) per attention task
constexpr std::int64_t kRowChunk = 256;   // rows per projection / FFN task
// The state keys and values of a group of windows are kept together so that the token attention
// of the whole group can run in parallel; a group holds at most this many floats per table.
constexpr std::int64_t kStateBudget = std::int64_t{1} << 22;
// meliad initialises its gate kernels with variance scaling 0.1 ("lower than normal").
constexpr float kGateGain = 0.31622777f;  // √0.1
constexpr float kStatePositionStddev = 0.1f;

using ConstRows = Eigen::Ref<const RowMatrix>;
using Rows = Eigen::Ref<RowMatrix>;

// Which keys a block of queries sees: all of them, or (causal) for query row r the first
// offset + r + 1; never a key flagged in `hidden` (indexed from the block's first key).
struct Visibility {
  bool causal = false;
  std::int64_t offset = 0;
  const std::uint8_t* hidden = nullptr;
  std::int64_t visible(std::int64_t row, std::int64_t keys) const {
    return causal ? std::min(keys, offset + row + 1) : keys;
  }
};

// Receives (head, probabilities [rows, keys]) of every head, in trace mode.
using WeightSink = std::function<void(std::int64_t, const ConstRows&)>;

// Multi-head softmax attention of a block of queries [rows, D] over keys and values [keys, D];
// head h uses columns h·d .. h·d + d − 1 of all three and writes the same columns of out.
// `scratch` holds at least rows × keys floats.
void attend(const ConstRows& q, const ConstRows& k, const ConstRows& v, std::int64_t heads, const Visibility& vis,
            Rows scratch, Rows out, const WeightSink* sink) {
  const std::int64_t rows = q.rows(), keys = k.rows(), d = q.cols() / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  auto p = scratch.topLeftCorner(rows, keys);
  for (std::int64_t h = 0; h < heads; ++h) {
    p.noalias() = (q.middleCols(h * d, d) * k.middleCols(h * d, d).transpose()) * scale;
    for (std::int64_t r = 0; r < rows; ++r) masked_softmax(p.row(r), vis.visible(r, keys), vis.hidden);
    out.middleCols(h * d, d).noalias() = p * v.middleCols(h * d, d);
    if (sink) (*sink)(h, p);
  }
}

// out = x · l.weight + l.bias
template <typename Out>
void affine_into(const RowMatrix& x, const Linear& l, Out&& out) {
  out.noalias() = x * l.weight;
  out.rowwise() += l.bias;
}

RowMatrix sigmoid(const RowMatrix& a) { return (1.0f + (-a.array()).exp()).inverse().matrix(); }

// Runs f(first_row, rows) over blocks of kRowChunk rows in parallel; stops with CancelledError.
template <typename F>
void for_each_row_chunk(std::int64_t rows, const CancelToken* cancel, F&& f) {
  const std::int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  std::atomic<bool> cancelled{false};
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t c = 0; c < chunks; ++c) {
    if (cancelled.load(std::memory_order_relaxed) || (cancel && cancel->cancelled())) {
      cancelled.store(true, std::memory_order_relaxed);
      continue;
    }
    const std::int64_t r0 = c * kRowChunk;
    f(r0, std::min(kRowChunk, rows - r0));
  }
  if (cancelled.load()) throw CancelledError();
}

BlockRecurrentGate parse_gate(const std::string& name) {
  if (name == "lstm") return BlockRecurrentGate::Lstm;
  if (name == "fixed") return BlockRecurrentGate::Fixed;
  if (name == "full") return BlockRecurrentGate::Full;
  throw ParamError("gate=" + name + " is not allowed; gate: one of lstm, fixed, full");
}

// One forward pass: the buffers it needs and its steps.
class Run {
 public:
  Run(const BlockRecurrentLayer& layer, const RowMatrix& x, const AttentionOptions& options, Trace* trace)
      : layer_(layer), x_(x), options_(options), trace_(trace), L_(x.rows()), D_(layer.d_model), H_(layer.heads),
        W_(layer.window), S_(layer.state_size), windows_(layer.window_count(x.rows())),
        key_span_(std::min(2 * layer.window, x.rows())),
        padding_(options.key_padding ? options.key_padding->data() : nullptr) {}

  RowMatrix execute() {
    prepare_trace();
    project_tokens();
    check_cancelled(options_.cancel);
    // Windows in groups: first the (sequential) states of the group, then the token attention
    // of all its windows in parallel.
    const std::int64_t group = layer_.recurrent ? std::clamp<std::int64_t>(kStateBudget / (S_ * D_), 1, windows_) : windows_;
    if (layer_.recurrent) {
      state_keys_ = Tensor::uninitialized({group, S_, D_});
      state_values_ = Tensor::uninitialized({group, S_, D_});
      state_ = layer_.initial_state;
      state_scratch_.resize(kQueryBlock, std::max(S_, key_span_));
      record_state(0);
    }
    for (std::int64_t first = 0; first < windows_; first += group) {
      const std::int64_t count = std::min(group, windows_ - first);
      if (layer_.recurrent) {
        for (std::int64_t w = first; w < first + count; ++w) {
          check_cancelled(options_.cancel);
          step_state(w, w - first);
        }
      }
      attend_windows(first, count);
    }
    RowMatrix out = finish();
    if (trace_) {
      trace_->weights = std::move(weights_);
      trace_->layer_extras.push_back(std::move(extras_));
    }
    return out;
  }

 private:
  void prepare_trace() {
    if (!trace_) return;
    weights_ = Tensor({H_, L_, L_});
    extras_ = std::make_shared<BlockRecurrentTrace>();
    extras_->windows = windows_;
    extras_->window = W_;
    extras_->state_size = S_;
    extras_->gate = block_recurrent_gate_name(layer_.gate);
    extras_->recurrent = layer_.recurrent;
    if (!layer_.recurrent) return;
    extras_->gate_values = Tensor({windows_, S_});
    extras_->state_norms = Tensor({windows_ + 1, S_});
    extras_->states = Tensor({windows_ + 1, S_, D_});
    extras_->state_token_attention = Tensor({windows_, S_, 2 * W_});
    extras_->token_state_attention = Tensor({windows_, W_, S_});
  }

  // q, k, v (and the token queries that read the state) of every token: [L, D] each.
  void project_tokens() {
    q_ = Tensor::uninitialized({L_, D_});
    k_ = Tensor::uninitialized({L_, D_});
    v_ = Tensor::uninitialized({L_, D_});
    if (layer_.recurrent) q_state_ = Tensor::uninitialized({L_, D_});
    auto Q = q_.matrix(), K = k_.matrix(), V = v_.matrix(), QS = q_state_.matrix();
    for_each_row_chunk(L_, options_.cancel, [&](std::int64_t r0, std::int64_t n) {
      const RowMatrix u = layer_.norm_attention.forward(x_.middleRows(r0, n));
      affine_into(u, layer_.attention.w_q, Q.middleRows(r0, n));
      affine_into(u, layer_.attention.w_k, K.middleRows(r0, n));
      affine_into(u, layer_.attention.w_v, V.middleRows(r0, n));
      if (layer_.recurrent) affine_into(u, layer_.token_state_q, QS.middleRows(r0, n));
    });
    attended_ = Tensor::uninitialized({L_, D_});
    if (layer_.recurrent) attended_state_ = Tensor::uninitialized({L_, D_});
  }

  void record_state(std::int64_t index) {
    if (!extras_) return;
    extras_->states.matrix(index) = state_;
    for (std::int64_t s = 0; s < S_; ++s) extras_->state_norms.at(index, s) = state_.row(s).norm();
  }

  // s_w -> s_{w+1}; leaves the keys and values of s_w in group slot `slot`.
  void step_state(std::int64_t w, std::int64_t slot) {
    RowMatrix s_hat = layer_.norm_state.forward(state_);
    s_hat += layer_.state_position;
    auto ks = state_keys_.matrix(slot);
    auto vs = state_values_.matrix(slot);
    affine_into(s_hat, layer_.state_k, ks);
    affine_into(s_hat, layer_.state_v, vs);
    const RowMatrix q_self = layer_.state_q_self.forward(s_hat);
    const RowMatrix q_tokens = layer_.state_q_tokens.forward(s_hat);
    // The tokens of windows w−1 and w; column c of the trace table is token (w−1)·W + c.
    const std::int64_t k0 = std::max<std::int64_t>(0, (w - 1) * W_);
    const std::int64_t k1 = std::min(L_, (w + 1) * W_);
    const std::int64_t column0 = k0 - (w - 1) * W_;
    const auto K = k_.matrix(), V = v_.matrix();
    RowMatrix gate_in(S_, 2 * D_);  // [a_ss ‖ a_st]
    for (std::int64_t s0 = 0; s0 < S_; s0 += kQueryBlock) {
      const std::int64_t rows = std::min(kQueryBlock, S_ - s0);
      attend(q_self.middleRows(s0, rows), ks, vs, H_, Visibility{}, state_scratch_, gate_in.block(s0, 0, rows, D_),
             nullptr);
      WeightSink sink;
      if (extras_) {
        sink = [&](std::int64_t, const ConstRows& p) {
          for (std::int64_t r = 0; r < p.rows(); ++r)
            for (std::int64_t c = 0; c < p.cols(); ++c)
              extras_->state_token_attention.at(w, s0 + r, column0 + c) += p(r, c) / static_cast<float>(H_);
        };
      }
      attend(q_tokens.middleRows(s0, rows), K.middleRows(k0, k1 - k0), V.middleRows(k0, k1 - k0), H_,
             Visibility{false, 0, padding_ ? padding_ + k0 : nullptr}, state_scratch_, gate_in.block(s0, D_, rows, D_),
             extras_ ? &sink : nullptr);
    }
    const RowMatrix z = layer_.state_projection.forward(gate_in);
    RowVector kept(S_);  // mean gate on the old state, per state vector
    switch (layer_.gate) {
      case BlockRecurrentGate::Fixed: {
        const float g = 1.0f / (1.0f + std::exp(-layer_.gate_bias));
        state_ = g * state_ + (1.0f - g) * z;
        kept.setConstant(g);
        break;
      }
      case BlockRecurrentGate::Full: {
        RowMatrix logits = layer_.gate_full.forward(gate_in);
        logits.array() += 1.0f;  // biased to remember
        const RowMatrix g = sigmoid(logits);
        state_ = (g.array() * state_.array() + (1.0f - g.array()) * z.array()).matrix();
        kept = g.rowwise().mean().transpose();
        break;
      }
      case BlockRecurrentGate::Lstm: {
        RowMatrix forget_logits = layer_.gate_forget.forward(gate_in);
        forget_logits.array() += 1.0f;
        RowMatrix input_logits = layer_.gate_input.forward(gate_in);
        input_logits.array() -= 1.0f;
        const RowMatrix f = sigmoid(forget_logits), i = sigmoid(input_logits);
        state_ = (f.array() * state_.array() + i.array() * z.array()).matrix();
        kept = f.rowwise().mean().transpose();
        break;
      }
    }
    if (extras_) {
      extras_->gate_values.matrix().row(w) = kept;
      record_state(w + 1);
    }
  }

  // Token attention of windows first .. first + count − 1, in blocks of queries, in parallel.
  void attend_windows(std::int64_t first, std::int64_t count) {
    const std::int64_t blocks_per_window = (W_ + kQueryBlock - 1) / kQueryBlock;
    const auto Q = q_.matrix(), K = k_.matrix(), V = v_.matrix(), QS = q_state_.matrix();
    auto A = attended_.matrix(), AS = attended_state_.matrix();
    const float inv_heads = 1.0f / static_cast<float>(H_);
    std::atomic<bool> cancelled{false};
#pragma omp parallel
    {
      RowMatrix scratch(kQueryBlock, std::max(key_span_, S_));
#pragma omp for schedule(dynamic)
      for (std::int64_t task = 0; task < count * blocks_per_window; ++task) {
        if (cancelled.load(std::memory_order_relaxed) || (options_.cancel && options_.cancel->cancelled())) {
          cancelled.store(true, std::memory_order_relaxed);
          continue;
        }
        const std::int64_t w = first + task / blocks_per_window;
        const std::int64_t window_end = std::min(L_, (w + 1) * W_);
        const std::int64_t r0 = w * W_ + (task % blocks_per_window) * kQueryBlock;
        if (r0 >= window_end) continue;  // the last window may be short
        const std::int64_t rows = std::min(kQueryBlock, window_end - r0);
        const std::int64_t k0 = std::max<std::int64_t>(0, (w - 1) * W_);
        const std::int64_t keys = r0 + rows - k0;
        WeightSink sink;
        if (trace_) {
          sink = [&](std::int64_t h, const ConstRows& p) {
            for (std::int64_t r = 0; r < rows; ++r)
              Eigen::Map<RowVector>(&weights_.at(h, r0 + r, k0), keys) = p.row(r);
          };
        }
        attend(Q.middleRows(r0, rows), K.middleRows(k0, keys), V.middleRows(k0, keys), H_,
               Visibility{true, r0 - k0, padding_ ? padding_ + k0 : nullptr}, scratch, A.middleRows(r0, rows),
               trace_ ? &sink : nullptr);
        if (!layer_.recurrent) continue;
        WeightSink state_sink;
        if (extras_) {
          state_sink = [&](std::int64_t, const ConstRows& p) {
            for (std::int64_t r = 0; r < rows; ++r)
              for (std::int64_t s = 0; s < S_; ++s)
                extras_->token_state_attention.at(w, r0 - w * W_ + r, s) += p(r, s) * inv_heads;
          };
        }
        attend(QS.middleRows(r0, rows), state_keys_.matrix(w - first), state_values_.matrix(w - first), H_,
               Visibility{}, scratch, AS.middleRows(r0, rows), extras_ ? &state_sink : nullptr);
      }
    }
    if (cancelled.load()) throw CancelledError();
  }

  // Residual, output projections and the FFN, block by block of rows.
  RowMatrix finish() {
    RowMatrix out(L_, D_);
    const auto A = attended_.matrix(), AS = attended_state_.matrix();
    for_each_row_chunk(L_, options_.cancel, [&](std::int64_t r0, std::int64_t n) {
      RowMatrix h = x_.middleRows(r0, n);
      h.noalias() += A.middleRows(r0, n) * layer_.attention.w_o.weight;
      h.rowwise() += layer_.attention.w_o.bias;
      if (layer_.recurrent) {
        h.noalias() += AS.middleRows(r0, n) * layer_.token_state_o.weight;
        h.rowwise() += layer_.token_state_o.bias;
      }
      h += layer_.feed_forward.forward(layer_.norm_ff.forward(h));
      out.middleRows(r0, n) = h;
    });
    return out;
  }

  const BlockRecurrentLayer& layer_;
  const RowMatrix& x_;
  const AttentionOptions& options_;
  Trace* trace_;
  const std::int64_t L_, D_, H_, W_, S_, windows_, key_span_;
  const std::uint8_t* padding_;

  Tensor q_, k_, v_, q_state_;        // [L, D]
  Tensor attended_, attended_state_;  // [L, D], heads side by side
  Tensor state_keys_, state_values_;  // [group, S, D]
  RowMatrix state_;                   // [S, D]
  RowMatrix state_scratch_;
  Tensor weights_;  // [H, L, L], trace only
  std::shared_ptr<BlockRecurrentTrace> extras_;
};

}  // namespace

const char* block_recurrent_gate_name(BlockRecurrentGate gate) {
  switch (gate) {
    case BlockRecurrentGate::Lstm: return "lstm";
    case BlockRecurrentGate::Fixed: return "fixed";
    case BlockRecurrentGate::Full: return "full";
  }
  return "?";
}

nlohmann::json BlockRecurrentTrace::to_json() const {
  nlohmann::json j;
  j["kind"] = "block_recurrent";
  j["recurrent"] = recurrent;
  j["windows"] = windows;
  j["window"] = window;
  j["state_size"] = state_size;
  j["gate"] = gate;
  j["gate_values"] = tensor_to_json(gate_values);
  j["state_norms"] = tensor_to_json(state_norms);
  const std::int64_t width = states.rank() == 3 ? states.dim(2) : 0;
  if (state_size * width * windows <= 1'000'000) j["states"] = tensor_to_json(states);
  j["state_token_attention"] = tensor_to_json(state_token_attention);
  j["token_state_attention"] = tensor_to_json(token_state_attention);
  return j;
}

const std::vector<ParamSpec>& BlockRecurrentLayer::schema() {
  static const std::vector<ParamSpec> specs = {
      ParamSpec::integer("window", "Window W", 128, 1, 65536,
                         "Tokens per window; a token attends the previous window (cached) and, causally, its own"),
      ParamSpec::integer("state_size", "State vectors S", 32, 1, 4096,
                         "Number of state vectors carried from window to window"),
      ParamSpec::boolean("recurrent", "Recurrent state", true,
                         "Off: a plain sliding-window layer (attention + FFN), no state"),
      ParamSpec::choice("gate", "State gate", "lstm", {"lstm", "fixed", "full"},
                        "How the new state mixes the old one with the update z: lstm (forget and input gates), "
                        "fixed (g = sigmoid(gate_bias)) or full (learned g)"),
      ParamSpec::real("gate_bias", "Fixed gate bias", 0.0, -20.0, 20.0,
                      "The fixed gate keeps g = sigmoid(gate_bias) of the old state; large values freeze the state"),
  };
  return specs;
}

BlockRecurrentLayer BlockRecurrentLayer::seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff,
                                                const Params& params, std::uint64_t seed) {
  check_layer_sizes(d_model, heads, d_ff);
  BlockRecurrentLayer l;
  l.d_model = d_model;
  l.heads = heads;
  l.d_ff = d_ff;
  l.window = params.get_int("window");
  l.state_size = params.get_int("state_size");
  l.recurrent = params.get_bool("recurrent");
  l.gate = parse_gate(params.get_choice("gate"));
  l.gate_bias = static_cast<float>(params.get_float("gate_bias"));

  const std::int64_t D = d_model, S = l.state_size;
  l.norm_attention = LayerNorm::identity(D);
  l.attention = MultiHeadAttention::seeded(D, heads, Rng::derive(seed, "attention"));
  l.norm_ff = LayerNorm::identity(D);
  l.feed_forward = FeedForward::seeded(D, d_ff, Rng::derive(seed, "feed_forward"));
  if (!l.recurrent) return l;
  l.token_state_q = Linear::seeded(D, D, Rng::derive(seed, "token_state/w_q"));
  l.token_state_o = Linear::seeded(D, D, Rng::derive(seed, "token_state/w_o"));
  checked_element_count({S, D});
  l.initial_state.resize(S, D);
  Rng::fill_normal_chunked(l.initial_state.data(), S * D, Rng::derive(seed, "state/initial"), 0.0f, 1.0f);
  l.state_position.resize(S, D);
  Rng::fill_normal_chunked(l.state_position.data(), S * D, Rng::derive(seed, "state/position"), 0.0f,
                           kStatePositionStddev);
  l.norm_state = LayerNorm::identity(D);
  l.state_q_self = Linear::seeded(D, D, Rng::derive(seed, "state/w_q_self"));
  l.state_k = Linear::seeded(D, D, Rng::derive(seed, "state/w_k"));
  l.state_v = Linear::seeded(D, D, Rng::derive(seed, "state/w_v"));
  l.state_q_tokens = Linear::seeded(D, D, Rng::derive(seed, "state/w_q_tokens"));
  l.state_projection = Linear::seeded(2 * D, D, Rng::derive(seed, "state/projection"));
  if (l.gate == BlockRecurrentGate::Full) {
    l.gate_full = Linear::seeded(2 * D, D, Rng::derive(seed, "state/gate"), kGateGain);
  } else if (l.gate == BlockRecurrentGate::Lstm) {
    l.gate_forget = Linear::seeded(2 * D, D, Rng::derive(seed, "state/gate_forget"), kGateGain);
    l.gate_input = Linear::seeded(2 * D, D, Rng::derive(seed, "state/gate_input"), kGateGain);
  }
  return l;
}

void BlockRecurrentLayer::visit_weights(const std::string& prefix, WeightTable& table) {
  const std::int64_t D = d_model, S = state_size;
  table.norm(prefix + "norm_attention", norm_attention, D);
  table.attention(prefix + "attention", attention, D);
  table.norm(prefix + "norm_ff", norm_ff, D);
  table.feed_forward(prefix + "feed_forward", feed_forward, D, d_ff);
  if (!recurrent) return;
  table.linear(prefix + "token_state.w_q", token_state_q, D, D);
  table.linear(prefix + "token_state.w_o", token_state_o, D, D);
  table.matrix(prefix + "state.initial", initial_state, S, D);
  table.matrix(prefix + "state.position", state_position, S, D);
  table.norm(prefix + "state.norm", norm_state, D);
  table.linear(prefix + "state.w_q_self", state_q_self, D, D);
  table.linear(prefix + "state.w_k", state_k, D, D);
  table.linear(prefix + "state.w_v", state_v, D, D);
  table.linear(prefix + "state.w_q_tokens", state_q_tokens, D, D);
  table.linear(prefix + "state.projection", state_projection, 2 * D, D);
  switch (gate) {
    case BlockRecurrentGate::Fixed: break;
    case BlockRecurrentGate::Full: table.linear(prefix + "state.gate", gate_full, 2 * D, D); break;
    case BlockRecurrentGate::Lstm:
      table.linear(prefix + "state.gate_forget", gate_forget, 2 * D, D);
      table.linear(prefix + "state.gate_input", gate_input, 2 * D, D);
      break;
  }
}

RowMatrix BlockRecurrentLayer::forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  if (x.cols() != d_model) {
    throw ShapeError("block-recurrent layer expects [L, " + std::to_string(d_model) + "] input, got [" +
                     std::to_string(x.rows()) + ", " + std::to_string(x.cols()) + "]");
  }
  if (x.rows() == 0) throw ShapeError("block-recurrent layer needs at least one token, got [0, " + std::to_string(x.cols()) + "]");
  if (!x.allFinite()) throw ShapeError("block-recurrent layer input holds a non-finite value (NaN or infinity)");
  if (options.key_padding && static_cast<std::int64_t>(options.key_padding->size()) != x.rows()) {
    throw ShapeError("key padding mask has " + std::to_string(options.key_padding->size()) + " entries but there are " +
                     std::to_string(x.rows()) + " tokens");
  }
  return Run(*this, x, options, trace).execute();
}

}  // namespace attnlab
