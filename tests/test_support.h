// Small helpers shared by the test suites.
#pragma once

#include <QString>
#include <QTest>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention/registry.h"
#include "core/error.h"
#include "core/memory_meter.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace attnlab::test {

// A tensor of the given shape with Normal(0, 1) entries from `seed`.
inline Tensor random_tensor(Shape shape, std::uint64_t seed, float stddev = 1.0f) {
  Tensor t(std::move(shape));
  Rng rng(seed);
  rng.fill_normal(t, 0.0f, stddev);
  return t;
}

// Runs `f`, expecting an exception of type E; returns its message ("" if none was thrown, or
// "<wrong type: ...>" when another exception came).
template <typename E>
std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<wrong type: ") + e.what() + ">";
  }
  return "";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Largest |a - b| / max(1, |b|) over all elements; shapes must match.
inline double max_relative_error(const float* a, const double* b, std::int64_t n) {
  double worst = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double denom = std::max(1.0, std::abs(b[i]));
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / denom);
  }
  return worst;
}

// The same for a tensor against a reference of as many doubles.
inline double max_relative_error(const Tensor& actual, const std::vector<double>& reference) {
  return max_relative_error(actual.data(), reference.data(), actual.size());
}

// The variant's hyperparameters: its defaults with `values` (a JSON object) set over them.
inline Params params_of(const std::string& variant, const nlohmann::json& values) {
  Params p(Registry::builtin().get(variant).spec().params);
  p.set_from_json(values);
  return p;
}

// ---- running one registered variant ------------------------------------------------------------

// How run_variant calls the variant besides its inputs and parameters.
struct VariantCall {
  bool causal = false;
  std::uint64_t seed = 0;
  bool with_trace = false;                               // else the fast path (trace stays empty)
  const std::vector<std::uint8_t>* padding = nullptr;  // [Lk]; nonzero = padded key
};

// A variant's output and, when asked for, its trace.
struct VariantRun {
  Tensor out;
  Trace trace;
  // The typed trace extras (E = LinearExtras, LunaExtras, ...); throws std::bad_cast for another kind.
  template <class E>
  const E& extras() const {
    return dynamic_cast<const E&>(*trace.extras);
  }
  template <class E>
  const typename E::Data& data() const {
    return extras<E>().data();
  }
};

// Runs the registered variant `name` on q [H, Lq, d], k [H, Lk, d], v [H, Lk, dv] with its default
// parameters overridden by `params` (a JSON object, or null for none; bad values throw ParamError
// as in the CLI).
inline VariantRun run_variant(const std::string& name, const Tensor& q, const Tensor& k, const Tensor& v,
                              const nlohmann::json& params, const VariantCall& call) {
  const Attention& variant = Registry::builtin().get(name);
  const Params p = params_of(name, params.is_null() ? nlohmann::json::object() : params);
  VariantRun run;
  run.out = run_attention(variant, AttentionInput{q, k, v, call.causal, call.padding, &p, call.seed},
                          call.with_trace ? &run.trace : nullptr);
  return run;
}

// Whether query i may attend to key j: not padded, and j <= i when causal.
inline bool key_visible(std::int64_t i, std::int64_t j, bool causal, const std::vector<std::uint8_t>* padding) {
  return !(causal && j > i) && !is_key_padded(padding, j);
}

// ---- comparing tensors -------------------------------------------------------------------------

// Largest |a - b| over all elements (same number of elements).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  double worst = 0.0;
  for (std::int64_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a.data()[i]) - b.data()[i]));
  return worst;
}

// Whether the first `rows` rows of head h of two [H, L, c] tensors are bit-identical.
inline bool head_rows_identical(const Tensor& a, const Tensor& b, std::int64_t h, std::int64_t rows) {
  const std::int64_t head = a.dim(1) * a.dim(2);
  return std::memcmp(a.data() + h * head, b.data() + h * head,
                     static_cast<std::size_t>(rows * a.dim(2)) * sizeof(float)) == 0;
}

// Key padding with every `period`-th key padded, starting at `first` (1 = padded).
inline std::vector<std::uint8_t> padding_every(std::int64_t length, std::int64_t period, std::int64_t first) {
  std::vector<std::uint8_t> p(static_cast<std::size_t>(length), 0);
  for (std::int64_t j = first; j < length; j += period) p[static_cast<std::size_t>(j)] = 1;
  return p;
}

// Least-squares slope of log y against log x (for error-versus-size laws).
inline double log_log_slope(const std::vector<double>& x, const std::vector<double>& y) {
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    mx += std::log(x[i]);
    my += std::log(y[i]);
  }
  mx /= static_cast<double>(x.size());
  my /= static_cast<double>(x.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    num += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
    den += (std::log(x[i]) - mx) * (std::log(x[i]) - mx);
  }
  return num / den;
}

// Bytes `run` holds at its peak beyond what was held before it (the memory meter's count).
inline std::int64_t peak_bytes_of(const std::function<void()>& run) {
  memory::reset_peak();
  const std::int64_t before = memory::current_bytes();
  run();
  return memory::peak_bytes() - before;
}

}  // namespace attnlab::test

// Expects `statement` to throw E with a message containing `part`.
#define EXPECT_ERROR(E, statement, part)                                                              \
  do {                                                                                                \
    const std::string message_ = attnlab::test::error_message<E>([&] { statement; });                 \
    QVERIFY2(!message_.empty(), "expected " #E " from: " #statement);                                \
    QVERIFY2(attnlab::test::contains(message_, part), ("message '" + message_ + "' lacks '" +         \
                                                        std::string(part) + "'").c_str());            \
  } while (0)

// Expects max_relative_error(actual, reference) < tolerance; `actual` a Tensor (or anything with
// data() of floats and size()), `reference` doubles; the message names `what`.
#define EXPECT_NEAR_REFERENCE(actual, reference, tolerance, what)                                    \
  do {                                                                                               \
    const double error_ =                                                                            \
        attnlab::test::max_relative_error((actual).data(), (reference).data(), (actual).size());     \
    QVERIFY2(error_ < (tolerance), qPrintable(QStringLiteral("%1 error %2").arg(QString(what)).arg(error_))); \
  } while (0)

namespace attnlab::test {

// Expects `variant` to stop with CancelledError on its fast and its traced path when the cancel
// token is set before it starts (q serves as queries, keys and values).
inline void expect_cancelled_on_both_paths(const std::string& variant, const Tensor& q) {
  const Attention& attention = Registry::builtin().get(variant);
  const Params params(attention.spec().params);
  CancelToken token;
  token.cancel();
  for (const bool traced : {false, true}) {
    Trace trace;
    EXPECT_ERROR(CancelledError, run_attention(attention, (AttentionInput{q, q, q, false, nullptr, &params, 1, &token}),
                                               traced ? &trace : nullptr),
                 "cancelled");
  }
}

}  // namespace attnlab::test
