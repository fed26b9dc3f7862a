// Small helpers shared by the test suites.
#pragma once

#include <QString>
#include <QTest>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

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

// The variant's hyperparameters: its defaults with `values` (a JSON object) set over them.
inline Params params_of(const std::string& variant, const nlohmann::json& values) {
  Params p(Registry::builtin().get(variant).spec().params);
  p.set_from_json(values);
  return p;
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
