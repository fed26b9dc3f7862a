// Device query of the CUDA runtime. Compiled only when CMake found a CUDA compiler.
#pragma once

#include <string>

namespace attnlab::cuda {

struct DeviceQuery {
  bool available = false;
  std::string name;    // device 0's name when available
  std::string reason;  // why not available ("no CUDA-capable device is detected")
  long long total_memory_bytes = 0;
};

DeviceQuery query_device();

}  // namespace attnlab::cuda
