// Error checks and dtype conversions shared by the CUDA kernels (see kernels.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "cuda/kernels.h"

namespace attnlab {
namespace cuda {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    const std::string message = std::string("CUDA: ") + what + ": " + cudaGetErrorString(status);
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    throw DeviceError(message);
  }
}

void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

namespace {

template <typename T>
__global__ void from_f32_kernel(const float* __restrict__ src, T* __restrict__ dst, std::size_t n);
template <>
__global__ void from_f32_kernel<__nv_bfloat16>(const float* __restrict__ src, __nv_bfloat16* __restrict__ dst,
                                               std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}
template <>
__global__ void from_f32_kernel<__half>(const float* __restrict__ src, __half* __restrict__ dst, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    dst[i] = __float2half_rn(src[i]);
}
template <typename T>
__global__ void to_f32_kernel(const T* __restrict__ src, float* __restrict__ dst, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    dst[i] = static_cast<float>(src[i]);
}

unsigned grid_for(std::size_t n) { return static_cast<unsigned>(std::min<std::size_t>((n + 255) / 256, 4096)); }

}  // namespace

void convert_from_f32(DType type, const float* src, void* dst, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (type == DType::BF16)
    from_f32_kernel<__nv_bfloat16><<<grid_for(n), 256, 0, stream>>>(src, static_cast<__nv_bfloat16*>(dst), n);
  else if (type == DType::F16)
    from_f32_kernel<__half><<<grid_for(n), 256, 0, stream>>>(src, static_cast<__half*>(dst), n);
  else
    check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream), "copy");
  check_launch("conversion from float32");
}

void convert_to_f32(DType type, const void* src, float* dst, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (type == DType::BF16)
    to_f32_kernel<__nv_bfloat16><<<grid_for(n), 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(src), dst, n);
  else if (type == DType::F16)
    to_f32_kernel<__half><<<grid_for(n), 256, 0, stream>>>(static_cast<const __half*>(src), dst, n);
  else
    check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream), "copy");
  check_launch("conversion to float32");
}

}  // namespace cuda

}  // namespace attnlab
