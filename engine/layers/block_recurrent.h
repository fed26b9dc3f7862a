// Block-Recurrent Transformer layer (Hutchins, Schlag, Wu, Dyer, Neyshabur 2022,
// "Block-Recurrent Transformers", arXiv:2203.07852): a whole layer (attention + FFN) that reads
// the sequence window by window and carries S state vectors from one window to the next.
//
// Shapes: x, output [L, D]; H heads of d = D/H; windows of W tokens, n_w = ceil(L / W) of them
// (the last may be shorter); S state vectors of width D.
//
// Token attention (both modes) is a banded causal sliding window: query i in window w = ⌊i/W⌋
// sees the keys j with  max(0, (w−1)·W) ≤ j ≤ i  — the previous window (its keys and values
// cached) and, causally, its own. The layer always runs left to right, so it is causal whatever
// AttentionOptions::causal says. Its attention is specific (windowed, cross to states) and
// written here; AttentionOptions::variant is not used. Padded keys (options.key_padding) are
// never attended by tokens or states.
//
// recurrent = false: a pre-LN sliding-window layer, nothing else:
//   u = LN_a(x);  q, k, v = u·W_q, u·W_k, u·W_v            [L, D]
//   h = x + SWA(q, k, v)·W_o;   y = h + FFN(LN_f(h))
//
// recurrent = true: the same plus the state.
//   Vertical (tokens of window w, reading the state s_w [S, D] before that window):
//     ŝ_w = LN_s(s_w) + P                  P: state position embeddings [S, D]
//     k_s, v_s = ŝ_w·W_ks, ŝ_w·W_vs         state keys and values [S, D]
//     h = x + SWA(q, k, v)·W_o + Attn(u·W_qx → k_s, v_s)·W_ox
//     y = h + FFN(LN_f(h))
//   Horizontal (the state after window w, from the tokens of windows w−1 and w):
//     a_ss = Attn(ŝ_w·W_qs → k_s, v_s)      state self-attention, every state sees every state
//     a_st = Attn(ŝ_w·W_qt → k, v of the tokens of windows w−1 and w)   no causal mask: the
//            new state is read only by later windows
//     g_in = [a_ss ‖ a_st]   [S, 2D];   z = g_in·W_z + b_z   [S, D]
//     gate "fixed": g = σ(gate_bias);            s_{w+1} = g·s_w + (1−g)·z
//     gate "full":  G = σ(g_in·W_g + b_g + 1);    s_{w+1} = G∘s_w + (1−G)∘z
//     gate "lstm":  F = σ(g_in·W_f + b_f + 1), I = σ(g_in·W_i + b_i − 1);  s_{w+1} = F∘s_w + I∘z
//   s_0 is the learned initial state [S, D]. Tokens and states share keys and values: token
//   queries read the state's k_s, v_s; state queries read the tokens' k, v (as in meliad). The
//   gates take the attention output before the projection z, as meliad's MLP._gate takes its
//   y_hidden; there is a single gate and no state FFN (meliad's single_gate, skip_ffn).
//   Attn(·) is multi-head softmax attention with scale 1/√d; every head attends in its own
//   d columns of the D-wide queries, keys and values.
//
// Weights (visit_weights names, shapes):
//   norm_attention [D], attention.{w_q,w_k,w_v,w_o} [D, D], norm_ff [D], feed_forward (D → d_ff → D)
//   recurrent only: token_state.{w_q,w_o} [D, D]; state.initial [S, D]; state.position [S, D];
//   state.norm [D]; state.{w_q_self, w_k, w_v, w_q_tokens} [D, D]; state.projection [2D, D];
//   gate "full": state.gate [2D, D]; gate "lstm": state.gate_forget, state.gate_input [2D, D].
//
// Cost: O(L·W·D) for token attention, O(n_w·S·(S + 2W)·D) for the state: linear in L. Without a
// trace no L×L matrix exists: keys and values are kept per window, scratch is one block of 64
// queries against at most 2W keys per thread. Token projections and the FFN run on blocks of
// rows in parallel; the state recurrence is sequential over windows, and the token attention of
// a group of windows runs in parallel once their states are known.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/params.h"
#include "core/tensor.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/multi_head_attention.h"
#include "layers/weight_table.h"

namespace attnlab {

enum class BlockRecurrentGate { Lstm, Fixed, Full };

const char* block_recurrent_gate_name(BlockRecurrentGate gate);  // "lstm", "fixed", "full"

// What the layer did, for the state views. kind() "block_recurrent". For recurrent = false the
// state tables are empty (shape []).
struct BlockRecurrentTrace final : public TraceExtras {
  std::int64_t windows = 0;     // n_w
  std::int64_t window = 0;      // W
  std::int64_t state_size = 0;  // S
  std::string gate;             // "lstm", "fixed", "full"
  bool recurrent = true;
  // Mean over the D features of the gate that keeps the old state: σ(gate_bias) for "fixed",
  // G for "full", the forget gate F for "lstm".
  Tensor gate_values;             // [n_w, S]
  Tensor state_norms;             // [n_w + 1, S]   ‖s_w‖ per state vector; row 0 = initial state
  Tensor states;                  // [n_w + 1, S, D]
  // Head mean of the horizontal cross-attention: state s of window w over the 2W tokens of
  // windows w−1 (columns 0..W−1) and w (columns W..2W−1); absent tokens have 0.
  Tensor state_token_attention;   // [n_w, S, 2W]
  // Head mean of the vertical cross-attention: token t of window w over the S states; rows of
  // tokens past the end of the sequence are 0.
  Tensor token_state_attention;   // [n_w, W, S]

  std::string_view kind() const override { return "block_recurrent"; }
  // {"kind", "recurrent", "windows", "window", "state_size", "gate", "gate_values",
  //  "state_norms", "states" (only when S·D·n_w ≤ 1e6), "state_token_attention",
  //  "token_state_attention"}
  nlohmann::json to_json() const override;
};

struct BlockRecurrentLayer {
  // Settings (from Params; not weights).
  std::int64_t d_model = 0;
  std::int64_t heads = 1;
  std::int64_t d_ff = 0;
  std::int64_t window = 128;
  std::int64_t state_size = 32;
  bool recurrent = true;
  BlockRecurrentGate gate = BlockRecurrentGate::Lstm;
  float gate_bias = 0.0f;

  // Vertical direction (tokens).
  LayerNorm norm_attention;
  MultiHeadAttention attention;  // holds W_q, W_k, W_v, W_o; its forward() is not used
  LayerNorm norm_ff;
  FeedForward feed_forward;
  // Recurrent only (empty otherwise).
  Linear token_state_q, token_state_o;  // W_qx, W_ox [D, D]
  RowMatrix initial_state;              // [S, D]
  RowMatrix state_position;             // [S, D]
  LayerNorm norm_state;
  Linear state_q_self, state_k, state_v, state_q_tokens;  // [D, D]
  Linear state_projection;                                // [2D, D]
  Linear gate_full;                                       // "full": [2D, D]
  Linear gate_forget, gate_input;                         // "lstm": [2D, D]

  static const std::vector<ParamSpec>& schema();
  // Throws ParamError for a d_model not divisible by heads or a non-positive size.
  static BlockRecurrentLayer seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff,
                                    const Params& params, std::uint64_t seed);

  std::int64_t window_count(std::int64_t length) const { return (length + window - 1) / window; }

  // Every weight the current settings use, once (recurrent and gate weights only when used).
  void visit_weights(const std::string& prefix, WeightTable& table);

  // x: [L, D] -> [L, D]. With a trace: weights [H, L, L] (the banded token self-attention) and
  // one BlockRecurrentTrace in layer_extras.
  RowMatrix forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
};

}  // namespace attnlab
