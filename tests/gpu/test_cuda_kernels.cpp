// The CUDA kernels against their CPU twins and against float64 references computed here.
// Without a GPU (or in a build without CUDA) the numeric cases skip and only the error contract is
// checked: every GPU call must fail with a DeviceError naming the reason.
#include <QTest>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "attention/reformer_lsh.h"
#include "attention/registry.h"
#include "attention/routing.h"
#include "core/error.h"
#include "cuda/gpu_attention.h"
#include "test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

double relative_error(const Tensor& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < got.size(); ++i) {
    const double g = got.data()[i];
    if (!std::isfinite(g)) return INFINITY;
    num += (g - want[static_cast<std::size_t>(i)]) * (g - want[static_cast<std::size_t>(i)]);
    den += want[static_cast<std::size_t>(i)] * want[static_cast<std::size_t>(i)];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

double relative_error(const Tensor& got, const Tensor& want) {
  return relative_error(got, std::vector<double>(want.data(), want.data() + want.size()));
}

// Rounds every element to bf16 or fp16 and back, as the device does to its inputs.
float round_to(float x, gpu::Precision p) {
  if (p == gpu::Precision::BF16) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, 4);
    bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even (finite inputs)
    bits &= 0xffff0000u;
    float y;
    std::memcpy(&y, &bits, 4);
    return y;
  }
  if (p == gpu::Precision::F16) {
    // fp16: 10 mantissa bits; inputs here are N(0,1), far from the subnormal and overflow range.
    int e;
    const float m = std::frexp(x, &e);
    return std::ldexp(std::nearbyint(std::ldexp(m, 11)), e - 11);
  }
  return x;
}

Tensor rounded(const Tensor& t, gpu::Precision p) {
  Tensor r(t.shape());
  for (std::int64_t i = 0; i < t.size(); ++i) r.data()[i] = round_to(t.data()[i], p);
  return r;
}

// Exact attention in double: out [H, Lq, d] and the row log-sum-exp [H, Lq].
void reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, std::vector<double>& out,
                         std::vector<double>& lse) {
  const std::int64_t H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), d = q.dim(2), dv = v.dim(2);
  out.assign(static_cast<std::size_t>(H * Lq * dv), 0.0);
  lse.assign(static_cast<std::size_t>(H * Lq), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> s(static_cast<std::size_t>(Lk));
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < Lq; ++i) {
      double mx = -INFINITY;
      const std::int64_t visible = causal ? i + 1 : Lk;
      for (std::int64_t j = 0; j < visible; ++j) {
        double dot = 0;
        for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(q.at(h, i, c)) * k.at(h, j, c);
        s[static_cast<std::size_t>(j)] = dot * scale;
        mx = std::max(mx, s[static_cast<std::size_t>(j)]);
      }
      double sum = 0;
      for (std::int64_t j = 0; j < visible; ++j) sum += std::exp(s[static_cast<std::size_t>(j)] - mx);
      lse[static_cast<std::size_t>(h * Lq + i)] = mx + std::log(sum);
      for (std::int64_t j = 0; j < visible; ++j) {
        const double w = std::exp(s[static_cast<std::size_t>(j)] - mx) / sum;
        for (std::int64_t c = 0; c < dv; ++c) out[static_cast<std::size_t>((h * Lq + i) * dv + c)] += w * v.at(h, j, c);
      }
    }
}

}  // namespace

class TestCudaKernels : public QObject {
  Q_OBJECT

  bool have_gpu_ = false;
  std::string why_not_;

 private slots:
  void initTestCase() { have_gpu_ = gpu::gpu_available(&why_not_); }

  // Runs everywhere: without a GPU each entry point is a DeviceError naming why.
  void errors_without_gpu() {
    if (have_gpu_) QSKIP("a GPU is present; the error contract for missing GPUs cannot be exercised here");
    const Tensor t = random_tensor({1, 8, 32}, 1);
    const std::string m = error_message<DeviceError>([&] { gpu::softmax_attention(t, t, t, {}); });
    QVERIFY2(contains(m, "no GPU to run on"), m.c_str());
    QVERIFY(contains(error_message<DeviceError>([&] { gpu::linear_attention(t, t, t, true); }), "no GPU"));
    const Params bb = params_of("bigbird", {{"block_size", 64}});
    QVERIFY(contains(error_message<DeviceError>([&] { gpu::bigbird_attention(t, t, t, bb, 1, {}); }), "no GPU"));
    QVERIFY(contains(error_message<DeviceError>([&] {
                       gpu::reformer_lsh_attention(t, t, params_of("reformer_lsh", nlohmann::json::object()), 1, false);
                     }),
                     "no GPU"));
    QVERIFY(contains(error_message<DeviceError>([&] { gpu::spherical_kmeans(random_tensor({8, 4}, 1), random_tensor({2, 4}, 2), 3, 0.5f); }), "no GPU"));
    QVERIFY(!error_message<DeviceError>([&] { gpu::matmul(random_tensor({4, 4}, 2), random_tensor({4, 4}, 3)); })
                 .empty());
  }

  void shapes_are_checked() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    const Tensor q = random_tensor({2, 10, 64}, 1), k = random_tensor({2, 12, 64}, 2), v = random_tensor({2, 12, 64}, 3);
    gpu::SoftmaxAttentionOptions causal;
    causal.causal = true;
    QVERIFY(contains(error_message<ShapeError>([&] { gpu::softmax_attention(q, k, v, causal); }), "as many queries"));
    const Tensor q48 = random_tensor({1, 8, 48}, 4);
    gpu::SoftmaxAttentionOptions bf16;
    bf16.precision = gpu::Precision::BF16;
    QVERIFY(contains(error_message<ShapeError>([&] { gpu::softmax_attention(q48, q48, q48, bf16); }), "head dim 48"));
    const Tensor v32 = random_tensor({2, 12, 32}, 5);
    QVERIFY(contains(error_message<ShapeError>([&] { gpu::softmax_attention(q, k, v32, {}); }), "value dim"));
    QVERIFY(contains(error_message<ShapeError>([&] { gpu::matmul(q48, q48); }), "matmul"));
  }

  void flash_f32_matches_cpu_softmax_data() {
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::addColumn<int>("dim");
    QTest::addColumn<bool>("causal");
    QTest::newRow("one token") << 1 << 1 << 1 << 32 << false;
    QTest::newRow("63 causal d64") << 2 << 63 << 63 << 64 << true;
    QTest::newRow("64 d64") << 2 << 64 << 64 << 64 << false;
    QTest::newRow("65 causal d128") << 2 << 65 << 65 << 128 << true;
    QTest::newRow("cross 70x130 d32") << 3 << 70 << 130 << 32 << false;
    QTest::newRow("1000 causal d64") << 1 << 1000 << 1000 << 64 << true;
    QTest::newRow("777 d128") << 2 << 777 << 777 << 128 << false;
  }

  // float32: the CPU engine's softmax (fast path and its dense weights) within float rounding.
  void flash_f32_matches_cpu_softmax() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    QFETCH(int, heads);
    QFETCH(int, lq);
    QFETCH(int, lk);
    QFETCH(int, dim);
    QFETCH(bool, causal);
    const Tensor q = random_tensor({heads, lq, dim}, 11), k = random_tensor({heads, lk, dim}, 12),
                 v = random_tensor({heads, lk, dim}, 13);
    gpu::SoftmaxAttentionOptions o;
    o.causal = causal;
    o.want_weights = true;
    const gpu::SoftmaxAttentionResult got = gpu::softmax_attention(q, k, v, o);
    const AttentionInput in{q, k, v, causal};
    Trace trace;
    const Tensor cpu = run_attention(Registry::builtin().get("softmax"), in, &trace);
    const double e_out = relative_error(got.out, cpu);
    QVERIFY2(e_out < 2e-6, qPrintable(QString("output differs from the CPU by %1").arg(e_out)));
    const double e_w = relative_error(got.weights, trace.weights);
    QVERIFY2(e_w < 2e-6, qPrintable(QString("weights differ from the CPU by %1").arg(e_w)));
    std::vector<double> ref, lse;
    reference_attention(q, k, v, causal, ref, lse);
    QVERIFY(relative_error(got.out, ref) < 2e-6);
    QVERIFY2(relative_error(got.logsumexp, lse) < 1e-6,
             qPrintable(QString("lse off by %1").arg(relative_error(got.logsumexp, lse))));
    if (causal && lk > 1) QCOMPARE(got.weights.at(0, 0, 1), 0.0f);  // nothing above the diagonal
  }

  void flash_tensor_cores_data() {
    QTest::addColumn<QString>("precision");
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("length");
    QTest::addColumn<int>("lk");
    QTest::addColumn<int>("dim");
    QTest::addColumn<bool>("causal");
    for (const char* p : {"bf16", "fp16"}) {
      const QString name(p);
      QTest::addRow("%s 1 d64", p) << name << 1 << 1 << 1 << 64 << false;
      QTest::addRow("%s 63 causal d64", p) << name << 2 << 63 << 63 << 64 << true;
      QTest::addRow("%s 65 d128", p) << name << 2 << 65 << 65 << 128 << false;
      QTest::addRow("%s 200 causal d128", p) << name << 3 << 200 << 200 << 128 << true;
      QTest::addRow("%s cross 100x300 d64", p) << name << 2 << 100 << 300 << 64 << false;
      QTest::addRow("%s 1024 causal d64", p) << name << 1 << 1024 << 1024 << 64 << true;
    }
  }

  // fp16/bf16 on the tensor cores: against float64 attention of the same rounded inputs. The
  // rest of the error is p and the output rounded to the type: bf16 (8 bits) about 4e-3, fp16 5e-4.
  void flash_tensor_cores() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    QFETCH(QString, precision);
    QFETCH(int, heads);
    QFETCH(int, length);
    QFETCH(int, lk);
    QFETCH(int, dim);
    QFETCH(bool, causal);
    const gpu::Precision p = gpu::parse_precision(precision.toStdString());
    const Tensor q = random_tensor({heads, length, dim}, 21), k = random_tensor({heads, lk, dim}, 22),
                 v = random_tensor({heads, lk, dim}, 23);
    gpu::SoftmaxAttentionOptions o;
    o.causal = causal;
    o.precision = p;
    o.want_weights = true;
    const gpu::SoftmaxAttentionResult got = gpu::softmax_attention(q, k, v, o);
    std::vector<double> ref, lse;
    reference_attention(rounded(q, p), rounded(k, p), rounded(v, p), causal, ref, lse);
    const double tolerance = p == gpu::Precision::BF16 ? 1e-2 : 2e-3;
    const double e = relative_error(got.out, ref);
    QVERIFY2(e < tolerance, qPrintable(QString("%1: output off by %2").arg(precision).arg(e)));
    // The score sums see only rounded inputs and float32 accumulation: lse is much tighter.
    const double e_lse = relative_error(got.logsumexp, lse);
    QVERIFY2(e_lse < 1e-4, qPrintable(QString("lse off by %1").arg(e_lse)));
    // Weights recomputed from lse: rows sum to 1 and nothing above the diagonal when causal.
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < length; ++i) {
        double sum = 0;
        for (int j = 0; j < lk; ++j) {
          sum += got.weights.at(h, i, j);
          if (causal && j > i) QCOMPARE(got.weights.at(h, i, j), 0.0f);
        }
        QVERIFY2(std::abs(sum - 1.0) < 1e-4, qPrintable(QString("row %1 sums to %2").arg(i).arg(sum)));
      }
  }

  void linear_matches_cpu_data() {
    QTest::addColumn<int>("length");
    QTest::addColumn<int>("dim");
    QTest::addColumn<bool>("causal");
    for (bool causal : {false, true}) {
      QTest::addRow("1 d32 %s", causal ? "causal" : "full") << 1 << 32 << causal;
      QTest::addRow("63 d64 %s", causal ? "causal" : "full") << 63 << 64 << causal;
      QTest::addRow("64 d64 %s", causal ? "causal" : "full") << 64 << 64 << causal;
      QTest::addRow("65 d128 %s", causal ? "causal" : "full") << 65 << 128 << causal;
      QTest::addRow("1500 d64 %s", causal ? "causal" : "full") << 1500 << 64 << causal;
    }
  }

  // The `linear` variant (elu + 1, ε = 1e-6) on the CPU is the twin.
  void linear_matches_cpu() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    QFETCH(int, length);
    QFETCH(int, dim);
    QFETCH(bool, causal);
    const Tensor q = random_tensor({2, length, dim}, 31), k = random_tensor({2, length, dim}, 32),
                 v = random_tensor({2, length, dim}, 33);
    const gpu::LinearAttentionResult got = gpu::linear_attention(q, k, v, causal, 1e-6f);
    const Params params = params_of("linear", nlohmann::json::object());
    const AttentionInput in{q, k, v, causal, nullptr, &params};
    const Tensor cpu = run_attention(Registry::builtin().get("linear"), in, nullptr);
    const double e = relative_error(got.out, cpu);
    QVERIFY2(e < 1e-5, qPrintable(QString("linear attention differs from the CPU by %1").arg(e)));
  }

  void bigbird_matches_cpu_data() {
    QTest::addColumn<int>("length");
    QTest::addColumn<int>("dim");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<int>("random_blocks");
    QTest::newRow("512 d64") << 512 << 64 << false << 2;
    QTest::newRow("512 d64 causal") << 512 << 64 << true << 2;
    QTest::newRow("700 d128 partial block") << 700 << 128 << false << 3;
    QTest::newRow("1000 d32 causal") << 1000 << 32 << true << 3;
    QTest::newRow("64 one block") << 64 << 64 << false << 3;
  }

  // The block-sparse kernel with BigBird's block lists: the CPU `bigbird` variant, same seed.
  void bigbird_matches_cpu() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    QFETCH(int, length);
    QFETCH(int, dim);
    QFETCH(bool, causal);
    QFETCH(int, random_blocks);
    const Tensor q = random_tensor({2, length, dim}, 51), k = random_tensor({2, length, dim}, 52),
                 v = random_tensor({2, length, dim}, 53);
    const Params params = params_of("bigbird", {{"block_size", 64}, {"random_blocks", random_blocks}});
    const AttentionInput in{q, k, v, causal, nullptr, &params, 7};
    const Tensor cpu = run_attention(Registry::builtin().get("bigbird"), in, nullptr);
    gpu::SoftmaxAttentionOptions o;
    o.causal = causal;
    const double e = relative_error(gpu::bigbird_attention(q, k, v, params, 7, o).out, cpu);
    QVERIFY2(e < 2e-6, qPrintable(QString("fp32 differs from the CPU by %1").arg(e)));
    if (dim == 32) return;  // the tensor-core path takes d 64 and 128
    o.precision = gpu::Precision::BF16;
    const double e16 = relative_error(gpu::bigbird_attention(q, k, v, params, 7, o).out, cpu);
    QVERIFY2(e16 < 2e-2, qPrintable(QString("bf16 differs from the CPU by %1").arg(e16)));
    // A different seed draws other random blocks: the test can tell patterns apart.
    if (random_blocks > 0 && length >= 512 && !causal)
      QVERIFY(relative_error(gpu::bigbird_attention(q, k, v, params, 8, {}).out, cpu) > 1e-3);
  }

  void bigbird_needs_block_64() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    const Tensor q = random_tensor({1, 256, 64}, 1);
    const Params params = params_of("bigbird", {{"block_size", 32}});
    QVERIFY(contains(error_message<ParamError>([&] { gpu::bigbird_attention(q, q, q, params, 1, {}); }),
                     "block_size=64"));
  }

  void lsh_matches_cpu_data() {
    QTest::addColumn<int>("length");
    QTest::addColumn<int>("dim");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<int>("hashes");
    QTest::addColumn<int>("bucket_size");
    QTest::addColumn<int>("chunks_before");
    QTest::newRow("300 d64 r2 c32") << 300 << 64 << false << 2 << 32 << 1;
    QTest::newRow("300 d64 causal") << 300 << 64 << true << 2 << 32 << 1;
    QTest::newRow("1000 d128 r4") << 1000 << 128 << false << 4 << 64 << 1;
    QTest::newRow("777 d32 causal r3 cb2") << 777 << 32 << true << 3 << 50 << 2;
    QTest::newRow("40 one chunk") << 40 << 64 << false << 2 << 64 << 1;
  }

  // Same rotations ⇒ the same buckets as the CPU's hash, and the `reformer_lsh` output.
  void lsh_matches_cpu() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    QFETCH(int, length);
    QFETCH(int, dim);
    QFETCH(bool, causal);
    QFETCH(int, hashes);
    QFETCH(int, bucket_size);
    QFETCH(int, chunks_before);
    const Tensor q = random_tensor({2, length, dim}, 61), v = random_tensor({2, length, dim}, 63);
    const Params params = params_of("reformer_lsh", {{"n_hashes", hashes},
                                                     {"bucket_size", bucket_size},
                                                     {"chunks_before", chunks_before}});
    const gpu::LshAttentionResult got = gpu::reformer_lsh_attention(q, v, params, 5, causal);
    const LshGeometry g = resolve_lsh_geometry(params, length);
    const Tensor rotations = lsh_rotations(5, 2, g.n_hashes, dim, g.n_buckets);
    for (int h = 0; h < 2; ++h)
      for (int r = 0; r < hashes; ++r) {
        const RowMatrix x = q.matrix(h);
        const std::vector<std::int32_t> want = lsh_buckets(x, rotations.matrix(h * hashes + r));
        for (int i = 0; i < length; ++i)
          QCOMPARE(got.buckets[static_cast<std::size_t>((h * hashes + r) * length + i)], want[static_cast<std::size_t>(i)]);
      }
    const AttentionInput in{q, q, v, causal, nullptr, &params, 5};
    const Tensor cpu = run_attention(Registry::builtin().get("reformer_lsh"), in, nullptr);
    const double e = relative_error(got.out, cpu);
    QVERIFY2(e < 1e-5, qPrintable(QString("LSH attention differs from the CPU by %1").arg(e)));
  }

  void lsh_rejects_what_it_lacks() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    const Tensor q = random_tensor({1, 64, 64}, 1);
    QVERIFY(contains(error_message<ParamError>([&] {
                       gpu::reformer_lsh_attention(q, q, params_of("reformer_lsh", {{"dedup", true}}), 1, false);
                     }),
                     "dedup"));
    QVERIFY(contains(error_message<ParamError>([&] {
                       gpu::reformer_lsh_attention(q, q, params_of("reformer_lsh", {{"shared_qk", false}}), 1, false);
                     }),
                     "shared_qk"));
  }

  // The `routing` variant's own k-means, read from its trace: from its initial centroids, the
  // GPU's steps reach its final centroids and the same nearest clusters.
  void kmeans_matches_routing_trace_data() {
    QTest::addColumn<int>("length");
    QTest::addColumn<int>("dim");
    QTest::addColumn<int>("clusters");
    QTest::addColumn<double>("decay");
    QTest::newRow("100 d16 k6") << 100 << 16 << 6 << 0.5;
    QTest::newRow("300 d64 k17 batch means") << 300 << 64 << 17 << 0.0;
    QTest::newRow("257 d128 k16 slow") << 257 << 128 << 16 << 0.9;
  }

  void kmeans_matches_routing_trace() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    QFETCH(int, length);
    QFETCH(int, dim);
    QFETCH(int, clusters);
    QFETCH(double, decay);
    const int steps = 6;
    const Tensor q = random_tensor({1, length, dim}, 71), k = random_tensor({1, length, dim}, 72),
                 v = random_tensor({1, length, dim}, 73);
    const Params params = params_of("routing", {{"n_clusters", clusters}, {"kmeans_iters", steps}, {"ema_decay", decay}});
    const AttentionInput in{q, k, v, false, nullptr, &params, 9};
    Trace trace;
    run_attention(Registry::builtin().get("routing"), in, &trace);
    const RoutingHeadTrace& t = dynamic_cast<const RoutingExtras&>(*trace.extras).head(0);
    QCOMPARE(t.steps, static_cast<std::int64_t>(steps + 1));
    Tensor points({2 * length, dim}), initial({clusters, dim});
    std::copy_n(q.data(), length * dim, points.data());
    std::copy_n(k.data(), length * dim, points.data() + length * dim);
    std::copy_n(t.centroids.data(), clusters * dim, initial.data());
    const gpu::KMeansResult got = gpu::spherical_kmeans(points, initial, steps, static_cast<float>(decay));
    double worst = 0;
    for (int i = 0; i < clusters * dim; ++i)
      worst = std::max(worst, std::abs(double(got.centroids.data()[i]) - t.centroids.data()[steps * clusters * dim + i]));
    QVERIFY2(worst < 1e-5, qPrintable(QString("centroids differ by %1").arg(worst)));
    for (int i = 0; i < length; ++i) {
      QCOMPARE(got.nearest[static_cast<std::size_t>(i)], t.query_nearest[static_cast<std::size_t>(steps * length + i)]);
      QCOMPARE(got.nearest[static_cast<std::size_t>(length + i)], t.key_nearest[static_cast<std::size_t>(steps * length + i)]);
    }
  }

  void matmul_matches_naive() {
    if (!have_gpu_) QSKIP(("no GPU: " + why_not_).c_str());
    const Tensor a = random_tensor({37, 129}, 41), b = random_tensor({129, 53}, 42);
    const Tensor c = gpu::matmul(a, b);
    std::vector<double> want(37 * 53, 0.0);
    for (int i = 0; i < 37; ++i)
      for (int j = 0; j < 53; ++j)
        for (int t = 0; t < 129; ++t) want[static_cast<std::size_t>(i * 53 + j)] += double(a.at(i, t)) * b.at(t, j);
    QVERIFY(relative_error(c, want) < 1e-6);
  }
};

QTEST_GUILESS_MAIN(TestCudaKernels)
#include "test_cuda_kernels.moc"
