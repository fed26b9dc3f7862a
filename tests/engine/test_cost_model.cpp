// The memory cost models against the memory meter: for every registered variant (default
// parameters, and the parameter choices that change what a forward allocates), causal and not,
// fast path and traced, at several lengths, head counts and dims, the estimate
// Attention::workspace_bytes made before the call is at least the peak of engine-tensor bytes
// the call held beyond its inputs (memory::peak_bytes after reset_peak, the block cache emptied
// first) and at most twice that peak plus 64 KiB. The meter counts what the tensors' allocator
// hands out, independently of any formula, so this is the check that the formulas were read
// correctly from each forward. Model estimates (estimate_forward_bytes) are checked the same way
// on whole forward passes of three presets: above the engine's peak and the growth of the
// process high-water mark, and within a factor of 3 of that growth.
#include <QtTest>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention/registry.h"
#include "bench/complexity.h"
#include "core/memory_meter.h"
#include "models/encoder.h"
#include "models/model_memory.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

constexpr std::int64_t kSlackBytes = 64 << 10;

struct ParamCase {
  std::string variant;
  nlohmann::json params;  // over the defaults
};

// Every variant with its defaults, then the choices that take another path or allocate more.
std::vector<ParamCase> param_cases() {
  std::vector<ParamCase> cases;
  for (const std::string& name : Registry::builtin().names()) cases.push_back({name, nlohmann::json::object()});
  cases.push_back({"linear", {{"form", "recurrent"}}});
  cases.push_back({"yoso", {{"mode", "expected"}}});
  cases.push_back({"yoso", {{"hash_bits", 12}, {"n_hashes", 5}}});
  cases.push_back({"mgk", {{"pi_mode", "soft_em"}, {"em_steps", 3}, {"second_key", "projection"}}});
  cases.push_back({"mgk", {{"pi_mode", "hard_em"}}});
  cases.push_back({"spectral", {{"kind", "rks"}, {"n_features", 32}}});
  cases.push_back({"reformer_lsh", {{"shared_qk", false}, {"dedup", true}, {"n_hashes", 3}}});
  cases.push_back({"reformer_lsh", {{"bucket_size", 32}, {"chunks_before", 2}, {"dedup", true}}});
  cases.push_back({"routing", {{"local_heads", 1}}});
  cases.push_back({"routing", {{"n_clusters", 7}, {"window", 50}, {"kmeans_iters", 3}}});
  cases.push_back({"luna", {{"causal_form", "reference"}, {"pack_len", 40}}});
  cases.push_back({"bigbird", {{"block_size", 16}, {"random_blocks", 1}, {"global_blocks", 2}}});
  cases.push_back({"performer", {{"n_features", 200}, {"orthogonal", false}}});
  cases.push_back({"rpe_fft", {{"n_features", 16}}});
  cases.push_back({"t2r", {{"features", 100}}});
  cases.push_back({"delta", {{"beta_mode", "gate"}, {"chunk", 0}}});
  return cases;
}

struct ShapeCase {
  std::int64_t heads, lq, lk, d, dv;
};

struct Outcome {
  double lowest = 1e300, highest = 0;  // estimate / measured
  int runs = 0;
};

}  // namespace

// Growth of the process high-water mark over `run`, from the resident size before it (freed heap
// pages and the engine's cached blocks handed back first); -1 where /proc does not tell.
std::int64_t high_water_growth(const std::function<void()>& run) {
  memory::release_cached_blocks();
  memory::trim_heap();
  if (!memory::reset_process_high_water()) return -1;
  const std::int64_t before = memory::process_resident_bytes();
  run();
  const std::int64_t after = memory::process_high_water_bytes();
  return before > 0 && after > 0 ? after - before : -1;
}

class TestCostModel : public QObject {
  Q_OBJECT

 private:
  // Runs one call and compares; returns "" or what went wrong. Variants that refuse the shape
  // (self-attention only) are skipped, and then so must be their estimate.
  std::string check(const ParamCase& pc, const ShapeCase& sc, bool causal, bool trace, Outcome& outcome) {
    const Attention& variant = Registry::builtin().get(pc.variant);
    const Params params = test::params_of(pc.variant, pc.params);
    const AttentionShape shape{sc.heads, sc.lq, sc.lk, sc.d, sc.dv, causal, trace};
    const Tensor q = random_tensor({sc.heads, sc.lq, sc.d}, 1);
    const Tensor k = random_tensor({sc.heads, sc.lk, sc.d}, 2);
    const Tensor v = random_tensor({sc.heads, sc.lk, sc.dv}, 3);
    std::int64_t estimate = -1;
    try {
      estimate = variant.workspace_bytes(shape, params);
    } catch (const Error&) {
    }
    std::int64_t measured = -1;
    try {
      Trace t;
      memory::release_cached_blocks();
      measured = test::peak_bytes_of(
          [&] { run_attention(variant, AttentionInput{q, k, v, causal, nullptr, &params, 5}, trace ? &t : nullptr); });
    } catch (const ShapeError&) {
      if (estimate >= 0) return "the estimate accepts a shape that forward refuses";
      return "";
    }
    char where[256];
    std::snprintf(where, sizeof where, "%s %s H=%lld Lq=%lld Lk=%lld d=%lld dv=%lld %s %s", pc.variant.c_str(),
                  pc.params.dump().c_str(), static_cast<long long>(sc.heads), static_cast<long long>(sc.lq),
                  static_cast<long long>(sc.lk), static_cast<long long>(sc.d), static_cast<long long>(sc.dv),
                  causal ? "causal" : "non-causal", trace ? "traced" : "fast");
    if (estimate < 0) return std::string(where) + ": no estimate for a shape forward runs";
    const double ratio = static_cast<double>(estimate) / static_cast<double>(std::max<std::int64_t>(1, measured));
    outcome.lowest = std::min(outcome.lowest, ratio);
    outcome.highest = std::max(outcome.highest, ratio);
    ++outcome.runs;
    if (estimate < measured || estimate > 2 * measured + kSlackBytes) {
      return std::string(where) + ": estimate " + std::to_string(estimate) + " bytes, measured " +
             std::to_string(measured);
    }
    return "";
  }

 private slots:
  // First, while the heap is fresh: whole forward passes, no traces, token ids cycling through
  // the vocabulary as the benchmarks use them.
  void model_estimates_bound_the_measured_peak() {
    struct ModelCase {
      const char* name;
      std::int64_t length;
      bool causal;
    };
    // The presets of the model-scaling benchmark at two lengths, and two other kinds of layer.
    const std::vector<ModelCase> cases = {{"tiny-encoder", 2048, false}, {"tiny-encoder", 8192, true},
                                          {"block-recurrent", 2048, false}, {"block-recurrent", 8192, true},
                                          {"perceiver-ar", 2048, false},   {"perceiver-ar", 8192, true},
                                          {"switch-moe", 2048, true},      {"mega", 2048, true}};
    for (const ModelCase& mc : cases) {
      ModelConfig config = builtin_model(mc.name);
      config.max_length = std::max(config.max_length, mc.length);
      const Encoder model = Encoder::seeded(config, 1);
      EncoderRunOptions options;
      options.variant = &Registry::builtin().get("softmax");
      options.causal = mc.causal;
      options.trace = false;
      std::vector<std::int32_t> ids(static_cast<std::size_t>(mc.length));
      for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 7919) % config.vocab_size);
      ForwardMemoryOptions memory_options;
      memory_options.causal = mc.causal;
      const std::int64_t estimate = estimate_forward_bytes(config, mc.length, false, memory_options);
      std::int64_t peak = 0;
      const std::int64_t growth = high_water_growth([&] {
        memory::reset_peak();
        const std::int64_t before = memory::current_bytes();
        (void)model.forward(ids, options);
        peak = memory::peak_bytes() - before;
      });
      qInfo("%-16s L=%5lld %-10s estimate %7.1f MiB, engine peak %7.1f MiB, high-water growth %7.1f MiB (ratio %.2f)",
            mc.name, static_cast<long long>(mc.length), mc.causal ? "causal" : "non-causal", estimate / 1048576.0,
            peak / 1048576.0, growth / 1048576.0,
            growth > 0 ? static_cast<double>(estimate) / static_cast<double>(growth) : 0.0);
      QVERIFY2(estimate >= peak, mc.name);
      if (growth < 0) continue;  // no /proc: the meter's bound is all that can be checked
      QVERIFY2(estimate >= growth, mc.name);
      QVERIFY2(estimate <= 3 * growth, mc.name);
    }
    // With traces every layer keeps its weights [H, L, L] and extras to the end of the pass.
    for (const char* variant : {"softmax", "reformer_lsh", "linear"}) {
      const ModelConfig& config = builtin_model("tiny-encoder");
      const Encoder model = Encoder::seeded(config, 1);
      EncoderRunOptions options;
      options.variant = &Registry::builtin().get(variant);
      options.trace = true;
      std::vector<std::int32_t> ids(512);
      for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 7919) % config.vocab_size);
      ForwardMemoryOptions memory_options;
      memory_options.variant = options.variant;
      const std::int64_t estimate = estimate_forward_bytes(config, 512, true, memory_options);
      std::int64_t peak = 0;
      const std::int64_t growth = high_water_growth([&] {
        peak = test::peak_bytes_of([&] { (void)model.forward(ids, options); });
      });
      qInfo("tiny-encoder traced %-12s L=512 estimate %7.1f MiB, engine peak %7.1f MiB, high-water growth %7.1f MiB", variant,
            estimate / 1048576.0, peak / 1048576.0, growth / 1048576.0);
      QVERIFY2(estimate >= peak && estimate <= 3 * peak, variant);
      if (growth >= 0) QVERIFY2(estimate >= growth, variant);
    }
  }

  void estimates_bound_the_measured_peak() {
    const std::vector<ShapeCase> fast = {{1, 64, 64, 64, 64},   {1, 256, 256, 64, 64},  {1, 1024, 1024, 64, 64},
                                         {1, 4096, 4096, 64, 64}, {3, 64, 64, 32, 16},    {3, 1000, 1000, 32, 16},
                                         {2, 100, 300, 16, 24}};
    const std::vector<ShapeCase> traced = {{1, 64, 64, 64, 64}, {1, 256, 256, 64, 64}, {1, 512, 512, 32, 32},
                                           {3, 200, 200, 32, 16}, {2, 100, 300, 16, 24}};
    std::vector<std::string> failures;
    std::vector<std::pair<std::string, Outcome>> outcomes;
    for (const ParamCase& pc : param_cases()) {
      Outcome outcome;
      for (const bool causal : {false, true}) {
        for (const bool trace : {false, true}) {
          for (const ShapeCase& sc : trace ? traced : fast) {
            if (causal && sc.lq != sc.lk) continue;
            const std::string failure = check(pc, sc, causal, trace, outcome);
            if (!failure.empty()) failures.push_back(failure);
          }
        }
      }
      QVERIFY2(outcome.runs > 0, pc.variant.c_str());
      outcomes.emplace_back(pc.variant + " " + pc.params.dump(), outcome);
    }
    for (const auto& [name, o] : outcomes)
      qInfo("%-70s estimate / measured %.3f .. %.3f over %d calls", name.c_str(), o.lowest, o.highest, o.runs);
    for (const std::string& f : failures) qWarning("%s", f.c_str());
    QVERIFY2(failures.empty(), (std::to_string(failures.size()) + " estimates out of bounds (listed above)").c_str());
  }

  // The benchmark fills each row's estimate from the same cost models before running it, and
  // hands every row to on_row as it comes, in order.
  void complexity_rows_carry_the_estimate() {
    ComplexityOptions o;
    o.variants = Registry::builtin().names();
    o.variants.push_back("model:tiny-encoder");
    o.lengths = {256, 64};
    o.dim = 32;
    o.heads = 2;
    o.repeats = 1;
    std::vector<ComplexityRow> seen;
    o.on_row = [&](const ComplexityRow& row) { seen.push_back(row); };
    const ComplexityResult result = run_complexity(o);
    QCOMPARE(seen.size(), result.rows.size());
    QCOMPARE(result.rows.size(), o.variants.size() * 2);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      const ComplexityRow& r = result.rows[i];
      QCOMPARE(seen[i].variant, r.variant);
      QCOMPARE(seen[i].length, r.length);
      QVERIFY2(r.status == "ok", (r.variant + ": " + r.status).c_str());
      QVERIFY2(r.estimated_bytes >= r.peak_bytes, r.variant.c_str());
      if (r.variant.rfind("model:", 0) != 0)
        QVERIFY2(r.estimated_bytes <= 2 * r.peak_bytes + kSlackBytes, r.variant.c_str());
    }
    QCOMPARE(result.rows.front().length, std::int64_t{64});
  }
};

QTEST_APPLESS_MAIN(TestCostModel)
#include "test_cost_model.moc"
