// Kernelized attention with relative positional encoding, Toeplitz products by FFT: the Toeplitz
// kernel, its products (direct and by FFT, public so tests and other variants can use them), and
// the typed trace extras of "rpe_fft" (see rpe_fft.cpp for the equations).
//
// Toeplitz convention: for Lq queries and Lk keys, C_ij = c_{j−i} = exp(b(j − i)) with the offset
// δ = j − i ∈ [−(Lq − 1), Lk − 1]; b = −∞ (c = 0) hides a pair, as causal masking does for δ > 0.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "attention/attention.h"
#include "attention/feature_maps.h"

namespace attnlab {

struct ToeplitzKernel {
  std::int64_t queries = 0, keys = 0;
  std::vector<double> bias;  // [Lq + Lk − 1]: b(δ) at index δ + Lq − 1; −inf for a hidden offset

  std::int64_t offsets() const { return queries + keys - 1; }
  double log_coefficient(std::int64_t delta) const { return bias[static_cast<std::size_t>(delta + queries - 1)]; }
  double coefficient(std::int64_t delta) const;  // c_δ = exp(b(δ))
};

// b(δ) = −decay·|δ|; with causal, b(δ) = −inf for δ > 0. Throws ParamError for decay < 0.
ToeplitzKernel decay_toeplitz_kernel(std::int64_t queries, std::int64_t keys, double decay, bool causal);

// The circulant embedding size: the smallest power of two >= Lq + Lk − 1.
std::int64_t circulant_size(std::int64_t queries, std::int64_t keys);

// y = C·x for x [Lk, n] (one column per signal), y [Lq, n]. Direct: O(Lq·Lk·n). FFT: circulant
// embedding of size circulant_size(Lq, Lk), two real columns per complex transform, O(n·N log N).
// Throws ShapeError when x has not Lk rows.
Eigen::MatrixXd toeplitz_multiply_direct(const ToeplitzKernel& kernel, const Eigen::MatrixXd& x);
Eigen::MatrixXd toeplitz_multiply_fft(const ToeplitzKernel& kernel, const Eigen::MatrixXd& x);

class RpeFftExtras final : public TraceExtras {
 public:
  struct Data {
    bool causal = false;
    double decay = 0.1;
    std::int64_t fft_size = 0;  // N of the circulant embedding the fast path uses
    FavorTrace favor;           // the same features performer draws for the same seed and settings
    Tensor offsets;             // [Lq + Lk − 1]  δ = j − i, from −(Lq − 1) to Lk − 1
    Tensor bias;                // [Lq + Lk − 1]  b(δ) = −decay·|δ| (−inf where causal hides δ > 0)
    Tensor coefficients;        // [Lq + Lk − 1]  c_δ = exp(b(δ))
    Tensor toeplitz;            // [Lq, Lk]       C_ij = c_{j−i}, the matrix multiplying the kernel
  };

  explicit RpeFftExtras(Data data) : data_(std::move(data)) {}
  std::string_view kind() const override { return "rpe_fft"; }
  nlohmann::json to_json() const override;
  const Data& data() const { return data_; }

 private:
  Data data_;
};

}  // namespace attnlab
