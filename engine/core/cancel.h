// Cooperative cancellation and progress. Long computations call check() between steps (per
// layer, per head, per block); a newer request or the user's Cancel sets the flag and the
// computation ends with CancelledError at the next check point.
#pragma once

#include <atomic>

#include "core/error.h"

namespace attnlab {

class CancelToken {
 public:
  void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
  void reset() noexcept { cancelled_.store(false, std::memory_order_relaxed); }
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

// Throws CancelledError when `token` is set; a null token never cancels.
inline void check_cancelled(const CancelToken* token) {
  if (token && token->cancelled()) throw CancelledError();
}

}  // namespace attnlab
