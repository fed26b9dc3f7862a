// Which device the engine computes on. The CPU is always there; CUDA only when the engine was
// built with a CUDA compiler *and* a GPU is present at run time. Asking for CUDA where it is
// missing is an error with the reason; asking for "auto" falls back to the CPU and says why.
#pragma once

#include <string>

namespace attnlab {

enum class DeviceKind { Cpu, Cuda };
enum class DevicePreference { Auto, Cpu, Cuda };

struct DeviceInfo {
  DeviceKind kind = DeviceKind::Cpu;
  std::string name;    // "Intel Xeon ... (2 threads)" or "NVIDIA H100 80GB HBM3"
  std::string reason;  // why this device was chosen ("no CUDA device: ...", "built without CUDA")
  std::string describe() const;  // one line for status bars and logs
};

// Parses "auto", "cpu", "cuda"; throws ParamError otherwise.
DevicePreference parse_device_preference(const std::string& text);

// Picks the device for `preference`. Throws ParamError if CUDA is required but unavailable.
DeviceInfo select_device(DevicePreference preference);

bool cuda_compiled_in();

// Threads the CPU engine uses (OpenMP).
int cpu_threads();

}  // namespace attnlab
