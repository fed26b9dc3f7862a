// Linear attention (elu + 1) against independent references written here in double precision:
// the quadratic masked form (φQφKᵀ ⊙ mask, normalised) equals the chunked prefix-sum and the
// recurrent forms, through the variant and through the public kernel functions (also with key
// log scales spanning many orders of magnitude, as performer uses them); implied weights are
// non-negative with rows summing to 1 when ε = 0; non-causal output is invariant to permuting
// the keys; causal outputs before token j are bit-identical when token j changes; padded keys
// get exactly 0 weight; recurrent state snapshots equal running sums computed here; the fast
// path at L = 64k runs in memory far below L·d·dv; parameter errors name the range.
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "attention/feature_maps.h"
#include "attention/linear.h"
#include "attention/registry.h"
#include "core/memory_meter.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::padding_every;
using attnlab::test::random_tensor;
using attnlab::test::head_rows_identical;
using attnlab::test::key_visible;
using attnlab::test::max_relative_error;

namespace {

using Run = test::VariantRun;

Run run_linear(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, const std::string& form, double eps,
               bool with_trace, const std::vector<std::uint8_t>* padding = nullptr) {
  return test::run_variant("linear", q, k, v, {{"form", form}, {"eps", eps}}, {causal, 7, with_trace, padding});
}

double elu1(double x) { return x > 0.0 ? x + 1.0 : std::exp(x); }

struct Reference {
  std::vector<double> weights;  // [H, Lq, Lk]
  std::vector<double> out;      // [H, Lq, dv]
};

// The quadratic form in double: κ_ij = e^{g_j} φq_i·φk_j on visible pairs, A = κ / (Σκ + eps), out = A V.
// phi_q / phi_k: [H, L, F] in double; g: [H, Lk] or empty.
Reference quadratic(const std::vector<double>& phi_q, const std::vector<double>& phi_k, const std::vector<double>& g,
                    const Tensor& v, std::int64_t H, std::int64_t Lq, std::int64_t Lk, std::int64_t F, bool causal,
                    double eps, const std::vector<std::uint8_t>* padding) {
  const std::int64_t dv = v.dim(2);
  Reference r{std::vector<double>(static_cast<std::size_t>(H * Lq * Lk), 0.0),
              std::vector<double>(static_cast<std::size_t>(H * Lq * dv), 0.0)};
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < Lq; ++i) {
      double total = 0.0;
      std::vector<double> kappa(static_cast<std::size_t>(Lk), 0.0);
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!key_visible(i, j, causal, padding)) continue;
        double dot = 0.0;
        for (std::int64_t f = 0; f < F; ++f)
          dot += phi_q[static_cast<std::size_t>((h * Lq + i) * F + f)] * phi_k[static_cast<std::size_t>((h * Lk + j) * F + f)];
        kappa[static_cast<std::size_t>(j)] = dot * (g.empty() ? 1.0 : std::exp(g[static_cast<std::size_t>(h * Lk + j)]));
        total += kappa[static_cast<std::size_t>(j)];
      }
      if (total + eps <= 0.0) continue;
      for (std::int64_t j = 0; j < Lk; ++j) {
        const double a = kappa[static_cast<std::size_t>(j)] / (total + eps);
        r.weights[static_cast<std::size_t>((h * Lq + i) * Lk + j)] = a;
        for (std::int64_t c = 0; c < dv; ++c) r.out[static_cast<std::size_t>((h * Lq + i) * dv + c)] += a * v.at(h, j, c);
      }
    }
  return r;
}

std::vector<double> elu1_of(const Tensor& x) {
  std::vector<double> out(static_cast<std::size_t>(x.size()));
  for (std::int64_t i = 0; i < x.size(); ++i) out[static_cast<std::size_t>(i)] = elu1(x.data()[i]);
  return out;
}

Reference elu_reference(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double eps,
                        const std::vector<std::uint8_t>* padding) {
  return quadratic(elu1_of(q), elu1_of(k), {}, v, q.dim(0), q.dim(1), k.dim(1), q.dim(2), causal, eps, padding);
}

}  // namespace

class TestLinear : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const Attention& variant = Registry::builtin().get("linear");
    QCOMPARE(variant.spec().name, std::string("linear"));
    const Params p(variant.spec().params);
    QCOMPARE(p.get_float("eps"), 1e-6);
    QCOMPARE(p.get_choice("form"), std::string("prefix"));
  }

  // quadratic masked == prefix sums == recurrent, fast and traced, over lengths that do and do
  // not fill whole chunks, with and without padding.
  void forms_match_quadratic_reference_data() {
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::addColumn<double>("eps");
    QTest::newRow("causal 37") << true << false << 37 << 37 << 1e-6;
    QTest::newRow("causal 200 eps 0") << true << false << 200 << 200 << 0.0;
    QTest::newRow("causal 129 padded") << true << true << 129 << 129 << 1e-6;
    QTest::newRow("non-causal 150") << false << false << 150 << 150 << 1e-6;
    QTest::newRow("non-causal cross 40x170 padded") << false << true << 40 << 170 << 1e-3;
  }

  void forms_match_quadratic_reference() {
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    QFETCH(int, lq);
    QFETCH(int, lk);
    QFETCH(double, eps);
    const Tensor q = random_tensor({3, lq, 8}, 1), k = random_tensor({3, lk, 8}, 2), v = random_tensor({3, lk, 5}, 3);
    const auto padding = padding_every(lk, 5, 2);
    const auto* pad = padded ? &padding : nullptr;
    const Reference ref = elu_reference(q, k, v, causal, eps, pad);
    for (const char* form : {"prefix", "recurrent"}) {
      const Run fast = run_linear(q, k, v, causal, form, eps, false, pad);
      const Run traced = run_linear(q, k, v, causal, form, eps, true, pad);
      QVERIFY2(max_relative_error(fast.out, ref.out) < 1e-5, qPrintable(QString("%1 fast: %2").arg(form).arg(max_relative_error(fast.out, ref.out))));
      QVERIFY2(max_relative_error(traced.out, ref.out) < 1e-5, form);
      QVERIFY2(max_relative_error(traced.trace.weights, ref.weights) < 1e-5, form);
      for (std::int64_t i = 0; i < fast.out.size(); ++i) QCOMPARE(traced.out.data()[i], fast.out.data()[i]);
    }
  }

  // The public kernel with key log scales from −60 to 60: chunked (causal and not), recurrent and
  // dense weights all equal the double-precision quadratic form in which e^{g} is applied as is.
  void kernel_with_log_scales_matches_reference() {
    const std::int64_t H = 2, L = 150, F = 6, dv = 4;
    Tensor phi_q = random_tensor({H, L, F}, 11), phi_k = random_tensor({H, L, F}, 12);
    for (Tensor* t : {&phi_q, &phi_k})
      for (std::int64_t i = 0; i < t->size(); ++i) t->data()[i] = std::exp(0.5f * t->data()[i]);  // positive
    Tensor g({H, L});
    Rng rng(13);
    for (std::int64_t i = 0; i < g.size(); ++i) g.data()[i] = static_cast<float>(rng.uniform(-60.0, 60.0));
    const Tensor v = random_tensor({H, L, dv}, 14);
    const auto padding = padding_every(L, 5, 2);
    std::vector<double> pq(phi_q.data(), phi_q.data() + phi_q.size()), pk(phi_k.data(), phi_k.data() + phi_k.size());
    std::vector<double> gd(g.data(), g.data() + g.size());
    for (bool causal : {false, true})
      for (bool padded : {false, true}) {
        const auto* pad = padded ? &padding : nullptr;
        const Reference ref = quadratic(pq, pk, gd, v, H, L, L, F, causal, 0.0, pad);
        const KernelFeatures f{phi_q, phi_k, g};
        LinearAttentionOptions o;
        o.causal = causal;
        o.key_padding = pad;
        const QString what = QString("causal %1 padded %2").arg(causal).arg(padded);
        QVERIFY2(max_relative_error(linear_attention_chunked(f, v, o), ref.out) < 1e-5, qPrintable(what));
        QVERIFY2(max_relative_error(linear_attention_weights(f, o), ref.weights) < 1e-5, qPrintable(what));
        if (causal) QVERIFY2(max_relative_error(linear_attention_recurrent(f, v, o), ref.out) < 1e-5, qPrintable(what));
      }
  }

  void recurrent_form_needs_causal() {
    const Tensor x = random_tensor({1, 4, 3}, 1);
    const KernelFeatures f{elu_plus_one(x), elu_plus_one(x), Tensor()};
    EXPECT_ERROR(ParamError, linear_attention_recurrent(f, x, LinearAttentionOptions{}), "causal");
    // The variant ignores `form` when not causal.
    const Run run = run_linear(x, x, x, false, "recurrent", 1e-6, false);
    QCOMPARE(run.out.shape(), (Shape{1, 4, 3}));
  }

  // ε = 0: implied weights >= 0, rows sum to 1, hidden keys exactly 0; out = A·V.
  void weights_are_a_distribution() {
    const Tensor q = random_tensor({2, 70, 8}, 21, 2.0f), k = random_tensor({2, 70, 8}, 22, 2.0f), v = random_tensor({2, 70, 6}, 23);
    const auto padding = padding_every(70, 5, 2);
    for (bool causal : {false, true}) {
      const Run run = run_linear(q, k, v, causal, "prefix", 0.0, true, &padding);
      const Tensor& w = run.trace.weights;
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < 70; ++i) {
          double sum = 0.0;
          for (std::int64_t j = 0; j < 70; ++j) {
            QVERIFY(w.at(h, i, j) >= 0.0f);
            if (!key_visible(i, j, causal, &padding)) QCOMPARE(w.at(h, i, j), 0.0f);
            sum += w.at(h, i, j);
          }
          // Key 0 is never padded, so every row has a visible key.
          QVERIFY2(std::abs(sum - 1.0) < 1e-5, qPrintable(QString("row %1 sums to %2").arg(i).arg(sum)));
          for (std::int64_t c = 0; c < 6; ++c) {
            double o = 0.0;
            for (std::int64_t j = 0; j < 70; ++j) o += static_cast<double>(w.at(h, i, j)) * v.at(h, j, c);
            QVERIFY(std::abs(o - run.out.at(h, i, c)) < 1e-5 * std::max(1.0, std::abs(o)));
          }
        }
    }
    // With ε > 0 the rows fall short of 1 by ε / (denominator + ε): the matrix actually applied.
    const Run run = run_linear(q, k, v, false, "prefix", 0.5, true);
    const LinearExtras& e = run.extras<LinearExtras>();
    for (std::int64_t i = 0; i < 70; ++i) {
      double sum = 0.0;
      for (std::int64_t j = 0; j < 70; ++j) sum += run.trace.weights.at(0, i, j);
      const double n = e.data().normalizer.at(0, i);
      QVERIFY(std::abs(sum - n / (n + 0.5)) < 1e-5);
    }
  }

  // Non-causal: permuting keys and values together leaves every output unchanged.
  void noncausal_invariant_to_key_permutation() {
    const Tensor q = random_tensor({2, 30, 8}, 31), k = random_tensor({2, 90, 8}, 32), v = random_tensor({2, 90, 5}, 33);
    std::vector<std::int64_t> perm(90);
    std::iota(perm.begin(), perm.end(), 0);
    Rng rng(34);
    for (std::int64_t i = 89; i > 0; --i) std::swap(perm[static_cast<std::size_t>(i)], perm[rng.below(static_cast<std::uint64_t>(i + 1))]);
    Tensor kp = k, vp = v;
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t j = 0; j < 90; ++j) {
        kp.matrix(h).row(j) = k.matrix(h).row(perm[static_cast<std::size_t>(j)]);
        vp.matrix(h).row(j) = v.matrix(h).row(perm[static_cast<std::size_t>(j)]);
      }
    const Run a = run_linear(q, k, v, false, "prefix", 1e-6, false);
    const Run b = run_linear(q, kp, vp, false, "prefix", 1e-6, false);
    for (std::int64_t i = 0; i < a.out.size(); ++i)
      QVERIFY(std::abs(a.out.data()[i] - b.out.data()[i]) < 1e-5f * std::max(1.0f, std::abs(a.out.data()[i])));
  }

  // Changing token j (its query, key and value) leaves every output before j bit-identical, in
  // both causal forms and in the trace.
  void causal_never_looks_ahead() {
    const std::int64_t L = 200;
    const Tensor q = random_tensor({2, L, 8}, 41), k = random_tensor({2, L, 8}, 42), v = random_tensor({2, L, 5}, 43);
    for (std::int64_t j : {0, 63, 64, 130, 199}) {
      Tensor q2 = q, k2 = k, v2 = v;
      for (std::int64_t h = 0; h < 2; ++h) {
        q2.matrix(h).row(j).array() += 3.0f;
        k2.matrix(h).row(j).array() -= 2.0f;
        v2.matrix(h).row(j).array() *= -7.0f;
      }
      for (const char* form : {"prefix", "recurrent"})
        for (bool traced : {false, true}) {
          const Run a = run_linear(q, k, v, true, form, 1e-6, traced);
          const Run b = run_linear(q2, k2, v2, true, form, 1e-6, traced);
          for (std::int64_t h = 0; h < 2; ++h) {
            QVERIFY2(head_rows_identical(a.out, b.out, h, j), qPrintable(QString("%1 token %2").arg(form).arg(j)));
            if (traced) QVERIFY(head_rows_identical(a.trace.weights, b.trace.weights, h, j));
          }
          bool changed = false;
          for (std::int64_t c = 0; c < 5; ++c) changed |= a.out.at(0, j, c) != b.out.at(0, j, c);
          QVERIFY(changed);
        }
    }
  }

  // Values of padded keys have no influence at all.
  void padded_keys_have_no_influence() {
    const Tensor q = random_tensor({1, 80, 8}, 51), k = random_tensor({1, 80, 8}, 52), v = random_tensor({1, 80, 4}, 53);
    const auto padding = padding_every(80, 5, 2);
    Tensor k2 = k, v2 = v;
    for (std::int64_t j = 2; j < 80; j += 5) {
      k2.matrix(0).row(j).array() += 5.0f;
      v2.matrix(0).row(j).array() = 100.0f;
    }
    for (bool causal : {false, true}) {
      const Run a = run_linear(q, k, v, causal, "prefix", 1e-6, true, &padding);
      const Run b = run_linear(q, k2, v2, causal, "prefix", 1e-6, true, &padding);
      for (std::int64_t i = 0; i < a.out.size(); ++i) QCOMPARE(a.out.data()[i], b.out.data()[i]);
    }
    // Every key padded: output 0, weight rows 0.
    const std::vector<std::uint8_t> all(80, 1);
    const Run run = run_linear(q, k, v, false, "prefix", 1e-6, true, &all);
    for (std::int64_t i = 0; i < run.out.size(); ++i) QCOMPARE(run.out.data()[i], 0.0f);
    for (std::int64_t i = 0; i < run.trace.weights.size(); ++i) QCOMPARE(run.trace.weights.data()[i], 0.0f);
  }

  // The snapshots are S_t = Σ_{j<=t} φ(k_j) v_jᵀ and z_t = Σ φ(k_j), summed here in double.
  void recurrent_states_are_running_sums() {
    const std::int64_t H = 2, L = 90, d = 6, dv = 4;
    const Tensor q = random_tensor({H, L, d}, 61), k = random_tensor({H, L, d}, 62), v = random_tensor({H, L, dv}, 63);
    const auto padding = padding_every(L, 5, 2);
    const Run run = run_linear(q, k, v, true, "prefix", 1e-6, true, &padding);
    const LinearExtras& e = run.extras<LinearExtras>();
    QCOMPARE(e.kind(), std::string_view("linear"));
    const RecurrentStates& s = e.recurrent();
    QCOMPARE(s.steps, RecurrentStates::snapshot_steps(L));
    QCOMPARE(s.states.shape(), (Shape{H, L, d, dv}));
    QCOMPARE(s.normalizers.shape(), (Shape{H, L, d}));
    QVERIFY(!s.state_formula.empty() && !s.key_axis.empty() && !s.value_axis.empty());
    QCOMPARE(e.data().query_features.shape(), (Shape{H, L, d}));
    for (std::int64_t h = 0; h < H; ++h) {
      std::vector<double> S(static_cast<std::size_t>(d * dv), 0.0), z(static_cast<std::size_t>(d), 0.0);
      for (std::int64_t t = 0; t < L; ++t) {
        if (!padding[static_cast<std::size_t>(t)])
          for (std::int64_t a = 0; a < d; ++a) {
            const double phi = elu1(k.at(h, t, a));
            z[static_cast<std::size_t>(a)] += phi;
            for (std::int64_t c = 0; c < dv; ++c) S[static_cast<std::size_t>(a * dv + c)] += phi * v.at(h, t, c);
          }
        for (std::int64_t a = 0; a < d; ++a) {
          QVERIFY(std::abs(s.normalizers.data()[(h * L + t) * d + a] - z[static_cast<std::size_t>(a)]) < 1e-4);
          for (std::int64_t c = 0; c < dv; ++c)
            QVERIFY(std::abs(s.states.data()[((h * L + t) * d + a) * dv + c] - S[static_cast<std::size_t>(a * dv + c)]) < 1e-4);
        }
        // Padded keys show as zero feature rows; others are elu + 1.
        for (std::int64_t a = 0; a < d; ++a) {
          const float expected = padding[static_cast<std::size_t>(t)] ? 0.0f : static_cast<float>(elu1(k.at(h, t, a)));
          QVERIFY(std::abs(e.data().key_features.at(h, t, a) - expected) < 1e-6f);
        }
      }
    }
    const nlohmann::json j = e.to_json();
    QCOMPARE(j["kind"].get<std::string>(), std::string("linear"));
    QCOMPARE(j["states"]["steps"].size(), std::size_t(L));
    QCOMPARE(j["states"]["last_state"].size(), std::size_t(H));
  }

  // Long inputs keep fewer snapshots, evenly spaced and ending at the last token.
  void snapshots_fit_the_budget() {
    const auto steps = budgeted_snapshot_steps(5000, 8, 64 * 64);
    const std::int64_t expected = kStateBudgetFloats / (8 * 64 * 64);
    QCOMPARE(static_cast<std::int64_t>(steps.size()), expected);
    QCOMPARE(steps.back(), std::int64_t{4999});
    QVERIFY(std::is_sorted(steps.begin(), steps.end()));
    QCOMPARE(budgeted_snapshot_steps(300, 1, 16), RecurrentStates::snapshot_steps(300));
    QCOMPARE(budgeted_snapshot_steps(10, 1000, 1 << 20), std::vector<std::int64_t>{9});
  }

  // L = 64k, causal, fast path: runs without an L·d·dv buffer (which would be 256 MiB here), and
  // its last output equals the recurrence run here in double.
  void long_sequence_fast_path() {
    const std::int64_t L = 65536, d = 32, dv = 32;
    const Tensor q = random_tensor({1, L, d}, 71, 0.5f), k = random_tensor({1, L, d}, 72, 0.5f), v = random_tensor({1, L, dv}, 73);
    memory::reset_peak();
    const std::int64_t before = memory::current_bytes();
    const Run run = run_linear(q, k, v, true, "prefix", 1e-6, false);
    const std::int64_t peak = memory::peak_bytes() - before;
    const std::int64_t full_prefix = L * d * dv * 4;
    QVERIFY2(peak < full_prefix / 8, qPrintable(QString("peak %1 bytes").arg(peak)));
    std::vector<double> S(static_cast<std::size_t>(d * dv), 0.0), z(static_cast<std::size_t>(d), 0.0);
    for (std::int64_t t = 0; t < L; ++t)
      for (std::int64_t a = 0; a < d; ++a) {
        const double phi = elu1(k.at(0, t, a));
        z[static_cast<std::size_t>(a)] += phi;
        for (std::int64_t c = 0; c < dv; ++c) S[static_cast<std::size_t>(a * dv + c)] += phi * v.at(0, t, c);
      }
    double den = 1e-6;
    std::vector<double> num(static_cast<std::size_t>(dv), 0.0);
    for (std::int64_t a = 0; a < d; ++a) {
      const double phi = elu1(q.at(0, L - 1, a));
      den += phi * z[static_cast<std::size_t>(a)];
      for (std::int64_t c = 0; c < dv; ++c) num[static_cast<std::size_t>(c)] += phi * S[static_cast<std::size_t>(a * dv + c)];
    }
    for (std::int64_t c = 0; c < dv; ++c)
      QVERIFY(std::abs(run.out.at(0, L - 1, c) - num[static_cast<std::size_t>(c)] / den) < 1e-4);
  }

  void parameter_errors_name_the_range() {
    Params p(Registry::builtin().get("linear").spec().params);
    EXPECT_ERROR(ParamError, p.set("eps", 2.0), "eps");
    EXPECT_ERROR(ParamError, p.set("form", std::string("cumsum")), "form");
  }
};

QTEST_GUILESS_MAIN(TestLinear)
#include "test_linear.moc"
