// safetensors layout: u64 LE header length N, N bytes of JSON (may end in space padding), then
// the data area; each tensor's "data_offsets" [begin, end) are relative to the data area start.
//
// Reading validates the whole header against the file size first and only then allocates and
// reads tensors, so a hostile header (huge shape, offsets past the end) costs no memory.
#include "core/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace attnlab {

// Data is copied byte for byte between files and tensors; both are little-endian.
static_assert(std::endian::native == std::endian::little, "the safetensors reader assumes a little-endian host");

namespace {

using nlohmann::json;

// The reference implementation refuses headers above 100 MB; a larger one is not a real file.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::string_view kMetadataKey = "__metadata__";
constexpr std::size_t kConvertChunk = 1 << 16;  // elements converted per read for F16/BF16

enum class Dtype { F32, F16, BF16 };

struct Entry {
  std::string name;
  Dtype dtype = Dtype::F32;
  Shape shape;
  std::uint64_t begin = 0;  // bytes, relative to the data area
  std::uint64_t end = 0;
};

// Copies `count` bytes at absolute file offset `offset` into `out`; ranges are validated first.
using ReadAt = std::function<void(std::uint64_t offset, std::size_t count, char* out)>;

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw FormatError(name + ": " + problem);
}

std::size_t dtype_size(Dtype dtype) { return dtype == Dtype::F32 ? 4 : 2; }

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::F32: return "F32";
    case Dtype::F16: return "F16";
    case Dtype::BF16: return "BF16";
  }
  return "?";
}

// IEEE binary16 -> binary32, exact for every input (subnormals, infinities, NaN payloads).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1F;
  const std::uint32_t mantissa = h & 0x3FF;
  if (exponent == 0) {
    // Zero or subnormal: mantissa x 2^-24, which float32 represents exactly.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));  // inf or NaN
  return std::bit_cast<float>(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

// bfloat16 is the upper half of a float32.
float bfloat16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

std::uint64_t read_u64_le(std::string_view bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return value;
}

std::string offsets_text(const Entry& e) {
  return "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
}

// Header length N from the first 8 bytes, checked against the file size and the 100 MB limit.
std::uint64_t header_length(std::string_view first8, std::uint64_t file_size, const std::string& name) {
  if (file_size < 8) {
    fail(name, "truncated: the file has " + std::to_string(file_size) + " bytes, fewer than the 8-byte header length");
  }
  const std::uint64_t n = read_u64_le(first8);
  if (n > file_size - 8) {
    fail(name, "header length " + std::to_string(n) + " exceeds the " + std::to_string(file_size - 8) +
                   " bytes that follow it (truncated file?)");
  }
  if (n > kMaxHeaderBytes) fail(name, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  return n;
}

json parse_json(std::string_view text, const std::string& name) {
  try {
    json header = json::parse(text.begin(), text.end());
    if (!header.is_object()) fail(name, std::string("header is JSON ") + header.type_name() + ", not an object");
    return header;
  } catch (const json::parse_error& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep the position and reason.
    // Its "last read" excerpt holds raw file bytes: keep the message printable ASCII.
    std::string reason = e.what();
    if (const std::size_t tag_end = reason.find("] "); tag_end != std::string::npos) reason.erase(0, tag_end + 2);
    for (char& c : reason) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
    }
    fail(name, "header is not valid JSON (" + reason + ")");
  }
}

std::map<std::string, std::string> parse_metadata(const json& value, const std::string& name) {
  if (!value.is_object()) fail(name, "__metadata__ must be an object of strings");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      fail(name, "__metadata__ value of '" + key + "' is " + item.type_name() + "; only strings are allowed");
    }
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

Dtype parse_dtype(const json& value, const std::string& tensor, const std::string& name) {
  if (!value.is_string()) fail(name, "tensor '" + tensor + "': dtype must be a string");
  const auto dtype = value.get<std::string>();
  if (dtype == "F32") return Dtype::F32;
  if (dtype == "F16") return Dtype::F16;
  if (dtype == "BF16") return Dtype::BF16;
  fail(name, "tensor '" + tensor + "' has dtype '" + dtype + "'; AttnLab reads F32, F16 and BF16");
}

// A JSON array of non-negative integers, each at most `max`.
std::vector<std::uint64_t> parse_naturals(const json& value, std::uint64_t max, const std::string& what) {
  if (!value.is_array()) throw FormatError(what + " must be an array of integers");
  std::vector<std::uint64_t> out;
  for (const json& item : value) {
    if (item.is_number_integer() && !item.is_number_unsigned() && item.get<std::int64_t>() < 0) {
      throw FormatError(what + " has a negative value " + item.dump());
    }
    if (!item.is_number_unsigned()) throw FormatError(what + " must be an array of integers, not " + value.dump());
    if (item.get<std::uint64_t>() > max) throw FormatError(what + " has a value too large: " + item.dump());
    out.push_back(item.get<std::uint64_t>());
  }
  return out;
}

// Bytes the shape occupies with `dtype`, saturated at UINT64_MAX (so it cannot match any file).
std::uint64_t byte_count(const Shape& shape, Dtype dtype) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::uint64_t bytes = dtype_size(dtype);
  for (std::int64_t d : shape) {
    const auto dim = static_cast<std::uint64_t>(d);
    if (bytes > std::numeric_limits<std::uint64_t>::max() / dim) return std::numeric_limits<std::uint64_t>::max();
    bytes *= dim;
  }
  return bytes;
}

void check_fields(const json& value, const std::string& tensor, const std::string& name) {
  if (!value.is_object()) fail(name, "tensor '" + tensor + "' is described by " + value.type_name() + ", not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(field)) fail(name, "tensor '" + tensor + "' lacks the field '" + field + "'");
  }
  for (const auto& [field, item] : value.items()) {
    if (field != "dtype" && field != "shape" && field != "data_offsets") {
      fail(name, "tensor '" + tensor + "' has an unexpected field '" + field + "'");
    }
  }
}

// One tensor's header entry, checked against the size of the data area.
Entry parse_entry(const std::string& tensor, const json& value, std::uint64_t data_size, const std::string& name) {
  check_fields(value, tensor, name);
  Entry e;
  e.name = tensor;
  e.dtype = parse_dtype(value["dtype"], tensor, name);
  std::vector<std::uint64_t> offsets;
  try {
    const auto int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    for (std::uint64_t d : parse_naturals(value["shape"], int64_max, "shape")) e.shape.push_back(static_cast<std::int64_t>(d));
    offsets = parse_naturals(value["data_offsets"], std::numeric_limits<std::uint64_t>::max(), "data_offsets");
  } catch (const FormatError& error) {
    fail(name, "tensor '" + tensor + "': " + error.what());
  }
  if (offsets.size() != 2) fail(name, "tensor '" + tensor + "': data_offsets must be [begin, end]");
  e.begin = offsets[0];
  e.end = offsets[1];
  if (e.begin > e.end) fail(name, "tensor '" + tensor + "' has data_offsets " + offsets_text(e) + " with begin after end");
  if (e.end > data_size) {
    fail(name, "tensor '" + tensor + "' has data_offsets " + offsets_text(e) + " past the end of the data area (" +
                   std::to_string(data_size) + " bytes)");
  }
  // Compared before checked_element_count, so a huge declared shape is a FormatError, not a
  // ResourceError: the file cannot hold it.
  const std::uint64_t needed = byte_count(e.shape, e.dtype);
  if (needed != e.end - e.begin) {
    const std::string needed_text =
        needed == std::numeric_limits<std::uint64_t>::max() ? "more than 2^64" : std::to_string(needed);
    fail(name, "tensor '" + tensor + "' has shape " + shape_to_string(e.shape) + " of " + dtype_name(e.dtype) + " (" +
                   needed_text + " bytes) but data_offsets " + offsets_text(e) + " span " +
                   std::to_string(e.end - e.begin) + " bytes");
  }
  checked_element_count(e.shape);  // the data is present; refuse it only if too big for memory
  return e;
}

void check_no_overlap(std::vector<Entry> entries, const std::string& name) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;  // an empty range shares no byte with anything
    if (previous && e.begin < previous->end) {
      fail(name, "tensors '" + previous->name + "' " + offsets_text(*previous) + " and '" + e.name + "' " +
                     offsets_text(e) + " overlap");
    }
    if (!previous || e.end > previous->end) previous = &e;
  }
}

Tensor load_tensor(const Entry& e, std::uint64_t data_start, const ReadAt& read_at) {
  Tensor tensor(e.shape);
  const std::uint64_t offset = data_start + e.begin;
  const auto count = static_cast<std::size_t>(tensor.size());
  if (e.dtype == Dtype::F32) {
    if (count) read_at(offset, count * sizeof(float), reinterpret_cast<char*>(tensor.data()));
    return tensor;
  }
  std::vector<std::uint16_t> chunk(std::min(count, kConvertChunk));
  for (std::size_t done = 0; done < count; done += chunk.size()) {
    const std::size_t n = std::min(chunk.size(), count - done);
    read_at(offset + done * 2, n * 2, reinterpret_cast<char*>(chunk.data()));
    float* out = tensor.data() + done;
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = e.dtype == Dtype::F16 ? half_to_float(chunk[i]) : bfloat16_to_float(chunk[i]);
    }
  }
  return tensor;
}

// The whole reader, over any byte source of `file_size` bytes.
SafetensorsFile load(std::uint64_t file_size, const ReadAt& read_at, const std::string& name) {
  std::array<char, 8> length_bytes{};
  if (file_size >= 8) read_at(0, 8, length_bytes.data());
  const std::uint64_t header_size = header_length({length_bytes.data(), 8}, file_size, name);
  std::string header_text(static_cast<std::size_t>(header_size), '\0');
  read_at(8, header_text.size(), header_text.data());
  const json header = parse_json(header_text, name);

  const std::uint64_t data_start = 8 + header_size;
  const std::uint64_t data_size = file_size - data_start;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      file.metadata = parse_metadata(value, name);
    } else {
      entries.push_back(parse_entry(key, value, data_size, name));
    }
  }
  check_no_overlap(entries, name);
  for (const Entry& e : entries) file.tensors.emplace(e.name, load_tensor(e, data_start, read_at));
  return file;
}

void check_consistent(const std::string& tensor_name, const Tensor& tensor) {
  if (checked_element_count(tensor.shape()) != tensor.size()) {
    throw ShapeError("cannot write tensor '" + tensor_name + "': shape " + tensor.shape_string() + " but " +
                     std::to_string(tensor.size()) + " elements");
  }
}

// Length prefix + JSON header padded with spaces to a multiple of 8 bytes.
std::string safetensors_header(const SafetensorsFile& file) {
  json header = json::object();
  std::uint64_t offset = 0;
  for (const auto& [tensor_name, tensor] : file.tensors) {  // std::map: sorted by name
    if (tensor_name == kMetadataKey) throw ParamError("a tensor cannot be named '__metadata__'");
    check_consistent(tensor_name, tensor);
    const std::uint64_t bytes = static_cast<std::uint64_t>(tensor.size()) * sizeof(float);
    header[tensor_name] = {{"dtype", "F32"},
                           {"shape", tensor.shape()},
                           {"data_offsets", json::array({offset, offset + bytes})}};
    offset += bytes;
  }
  if (!file.metadata.empty()) header[std::string(kMetadataKey)] = file.metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::type_error&) {
    throw ParamError("cannot write safetensors: a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xFF);
  return out + text;
}

std::string_view data_view(const Tensor& tensor) {
  return {reinterpret_cast<const char*>(tensor.data()), static_cast<std::size_t>(tensor.size()) * sizeof(float)};
}

std::string errno_text() { return errno ? std::strerror(errno) : "unknown error"; }

}  // namespace

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name) {
  const ReadAt read_at = [bytes](std::uint64_t offset, std::size_t count, char* out) {
    std::memcpy(out, bytes.data() + offset, count);
  };
  return load(bytes.size(), read_at, name);
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw IoError("cannot read '" + path + "': it is a folder");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open '" + path + "': " + errno_text());
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (!in || size < 0) throw IoError("cannot read '" + path + "': " + errno_text());

  const ReadAt read_at = [&](std::uint64_t offset, std::size_t count, char* out) {
    errno = 0;
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(out, static_cast<std::streamsize>(count));
    if (static_cast<std::size_t>(in.gcount()) != count) {
      throw IoError("cannot read '" + path + "': " + (errno ? errno_text() : "the file became shorter while reading"));
    }
  };
  return load(static_cast<std::uint64_t>(size), read_at, path);
}

std::string serialize_safetensors(const SafetensorsFile& file) {
  std::string out = safetensors_header(file);
  for (const auto& [tensor_name, tensor] : file.tensors) out += data_view(tensor);
  return out;
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  const std::string header = safetensors_header(file);
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& [tensor_name, tensor] : file.tensors) {
      const std::string_view data = data_view(tensor);
      out.write(data.data(), static_cast<std::streamsize>(data.size()));
    }
  });
}

}  // namespace attnlab
