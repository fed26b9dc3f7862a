// The CUDA compute backend (cuda/cuda_backend.cpp) operation by operation against the CPU backend,
// then whole models on it against the CPU Encoder (the cases of device_model_cases.h, longer).
// Without a GPU the numeric cases skip; the CUDA backend must then refuse with the reason.
#include <QTest>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/rng.h"
#include "device_model_cases.h"
#include "test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

std::vector<float> random_floats(std::int64_t n, std::uint64_t seed) {
  const Tensor t = random_tensor({n}, seed);
  return std::vector<float>(t.data(), t.data() + n);
}

gpu::DeviceArray on(gpu::ComputeBackend& b, const std::vector<float>& values) {
  gpu::DeviceArray a = b.alloc(static_cast<std::int64_t>(values.size()));
  b.upload(values.data(), static_cast<std::int64_t>(values.size()), a);
  return a;
}

std::vector<float> from(gpu::ComputeBackend& b, const gpu::DeviceArray& a, std::int64_t n) {
  std::vector<float> values(static_cast<std::size_t>(n));
  b.download(a, n, values.data());
  return values;
}

double relative(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 1e-30;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    worst = std::max(worst, static_cast<double>(std::abs(got[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::abs(want[i])));
  }
  return worst / scale;
}

}  // namespace

class TestDeviceModelGpu : public QObject {
  Q_OBJECT

  bool have_gpu_ = false;
  std::string why_not_;
  std::unique_ptr<gpu::ComputeBackend> cpu_, cuda_;

#define REQUIRE_GPU() \
  if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str())

 private slots:
  void initTestCase() {
    have_gpu_ = gpu::gpu_available(&why_not_);
    cpu_ = gpu::make_cpu_backend();
    if (have_gpu_) cuda_ = gpu::make_cuda_backend();
  }

  void without_a_gpu_the_backend_says_why() {
    if (have_gpu_) QSKIP("a GPU is present");
    const std::string m = error_message<DeviceError>([] { gpu::make_cuda_backend(); });
    QVERIFY2(contains(m, "no GPU to run on"), m.c_str());
  }

  void linear_layer_norm_gelu_axpby_match_the_cpu() {
    REQUIRE_GPU();
    const std::int64_t rows = 300, in = 96, out = 160;
    const auto x = random_floats(rows * in, 1), w = random_floats(in * out, 2), bias = random_floats(out, 3);
    std::vector<float> results[2];
    gpu::ComputeBackend* backends[2] = {cpu_.get(), cuda_.get()};
    for (int i = 0; i < 2; ++i) {
      gpu::ComputeBackend& b = *backends[i];
      gpu::DeviceArray y = b.alloc(rows * out), n = b.alloc(rows * in);
      b.linear(on(b, x), on(b, w), on(b, bias), y, rows, in, out);
      b.gelu(y, rows * out);
      b.layer_norm(on(b, x), on(b, random_floats(in, 4)), on(b, random_floats(in, 5)), 1e-5f, n, rows, in);
      gpu::DeviceArray garbage =
          on(b, std::vector<float>(static_cast<std::size_t>(rows * in), std::numeric_limits<float>::quiet_NaN()));
      b.axpby(garbage, 0.0f, n, 2.0f, rows * in);  // a = 0 must not read the NaNs
      b.axpby(garbage, 0.5f, on(b, x), -1.0f, rows * in);
      results[i] = from(b, y, rows * out);
      const auto normed = from(b, garbage, rows * in);
      results[i].insert(results[i].end(), normed.begin(), normed.end());
    }
    const double e = relative(results[1], results[0]);
    QVERIFY2(e < 1e-5, std::to_string(e).c_str());
  }

  void embedding_and_head_layout_match_the_cpu() {
    REQUIRE_GPU();
    const std::int64_t vocab = 50, D = 96, L = 130, H = 3;
    const auto table = random_floats(vocab * D, 6);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(L));
    for (std::int64_t p = 0; p < L; ++p) ids[static_cast<std::size_t>(p)] = static_cast<std::int32_t>((p * 7) % vocab);
    std::vector<float> results[2];
    gpu::ComputeBackend* backends[2] = {cpu_.get(), cuda_.get()};
    for (int i = 0; i < 2; ++i) {
      gpu::ComputeBackend& b = *backends[i];
      gpu::DeviceArray e = b.alloc(L * D), split = b.alloc(L * D), merged = b.alloc(L * D);
      b.embed(ids, on(b, table), D, e);
      b.split_heads(e, split, 1, L, H, D / H);
      results[i] = from(b, split, L * D);
      b.merge_heads(split, merged, 1, L, H, D / H);
      const auto back = from(b, merged, L * D);
      QCOMPARE(back, from(b, e, L * D));  // a round trip is exact
    }
    const double e = relative(results[1], results[0]);
    QVERIFY2(e < 1e-6, std::to_string(e).c_str());
  }

  void sliding_window_matches_the_cpu_twin() {
    REQUIRE_GPU();
    for (const std::int64_t W : {64, 192}) {
      gpu::AttentionCall call;
      call.window = W;
      call.heads = 2;
      call.length = 700;
      call.dim = 64;
      const std::int64_t n = call.heads * call.length * call.dim;
      const auto q = random_floats(n, 7), k = random_floats(n, 8), v = random_floats(n, 9);
      std::vector<float> results[2];
      gpu::ComputeBackend* backends[2] = {cpu_.get(), cuda_.get()};
      for (int i = 0; i < 2; ++i) {
        gpu::ComputeBackend& b = *backends[i];
        gpu::DeviceArray out = b.alloc(n);
        b.attention(call, on(b, q), on(b, k), on(b, v), out);
        results[i] = from(b, out, n);
      }
      const double e = relative(results[1], results[0]);
      QVERIFY2(e < 1e-5, ("W " + std::to_string(W) + ": " + std::to_string(e)).c_str());
    }
  }

  void cuda_refuses_what_it_cannot_run() {
    REQUIRE_GPU();
    gpu::AttentionCall call;
    call.heads = 1;
    call.length = 100;
    call.dim = 64;
    call.window = 100;
    QVERIFY(contains(cuda_->unsupported(call), "multiple of 64"));
    call.window = 0;
    const Params p(Registry::builtin().get("performer").spec().params);
    call.variant = &Registry::builtin().get("performer");
    call.params = &p;
    QVERIFY(contains(cuda_->unsupported(call), "no GPU kernel"));
    QVERIFY(cpu_->unsupported(call).empty());
  }

  void models_match_the_encoder_data() {
    QTest::addColumn<int>("index");
    const auto cases = device_model_cases(4);
    for (std::size_t i = 0; i < cases.size(); ++i) QTest::newRow(cases[i].label.c_str()) << static_cast<int>(i);
  }
  void models_match_the_encoder() {
    REQUIRE_GPU();
    QFETCH(int, index);
    const DeviceModelCase c = device_model_cases(4)[static_cast<std::size_t>(index)];
    const double error = device_vs_encoder(c, gpu::make_cuda_backend());
    QVERIFY2(error < 1e-4, (c.label + ": relative error " + std::to_string(error)).c_str());
  }

  void bf16_models_stay_close() {
    REQUIRE_GPU();
    gpu::BackendOptions fast;
    fast.precision = gpu::Precision::BF16;
    const DeviceModelCase c = device_model_cases(4).back();  // head dim 64: tensor cores
    const double error = device_vs_encoder(c, gpu::make_cuda_backend(fast));
    QVERIFY2(error < 5e-2, std::to_string(error).c_str());
  }

  void out_of_memory_is_a_resource_error() {
    REQUIRE_GPU();
    const std::string m = error_message<ResourceError>([&] { cuda_->alloc(std::int64_t{1} << 40); });
    QVERIFY2(contains(m, "out of memory"), m.c_str());
    QCOMPARE(cuda_->alloc(16).size(), std::int64_t{16});  // and the backend still works
  }
};

QTEST_APPLESS_MAIN(TestDeviceModelGpu)
#include "test_device_model_gpu.moc"
