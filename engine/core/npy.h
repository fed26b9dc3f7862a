// NumPy .npy files (format versions 1.0, 2.0 and 3.0), float32 only.
//
// Reading accepts little-endian float32 ('<f4'), C order, any rank. Everything else is refused
// with FormatError naming the file and the problem: another dtype ("has dtype '<f8'; AttnLab
// reads float32 '<f4'"), Fortran order, a truncated file, a header that cannot be parsed, a
// declared shape whose size does not match the file (checked before any allocation, so a huge
// declared shape cannot exhaust memory). Writing is atomic (temporary file, then rename).
#pragma once

#include <string>
#include <string_view>

#include "core/tensor.h"

namespace attnlab {

// Throws IoError (cannot open) or FormatError (malformed).
Tensor read_npy(const std::string& path);
// Parses the bytes of a .npy file held in memory; `name` is used in messages.
Tensor parse_npy(std::string_view bytes, const std::string& name);

// Throws IoError; never leaves a partial file at `path`.
void write_npy(const std::string& path, const Tensor& tensor);
std::string serialize_npy(const Tensor& tensor);

}  // namespace attnlab
