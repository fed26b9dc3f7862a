#include "layers/gss.h"

#include <cmath>
#include <complex>
#include <nlohmann/json.hpp>
#include <numbers>

#include "analysis/convolution.h"
#include "core/error.h"
#include "core/rng.h"
#include "layers/feed_forward.h"
#include "layers/weight_table.h"

namespace attnlab {
namespace {

using Complex = std::complex<double>;

// e^w − 1 without the cancellation of exp(w) − 1 for small |w| (small Δ·Λ).
Complex expm1(Complex w) {
  const double a = w.real(), b = w.imag();
  const double half_sin = std::sin(0.5 * b);
  return {std::expm1(a) * std::cos(b) - 2.0 * half_sin * half_sin, std::exp(a) * std::sin(b)};
}

Tensor vector_tensor(const Eigen::Ref<const Eigen::VectorXd>& v) {
  Tensor t({static_cast<std::int64_t>(v.size())});
  for (Eigen::Index i = 0; i < v.size(); ++i) t.data()[i] = static_cast<float>(v(i));
  return t;
}

}  // namespace

nlohmann::json GssTrace::to_json() const {
  nlohmann::json j;
  j["kind"] = "gss";
  j["kernel"] = tensor_to_json(kernel);
  j["lambda_re"] = tensor_to_json(lambda_re);
  j["lambda_im"] = tensor_to_json(lambda_im);
  j["gate"] = tensor_to_json(gate);
  j["dt"] = tensor_to_json(dt);
  j["kernel_kind"] = kernel_kind;
  return j;
}

const std::vector<ParamSpec>& GssLayer::schema() {
  static const std::vector<ParamSpec> specs{
      ParamSpec::integer("state_dim", "States", 64, 1, 512, "N: complex states of the diagonal state space"),
      ParamSpec::integer("ssm_dim", "State-space channels", 256, 1, 4096, "H: width of the branch that runs the state space"),
      ParamSpec::integer("expansion", "Gate expansion", 4, 1, 8, "Width of the gating branch as a multiple of d_model"),
      ParamSpec::choice("kernel", "DSS kernel", "exp", {"exp", "softmax"},
                        "DSS-exp: (e^{ΔΛ} − 1)/Λ · e^{lΔΛ}; DSS-softmax: e^{lΔΛ} normalised over the l < L"),
      ParamSpec::real("dt_min", "Smallest initial Δ", 1e-3, 1e-5, 1.0, "Lower end of the log-uniform initial step sizes"),
      ParamSpec::real("dt_max", "Largest initial Δ", 1e-1, 1e-5, 1.0, "Upper end of the log-uniform initial step sizes"),
  };
  return specs;
}

GssLayer GssLayer::seeded(std::int64_t d_model, std::int64_t /*heads*/, std::int64_t /*d_ff*/, const Params& params,
                          std::uint64_t seed) {
  if (d_model < 1) throw ParamError("GSS needs d_model >= 1, got " + std::to_string(d_model));
  const double dt_min = params.get_float("dt_min"), dt_max = params.get_float("dt_max");
  if (dt_min > dt_max) {
    throw ParamError("dt_min=" + std::to_string(dt_min) + ": must not exceed dt_max=" + std::to_string(dt_max));
  }
  GssLayer g;
  g.d_model = d_model;
  g.state_dim = params.get_int("state_dim");
  g.ssm_dim = params.get_int("ssm_dim");
  g.expansion = params.get_int("expansion");
  g.kernel_kind = params.get_choice("kernel") == "softmax" ? DssKernel::Softmax : DssKernel::Exp;
  const std::int64_t D = d_model, N = g.state_dim, H = g.ssm_dim, G = g.expansion * d_model;
  g.norm = LayerNorm::identity(D);
  g.w1 = Linear::seeded(D, G, Rng::derive(seed, "w1"));
  g.w2 = Linear::seeded(D, H, Rng::derive(seed, "w2"));
  g.w3 = Linear::seeded(H, G, Rng::derive(seed, "w3"));
  g.w4 = Linear::seeded(G, D, Rng::derive(seed, "w4"));
  g.lambda_re = RowVector::Constant(N, std::log(0.5f));
  g.lambda_im.resize(N);
  for (std::int64_t n = 0; n < N; ++n) g.lambda_im(n) = static_cast<float>(std::numbers::pi * static_cast<double>(n));
  g.w_re.resize(H, N);
  g.w_im.resize(H, N);
  const float half = static_cast<float>(std::numbers::sqrt2 / 2.0);
  Rng::fill_normal_chunked(g.w_re.data(), g.w_re.size(), Rng::derive(seed, "dss.w_re"), 0.0f, half);
  Rng::fill_normal_chunked(g.w_im.data(), g.w_im.size(), Rng::derive(seed, "dss.w_im"), 0.0f, half);
  g.log_dt.resize(H);
  Rng dt_rng(Rng::derive(seed, "dss.log_dt"));
  for (std::int64_t h = 0; h < H; ++h)
    g.log_dt(h) = static_cast<float>(dt_rng.uniform(std::log(dt_min), std::log(dt_max)));
  g.d.resize(H);
  Rng::fill_normal_chunked(g.d.data(), g.d.size(), Rng::derive(seed, "dss.d"), 0.0f, 1.0f);
  return g;
}

void GssLayer::visit_weights(const std::string& prefix, WeightTable& table) {
  const std::int64_t D = d_model, N = state_dim, H = ssm_dim, G = expansion * d_model;
  table.norm(prefix + "norm", norm, D);
  table.linear(prefix + "w1", w1, D, G);
  table.linear(prefix + "w2", w2, D, H);
  table.linear(prefix + "w3", w3, H, G);
  table.linear(prefix + "w4", w4, G, D);
  table.vector(prefix + "dss.lambda_re", lambda_re, N);
  table.vector(prefix + "dss.lambda_im", lambda_im, N);
  table.matrix(prefix + "dss.w_re", w_re, H, N);
  table.matrix(prefix + "dss.w_im", w_im, H, N);
  table.vector(prefix + "dss.log_dt", log_dt, H);
  table.vector(prefix + "dss.d", d, H);
}

void GssLayer::kernel(std::int64_t channel, std::int64_t length, double* lags, std::int64_t count) const {
  const std::int64_t N = state_dim;
  const double dt = std::exp(static_cast<double>(log_dt(channel)));
  // K_l = Re Σ_n c_n z_n^l: split re/im arrays so the loop over n vectorises.
  std::vector<double> zr(static_cast<std::size_t>(N)), zi(zr.size()), cr(zr.size()), ci(zr.size());
  for (std::int64_t n = 0; n < N; ++n) {
    const Complex lambda(-std::exp(static_cast<double>(lambda_re(n))), static_cast<double>(lambda_im(n)));
    const Complex w(w_re(channel, n), w_im(channel, n));
    const Complex step = dt * lambda;
    const Complex z = std::exp(step);
    Complex c = w * expm1(step) / lambda;
    if (kernel_kind == DssKernel::Softmax) c /= expm1(static_cast<double>(length) * step);
    const auto i = static_cast<std::size_t>(n);
    zr[i] = z.real();
    zi[i] = z.imag();
    cr[i] = c.real();
    ci[i] = c.imag();
  }
  for (std::int64_t l = 0; l < count; ++l) {
    double sum = 0.0;
    for (std::size_t i = 0; i < zr.size(); ++i) {
      sum += cr[i];
      const double re = cr[i] * zr[i] - ci[i] * zi[i];
      ci[i] = cr[i] * zi[i] + ci[i] * zr[i];
      cr[i] = re;
    }
    lags[l] = sum;
  }
}

Eigen::MatrixXd GssLayer::kernels(std::int64_t length, std::int64_t lags) const {
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> k(ssm_dim, lags);
  for (std::int64_t h = 0; h < ssm_dim; ++h) kernel(h, length, k.row(h).data(), lags);
  return k;
}

RowMatrix GssLayer::dss(const RowMatrix& v, const CancelToken* cancel) const {
  if (v.cols() != ssm_dim) {
    throw ShapeError("DSS expects " + std::to_string(ssm_dim) + " channels, got [" + std::to_string(v.rows()) + ", " +
                     std::to_string(v.cols()) + "]");
  }
  const KernelFill fill = [this](std::int64_t c, std::int64_t length, double* lags) { kernel(c, length, lags, length); };
  RowMatrix y = causal_fft_convolution(v, fill, cancel);
  y.array() += v.array().rowwise() * d.array();
  return y;
}

RowMatrix GssLayer::forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  const std::int64_t L = x.rows();
  if (x.cols() != d_model) {
    throw ShapeError("GSS layer expects [L, " + std::to_string(d_model) + "], got [" + std::to_string(L) + ", " +
                     std::to_string(x.cols()) + "]");
  }
  const std::vector<std::uint8_t>* padding = options.key_padding;
  if (padding && static_cast<std::int64_t>(padding->size()) != L) {
    throw ShapeError("key padding has " + std::to_string(padding->size()) + " entries for " + std::to_string(L) + " tokens");
  }
  if (L == 0) return x;

  const RowMatrix xn = norm.forward(x);
  RowMatrix u = w1.forward(xn);  // [L, e·D]
  gelu_inplace(u);
  RowMatrix v = w2.forward(xn);  // [L, H]
  gelu_inplace(v);
  if (padding) {
    for (std::int64_t i = 0; i < L; ++i)
      if ((*padding)[static_cast<std::size_t>(i)]) v.row(i).setZero();
  }
  check_cancelled(options.cancel);
  const RowMatrix y = dss(v, options.cancel);  // [L, H]
  check_cancelled(options.cancel);
  RowMatrix gated = w3.forward(y);  // uc [L, e·D]
  gated.array() *= u.array();
  RowMatrix out = w4.forward(gated);
  out += x;

  if (trace) {
    auto t = std::make_shared<GssTrace>();
    const std::int64_t lags = std::min<std::int64_t>(L, 256);
    const Eigen::MatrixXd k = kernels(L, lags);
    t->kernel = Tensor({ssm_dim, lags});
    for (std::int64_t h = 0; h < ssm_dim; ++h)
      for (std::int64_t l = 0; l < lags; ++l) t->kernel.at(h, l) = static_cast<float>(k(h, l));
    t->lambda_re = vector_tensor((-lambda_re.cast<double>().array().exp()).matrix().transpose());
    t->lambda_im = vector_tensor(lambda_im.cast<double>().transpose());
    t->gate = vector_tensor(u.cwiseAbs().rowwise().mean().cast<double>());
    t->dt = vector_tensor(log_dt.cast<double>().array().exp().matrix().transpose());
    t->kernel_kind = kernel_kind == DssKernel::Softmax ? "softmax" : "exp";
    trace->layer_extras.push_back(std::move(t));
  }
  return out;
}

}  // namespace attnlab
