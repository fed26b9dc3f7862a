// The GPU API in a build without a CUDA compiler: the same functions, each a clear error.
#include "cuda/backend.h"
#include "cuda/gpu_attention.h"

namespace attnlab::gpu {
namespace {

constexpr const char* kWhy = "this AttnLab was built without CUDA (no nvcc was found at configure time)";

[[noreturn]] void unavailable() { throw DeviceError(std::string("no GPU to run on: ") + kWhy); }

}  // namespace

bool gpu_available(std::string* why_not) {
  if (why_not) *why_not = kWhy;
  return false;
}

SoftmaxAttentionResult softmax_attention(const Tensor&, const Tensor&, const Tensor&, const SoftmaxAttentionOptions&) {
  unavailable();
}

SoftmaxAttentionResult bigbird_attention(const Tensor&, const Tensor&, const Tensor&, const Params&, std::uint64_t,
                                         const SoftmaxAttentionOptions&) {
  unavailable();
}

LinearAttentionResult linear_attention(const Tensor&, const Tensor&, const Tensor&, bool, float) { unavailable(); }

LshAttentionResult reformer_lsh_attention(const Tensor&, const Tensor&, const Params&, std::uint64_t, bool) {
  unavailable();
}

KMeansResult spherical_kmeans(const Tensor&, const Tensor&, int, float) { unavailable(); }

Tensor matmul(const Tensor&, const Tensor&) { unavailable(); }

std::unique_ptr<ComputeBackend> make_cuda_backend(const BackendOptions&) { unavailable(); }

}  // namespace attnlab::gpu
