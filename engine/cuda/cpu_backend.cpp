// The CPU compute backend (cuda/backend.h): Eigen maps over plain host arrays and the engine's
// own layer code, so that a model run through the backend interface can be checked against the
// Encoder on the CPU, and every CUDA operation against its CPU twin here.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/device.h"
#include "core/error.h"
#include "cuda/backend.h"
#include "layers/embedding.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/masked_softmax.h"

namespace attnlab::gpu {
namespace {

using Map = Eigen::Map<RowMatrix>;
using ConstMap = Eigen::Map<const RowMatrix>;

// Banded causal sliding-window attention by its definition (the CPU twin of the block-sparse
// kernel on sliding_window_block_lists): a naive loop over heads, queries and visible keys.
void sliding_window_attention(const float* q, const float* k, const float* v, float* out, const AttentionCall& c) {
  const std::int64_t H = c.heads, L = c.length, d = c.dim, W = c.window;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t h = 0; h < H; ++h) {
    for (std::int64_t i = 0; i < L; ++i) {
      const std::int64_t first = std::max<std::int64_t>(0, (i / W - 1) * W);
      const float* qi = q + (h * L + i) * d;
      std::vector<float> scores(static_cast<std::size_t>(i - first + 1));
      float top = -std::numeric_limits<float>::infinity();
      for (std::int64_t j = first; j <= i; ++j) {
        const float* kj = k + (h * L + j) * d;
        float s = 0;
        for (std::int64_t t = 0; t < d; ++t) s += qi[t] * kj[t];
        s *= scale;
        scores[static_cast<std::size_t>(j - first)] = s;
        top = std::max(top, s);
      }
      float total = 0;
      for (float& s : scores) total += (s = std::exp(s - top));
      float* oi = out + (h * L + i) * d;
      std::fill(oi, oi + d, 0.0f);
      for (std::int64_t j = first; j <= i; ++j) {
        const float w = scores[static_cast<std::size_t>(j - first)] / total;
        const float* vj = v + (h * L + j) * d;
        for (std::int64_t t = 0; t < d; ++t) oi[t] += w * vj[t];
      }
    }
  }
}

class CpuBackend final : public ComputeBackend {
 public:
  std::string describe() const override { return "CPU (Eigen, " + std::to_string(cpu_threads()) + " threads)"; }
  DeviceKind kind() const override { return DeviceKind::Cpu; }

  DeviceArray alloc(std::int64_t n) override {
    checked_element_count({n});
    const auto bytes = static_cast<std::int64_t>(sizeof(float)) * n;
    const std::int64_t now = counters_->in_use.fetch_add(bytes) + bytes;
    std::int64_t peak = counters_->peak.load();
    while (now > peak && !counters_->peak.compare_exchange_weak(peak, now)) {
    }
    std::shared_ptr<Counters> counters = counters_;
    return DeviceArray(std::shared_ptr<float>(new float[static_cast<std::size_t>(std::max<std::int64_t>(n, 1))],
                                              [counters, bytes](float* p) {
                                                delete[] p;
                                                counters->in_use.fetch_sub(bytes);
                                              }),
                       n);
  }
  void do_upload(const float* host, std::int64_t n, DeviceArray& dst) override {
    std::copy(host, host + n, dst.data());
  }
  void do_download(const DeviceArray& src, std::int64_t n, float* host) override {
    std::copy(src.data(), src.data() + n, host);
  }

  void do_linear(const DeviceArray& x, const DeviceArray& w, const DeviceArray& bias, DeviceArray& y, std::int64_t rows,
                 std::int64_t in, std::int64_t out) override {
    Map(y.data(), rows, out).noalias() = ConstMap(x.data(), rows, in) * ConstMap(w.data(), in, out);
    Map(y.data(), rows, out).rowwise() += Eigen::Map<const RowVector>(bias.data(), out);
  }
  void do_layer_norm(const DeviceArray& x, const DeviceArray& gamma, const DeviceArray& beta, float eps, DeviceArray& y,
                     std::int64_t rows, std::int64_t cols) override {
    LayerNorm norm{Eigen::Map<const RowVector>(gamma.data(), cols), Eigen::Map<const RowVector>(beta.data(), cols),
                   eps};
    Map(y.data(), rows, cols) = norm.forward(ConstMap(x.data(), rows, cols));
  }
  void do_gelu(DeviceArray& x, std::int64_t n) override {
    RowMatrix m = ConstMap(x.data(), 1, n);
    gelu_inplace(m);
    std::copy(m.data(), m.data() + n, x.data());
  }
  void do_axpby(DeviceArray& y, float a, const DeviceArray& x, float b, std::int64_t n) override {
    Eigen::Map<Eigen::ArrayXf> ya(y.data(), n);
    const Eigen::Map<const Eigen::ArrayXf> xa(x.data(), n);
    if (a == 0.0f)
      ya = b * xa;
    else
      ya = a * ya + b * xa;
  }
  void do_embed(const std::vector<std::int32_t>& ids, const DeviceArray& table, std::int64_t d_model,
                DeviceArray& out) override {
    const auto L = static_cast<std::int64_t>(ids.size());
    TokenEmbedding e{ConstMap(table.data(), table.size() / d_model, d_model)};
    Map(out.data(), L, d_model) = e.forward(ids);
  }
  void do_fill(DeviceArray& y, float value, std::int64_t n) override { std::fill(y.data(), y.data() + n, value); }
  void do_split_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length,
                      std::int64_t heads, std::int64_t dim) override {
    const std::int64_t n = length * heads * dim;
    for (std::int64_t b = 0; b < batch; ++b)
      for (std::int64_t h = 0; h < heads; ++h)
        Map(out.data() + b * n + h * length * dim, length, dim) =
            ConstMap(x.data() + b * n, length, heads * dim).middleCols(h * dim, dim);
  }
  void do_merge_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length,
                      std::int64_t heads, std::int64_t dim) override {
    const std::int64_t n = length * heads * dim;
    for (std::int64_t b = 0; b < batch; ++b)
      for (std::int64_t h = 0; h < heads; ++h)
        Map(out.data() + b * n, length, heads * dim).middleCols(h * dim, dim) =
            ConstMap(x.data() + b * n + h * length * dim, length, dim);
  }
  void do_copy_rows(const DeviceArray& src, std::int64_t batch, std::int64_t src_rows, std::int64_t row0,
                    std::int64_t rows, std::int64_t width, DeviceArray& dst) override {
    for (std::int64_t b = 0; b < batch; ++b)
      std::copy_n(src.data() + (b * src_rows + row0) * width, rows * width, dst.data() + b * rows * width);
  }
  void do_cross_attention(const DeviceArray& q, const DeviceArray& k, const DeviceArray& v, DeviceArray& out,
                          std::int64_t batch, std::int64_t lq, std::int64_t lk, std::int64_t dim) override {
    const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
#pragma omp parallel for schedule(static)
    for (std::int64_t b = 0; b < batch; ++b) {
      RowMatrix p =
          (ConstMap(q.data() + b * lq * dim, lq, dim) * ConstMap(k.data() + b * lk * dim, lk, dim).transpose()) * scale;
      for (std::int64_t r = 0; r < lq; ++r) masked_softmax(p.row(r), lk, nullptr);
      Map(out.data() + b * lq * dim, lq, dim).noalias() = p * ConstMap(v.data() + b * lk * dim, lk, dim);
    }
  }
  void do_gate_state(DeviceArray& state, const DeviceArray& forget_logits, const DeviceArray* input_logits,
                     const DeviceArray& z, std::int64_t n) override {
    const auto sigmoid = [](float x) { return 1.0f / (1.0f + std::exp(-x)); };
    for (std::int64_t e = 0; e < n; ++e) {
      const float f = sigmoid(forget_logits.data()[e] + 1.0f);
      const float i = input_logits ? sigmoid(input_logits->data()[e] - 1.0f) : 1.0f - f;
      state.data()[e] = f * state.data()[e] + i * z.data()[e];
    }
  }
  std::string unsupported(const AttentionCall& call) const override {
    if (call.window <= 0 && (!call.variant || !call.params)) return "an attention call needs a variant and its params";
    return {};
  }
  void do_attention(const AttentionCall& call, const DeviceArray& q, const DeviceArray& k, const DeviceArray& v,
                    DeviceArray& out) override {
    const std::int64_t n = call.heads * call.length * call.dim;
    if (call.window > 0) {
      sliding_window_attention(q.data(), k.data(), v.data(), out.data(), call);
      return;
    }
    const Shape shape{call.heads, call.length, call.dim};
    const Tensor tq = Tensor::from_data(shape, q.data(), static_cast<std::size_t>(n));
    const Tensor tk = Tensor::from_data(shape, k.data(), static_cast<std::size_t>(n));
    const Tensor tv = Tensor::from_data(shape, v.data(), static_cast<std::size_t>(n));
    const AttentionInput input{tq, tk, tv, call.causal, nullptr, call.params, call.seed, nullptr};
    const Tensor o = run_attention(*call.variant, input, nullptr);
    std::copy(o.data(), o.data() + n, out.data());
  }

  void start_timer() override { start_ = std::chrono::steady_clock::now(); }
  double stop_timer() override {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }
  std::int64_t bytes_in_use() const override { return counters_->in_use.load(); }
  std::int64_t peak_bytes() const override { return counters_->peak.load(); }
  void reset_peak() override { counters_->peak.store(counters_->in_use.load()); }

 private:
  struct Counters {
    std::atomic<std::int64_t> in_use{0};
    std::atomic<std::int64_t> peak{0};
  };
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

std::unique_ptr<ComputeBackend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

std::unique_ptr<ComputeBackend> make_backend(DeviceKind device, const BackendOptions& options) {
  if (device == DeviceKind::Cuda) return make_cuda_backend(options);
  return make_cpu_backend();
}

WindowBlockLists sliding_window_block_lists(std::int64_t heads, std::int64_t length, std::int64_t window) {
  if (heads < 1 || length < 1 || window < 1)
    throw ParamError("sliding window lists need heads, length and window >= 1");
  const std::int64_t nqb = (length + kSparseBlock - 1) / kSparseBlock;
  WindowBlockLists lists;
  lists.offsets.reserve(static_cast<std::size_t>(heads * nqb + 1));
  lists.offsets.push_back(0);
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t qb = 0; qb < nqb; ++qb) {
      const std::int64_t w = qb * kSparseBlock / window;
      const std::int64_t first = std::max<std::int64_t>(0, (w - 1) * window) / kSparseBlock;
      for (std::int64_t b = first; b <= qb; ++b) lists.blocks.push_back(static_cast<std::int32_t>(b));
      lists.offsets.push_back(static_cast<std::int32_t>(lists.blocks.size()));
    }
  }
  return lists;
}

}  // namespace attnlab::gpu
