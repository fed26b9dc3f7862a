// UTF-8 code points for the text code (tokenizers, dictionary parsing, BLEU's tokenisation).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace attnlab {

// The code point at text[i] (i < text.size()) and its byte count in `length`. A byte that does
// not start a well-formed sequence (stray continuation, overlong form, surrogate, beyond U+10FFFF)
// is a "code point" of its own byte value with length 1, so invalid input passes through every
// step unchanged.
char32_t decode_utf8(std::string_view text, std::size_t i, std::size_t& length);

// Appends the UTF-8 bytes of `c`.
void append_utf8(std::string& out, char32_t c);

}  // namespace attnlab
