// Parts of the GPU API that are the same with and without CUDA.
#include "cuda/gpu_attention.h"

namespace attnlab::gpu {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::F16:
      return "fp16";
    case Precision::BF16:
      return "bf16";
    case Precision::F32:
      break;
  }
  return "fp32";
}

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::F32;
  if (text == "fp16") return Precision::F16;
  if (text == "bf16") return Precision::BF16;
  throw ParamError("precision '" + text + "': allowed fp32, fp16, bf16");
}

}  // namespace attnlab::gpu
