// Sparse mixture-of-experts feed-forward: Switch top-1 routing (Fedus et al. 2021, Switch
// Transformers) and GShard top-2 routing (Lepikhin et al. 2020, GShard), eval-mode forward.
//
// Shapes, for L tokens, model width D, E experts, k = top_k slots per token:
//   x: [L, D]   router: Linear [D, E]   expert e: FeedForward D -> d_ff -> D   y: [L, D]
//
//   logits = x·W_r + b_r                           [L, E]   (float)
//   p      = softmax(logits) per token             [L, E]
//   top-1:  e1 = argmax p, gate g1 = p_e1 (not renormalised, as in Switch)
//   top-2:  e1, e2 = the two largest p (ties: lower index first); g1, g2 = p_e1, p_e2 / (p_e1 + p_e2);
//           the second slot is kept with probability min(1, g2 / second_threshold)
//           (second_threshold 0: always kept), one uniform draw per token from the forward seed.
//   capacity C = max(1, floor(L · capacity_factor / E)) slots per expert.
//   A slot's position in its expert is the exclusive cumulative count of earlier slots routed to
//   that expert, counting every token's first choice before any second choice (GShard); a slot at
//   position >= C overflows and is dropped: it contributes 0 (the residual around the layer
//   carries the token through).
//   y_i = Σ over kept slots (e, g) of token i:  g · Expert_e(x_i)     (0 for a token with none)
//   aux loss = E · Σ_e f_e · P_e, f_e = share of tokens whose first choice is e (before capacity),
//              P_e = mean_i p_ie;  reported raw and × aux_weight.
//   z loss   = mean_i logsumexp(logits_i)²;  reported raw and × z_weight.
// Memory: the router [L, E] plus each expert's gathered tokens [≤ C, D]; no [E, C, D] dispatch tensor.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"
#include "attention/params.h"
#include "core/tensor.h"
#include "layers/feed_forward.h"
#include "layers/linear.h"

namespace attnlab {

class WeightTable;

// What the router decided for one forward call (L tokens, E experts, k = top_k).
struct ExpertsTrace final : public TraceExtras {
  std::vector<std::vector<std::int32_t>> experts;  // [L][k] expert of each slot; -1 when dropped or not used
  std::vector<std::vector<std::int32_t>> routed;   // [L][k] expert each slot was routed to before capacity; -1 when not used
  std::vector<std::vector<float>> gates;           // [L][k] gate applied; 0 where experts is -1
  Tensor router_probabilities;                     // [L, E]
  std::vector<std::int32_t> load;                  // [E] slots kept
  std::vector<std::int32_t> demand;                // [E] slots routed before capacity
  std::int64_t capacity = 0;                       // C
  std::vector<std::int32_t> dropped;               // ascending tokens with no kept slot
  double aux_loss = 0.0, aux_loss_weighted = 0.0;
  double z_loss = 0.0, z_loss_weighted = 0.0;
  std::int64_t top_k = 1;
  double capacity_factor = 0.0;

  std::string_view kind() const override { return "experts"; }
  // Keys: experts, routed, gates, router_probabilities, load, demand, capacity, dropped, aux_loss,
  // aux_loss_weighted, z_loss, z_loss_weighted, top_k, capacity_factor.
  nlohmann::json to_json() const override;
};

struct MoeFeedForward {
  std::int64_t d_model = 0;
  std::int64_t d_ff = 0;
  std::int64_t top_k = 1;
  double capacity_factor = 1.25;
  double second_threshold = 0.2;
  double aux_weight = 0.01;
  double z_weight = 0.001;
  Linear router;                     // [D, E]
  std::vector<FeedForward> experts;  // E experts, each D -> d_ff -> D

  // experts, top_k, capacity_factor, second_threshold, aux_weight, z_weight.
  static const std::vector<ParamSpec>& schema();
  static MoeFeedForward seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, const Params& params,
                               std::uint64_t seed);
  std::int64_t expert_count() const { return static_cast<std::int64_t>(experts.size()); }
  std::int64_t capacity(std::int64_t tokens) const;  // C for a call with `tokens` tokens
  // prefix + "router" (Linear [D, E]), prefix + "experts.{e}" (FeedForward) for e = 0..E-1.
  void visit_weights(const std::string& prefix, WeightTable& table);

  // x: [L, D] -> [L, D]. `seed` drives the random keep of second choices. Pushes one
  // ExpertsTrace onto trace->layer_extras when trace is given.
  RowMatrix forward(const RowMatrix& x, std::uint64_t seed, Trace* trace) const;
};

}  // namespace attnlab
