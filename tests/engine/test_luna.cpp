// Luna against references written here in double precision, from the traced packed sequence P:
// the non-causal pack/unpack, and the causal forms as the reference's cumsum-parallel form
// (materialised prefix sums of outer products). The engine's sequential fast path, its parallel
// traced path, that reference and incremental runs on prefixes agree; permutation equivariance
// (q) and invariance (k, v together; packed values); W·V == out and W = unpack·pack; unit rows;
// causal outputs bit-identical before a changed token; the last causal row equal to the
// non-causal one; padding equal to removing keys; l = 1; parameter errors.
#include <QtTest>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "attention/luna.h"
#include "attention/registry.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;
using attnlab::test::head_rows_identical;
using attnlab::test::max_abs_diff;

namespace {

struct Config {
  std::int64_t pack_len = 8;
  double p_scale = 1.0;
  std::string form = "normalized";
  bool causal = false;
  std::uint64_t seed = 4;
};

using Run = test::VariantRun;

Run run_luna(const Tensor& q, const Tensor& k, const Tensor& v, const Config& c, bool with_trace,
             const std::vector<std::uint8_t>* padding = nullptr) {
  const nlohmann::json params = {{"pack_len", c.pack_len}, {"p_scale", c.p_scale}, {"causal_form", c.form}};
  return test::run_variant("luna", q, k, v, params, {c.causal, c.seed, with_trace, padding});
}

using Mat = std::vector<std::vector<double>>;

Mat rows_of(const Tensor& t, std::int64_t h) {
  Mat m(static_cast<std::size_t>(t.dim(1)), std::vector<double>(static_cast<std::size_t>(t.dim(2))));
  for (std::int64_t i = 0; i < t.dim(1); ++i)
    for (std::int64_t c = 0; c < t.dim(2); ++c) m[static_cast<std::size_t>(i)][static_cast<std::size_t>(c)] = t.at(h, i, c);
  return m;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<double> softmax(const std::vector<double>& x) {
  double top = -1e300;
  for (double v : x) top = std::max(top, v);
  std::vector<double> e(x.size());
  double s = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) s += e[i] = std::exp(x[i] - top);
  for (auto& v : e) v /= s;
  return e;
}

// Non-causal pack and unpack from the definition: output [H, Lq, dv] and W [H, Lq, Lk].
void naive_noncausal(const Tensor& P, const Tensor& q, const Tensor& k, const Tensor& v,
                     const std::vector<std::uint8_t>* padding, std::vector<double>& out, std::vector<double>& w) {
  const auto H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), d = q.dim(2), dv = v.dim(2), l = P.dim(1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  out.assign(static_cast<std::size_t>(H * Lq * dv), 0.0);
  w.assign(static_cast<std::size_t>(H * Lq * Lk), 0.0);
  for (std::int64_t h = 0; h < H; ++h) {
    const Mat pm = rows_of(P, h), km = rows_of(k, h), vm = rows_of(v, h), qm = rows_of(q, h);
    Mat pack(static_cast<std::size_t>(l), std::vector<double>(static_cast<std::size_t>(Lk), 0.0));
    for (std::int64_t p = 0; p < l; ++p) {
      double top = -1e300, s = 0.0;
      for (std::int64_t j = 0; j < Lk; ++j)
        if (!is_key_padded(padding, j)) top = std::max(top, dot(pm[static_cast<std::size_t>(p)], km[static_cast<std::size_t>(j)]) * scale);
      for (std::int64_t j = 0; j < Lk; ++j)
        if (!is_key_padded(padding, j)) s += pack[static_cast<std::size_t>(p)][static_cast<std::size_t>(j)] = std::exp(dot(pm[static_cast<std::size_t>(p)], km[static_cast<std::size_t>(j)]) * scale - top);
      for (auto& x : pack[static_cast<std::size_t>(p)]) x /= s;
    }
    Mat yk(static_cast<std::size_t>(l), std::vector<double>(static_cast<std::size_t>(d), 0.0));
    Mat yv(static_cast<std::size_t>(l), std::vector<double>(static_cast<std::size_t>(dv), 0.0));
    for (std::int64_t p = 0; p < l; ++p)
      for (std::int64_t j = 0; j < Lk; ++j) {
        const double a = pack[static_cast<std::size_t>(p)][static_cast<std::size_t>(j)];
        for (std::int64_t c = 0; c < d; ++c) yk[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] += a * km[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)];
        for (std::int64_t c = 0; c < dv; ++c) yv[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] += a * vm[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)];
      }
    for (std::int64_t i = 0; i < Lq; ++i) {
      std::vector<double> logits(static_cast<std::size_t>(l));
      for (std::int64_t p = 0; p < l; ++p) logits[static_cast<std::size_t>(p)] = dot(qm[static_cast<std::size_t>(i)], yk[static_cast<std::size_t>(p)]) * scale;
      const auto a = softmax(logits);
      for (std::int64_t p = 0; p < l; ++p) {
        for (std::int64_t c = 0; c < dv; ++c) out[static_cast<std::size_t>((h * Lq + i) * dv + c)] += a[static_cast<std::size_t>(p)] * yv[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)];
        for (std::int64_t j = 0; j < Lk; ++j) w[static_cast<std::size_t>((h * Lq + i) * Lk + j)] += a[static_cast<std::size_t>(p)] * pack[static_cast<std::size_t>(p)][static_cast<std::size_t>(j)];
      }
    }
  }
}

// The causal forms as the reference's cumsum-parallel form: per token the outer products
// s_j ⊗ k_j, s_j ⊗ v_j and s_j, their cumulative sums over j (materialised), then every step reads
// its own prefix. Scores exp(g) (normalized, N = Σ s) or softplus_{ln 2}(g) (reference, N = n_t).
std::vector<double> cumsum_causal(const Tensor& P, const Tensor& q, const Tensor& k, const Tensor& v, bool reference,
                                  const std::vector<std::uint8_t>* padding) {
  const auto H = q.dim(0), L = q.dim(1), d = q.dim(2), dv = v.dim(2), l = P.dim(1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> out(static_cast<std::size_t>(H * L * dv), 0.0);
  for (std::int64_t h = 0; h < H; ++h) {
    const Mat pm = rows_of(P, h), km = rows_of(k, h), vm = rows_of(v, h), qm = rows_of(q, h);
    // Per-token outer products [L][l][d], [L][l][dv] and scores [L][l], then cumulative sums.
    std::vector<Mat> ck(static_cast<std::size_t>(L), Mat(static_cast<std::size_t>(l), std::vector<double>(static_cast<std::size_t>(d), 0.0)));
    std::vector<Mat> cv(static_cast<std::size_t>(L), Mat(static_cast<std::size_t>(l), std::vector<double>(static_cast<std::size_t>(dv), 0.0)));
    Mat cs(static_cast<std::size_t>(L), std::vector<double>(static_cast<std::size_t>(l), 0.0));
    std::vector<double> count(static_cast<std::size_t>(L), 0.0);
    for (std::int64_t j = 0; j < L; ++j) {
      if (is_key_padded(padding, j)) continue;
      count[static_cast<std::size_t>(j)] = 1.0;
      for (std::int64_t p = 0; p < l; ++p) {
        const double g = dot(pm[static_cast<std::size_t>(p)], km[static_cast<std::size_t>(j)]) * scale;
        const double s = reference ? std::log1p(std::exp(std::log(2.0) * g)) / std::log(2.0) : std::exp(g);
        cs[static_cast<std::size_t>(j)][static_cast<std::size_t>(p)] = s;
        for (std::int64_t c = 0; c < d; ++c) ck[static_cast<std::size_t>(j)][static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] = s * km[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)];
        for (std::int64_t c = 0; c < dv; ++c) cv[static_cast<std::size_t>(j)][static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] = s * vm[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)];
      }
    }
    for (std::int64_t j = 1; j < L; ++j) {
      const auto u = static_cast<std::size_t>(j), w = static_cast<std::size_t>(j - 1);
      count[u] += count[w];
      for (std::int64_t p = 0; p < l; ++p) {
        const auto pp = static_cast<std::size_t>(p);
        cs[u][pp] += cs[w][pp];
        for (std::int64_t c = 0; c < d; ++c) ck[u][pp][static_cast<std::size_t>(c)] += ck[w][pp][static_cast<std::size_t>(c)];
        for (std::int64_t c = 0; c < dv; ++c) cv[u][pp][static_cast<std::size_t>(c)] += cv[w][pp][static_cast<std::size_t>(c)];
      }
    }
    for (std::int64_t t = 0; t < L; ++t) {
      const auto u = static_cast<std::size_t>(t);
      if (count[u] == 0.0) continue;
      std::vector<double> logits(static_cast<std::size_t>(l)), norm(static_cast<std::size_t>(l));
      for (std::int64_t p = 0; p < l; ++p) {
        const auto pp = static_cast<std::size_t>(p);
        norm[pp] = reference ? count[u] : cs[u][pp];
        logits[pp] = dot(qm[u], ck[u][pp]) / norm[pp] * scale;
      }
      const auto a = softmax(logits);
      for (std::int64_t p = 0; p < l; ++p)
        for (std::int64_t c = 0; c < dv; ++c)
          out[static_cast<std::size_t>((h * L + t) * dv + c)] += a[static_cast<std::size_t>(p)] * cv[u][static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] / norm[static_cast<std::size_t>(p)];
    }
  }
  return out;
}


// The first `rows` rows of every head of x.
Tensor prefix(const Tensor& x, std::int64_t rows) {
  Tensor t({x.dim(0), rows, x.dim(2)});
  for (std::int64_t h = 0; h < x.dim(0); ++h) t.matrix(h) = x.matrix(h).topRows(rows);
  return t;
}

double weights_times_values_error(const Run& run, const Tensor& v) {
  double worst = 0.0;
  for (std::int64_t h = 0; h < v.dim(0); ++h) {
    const RowMatrix wv = run.trace.weights.matrix(h) * v.matrix(h);
    worst = std::max(worst, static_cast<double>((wv - run.out.matrix(h)).cwiseAbs().maxCoeff()));
  }
  return worst;
}

}  // namespace

class TestLuna : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const Params p(Registry::builtin().get("luna").spec().params);
    QCOMPARE(p.get_int("pack_len"), std::int64_t{16});
    QCOMPARE(p.get_float("p_scale"), 1.0);
    QCOMPARE(p.get_choice("causal_form"), std::string("normalized"));
  }

  void noncausal_matches_definition_data() {
    QTest::addColumn<int>("pack_len");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::newRow("l=8") << 8 << false << 50 << 50;
    QTest::newRow("l=1") << 1 << false << 30 << 30;
    QTest::newRow("l=64 padded, cross lengths, 3 key blocks") << 64 << true << 40 << 600;
  }

  void noncausal_matches_definition() {
    QFETCH(int, pack_len);
    QFETCH(bool, padded);
    QFETCH(int, lq);
    QFETCH(int, lk);
    const Tensor q = random_tensor({2, lq, 16}, 1), k = random_tensor({2, lk, 16}, 2), v = random_tensor({2, lk, 8}, 3);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(lk), 0);
    for (int j = 0; j < lk; j += 5) padding[static_cast<std::size_t>(j)] = 1;
    const auto* pad = padded ? &padding : nullptr;
    Config c;
    c.pack_len = pack_len;
    const Run fast = run_luna(q, k, v, c, false, pad), traced = run_luna(q, k, v, c, true, pad);
    std::vector<double> out, w;
    naive_noncausal(traced.data<LunaExtras>().packed_sequence, q, k, v, pad, out, w);
    QVERIFY2(test::max_relative_error(fast.out.data(), out.data(), fast.out.size()) < 1e-5, "fast output");
    QVERIFY2(test::max_relative_error(traced.out.data(), out.data(), traced.out.size()) < 1e-5, "traced output");
    QVERIFY2(test::max_relative_error(traced.trace.weights.data(), w.data(), traced.trace.weights.size()) < 1e-5, "weights");
  }

  // Sequential (fast) == parallel (traced) == the cumsum-parallel reference == incremental runs on
  // prefixes, for both causal forms.
  void causal_forms_agree_data() {
    QTest::addColumn<QString>("form");
    QTest::addColumn<bool>("padded");
    QTest::newRow("normalized") << "normalized" << false;
    QTest::newRow("normalized padded") << "normalized" << true;
    QTest::newRow("reference") << "reference" << false;
    QTest::newRow("reference padded") << "reference" << true;
  }

  void causal_forms_agree() {
    QFETCH(QString, form);
    QFETCH(bool, padded);
    const std::int64_t L = 300;  // two blocks of the sequential form
    const Tensor q = random_tensor({2, L, 16}, 11), k = random_tensor({2, L, 16}, 12), v = random_tensor({2, L, 8}, 13);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(L), 0);
    padding[0] = padding[1] = 1;  // the first two queries see nothing
    for (std::int64_t j = 10; j < L; j += 9) padding[static_cast<std::size_t>(j)] = 1;
    const auto* pad = padded ? &padding : nullptr;
    Config c;
    c.form = form.toStdString();
    c.causal = true;
    const Run sequential = run_luna(q, k, v, c, false, pad), parallel = run_luna(q, k, v, c, true, pad);
    const std::vector<double> ref = cumsum_causal(parallel.data<LunaExtras>().packed_sequence, q, k, v, c.form == "reference", pad);
    const double seq_err = test::max_relative_error(sequential.out.data(), ref.data(), sequential.out.size());
    const double par_err = test::max_relative_error(parallel.out.data(), ref.data(), parallel.out.size());
    QVERIFY2(seq_err < 1e-5, qPrintable(QString("sequential %1").arg(seq_err)));
    QVERIFY2(par_err < 1e-5, qPrintable(QString("parallel %1").arg(par_err)));
    QVERIFY(max_abs_diff(sequential.out, parallel.out) < 1e-5);
    if (padded)
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < 2; ++i)
          for (std::int64_t cc = 0; cc < 8; ++cc) QCOMPARE(sequential.out.at(h, i, cc), 0.0f);
    // Incremental: running on the prefix 0..t gives token t the same output.
    for (std::int64_t t : {std::int64_t{2}, std::int64_t{17}, std::int64_t{255}, std::int64_t{256}, L - 1}) {
      std::vector<std::uint8_t> pad_prefix(padding.begin(), padding.begin() + t + 1);
      const Run inc = run_luna(prefix(q, t + 1), prefix(k, t + 1), prefix(v, t + 1), c, false, padded ? &pad_prefix : nullptr);
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t cc = 0; cc < 8; ++cc) QVERIFY(std::abs(inc.out.at(h, t, cc) - sequential.out.at(h, t, cc)) < 1e-6f);
    }
  }

  // Non-causal Luna (no positions): permuting k and v together changes no output and no packed
  // value; permuting q permutes the output rows.
  void noncausal_permutation_equivariance() {
    const std::int64_t L = 70;
    const Tensor q = random_tensor({2, L, 16}, 21), k = random_tensor({2, L, 16}, 22), v = random_tensor({2, L, 8}, 23);
    const auto perm = [&](std::int64_t i) { return (i * 31 + 7) % L; };
    Tensor qp = q, kp = k, vp = v;
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t i = 0; i < L; ++i) {
        qp.matrix(h).row(i) = q.matrix(h).row(perm(i));
        kp.matrix(h).row(i) = k.matrix(h).row(perm(i));
        vp.matrix(h).row(i) = v.matrix(h).row(perm(i));
      }
    for (bool traced : {false, true}) {
      const Run base = run_luna(q, k, v, Config{}, traced);
      const Run keys = run_luna(q, kp, vp, Config{}, traced);
      QVERIFY2(max_abs_diff(base.out, keys.out) < 1e-5, qPrintable(QString::number(max_abs_diff(base.out, keys.out))));
      if (traced) {
        QVERIFY(max_abs_diff(base.data<LunaExtras>().packed_values, keys.data<LunaExtras>().packed_values) < 1e-5);
        QVERIFY(max_abs_diff(base.data<LunaExtras>().packed_keys, keys.data<LunaExtras>().packed_keys) < 1e-5);
        for (std::int64_t p = 0; p < 8; ++p)
          for (std::int64_t i = 0; i < L; ++i) QVERIFY(std::abs(keys.data<LunaExtras>().pack_map.at(1, p, i) - base.data<LunaExtras>().pack_map.at(1, p, perm(i))) < 1e-6f);
      }
      const Run queries = run_luna(qp, k, v, Config{}, traced);
      double worst = 0.0;
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < L; ++i)
          worst = std::max(worst, static_cast<double>((queries.out.matrix(h).row(i) - base.out.matrix(h).row(perm(i))).cwiseAbs().maxCoeff()));
      QVERIFY(worst < 1e-5);
    }
  }

  // W·V == out everywhere; W = unpack · pack (non-causal); rows of W, of the pack map and of the
  // unpack map sum to 1 (except causal "reference", whose W rows average by 1/t); hidden keys 0.
  void implied_matrix() {
    const std::int64_t L = 80;
    const Tensor q = random_tensor({2, L, 16}, 31), k = random_tensor({2, L, 16}, 32), v = random_tensor({2, L, 8}, 33);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(L), 0);
    padding[4] = padding[50] = 1;
    for (bool causal : {false, true})
      for (const char* form : {"normalized", "reference"}) {
        Config c;
        c.causal = causal;
        c.form = form;
        const Run run = run_luna(q, k, v, c, true, &padding);
        const auto& e = run.data<LunaExtras>();
        QVERIFY2(weights_times_values_error(run, v) < 1e-5, qPrintable(QString("causal=%1 %2").arg(causal).arg(form)));
        const bool stochastic = !(causal && std::string(form) == "reference");
        double off_one = 0.0;
        for (std::int64_t h = 0; h < 2; ++h) {
          for (std::int64_t i = 0; i < L; ++i) {
            double sum = 0.0;
            for (std::int64_t j = 0; j < L; ++j) {
              const float w = run.trace.weights.at(h, i, j);
              if ((causal && j > i) || padding[static_cast<std::size_t>(j)]) QCOMPARE(w, 0.0f);
              QVERIFY(w >= 0.0f);
              sum += w;
            }
            if (stochastic) QVERIFY2(std::abs(sum - 1.0) < 1e-5, qPrintable(QString::number(sum)));
            off_one = std::max(off_one, std::abs(sum - 1.0));
            QVERIFY(std::abs(e.unpack_map.matrix(h).row(i).sum() - 1.0f) < 1e-5f);
          }
          if (stochastic)
            for (std::int64_t p = 0; p < 8; ++p) QVERIFY(std::abs(e.pack_map.matrix(h).row(p).sum() - 1.0f) < 1e-5f);
          if (!causal) {
            const RowMatrix composed = e.unpack_map.matrix(h) * e.pack_map.matrix(h);
            QVERIFY((composed - run.trace.weights.matrix(h)).cwiseAbs().maxCoeff() < 1e-6f);
          }
        }
        if (!stochastic) QVERIFY(off_one > 1e-3);  // the 1/t averages really do not normalise
      }
  }

  // Changing token j leaves the outputs before j bit-identical (sequential form, both causal forms).
  void causal_never_looks_ahead() {
    const std::int64_t L = 300;
    const Tensor q = random_tensor({2, L, 16}, 41), k = random_tensor({2, L, 16}, 42), v = random_tensor({2, L, 8}, 43);
    for (const char* form : {"normalized", "reference"})
      for (std::int64_t j : {std::int64_t{0}, std::int64_t{1}, std::int64_t{100}, std::int64_t{256}, L - 1}) {
        Tensor q2 = q, k2 = k, v2 = v;
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t c = 0; c < 16; ++c) {
            q2.at(h, j, c) += 1.0f;
            k2.at(h, j, c) = 8.0f;  // large: raises the running maximum of every slot
            if (c < 8) v2.at(h, j, c) -= 3.0f;
          }
        Config c;
        c.causal = true;
        c.form = form;
        const Run a = run_luna(q, k, v, c, false), b = run_luna(q2, k2, v2, c, false);
        for (std::int64_t h = 0; h < 2; ++h) QVERIFY2(head_rows_identical(a.out, b.out, h, j), qPrintable(QString("%1 j=%2").arg(form).arg(j)));
        QVERIFY(max_abs_diff(a.out, b.out) > 1e-4);
      }
  }

  // Causal "normalized" at the last token packs the whole sequence: its output is the non-causal one.
  void last_causal_row_is_noncausal() {
    const std::int64_t L = 120;
    const Tensor q = random_tensor({2, L, 16}, 51), k = random_tensor({2, L, 16}, 52), v = random_tensor({2, L, 8}, 53);
    Config c;
    const Run full = run_luna(q, k, v, c, false);
    c.causal = true;
    const Run causal = run_luna(q, k, v, c, false);
    for (std::int64_t h = 0; h < 2; ++h)
      QVERIFY((causal.out.matrix(h).row(L - 1) - full.out.matrix(h).row(L - 1)).cwiseAbs().maxCoeff() < 1e-5f);
  }

  // Padded keys are the same as keys that are not there; l = 1 gives every query the same output.
  void padding_and_single_slot() {
    const Tensor q = random_tensor({2, 30, 16}, 61), k = random_tensor({2, 40, 16}, 62), v = random_tensor({2, 40, 8}, 63);
    std::vector<std::uint8_t> padding(40, 0);
    Tensor k_kept({2, 30, 16}), v_kept({2, 30, 8});
    std::int64_t kept = 0;
    for (std::int64_t j = 0; j < 40; ++j) {
      if (j % 4 == 1) {
        padding[static_cast<std::size_t>(j)] = 1;
        continue;
      }
      for (std::int64_t h = 0; h < 2; ++h) {
        k_kept.matrix(h).row(kept) = k.matrix(h).row(j);
        v_kept.matrix(h).row(kept) = v.matrix(h).row(j);
      }
      ++kept;
    }
    QCOMPARE(kept, std::int64_t{30});
    for (bool traced : {false, true}) {
      const Run a = run_luna(q, k, v, Config{}, traced, &padding), b = run_luna(q, k_kept, v_kept, Config{}, traced);
      QVERIFY(max_abs_diff(a.out, b.out) < 1e-5);
    }
    Config one;
    one.pack_len = 1;
    const Run single = run_luna(q, k, v, one, false);
    for (std::int64_t i = 1; i < 30; ++i) QVERIFY((single.out.matrix(0).row(i) - single.out.matrix(0).row(0)).cwiseAbs().maxCoeff() < 1e-6f);
    // Everything padded: zeros, no NaN.
    std::vector<std::uint8_t> all(40, 1);
    for (bool causal : {false}) {
      Config c;
      c.causal = causal;
      for (bool traced : {false, true}) {
        const Run none = run_luna(q, k, v, c, traced, &all);
        for (std::int64_t i = 0; i < none.out.size(); ++i) QCOMPARE(none.out.data()[i], 0.0f);
      }
    }
  }

  void seeded_packed_sequence() {
    const Tensor q = random_tensor({2, 10, 8}, 71), k = random_tensor({2, 10, 8}, 72), v = random_tensor({2, 10, 4}, 73);
    Config c;
    c.p_scale = 2.0;
    const Run a = run_luna(q, k, v, c, true), b = run_luna(q, k, v, c, true);
    QVERIFY(max_abs_diff(a.data<LunaExtras>().packed_sequence, b.data<LunaExtras>().packed_sequence) == 0.0);
    QCOMPARE(a.data<LunaExtras>().packed_sequence.shape(), (Shape{2, 8, 8}));
    double sq = 0.0;
    for (std::int64_t i = 0; i < a.data<LunaExtras>().packed_sequence.size(); ++i) sq += std::pow(a.data<LunaExtras>().packed_sequence.data()[i], 2);
    QVERIFY(std::abs(std::sqrt(sq / 128.0) - 2.0) < 0.5);  // entries N(0, p_scale²)
    c.seed = 5;
    QVERIFY(max_abs_diff(a.data<LunaExtras>().packed_sequence, run_luna(q, k, v, c, true).data<LunaExtras>().packed_sequence) > 0.1);
    QVERIFY(a.trace.extras->to_json().at("unpack_map").size() == 2);
  }

  void parameter_errors_name_the_range() {
    Params p(Registry::builtin().get("luna").spec().params);
    EXPECT_ERROR(ParamError, p.set("pack_len", std::int64_t{0}), "pack_len");
    EXPECT_ERROR(ParamError, p.set("pack_len", std::int64_t{257}), "256");
    EXPECT_ERROR(ParamError, p.set("causal_form", std::string("elu")), "causal_form");
  }
};

QTEST_GUILESS_MAIN(TestLuna)
#include "test_luna.moc"
