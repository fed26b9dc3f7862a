// Feature maps of kernelized (linear-time) attention, shared by the variants that use them
// (linear, performer, rpe_fft; spectral and t2r may draw on them too).
//
// A feature map φ turns a row x ∈ R^d into a non-negative row φ(x) ∈ R^F so that attention
// weights become A_ij ∝ φ(q_i)·φ(k_j), computable in O(L·F·dv) (see attention/linear.h).
//
// elu + 1 (Katharopoulos et al. 2020):   φ(x) = elu(x) + 1, elementwise, F = d, no scaling.
//
// FAVOR+ positive random features (Choromanski et al. 2021):
//   W ∈ R^{m×d}, rows w_f ~ N(0, I_d) marginally; orthogonal: stacked d×d blocks whose rows are
//   orthonormal (Q of the QR decomposition of a Gaussian matrix, signs fixed so Q is Haar
//   distributed), rows then rescaled to the norms of independent Gaussian vectors (norms
//   "gaussian", the reference's scaling=0, which keeps w_f ~ N(0, I) exactly) or to √d (norms
//   "sqrt_d", scaling=1: lower variance, slightly biased); i.i.d.: Gaussian rows as drawn
//   (rescaled to √d under "sqrt_d"). m not a multiple of d: the last block keeps its first rows.
//   x' = s·x with s = d^{−1/4} (so that φ(q)·φ(k) estimates exp(q·k/√d)),
//   a_f(x) = w_f·x' − ‖x'‖²/2,   μ(x) = max_f a_f(x),
//   φ(x)_f = m^{−1/2} (exp(a_f(x) − μ(x)) + ε)          (stabilised; log scale μ(x) returned)
//   φ(x)_f = m^{−1/2} exp(a_f(x))                       (unstabilised, ε = 0: E[φ(q)·φ(k)] =
//                                                          exp(q·k/√d) exactly)
//   Stabilising divides a row by exp(μ(x)); a variant that needs the true scale (keys, whose
//   scales do not cancel) carries μ(x) as a per-row log scale — see attention/linear.h.
//   ε = 1e-4 by default (the reference's value); it keeps every feature strictly positive.
//
// Seeds: each head draws its own W from Rng::derive(seed, "favor/head<h>/draw<r>") (favor_seed),
// r = the `redraw` parameter, so performer and rpe_fft with the same seed and options use the
// same features, and a redraw never changes the session seed.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "attention/params.h"
#include "core/cancel.h"
#include "core/tensor.h"

namespace attnlab {

// ---- elu + 1 -------------------------------------------------------------------------------

// out = elu(x) + 1 elementwise (x > 0: x + 1; x <= 0: exp(x)); out may alias x.
void elu_plus_one(Eigen::Ref<const RowMatrix> x, Eigen::Ref<RowMatrix> out);
// The same for a tensor of any shape.
Tensor elu_plus_one(const Tensor& x);

// ---- FAVOR+ random feature matrices --------------------------------------------------------

enum class FeatureNorms { Gaussian, SqrtDim };

const char* feature_norms_name(FeatureNorms norms);       // "gaussian", "sqrt_d"
FeatureNorms parse_feature_norms(const std::string& name);  // throws ParamError naming the choices

struct RandomFeatureOptions {
  std::int64_t features = 64;  // m >= 1
  bool orthogonal = true;
  FeatureNorms norms = FeatureNorms::Gaussian;
};

// W [m, d] drawn from `seed` alone (same seed and options: same matrix, on every platform).
// Throws ParamError for m < 1 or d < 1.
Tensor draw_random_features(std::int64_t dim, std::uint64_t seed, const RandomFeatureOptions& options);

// The seed of head `head`'s feature matrix for the session's attention seed and a redraw index.
std::uint64_t favor_seed(std::uint64_t seed, std::int64_t head, std::int64_t redraw);

// ---- FAVOR+ positive features --------------------------------------------------------------

struct PositiveFeatureOptions {
  float eps = 1e-4f;         // added to every stabilised feature (ignored when !stabilize)
  bool stabilize = true;     // subtract the row maximum μ(x) and return it as the log scale
  float input_scale = 0.0f;  // s in x' = s·x; 0 means d^{−1/4}
};

// φ of every row of x [L, d] with W [m, d] into out [L, m]. log_scale (may be null) receives
// μ(x) per row when stabilising, else 0. The unstabilised map may overflow for large inputs; it
// exists for tests and analysis.
void positive_random_features(Eigen::Ref<const RowMatrix> x, const Tensor& w, const PositiveFeatureOptions& options,
                              Eigen::Ref<RowMatrix> out, float* log_scale);
// The same for a [L, d] tensor: returns [L, m]; log_scale (may be null) is set to [L].
Tensor positive_random_features(const Tensor& x, const Tensor& w, const PositiveFeatureOptions& options,
                                Tensor* log_scale = nullptr);

// ---- FAVOR+ for every head of an attention input (performer, rpe_fft) -------------------------

// The hyperparameters performer and rpe_fft share, with one schema so that the same values give
// the same features in both.
struct FavorSettings {
  RandomFeatureOptions random;
  std::int64_t redraw = 0;
  float eps = 1e-4f;
};
inline constexpr std::int64_t kMaxRandomFeatures = 4096;
inline constexpr std::int64_t kMaxRedraw = 1000000;
// n_features, orthogonal, feature_norms, redraw, feature_eps.
std::vector<ParamSpec> favor_param_specs();
FavorSettings favor_settings(const Params& params);

// Stabilised features of every head: W_h from favor_seed(seed, h, redraw).
struct FavorFeatures {
  std::vector<Tensor> matrices;  // H × [m, d]
  Tensor query;                  // [H, Lq, m]
  Tensor key;                    // [H, Lk, m]  each row on its own scale (log scale below)
  Tensor query_log_scale;        // [H, Lq]
  Tensor key_log_scale;          // [H, Lk]
};
// Heads and blocks of rows run in parallel; throws CancelledError between blocks.
FavorFeatures compute_favor_features(const Tensor& q, const Tensor& k, std::uint64_t seed, const FavorSettings& settings,
                                     const CancelToken* cancel);

// Bytes of the tensors compute_favor_features allocates: W [H, m, d], φ(q) [H, Lq, m], φ(k)
// [H, Lk, m] and both log scales (a cost model term; see Attention::workspace_bytes).
std::int64_t favor_features_bytes(std::int64_t heads, std::int64_t lq, std::int64_t lk, std::int64_t d, std::int64_t m);

// ---- what performer and rpe_fft keep in their traces ---------------------------------------
//
// With the per-row log scales, the unnormalised kernel the variant applied is
//   κ_ij = exp(query_log_scale_i + key_reference_h) · φ(q_i)·φ(k_j)
// (an estimate of exp(q_i·k_j/√d); exact in expectation when eps = 0).
struct FavorTrace {
  std::int64_t features = 0;  // m
  bool orthogonal = true;
  FeatureNorms norms = FeatureNorms::Gaussian;
  std::int64_t redraw = 0;
  double eps = 0.0;
  float input_scale = 0.0f;  // d^{−1/4}
  Tensor feature_matrix;   // [H, m, d]   W per head (applied to x' = input_scale·x)
  Tensor query_features;   // [H, Lq, m]  φ(q_i), stabilised by its own row maximum
  Tensor key_features;     // [H, Lk, m]  φ(k_j)·exp(μ(k_j) − key_reference_h): the keys on one
                           //             common scale per head; 0 rows for padded keys
  Tensor query_log_scale;  // [H, Lq]     μ(q_i)
  Tensor key_log_scale;    // [H, Lk]     μ(k_j)
  Tensor key_reference;    // [H]         max of μ(k_j) over visible keys (0 when none)

  nlohmann::json to_json() const;
};


// The trace record of `features` (moved in): keys brought to one scale per head (padded keys:
// 0 rows, left out of the reference).
FavorTrace make_favor_trace(FavorFeatures features, const FavorSettings& settings,
                            const std::vector<std::uint8_t>* key_padding);
// Bytes make_favor_trace allocates besides the features it takes over: W [H, m, d] and the key
// references [H].
std::int64_t favor_trace_bytes(std::int64_t heads, std::int64_t d, std::int64_t m);

}  // namespace attnlab
