// Sparse feed-forward of the Scaling Transformers (Jaszczur et al. 2021, "Sparse is Enough in
// Scaling Transformers"; trax sparsity.py SparseFF), eval mode: one active unit per block.
//
// Shapes, for L tokens, width D, F = d_ff hidden units cut into B = F / N blocks of N units:
//   x: [L, D]   up: Linear [D, F] (W1, b1)   down: Linear [F, D] (W2, b2)
//   controller.m1: Linear [D, d_lowrank] (bias kept at zero unless loaded)   controller.m2: Linear [d_lowrank, F]
//   logits = (x·M1 + b_m1)·M2 + b_m2                 [L, F] -> [L, B, N]
//   a_ib   = argmax_n logits[i, b, n]  (lower n on ties)   one active unit b·N + a_ib per block
//   mask   = one-hot(a)                              [L, F]
//   h      = ReLU(x·W1 + b1) ⊙ mask                  [L, F]
//   y      = h·W2 + b2                               [L, D]
// The fast path (no trace) evaluates only the B active columns of W1 and rows of W2 per token,
// as in decoding: O(L·D·F/N) instead of O(L·D·F), plus the controller O(L·d_lowrank·(D + F)),
// which runs on chunks of 128 rows so no [L, F] logits tensor is ever held.
// The traced path evaluates the masked dense formula above, so the two can be checked against
// each other, and records the per-block controller entropies.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"
#include "attention/params.h"
#include "core/tensor.h"
#include "layers/linear.h"

namespace attnlab {

class WeightTable;

// The controller's choices for one forward call (L tokens, B blocks of N units).
struct SparseFfTrace final : public TraceExtras {
  std::vector<std::vector<std::int32_t>> active_units;  // [L][B] active unit within its block, in [0, N)
  std::vector<double> controller_entropy;               // [L] mean over blocks of the entropy (nats) of softmax(logits_block)
  std::int64_t block_size = 0;                          // N
  std::int64_t blocks = 0;                              // B

  std::string_view kind() const override { return "sparse_ff"; }
  // Keys: active_units, controller_entropy, block_size, blocks.
  nlohmann::json to_json() const override;
};

struct SparseFeedForward {
  std::int64_t d_model = 0;
  std::int64_t d_ff = 0;
  std::int64_t block_size = 32;  // N
  std::int64_t d_lowrank = 64;
  Linear up;             // [D, F]
  Linear down;           // [F, D]
  Linear controller_m1;  // [D, d_lowrank]
  Linear controller_m2;  // [d_lowrank, F]

  // block_size (N, must divide d_ff), d_lowrank.
  static const std::vector<ParamSpec>& schema();
  static SparseFeedForward seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, const Params& params,
                                  std::uint64_t seed);
  std::int64_t blocks() const { return d_ff / block_size; }
  // prefix + "up", "down", "controller.m1", "controller.m2" (each a Linear).
  void visit_weights(const std::string& prefix, WeightTable& table);

  // x: [L, D] -> [L, D]; deterministic (seed unused in eval mode). Pushes one SparseFfTrace onto
  // trace->layer_extras when trace is given.
  RowMatrix forward(const RowMatrix& x, std::uint64_t seed, Trace* trace) const;
  // The controller's logits (x·M1 + b_m1)·M2 + b_m2: [L, F], block b in columns [b·N, (b+1)·N).
  RowMatrix controller_logits(const RowMatrix& x) const;

 private:
  // Fills active [L·B] with the controller's argmax per block and, when given, entropy [L].
  void choose_units(const RowMatrix& x, std::vector<std::int32_t>& active, std::vector<double>* entropy) const;
};

}  // namespace attnlab
