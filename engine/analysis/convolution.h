// Per-channel convolutions of a [L, C] matrix with long kernels, by FFT in double precision.
// Used by the layers whose mixing along the sequence is a convolution: Mega's damped EMA
// (layers/mega.h) and the diagonal state space of GSS (layers/gss.h).
//
// Shapes: x [L, C] (rows are tokens, columns channels) -> y [L, C]. The kernel of channel c is
// asked for through a KernelFill, lags 0 .. L−1, in double. Outputs are rounded to float once, at
// the end; everything in between is double (see analysis/fft.h for why).
//
//   causal:     y(i, c) = Σ_{s ≤ i} k_c(i − s) · x(s, c)
//   two-sided:  y(i, c) = Σ_{s ≤ i} f_c(i − s) · x(s, c) + Σ_{s > i} b_c(s − i − 1) · x(s, c)
//
// Exactness. The causal form is *exactly* causal, not just up to rounding: y(i, ·) is computed from
// rows 0..i only, so changing a later row leaves it bit-identical. One FFT of the whole signal would
// spread the rounding of every input over every output; instead rows are cut into dyadic blocks.
// Inside blocks of 128 rows the sum is direct; every pair of sibling blocks (left of size B, right of
// size B) adds the left block's contribution to the right one by one FFT convolution of size 2B.
// Each (s, i) pair with s < i is counted at exactly one level. The two-sided form looks at every
// row anyway and is one circular convolution of size ≥ 2L − 1 (no wrap-around).
//
// Cost per channel: causal O(L log² L), two-sided O(L log L); memory O(L) per thread besides the
// [L, C] input and output. Channels run in parallel (OpenMP), two per complex transform (as the real
// and imaginary parts, separated again by conjugate symmetry).
#pragma once

#include <cstdint>
#include <functional>

#include "core/cancel.h"
#include "core/tensor.h"

namespace attnlab {

// Writes channel `channel`'s kernel at lags 0 .. length−1 into `lags` (length doubles). Called from
// several threads at once; may throw (the exception is carried out of the parallel region).
using KernelFill = std::function<void(std::int64_t channel, std::int64_t length, double* lags)>;

// The causal convolution above, x: [L, C] -> [L, C]. Throws CancelledError when `cancel` is set.
RowMatrix causal_fft_convolution(const RowMatrix& x, const KernelFill& kernel, const CancelToken* cancel = nullptr);

// The two-sided convolution above: `forward` holds f (lags ≥ 0), `backward` holds b over strictly
// later rows (b(0) multiplies row i + 1). x: [L, C] -> [L, C].
RowMatrix two_sided_fft_convolution(const RowMatrix& x, const KernelFill& forward, const KernelFill& backward,
                                    const CancelToken* cancel = nullptr);

}  // namespace attnlab
