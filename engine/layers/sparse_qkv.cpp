#include "layers/sparse_qkv.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "layers/weight_table.h"

namespace attnlab {
namespace {

RowMatrix normal_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, float stddev) {
  checked_element_count({rows, cols});  // refuse impossible sizes before allocating
  RowMatrix m(rows, cols);
  Rng::fill_normal_chunked(m.data(), m.size(), seed, 0.0f, stddev);
  return m;
}

SparseQkv::Conv seeded_conv(std::int64_t length_kernel, std::int64_t module_kernel, std::int64_t M, std::uint64_t seed) {
  const std::int64_t fan_in = length_kernel * module_kernel * M;
  return SparseQkv::Conv{module_kernel,
                         normal_matrix(fan_in, M, seed, 1.0f / std::sqrt(static_cast<float>(fan_in))),
                         RowVector::Zero(M)};
}

// out[l, s, :] = c + Σ_τ Σ_j u[l − τ, s + j − (J − 1)/2, :] · K[τ, j], zero outside; u, out: [L, S·M].
RowMatrix causal_module_conv(const RowMatrix& u, const SparseQkv::Conv& conv, std::int64_t S, std::int64_t T) {
  const std::int64_t L = u.rows(), D = u.cols(), M = D / S, J = conv.module_kernel, half = (J - 1) / 2;
  RowMatrix out(L, D);
  for (std::int64_t s = 0; s < S; ++s) out.middleCols(s * M, M).rowwise() = conv.bias;
  // u as [L·S, M]: one row per (token, module), so one product applies a tap to every module.
  const Eigen::Map<const RowMatrix> rows(u.data(), L * S, M);
  RowMatrix tap(L * S, M);
  const Eigen::Map<const RowMatrix> tap_by_token(tap.data(), L, D);
  for (std::int64_t tau = 0; tau < std::min(T, L); ++tau) {
    for (std::int64_t j = 0; j < J; ++j) {
      const std::int64_t offset = j - half;  // module s reads module s + offset
      const std::int64_t first = std::max<std::int64_t>(0, -offset), last = std::min(S, S - offset);
      if (first >= last) continue;
      tap.noalias() = rows * conv.kernel.middleRows((tau * J + j) * M, M);
      out.block(tau, first * M, L - tau, (last - first) * M) +=
          tap_by_token.block(0, (first + offset) * M, L - tau, (last - first) * M);
    }
  }
  return out;
}

}  // namespace

const std::vector<ParamSpec>& SparseQkv::schema() {
  static const std::vector<ParamSpec> specs{
      ParamSpec::integer("length_kernel", "Length kernel", 3, 1, 16,
                         "Causal convolution width over positions (q, k and v)"),
      ParamSpec::integer("module_kernel", "Module kernel", 3, 1, 15,
                         "Odd convolution width over neighbouring modules for q and k (v uses 1)"),
  };
  return specs;
}

SparseQkv SparseQkv::seeded(std::int64_t d_model, std::int64_t heads, std::int64_t /*d_ff*/, const Params& params,
                            std::uint64_t seed) {
  if (heads < 1 || d_model < 1 || d_model % heads != 0) {
    throw ParamError("sparse QKV needs d_model divisible by heads; got d_model=" + std::to_string(d_model) +
                     ", heads=" + std::to_string(heads));
  }
  SparseQkv p;
  p.d_model = d_model;
  p.modules = heads;
  p.length_kernel = params.get_int("length_kernel");
  p.module_kernel = params.get_int("module_kernel");
  if (p.module_kernel % 2 == 0) {
    throw ParamError("module_kernel=" + std::to_string(p.module_kernel) + " must be odd (1, 3, ..., 15)");
  }
  const std::int64_t M = p.module_size();
  p.gating = normal_matrix(heads, d_model, Rng::derive(seed, "gating"), 0.5f);  // trax's init
  p.projection = normal_matrix(d_model, M, Rng::derive(seed, "projection"), 1.0f / std::sqrt(static_cast<float>(d_model)));
  p.bias = RowVector::Zero(d_model);
  p.conv_q = seeded_conv(p.length_kernel, p.module_kernel, M, Rng::derive(seed, "conv_q"));
  p.conv_k = seeded_conv(p.length_kernel, p.module_kernel, M, Rng::derive(seed, "conv_k"));
  p.conv_v = seeded_conv(p.length_kernel, 1, M, Rng::derive(seed, "conv_v"));
  return p;
}

void SparseQkv::visit_weights(const std::string& prefix, WeightTable& table) {
  const std::int64_t M = module_size();
  table.matrix(prefix + "gating", gating, modules, d_model);
  table.matrix(prefix + "projection", projection, d_model, M);
  table.vector(prefix + "bias", bias, d_model);
  const auto conv = [&](const std::string& name, Conv& c) {
    table.matrix(prefix + name + ".kernel", c.kernel, length_kernel * c.module_kernel * M, M);
    table.vector(prefix + name + ".bias", c.bias, M);
  };
  conv("conv_q", conv_q);
  conv("conv_k", conv_k);
  conv("conv_v", conv_v);
}

RowMatrix SparseQkv::multiplicative(const RowMatrix& x) const {
  if (x.cols() != d_model) {
    throw ShapeError("sparse QKV expects [L, " + std::to_string(d_model) + "] input, got [" + std::to_string(x.rows()) +
                     ", " + std::to_string(x.cols()) + "]");
  }
  // x·diag(G_s)·E = x·(G_sᵀ ⊙ E): the effective [D, D] kernel, one [D, M] column block per module.
  const std::int64_t M = module_size();
  RowMatrix kernel(d_model, d_model);
  for (std::int64_t s = 0; s < modules; ++s) {
    kernel.middleCols(s * M, M) = gating.row(s).transpose().asDiagonal() * projection;
  }
  RowMatrix u(x.rows(), d_model);
  u.noalias() = x * kernel;
  u.rowwise() += bias;
  return u;
}

SparseQkv::Projections SparseQkv::project(const RowMatrix& x) const {
  const RowMatrix u = multiplicative(x);
  return Projections{causal_module_conv(u, conv_q, modules, length_kernel),
                     causal_module_conv(u, conv_k, modules, length_kernel),
                     causal_module_conv(u, conv_v, modules, length_kernel)};
}

}  // namespace attnlab
