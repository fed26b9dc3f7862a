// Helpers for tests that build binary files by hand (npy, safetensors): little-endian byte
// strings, tensors full of awkward float bit patterns, and raw file access.
#pragma once

#include <QByteArray>
#include <QString>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>

#include "core/tensor.h"

namespace attnlab::test {

inline std::string le16(std::uint16_t v) { return {static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)}; }
inline std::string le32(std::uint32_t v) {
  return le16(static_cast<std::uint16_t>(v & 0xFFFF)) + le16(static_cast<std::uint16_t>(v >> 16));
}
inline std::string le64(std::uint64_t v) {
  return le32(static_cast<std::uint32_t>(v & 0xFFFFFFFF)) + le32(static_cast<std::uint32_t>(v >> 32));
}

inline QByteArray qbytes(const std::string& s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); }
inline std::string_view view(const QByteArray& b) { return {b.constData(), static_cast<std::size_t>(b.size())}; }

// The message of the E thrown by f(), or a null string when f() throws nothing.
// Another exception type escapes and fails the test.
template <typename E, typename F>
QString message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}

// Deterministic float bit patterns that include the awkward ones: NaN payloads, -0, infinities,
// subnormals, the largest finite float.
inline Tensor patterned_tensor(const Shape& shape, std::uint32_t seed = 12345) {
  const std::uint32_t special[] = {0x7FC12345u, 0x80000000u, 0x7F800000u, 0xFF800000u,
                                   0x00000001u, 0x7F7FFFFFu, 0x807FFFFFu, 0xFFBADBADu};
  Tensor t(shape);
  std::uint32_t state = seed;
  for (std::int64_t i = 0; i < t.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    const std::uint32_t bits = i % 3 == 0 ? special[(i / 3) % std::size(special)] : state;
    std::memcpy(t.data() + i, &bits, sizeof bits);
  }
  return t;
}

inline bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(float)) == 0;
}

inline void write_raw(const QString& path, const std::string& bytes) {
  std::ofstream out(path.toStdString(), std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_raw(const QString& path) {
  std::ifstream in(path.toStdString(), std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace attnlab::test
