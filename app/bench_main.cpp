// attnlab-bench: prints the figures the README quotes. Not a test: nothing here passes or fails.
//
//   softmax attention forward, L=512, d_model=256, 8 heads (d=32): fast path and traced path
//   the full playground forward (tiny-encoder, 4 layers, traces) at L=512: the interactive budget
//   this machine's single-precision GEMM through Eigen (1 and all threads): the ceiling
//   the GL heatmap's frame time for a 4096 x 4096 matrix while zooming (needs a display / Xvfb)
//
// Usage: attnlab-bench [--repeats N] [--no-gl]     (run under xvfb-run for the GL figure)
#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QTimer>
#include <algorithm>
#include <cstdio>
#include <vector>

#include "attention/registry.h"
#include "bench/activation_memory.h"
#include "bench/gemm_probe.h"
#include "core/memory_meter.h"
#include "core/device.h"
#include "core/rng.h"
#include "core/timer.h"
#include "heatmap_view.h"
#include "models/playground.h"

using namespace attnlab;

namespace {

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats stats_of(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return Stats{samples[samples.size() / 2], samples.front(), samples.back()};
}

template <typename F>
Stats time_ms(int repeats, F&& f) {
  f();  // warm-up
  std::vector<double> samples;
  for (int i = 0; i < repeats; ++i) {
    Timer t;
    f();
    samples.push_back(t.elapsed_ms());
  }
  return stats_of(std::move(samples));
}

void bench_softmax(int repeats) {
  const int H = 8, L = 512, d = 32;
  Tensor q({H, L, d}), k({H, L, d}), v({H, L, d});
  Rng rng(1);
  rng.fill_normal(q, 0, 1);
  rng.fill_normal(k, 0, 1);
  rng.fill_normal(v, 0, 1);
  const Attention& softmax = Registry::builtin().get("softmax");
  for (bool causal : {false, true}) {
    const AttentionInput input{q, k, v, causal};
    const Stats fast = time_ms(repeats, [&] { run_attention(softmax, input, nullptr); });
    Trace trace;
    const Stats traced = time_ms(repeats, [&] { run_attention(softmax, input, &trace); });
    const double flops = 4.0 * H * L * static_cast<double>(L) * d * (causal ? 0.5 : 1.0);
    std::printf("softmax attention  L=%d d_model=%d heads=%d%s: fast path %.2f ms (min %.2f, max %.2f, %.0f GFLOP/s), "
                "with weights %.2f ms\n",
                L, H * d, H, causal ? " causal" : "", fast.median, fast.min, fast.max, flops / (fast.median * 1e6),
                traced.median);
  }
}

// One keystroke at 512 tokens: the whole tiny-encoder forward with every layer's trace (what the
// views draw), for each variant with its default parameters.
void bench_playground(int repeats) {
  std::string text;
  const char* words[] = {"the", "model", "reads", "a", "long", "sentence", "and", "every", "token", "attends", "."};
  for (int i = 0; i < 512; ++i) text += std::string(words[i % 11]) + " ";
  Playground playground;
  PlaygroundRequest request;
  request.text = text;
  const auto first = playground.run(request);
  std::printf("playground forward, tiny-encoder (4 layers x 8 heads, d_model 256), L=%lld, all traces; model build %.1f ms:\n",
              static_cast<long long>(first->length()), first->model_ms);
  for (const Attention* variant : Registry::builtin().all()) {
    request.variant = variant->spec().name;
    try {
      const Stats s = time_ms(repeats, [&] { playground.run(request); });
      std::printf("  %-14s %6.1f ms (min %.1f, max %.1f)\n", request.variant.c_str(), s.median, s.min, s.max);
    } catch (const std::exception& e) {
      std::printf("  %-14s failed: %s\n", request.variant.c_str(), e.what());
    }
  }
}

// Every registered variant at one long length, one head: fast path (no trace) time and the
// peak bytes of tensors the engine held during the call, beside exact softmax with and without
// its L x L weights.
void bench_variants_long(int repeats) {
  const int L = 4096, d = 64;
  Tensor q({1, L, d}), k({1, L, d}), v({1, L, d});
  Rng rng(11);
  rng.fill_normal(q, 0, 1);
  rng.fill_normal(k, 0, 1);
  rng.fill_normal(v, 0, 1);
  std::printf("variants at L=%d, d=%d, 1 head, default parameters (median of %d; peak = tensor bytes held during the call):\n",
              L, d, repeats);
  const auto measure = [&](const Attention& variant, bool traced) {
    Trace trace;
    const AttentionInput input{q, k, v, false, nullptr, nullptr, 7};
    const Stats s = time_ms(repeats, [&] { run_attention(variant, input, traced ? &trace : nullptr); });
    trace = Trace{};
    const std::int64_t before = memory::current_bytes();
    memory::reset_peak();
    run_attention(variant, input, traced ? &trace : nullptr);
    const std::int64_t peak = memory::peak_bytes() - before;
    char mem[32];
    memory::format_bytes(peak, mem, sizeof mem);
    std::printf("  %-14s %-12s %8.2f ms  (min %.2f, max %.2f)  peak %s\n", variant.spec().name.c_str(),
                traced ? "with weights" : "fast path", s.median, s.min, s.max, mem);
  };
  for (const Attention* variant : Registry::builtin().all()) {
    try {
      measure(*variant, false);
      if (variant->spec().name == "softmax") measure(*variant, true);
    } catch (const std::exception& e) {
      std::printf("  %-14s failed: %s\n", variant->spec().name.c_str(), e.what());
    }
  }
}

void bench_reversible() {
  DepthMemoryOptions o;
  o.max_layers = 12;
  const auto points = measure_activation_memory(o);
  const auto& first = points.front();
  const auto& last = points.back();
  double worst = 0;
  for (const auto& p : points) worst = std::max(worst, p.reconstruction_error);
  std::printf("activations kept for backward, L=%d, d_model=%d: standard %.1f MiB at 1 layer -> %.1f MiB at %d layers; "
              "reversible %.1f MiB at every depth; reconstruction error <= %.1e\n",
              o.length, o.d_model, first.standard_bytes / 1048576.0, last.standard_bytes / 1048576.0, last.layers,
              last.reversible_bytes / 1048576.0, worst);
}

void bench_gemm() {
  const GemmProbe one = probe_gemm(1536, 5, 1);
  const GemmProbe all = probe_gemm(1536, 5, 0);
  std::printf("Eigen sgemm 1536^3: %.0f GFLOP/s on 1 thread, %.0f GFLOP/s on %d threads\n", one.gflops, all.gflops,
              all.threads);
}

void bench_gl(int argc, char** argv) {
  HeatmapView::useAsDefaultFormat();
  QApplication app(argc, argv);
  if (QGuiApplication::platformName() == QLatin1String("offscreen") || qEnvironmentVariableIsEmpty("DISPLAY")) {
    std::printf("GL heatmap: skipped (no display; run under xvfb-run)\n");
    return;
  }
  const int n = 4096;
  auto data = std::make_shared<HeatmapData>();
  data->rows = data->cols = n;
  data->values.resize(static_cast<std::size_t>(n) * n);
  Rng rng(3);
  for (auto& x : data->values) x = static_cast<float>(rng.uniform());
  for (int i = 0; i < n; ++i) {
    data->row_labels << QStringLiteral("t%1").arg(i);
  }
  data->col_labels = data->row_labels;
  HeatmapView view;
  view.resize(1000, 900);
  view.show();
  QElapsedTimer upload;
  upload.start();
  view.setMeasureFrameTime(true);
  {
    QEventLoop loop;
    QObject::connect(&view, &QOpenGLWidget::frameSwapped, &loop, &QEventLoop::quit);
    QTimer::singleShot(5000, &loop, &QEventLoop::quit);
    view.setData(data);
    loop.exec();
  }
  const double first_ms = upload.nsecsElapsed() / 1e6;
  std::vector<double> paint, wall;
  const QPointF centre(view.plotRect().center());
  // One frame = zoom step -> paintGL -> composition, ended by QOpenGLWidget::frameSwapped.
  for (int i = 0; i < 40; ++i) {
    QEventLoop loop;
    QObject::connect(&view, &QOpenGLWidget::frameSwapped, &loop, &QEventLoop::quit);
    QTimer::singleShot(2000, &loop, &QEventLoop::quit);
    QElapsedTimer t;
    t.start();
    view.zoomAt(i < 20 ? 1.15 : 1.0 / 1.15, centre);
    loop.exec();
    wall.push_back(t.nsecsElapsed() / 1e6);
    paint.push_back(view.lastFrameMs());
  }
  const Stats p = stats_of(paint), w = stats_of(wall);
  std::printf("GL heatmap %dx%d in a %dx%d view while zooming (%s): paintGL %.2f ms median (max %.2f), whole frame "
              "to swap %.2f ms median (max %.2f); upload + first frame %.0f ms\n",
              n, n, view.width(), view.height(), qPrintable(QGuiApplication::platformName()), p.median, p.max, w.median,
              w.max, first_ms);
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 20;
  bool gl = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--no-gl") gl = false;
  }
  std::printf("AttnLab benchmark — %s\n", select_device(DevicePreference::Auto).describe().c_str());
  bench_softmax(repeats);
  bench_playground(std::max(3, repeats / 4));
  bench_variants_long(std::max(3, repeats / 4));
  bench_reversible();
  bench_gemm();
  if (gl) bench_gl(argc, argv);
  return 0;
}
