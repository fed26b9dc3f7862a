#include "text/utf8.h"

namespace attnlab {

char32_t decode_utf8(std::string_view text, std::size_t i, std::size_t& length) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const auto continuation = [&](std::size_t k) { return i + k < text.size() && (byte(k) & 0xC0) == 0x80; };
  const unsigned char b0 = byte(0);
  length = 1;
  if (b0 >= 0xC2 && b0 <= 0xDF && continuation(1)) {
    length = 2;
    return (static_cast<char32_t>(b0 & 0x1F) << 6) | (byte(1) & 0x3F);
  }
  if (b0 >= 0xE0 && b0 <= 0xEF && continuation(1) && continuation(2)) {
    const char32_t c = (static_cast<char32_t>(b0 & 0x0F) << 12) | (static_cast<char32_t>(byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) {  // not overlong, not a surrogate
      length = 3;
      return c;
    }
  }
  if (b0 >= 0xF0 && b0 <= 0xF4 && continuation(1) && continuation(2) && continuation(3)) {
    const char32_t c = (static_cast<char32_t>(b0 & 0x07) << 18) | (static_cast<char32_t>(byte(1) & 0x3F) << 12) |
                       (static_cast<char32_t>(byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
    if (c >= 0x10000 && c <= 0x10FFFF) {
      length = 4;
      return c;
    }
  }
  return b0;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace attnlab
