#include "cuda/cuda_device.h"

#include <cuda_runtime.h>

namespace attnlab::cuda {

DeviceQuery query_device() {
  DeviceQuery query;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    query.reason = cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return query;
  }
  if (count == 0) {
    query.reason = "no CUDA device present";
    return query;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    query.reason = "cannot read the properties of CUDA device 0";
    return query;
  }
  query.available = true;
  query.name = prop.name;
  query.total_memory_bytes = static_cast<long long>(prop.totalGlobalMem);
  return query;
}

}  // namespace attnlab::cuda
