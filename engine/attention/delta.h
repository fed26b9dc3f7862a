// DeltaNet trace extras: the fast-weight matrix as tokens arrive (for the streaming state view),
// the write strengths β, and the retrieval error of the pairs stored so far.
#pragma once

#include <string_view>
#include <vector>

#include "attention/recurrent_state.h"

namespace attnlab {

class DeltaExtras final : public RecurrentTraceExtras {
 public:
  std::string_view kind() const override { return "delta"; }
  nlohmann::json to_json() const override;
  const RecurrentStates& recurrent() const override { return states; }

  RecurrentStates states;  // states [H, T, dv, dk] = W after steps[t]; retrieval_error [H, T]
  Tensor beta;             // [H, L] write strength of every token
  bool causal = true;
  std::string beta_mode;   // "constant" or "gate"
  std::int64_t chunk = 0;  // chunk size of the chunkwise form (0: recurrent form)
};

}  // namespace attnlab
