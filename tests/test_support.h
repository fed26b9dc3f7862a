// Small helpers shared by the test suites.
#pragma once

#include <QString>
#include <QTest>
#include <cstdint>
#include <functional>
#include <string>

#include "core/error.h"
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

}  // namespace attnlab::test

// Expects `statement` to throw E with a message containing `part`.
#define EXPECT_ERROR(E, statement, part)                                                              \
  do {                                                                                                \
    const std::string message_ = attnlab::test::error_message<E>([&] { statement; });                 \
    QVERIFY2(!message_.empty(), "expected " #E " from: " #statement);                                \
    QVERIFY2(attnlab::test::contains(message_, part), ("message '" + message_ + "' lacks '" +         \
                                                        std::string(part) + "'").c_str());            \
  } while (0)
