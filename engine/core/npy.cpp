// .npy layout: "\x93NUMPY", major, minor, header length (u16 LE for 1.0, u32 LE for 2.0/3.0),
// then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and ended by '\n' so that the data starts on a 64-byte boundary, then the
// raw little-endian float32 data in C order.
#include "core/npy.h"

#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"

namespace attnlab {

// Data is copied byte for byte between files and tensors; both are little-endian.
static_assert(std::endian::native == std::endian::little, "the .npy reader assumes a little-endian host");

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr std::size_t kAlignment = 64;  // numpy's ARRAY_ALIGN: data starts at a multiple of it
constexpr std::uint64_t kMaxHeaderBytes = 64 * 1024 * 1024;

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw FormatError(name + ": " + problem);
}

std::uint32_t read_le(std::string_view bytes, std::size_t offset, std::size_t width) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

// Bytes of magic + version + header-length field, from the first bytes of a file.
// Needs at least 8 bytes to know the version.
std::size_t preamble_size(std::string_view start, const std::string& name) {
  if (start.size() < kMagic.size() && kMagic.starts_with(start)) {
    fail(name, "truncated header: the file has only " + std::to_string(start.size()) + " bytes");
  }
  if (start.substr(0, kMagic.size()) != kMagic) {
    fail(name, "not a .npy file (the first bytes are not the magic \\x93NUMPY)");
  }
  if (start.size() < kMagic.size() + 2) fail(name, "truncated header: the file ends inside the version field");
  const int major = static_cast<unsigned char>(start[6]);
  const int minor = static_cast<unsigned char>(start[7]);
  if (minor != 0 || major < 1 || major > 3) {
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                   "; AttnLab reads 1.0, 2.0 and 3.0");
  }
  return major == 1 ? 10 : 12;
}

// Total bytes before the data (preamble + header text), from the first preamble_size() bytes.
std::uint64_t header_end(std::string_view start, const std::string& name) {
  const std::size_t preamble = preamble_size(start, name);
  if (start.size() < preamble) fail(name, "truncated header: the file ends inside the header-length field");
  const std::uint64_t header_len = read_le(start, 8, preamble - 8);
  if (header_len > kMaxHeaderBytes) {
    fail(name, "header length " + std::to_string(header_len) + " exceeds the 64 MiB that AttnLab accepts");
  }
  return preamble + header_len;
}

// A small reader for the Python literal that numpy writes as the header. It understands just
// what a header may hold: strings, True/False and tuples of integers.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  void expect(char c) {
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != c) malformed(std::string("expected '") + c + "'");
    ++pos_;
  }
  // Consumes `c` if it comes next.
  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }

  std::string string_literal() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) malformed("expected a quoted string");
    const char quote = text_[pos_++];
    const std::size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) malformed("unterminated string");
    std::string value(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return value;
  }

  bool boolean() {
    if (accept_word("True")) return true;
    if (accept_word("False")) return false;
    malformed("expected True or False");
  }

  // "()", "(3,)", "(2, 3)", "(2, 3,)"; a dimension may be negative here, the caller refuses it.
  Shape int_tuple() {
    expect('(');
    Shape dims;
    while (!accept(')')) {
      dims.push_back(integer());
      if (accept(')')) break;
      expect(',');
    }
    return dims;
  }

  // The end of the dict may be followed only by the padding.
  void expect_only_padding() {
    skip_space();
    if (pos_ != text_.size()) malformed("unexpected text after the closing '}'");
  }

  [[noreturn]] void malformed(const std::string& what) const {
    fail(name_, "malformed header dict (" + what + " at offset " + std::to_string(pos_) + "): " + excerpt());
  }

 private:
  bool accept_word(std::string_view word) {
    skip_space();
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  std::int64_t integer() {
    skip_space();
    const bool negative = pos_ < text_.size() && text_[pos_] == '-';
    if (negative) ++pos_;
    if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) malformed("expected an integer");
    std::int64_t value = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const int digit = text_[pos_++] - '0';
      if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) {
        fail(name_, "header declares a dimension too large to count");
      }
      value = value * 10 + digit;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2 long
    return negative ? -value : value;
  }

  // The header without its padding, shortened, for messages that must stay on one line.
  std::string excerpt() const {
    std::string shown;
    for (char c : text_.substr(0, 120)) shown += (c == '\n' || c == '\r') ? ' ' : c;
    while (!shown.empty() && shown.back() == ' ') shown.pop_back();
    return shown + (text_.size() > 120 ? "..." : "");
  }

  std::string_view text_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

// Returns the shape declared by the header dict; refuses every dtype but '<f4' and Fortran order.
Shape parse_header_dict(std::string_view text, const std::string& name) {
  HeaderParser parser(text, name);
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<Shape> shape;
  parser.expect('{');
  while (!parser.accept('}')) {
    const std::string key = parser.string_literal();
    parser.expect(':');
    if (key == "descr" && !descr) {
      if (parser.peek('[')) fail(name, "has a structured dtype; AttnLab reads float32 '<f4'");
      descr = parser.string_literal();
    } else if (key == "fortran_order" && !fortran_order) {
      fortran_order = parser.boolean();
    } else if (key == "shape" && !shape) {
      shape = parser.int_tuple();
    } else {
      parser.malformed("unexpected or repeated key '" + key + "'");
    }
    if (parser.accept('}')) break;
    parser.expect(',');
  }
  parser.expect_only_padding();
  if (!descr || !fortran_order || !shape) parser.malformed("the keys 'descr', 'fortran_order' and 'shape' are required");
  if (*descr != "<f4") fail(name, "has dtype '" + *descr + "'; AttnLab reads float32 '<f4'");
  if (*fortran_order) fail(name, "is stored in Fortran order; AttnLab reads C order (fortran_order: False)");
  for (std::int64_t d : *shape) {
    if (d < 0) fail(name, "declares a negative dimension in shape " + shape_to_string(*shape));
  }
  return *shape;
}

// Bytes of float32 data for `shape`, or nullopt when that does not fit in 64 bits.
std::optional<std::uint64_t> data_bytes(const Shape& shape) {
  std::uint64_t bytes = sizeof(float);
  for (std::int64_t d : shape) {
    if (d == 0) return 0;
  }
  for (std::int64_t d : shape) {
    const auto dim = static_cast<std::uint64_t>(d);
    if (bytes > std::numeric_limits<std::uint64_t>::max() / dim) return std::nullopt;
    bytes *= dim;
  }
  return bytes;
}

// Refuses a file whose data size does not match the shape, before anything is allocated.
void check_data_size(const Shape& shape, std::uint64_t present, const std::string& name) {
  const std::optional<std::uint64_t> needed = data_bytes(shape);
  const std::string declared = "declares shape " + shape_to_string(shape) + " (" +
                               (needed ? std::to_string(*needed) : std::string("more than 2^64")) +
                               " bytes of data)";
  if (!needed || *needed > present) {
    fail(name, declared + " but only " + std::to_string(present) + " bytes follow");
  }
  if (*needed < present) {
    fail(name, declared + " but " + std::to_string(present - *needed) + " extra bytes follow the data");
  }
}

// Shape from a complete preamble + header (exactly header_end() bytes).
Shape parse_header(std::string_view head, const std::string& name) {
  const std::size_t preamble = preamble_size(head, name);
  return parse_header_dict(head.substr(preamble), name);
}

std::string shape_literal(const Shape& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) text += ",";
  return text + ")";
}

// Preamble + padded header for `tensor`: version 1.0 when the header length fits in 16 bits.
std::string npy_header(const Tensor& tensor) {
  if (checked_element_count(tensor.shape()) != tensor.size()) {
    throw ShapeError("cannot write a tensor of shape " + tensor.shape_string() + " holding " +
                     std::to_string(tensor.size()) + " elements");
  }
  const std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_literal(tensor.shape()) + ", }";
  const auto padded_size = [&](std::size_t preamble) {
    const std::size_t unpadded = preamble + dict.size() + 1;  // +1 for the final '\n'
    return (unpadded + kAlignment - 1) / kAlignment * kAlignment;
  };
  std::size_t preamble = 10;
  if (padded_size(preamble) - preamble > 0xFFFF) preamble = 12;
  const std::size_t header_len = padded_size(preamble) - preamble;

  std::string out(kMagic);
  out += static_cast<char>(preamble == 10 ? 1 : 2);
  out += '\0';
  for (std::size_t i = 0; i < preamble - 8; ++i) out += static_cast<char>((header_len >> (8 * i)) & 0xFF);
  out += dict;
  out.append(header_len - dict.size() - 1, ' ');
  out += '\n';
  return out;
}

std::string_view data_view(const Tensor& tensor) {
  return {reinterpret_cast<const char*>(tensor.data()), static_cast<std::size_t>(tensor.size()) * sizeof(float)};
}

std::string errno_text() { return errno ? std::strerror(errno) : "unknown error"; }

std::ifstream open_for_reading(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw IoError("cannot read '" + path + "': it is a folder");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open '" + path + "': " + errno_text());
  return in;
}

// Leaves the stream at the start.
std::uint64_t size_of(std::ifstream& in, const std::string& path) {
  errno = 0;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0);
  if (!in || size < 0) throw IoError("cannot read '" + path + "': " + errno_text());
  return static_cast<std::uint64_t>(size);
}

// Reads exactly `count` bytes at the current position; a short read means the file changed.
void read_exactly(std::ifstream& in, char* out, std::size_t count, const std::string& path) {
  errno = 0;
  in.read(out, static_cast<std::streamsize>(count));
  if (static_cast<std::size_t>(in.gcount()) != count) {
    if (errno) throw IoError("cannot read '" + path + "': " + errno_text());
    throw IoError("cannot read '" + path + "': the file became shorter while reading");
  }
}

}  // namespace

Tensor parse_npy(std::string_view bytes, const std::string& name) {
  const std::uint64_t end = header_end(bytes.substr(0, 12), name);
  if (bytes.size() < end) {
    fail(name, "truncated header: it declares " + std::to_string(end) + " bytes of preamble and header but the file has " +
                   std::to_string(bytes.size()));
  }
  const Shape shape = parse_header(bytes.substr(0, end), name);
  check_data_size(shape, bytes.size() - end, name);
  const std::string_view data = bytes.substr(end);
  Tensor tensor(shape);
  if (!data.empty()) std::memcpy(tensor.data(), data.data(), data.size());
  return tensor;
}

Tensor read_npy(const std::string& path) {
  std::ifstream in = open_for_reading(path);
  const std::uint64_t file_size = size_of(in, path);

  std::string head(static_cast<std::size_t>(std::min<std::uint64_t>(file_size, 12)), '\0');
  read_exactly(in, head.data(), head.size(), path);
  const std::uint64_t end = header_end(head, path);
  if (file_size < end) {
    fail(path, "truncated header: it declares " + std::to_string(end) + " bytes of preamble and header but the file has " +
                   std::to_string(file_size));
  }
  const std::size_t already_read = head.size();
  head.resize(static_cast<std::size_t>(end));
  if (end > already_read) read_exactly(in, head.data() + already_read, head.size() - already_read, path);
  const Shape shape = parse_header(head, path);
  check_data_size(shape, file_size - end, path);

  Tensor tensor(shape);  // the size check above guarantees the file holds this many bytes
  in.seekg(static_cast<std::streamoff>(end));
  read_exactly(in, reinterpret_cast<char*>(tensor.data()), data_view(tensor).size(), path);
  return tensor;
}

std::string serialize_npy(const Tensor& tensor) {
  std::string out = npy_header(tensor);
  out += data_view(tensor);
  return out;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  const std::string header = npy_header(tensor);
  write_file_atomically(path, [&](std::ostream& out) {
    const std::string_view data = data_view(tensor);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  });
}

}  // namespace attnlab
