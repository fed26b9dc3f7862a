// Autoregressive decoding (bench/decoding.h): the outputs of each method's step loop, one token
// at a time, equal the engine's causal forward pass of the matching variant over the whole
// sequence (softmax for both softmax methods, linear, performer with the same seed and default
// parameters) to 1e-4 relative, and the KV-cache loop equals a naive double-precision loop
// written here; the state each method reports is its closed form (2·H·N·d·4 bytes for the
// cache, H·(F·dv + F)·4 for the recurrent states); the time budget stops a run and skips longer
// ones; bad options are refused with ParamError naming the option.
#include <QtTest>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention/registry.h"
#include "bench/decoding.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

// The causal forward of a registered variant with its default parameters.
Tensor causal_forward(const std::string& variant, const Tensor& q, const Tensor& k, const Tensor& v, std::uint64_t seed,
                      const nlohmann::json& params = nlohmann::json::object()) {
  return test::run_variant(variant, q, k, v, params, {true, seed, false, nullptr}).out;
}

// out_t = Σ_{j<=t} softmax_j(q_t·k_j/√d) v_j in double, straight from the definition.
std::vector<double> naive_causal_softmax(const Tensor& q, const Tensor& k, const Tensor& v) {
  const std::int64_t H = q.dim(0), N = q.dim(1), d = q.dim(2), dv = v.dim(2);
  std::vector<double> out(static_cast<std::size_t>(H * N * dv), 0.0);
  for (std::int64_t h = 0; h < H; ++h) {
    for (std::int64_t t = 0; t < N; ++t) {
      std::vector<double> s(static_cast<std::size_t>(t + 1));
      double m = -1e300;
      for (std::int64_t j = 0; j <= t; ++j) {
        double dot = 0.0;
        for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(q.at(h, t, c)) * k.at(h, j, c);
        s[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
        m = std::max(m, s[static_cast<std::size_t>(j)]);
      }
      double l = 0.0;
      for (double& x : s) l += (x = std::exp(x - m));
      for (std::int64_t j = 0; j <= t; ++j)
        for (std::int64_t c = 0; c < dv; ++c)
          out[static_cast<std::size_t>((h * N + t) * dv + c)] += s[static_cast<std::size_t>(j)] / l * v.at(h, j, c);
    }
  }
  return out;
}

std::vector<double> as_doubles(const Tensor& t) { return std::vector<double>(t.data(), t.data() + t.size()); }

}  // namespace

class TestDecoding : public QObject {
  Q_OBJECT

 private slots:
  void methods_are_listed_in_order() {
    QCOMPARE(decoding_methods(),
             (std::vector<std::string>{"softmax_kv_cache", "softmax_no_cache", "linear_recurrent", "performer_recurrent"}));
  }

  void step_loops_equal_the_causal_forward_passes() {
    struct Shape {
      std::int64_t H, N, d, dv;
    };
    for (const Shape& s : {Shape{1, 300, 64, 64}, Shape{3, 130, 16, 24}, Shape{2, 1, 8, 8}}) {
      const Tensor q = random_tensor({s.H, s.N, s.d}, 11), k = random_tensor({s.H, s.N, s.d}, 12);
      const Tensor v = random_tensor({s.H, s.N, s.dv}, 13);
      const std::uint64_t seed = 29;
      const Tensor exact = causal_forward("softmax", q, k, v, seed);
      EXPECT_NEAR_REFERENCE(decode_outputs("softmax_kv_cache", q, k, v, seed), as_doubles(exact), 1e-4, "kv cache");
      EXPECT_NEAR_REFERENCE(decode_outputs("softmax_no_cache", q, k, v, seed), as_doubles(exact), 1e-4, "no cache");
      EXPECT_NEAR_REFERENCE(decode_outputs("softmax_kv_cache", q, k, v, seed), naive_causal_softmax(q, k, v), 1e-4,
                            "kv cache against the naive loop");
      // Both causal forms of linear (chunked prefix sums and the engine's own recurrence).
      const Tensor linear = decode_outputs("linear_recurrent", q, k, v, seed);
      EXPECT_NEAR_REFERENCE(linear, as_doubles(causal_forward("linear", q, k, v, seed)), 1e-4, "linear (prefix)");
      EXPECT_NEAR_REFERENCE(linear, as_doubles(causal_forward("linear", q, k, v, seed, {{"form", "recurrent"}})), 1e-4,
                            "linear (recurrent)");
      EXPECT_NEAR_REFERENCE(decode_outputs("performer_recurrent", q, k, v, seed),
                            as_doubles(causal_forward("performer", q, k, v, seed)), 1e-4, "performer");
    }
  }

  void performer_features_follow_the_seed() {
    const Tensor q = random_tensor({1, 40, 16}, 1), k = random_tensor({1, 40, 16}, 2), v = random_tensor({1, 40, 16}, 3);
    const Tensor a = decode_outputs("performer_recurrent", q, k, v, 1);
    const Tensor b = decode_outputs("performer_recurrent", q, k, v, 2);
    QVERIFY(test::max_abs_diff(a, b) > 1e-4);  // other features, other outputs
    EXPECT_NEAR_REFERENCE(b, as_doubles(causal_forward("performer", q, k, v, 2)), 1e-4, "performer, seed 2");
  }

  // Large logits: the step's softmax subtracts the running maximum, so nothing overflows.
  void kv_cache_is_stable_for_large_logits() {
    const Tensor q = random_tensor({1, 64, 32}, 5, 30.0f), k = random_tensor({1, 64, 32}, 6, 30.0f);
    const Tensor v = random_tensor({1, 64, 32}, 7);
    const Tensor out = decode_outputs("softmax_kv_cache", q, k, v, 0);
    for (std::int64_t i = 0; i < out.size(); ++i) QVERIFY(std::isfinite(out.data()[i]));
    EXPECT_NEAR_REFERENCE(out, naive_causal_softmax(q, k, v), 1e-4, "large logits");
  }

  void rows_report_closed_form_state_and_rates() {
    DecodingOptions o;
    o.methods = decoding_methods();
    o.tokens = {33, 5};  // sorted by run_decoding
    o.dim = 16;
    o.heads = 3;
    o.repeats = 2;
    int rows_seen = 0, last_done = 0;
    o.on_row = [&](const DecodingRow&) { ++rows_seen; };
    o.progress = [&](int done, int total) {
      QCOMPARE(total, 8);
      last_done = done;
    };
    const std::vector<DecodingRow> rows = run_decoding(o);
    QCOMPARE(static_cast<int>(rows.size()), 8);
    QCOMPARE(rows_seen, 8);
    QCOMPARE(last_done, 8);
    const std::int64_t H = 3, d = 16, dv = 16, m = 64;
    for (const DecodingRow& r : rows) {
      QCOMPARE(r.status, std::string("ok"));
      QVERIFY(r.median_ms > 0 && r.min_ms <= r.median_ms && r.median_ms <= r.max_ms);
      QVERIFY(std::abs(r.tokens_per_second - static_cast<double>(r.tokens) / (r.median_ms / 1000.0)) <
              1e-6 * r.tokens_per_second);
      QVERIFY(r.last_step_us > 0);
      const std::int64_t N = r.tokens;
      std::int64_t expected = 0;
      if (r.method == "softmax_kv_cache" || r.method == "softmax_no_cache") expected = 2 * H * N * d * 4;
      if (r.method == "linear_recurrent") expected = H * (d * dv + d) * 4;
      if (r.method == "performer_recurrent") expected = H * (m * dv + m) * 4;
      QCOMPARE(r.state_bytes, expected);
    }
    QCOMPARE(rows[0].tokens, std::int64_t{5});
    QCOMPARE(rows[1].tokens, std::int64_t{33});

    const nlohmann::json j = decoding_to_json(o, rows);
    QVERIFY(j.contains("machine") && j["machine"].contains("cpu_threads"));
    QCOMPARE(j["rows"].size(), std::size_t{8});
    for (const char* key : {"method", "tokens", "status", "median_ms", "min_ms", "max_ms", "tokens_per_second",
                            "last_step_us", "state_bytes"})
      QVERIFY2(j["rows"][0].contains(key), key);
  }

  void time_budget_stops_a_run_and_skips_longer_ones() {
    DecodingOptions o;
    o.methods = {"softmax_no_cache", "linear_recurrent"};
    o.tokens = {8, 3000, 6000};
    o.repeats = 1;
    o.time_budget_ms = 200;  // no-cache at 3000 tokens takes seconds; 8 tokens well under 1 ms even on a loaded machine
    const std::vector<DecodingRow> rows = run_decoding(o);
    QCOMPARE(rows[0].status, std::string("ok"));
    QVERIFY2(rows[1].status.rfind("skipped: over the time budget", 0) == 0, rows[1].status.c_str());
    QVERIFY2(rows[2].status.rfind("skipped:", 0) == 0, rows[2].status.c_str());
    QCOMPARE(rows[2].state_bytes, std::int64_t{0});
    for (std::size_t i = 3; i < rows.size(); ++i) QCOMPARE(rows[i].status, std::string("ok"));  // linear fits
  }

  void bad_options_are_refused() {
    const auto with = [](auto change) {
      DecodingOptions o;
      o.methods = {"linear_recurrent"};
      o.tokens = {4};
      o.repeats = 1;
      change(o);
      return o;
    };
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.methods = {"rnn"}; })), "unknown decoding method 'rnn'");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.methods.clear(); })), "at least one method");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.tokens.clear(); })), "at least one token");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.tokens = {0}; })), "tokens=0");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.tokens = {(1 << 20) + 1}; })), "tokens=");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.tokens = {4, 4}; })), "listed twice");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.dim = 0; })), "dim=0");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.heads = 65; })), "heads=65");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.repeats = 0; })), "repeats=0");
    EXPECT_ERROR(ParamError, run_decoding(with([](DecodingOptions& o) { o.time_budget_ms = 0; })), "time_budget_ms=0");
    const Tensor q = random_tensor({1, 4, 8}, 1), v = random_tensor({1, 5, 8}, 2);
    EXPECT_ERROR(ParamError, decode_outputs("rnn", q, q, q, 0), "unknown decoding method");
    EXPECT_ERROR(ShapeError, decode_outputs("softmax_kv_cache", q, q, v, 0), "decoding needs");
  }

  void cancel_stops_the_run() {
    CancelToken token;
    token.cancel();
    DecodingOptions o;
    o.methods = {"softmax_kv_cache"};
    o.tokens = {100};
    o.cancel = &token;
    EXPECT_ERROR(CancelledError, run_decoding(o), "cancelled");
  }
};

QTEST_APPLESS_MAIN(TestDecoding)
#include "test_decoding.moc"
