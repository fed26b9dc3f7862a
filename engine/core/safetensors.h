// safetensors files: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the raw little-endian data.
//
// Reading converts F32, F16 and BF16 to float32 and refuses other dtypes with FormatError naming
// the tensor. Every header field is validated before data is touched: header length within the
// file, offsets inside the data area and matching shape × dtype size, no overlaps, shapes
// within the allocation limit. Writing stores F32, atomically.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/tensor.h"

namespace attnlab {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // the optional "__metadata__" object (string values)
};

// Throws IoError (cannot open) or FormatError (malformed).
SafetensorsFile read_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name);

// Throws IoError; never leaves a partial file at `path`.
void write_safetensors(const std::string& path, const SafetensorsFile& file);
std::string serialize_safetensors(const SafetensorsFile& file);

}  // namespace attnlab
