#include "core/device.h"

#include <omp.h>

#include <fstream>

#include "core/error.h"

#ifdef ATTNLAB_HAVE_CUDA
#include "cuda/cuda_device.h"
#endif

namespace attnlab {
namespace {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        const auto first = name.find_first_not_of(' ');
        return first == std::string::npos ? name : name.substr(first);
      }
    }
  }
  return "CPU";
}

DeviceInfo cpu_device(std::string reason) {
  DeviceInfo info;
  info.kind = DeviceKind::Cpu;
  info.name = cpu_model_name() + " (" + std::to_string(cpu_threads()) + " threads)";
  info.reason = std::move(reason);
  return info;
}

}  // namespace

std::string DeviceInfo::describe() const {
  std::string text = (kind == DeviceKind::Cuda ? "CUDA: " : "CPU: ") + name;
  if (!reason.empty()) text += " — " + reason;
  return text;
}

DevicePreference parse_device_preference(const std::string& text) {
  if (text == "auto") return DevicePreference::Auto;
  if (text == "cpu") return DevicePreference::Cpu;
  if (text == "cuda") return DevicePreference::Cuda;
  throw ParamError("device '" + text + "': allowed auto, cpu, cuda");
}

bool cuda_compiled_in() {
#ifdef ATTNLAB_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

int cpu_threads() { return omp_get_max_threads(); }

DeviceInfo select_device(DevicePreference preference) {
  if (preference == DevicePreference::Cpu) return cpu_device("chosen by the user");
#ifdef ATTNLAB_HAVE_CUDA
  const cuda::DeviceQuery query = cuda::query_device();
  if (query.available) {
    DeviceInfo info;
    info.kind = DeviceKind::Cuda;
    info.name = query.name;
    return info;
  }
  if (preference == DevicePreference::Cuda) throw ParamError("device cuda: " + query.reason);
  return cpu_device("no usable CUDA device: " + query.reason);
#else
  if (preference == DevicePreference::Cuda) {
    throw ParamError("device cuda: this build of AttnLab was made without a CUDA compiler");
  }
  return cpu_device("built without CUDA");
#endif
}

}  // namespace attnlab
