// Learned spectral kernels ("spectral"): the typed trace extras. The equations and choices are
// in spectral.cpp; this header lists what a view or test can read.
//
// Shapes (H heads, Lq queries, Lk keys, d head dim, M = n_features frequency samples,
// F = feature length (M for kind "prf", 2M for "rks"), C = components, K = kCurvePoints):
//   omega            [H, M, d]   the frequency samples ω_m = μ_{c(m)} + spread·ε_m of each head
//   component        [M]         c(m) = m mod C: the mixture component feature m was drawn from
//   component_weight [C]         n_c / M: each component's share of the features (its mixture weight)
//   means            [H, C, d]   μ_c, ‖μ_c‖ = mean_scale, seeded uniform directions
//   projection_axes  [H, 2, d]   the two principal axes of the head's ω samples (unit vectors)
//   omega_2d         [H, M, 2]   ω projected on those axes (centred on the samples' mean)
//   means_2d         [H, C, 2]   μ_c projected the same way
//   query_features   [H, Lq, F]  φ(q_i), the exact feature values of the reference's formula
//   key_features     [H, Lk, F]  φ(k_j)  (padded keys are stored but never summed)
//   curve_delta      [K]         distances ‖Δ‖ in the scaled input space x' = x·d^(-1/4)
//   curve_directions [kCurveDirections, d]  the seeded unit directions u the curves average over
//   kernel_closed    [H, K]      the implied kernel at those distances, closed form (see below)
//   kernel_estimate  [H, K]      the same from the drawn ω (what the features estimate)
//   clamped          [H, Lq]     1 where kind "rks" clamped the row's normaliser (else 0)
//
// The kernel curve, averaged over kCurveDirections seeded unit directions u, at Δ = r·u:
//   rks  k(Δ) = E cos(ωᵀΔ)      = Σ_c w_c cos(μ_cᵀΔ) exp(-spread²‖Δ‖²/2)
//   prf  k(0, Δ) = E φ(0)·φ(Δ)   = Σ_c w_c exp(μ_cᵀΔ + (spread²/2 - 1)‖Δ‖²)
// (the positive-feature kernel is shift-invariant only for μ = 0, spread = 1, where both are
// exp(-‖Δ‖²/2); the curve shows it between the origin and a point at distance r).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"

namespace attnlab {

class SpectralExtras final : public TraceExtras {
 public:
  static constexpr int kCurvePoints = 64;
  static constexpr int kCurveDirections = 8;

  struct Data {
    std::int64_t heads = 0, queries = 0, keys = 0, head_dim = 0;
    std::int64_t samples = 0;        // M
    std::int64_t feature_dim = 0;    // F
    std::int64_t components = 0;     // C
    std::string kind = "prf";        // "prf" or "rks"
    double mean_scale = 0.0;
    double spread = 1.0;
    double input_scale = 1.0;        // d^(-1/4)
    double rks_floor = 0.0;          // the normaliser clamp of kind "rks", per visible key
    bool causal = false;
    Tensor omega;
    std::vector<int> component;
    std::vector<double> component_weight;
    Tensor means;
    Tensor projection_axes;
    Tensor omega_2d;
    Tensor means_2d;
    Tensor query_features;
    Tensor key_features;
    std::vector<double> curve_delta;
    Tensor curve_directions;
    std::vector<double> kernel_closed;    // [H * K]
    std::vector<double> kernel_estimate;  // [H * K]
    std::vector<std::uint8_t> clamped;    // [H * Lq]
  };

  explicit SpectralExtras(Data data) : data_(std::move(data)) {}

  std::string_view kind() const override { return "spectral"; }
  nlohmann::json to_json() const override;

  const Data& data() const { return data_; }
  double kernel_closed(std::int64_t head, int point) const {
    return data_.kernel_closed[static_cast<std::size_t>(head * kCurvePoints + point)];
  }
  double kernel_estimate(std::int64_t head, int point) const {
    return data_.kernel_estimate[static_cast<std::size_t>(head * kCurvePoints + point)];
  }

 private:
  Data data_;
};

}  // namespace attnlab
