// The non-attention kernels of a Transformer layer on the GPU (see kernels.h), float32, each the
// twin of the CPU backend's operation (cpu_backend.cpp) and of the layer code it calls:
//   layer_norm_rows   layers/layer_norm.cpp   one warp per row, two passes (mean, then variance)
//   gelu_erf          layers/feed_forward.cpp x·½(1 + erf(x/√2))
//   axpby             y ← a·y + b·x (y not read when a = 0)
//   broadcast_rows    y[r, :] = row (a GEMM's bias, before cuBLAS adds x·W with β = 1)
//   embed_tokens      layers/embedding.cpp    table[id]·√D + sinusoid (angles in double, as there)
//   split / merge heads                       [B, L, H·d] <-> [B, H, L, d]
//   fill                                      y ← value
//   gate_state        layers/block_recurrent.cpp  the "full" / "lstm" state update
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/kernels.h"

namespace attnlab::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

unsigned grid_for(std::size_t n) { return static_cast<unsigned>(std::min<std::size_t>((n + kThreads - 1) / kThreads, 65535 * 4)); }

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// One warp per row; kThreads / 32 rows per block.
__global__ void layer_norm_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                  const float* __restrict__ beta, float eps, float* __restrict__ y, std::int64_t rows,
                                  int cols) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (kThreads / kWarp) + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= rows) return;
  const float* xr = x + row * cols;
  float sum = 0.0f;
  for (int c = lane; c < cols; c += kWarp) sum += xr[c];
  const float mean = warp_sum(sum) / static_cast<float>(cols);
  float squares = 0.0f;
  for (int c = lane; c < cols; c += kWarp) {
    const float centred = xr[c] - mean;
    squares += centred * centred;
  }
  const float inv = rsqrtf(warp_sum(squares) / static_cast<float>(cols) + eps);
  float* yr = y + row * cols;
  for (int c = lane; c < cols; c += kWarp) yr[c] = (xr[c] - mean) * inv * gamma[c] + beta[c];
}

__global__ void gelu_kernel(float* __restrict__ x, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const float v = x[i];
    x[i] = v * 0.5f * (1.0f + erff(v * 0.70710678118654752f));
  }
}

__global__ void axpby_kernel(float* __restrict__ y, float a, const float* __restrict__ x, float b, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = a == 0.0f ? b * x[i] : a * y[i] + b * x[i];
}

__global__ void broadcast_rows_kernel(float* __restrict__ y, const float* __restrict__ row, std::size_t rows,
                                      int cols) {
  const std::size_t n = rows * cols;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = row[i % cols];
}

__global__ void embed_kernel(const std::int32_t* __restrict__ ids, const float* __restrict__ table, int d_model,
                             float scale, float* __restrict__ out, std::size_t length) {
  const std::size_t n = length * d_model;
  for (std::size_t e = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t p = e / d_model;
    const int i = static_cast<int>(e % d_model);
    const int even = i & ~1;
    const double inv_freq = pow(10000.0, -static_cast<double>(even) / static_cast<double>(d_model));
    const double angle = static_cast<double>(p) * inv_freq;
    const float position = static_cast<float>((i & 1) ? cos(angle) : sin(angle));
    out[e] = position + table[static_cast<std::size_t>(ids[p]) * d_model + i] * scale;
  }
}

// to_heads: out[b, h, p, j] = x[b, p, h·d + j]; otherwise the inverse. Indexed by the [B, H, L, d] element.
__global__ void heads_kernel(const float* __restrict__ src, float* __restrict__ dst, std::size_t batch,
                             std::size_t length, int heads, int dim, bool to_heads) {
  const std::size_t n = batch * length * heads * dim;
  for (std::size_t e = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const int j = static_cast<int>(e % dim);
    const std::size_t p = (e / dim) % length;
    const std::size_t bh = e / (static_cast<std::size_t>(dim) * length);
    const int h = static_cast<int>(bh % heads);
    const std::size_t b = bh / heads;
    const std::size_t flat = ((b * length + p) * heads + h) * dim + j;
    if (to_heads)
      dst[e] = src[flat];
    else
      dst[flat] = src[e];
  }
}

__global__ void fill_kernel(float* __restrict__ y, float value, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = value;
}

__device__ __forceinline__ float logistic(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void gate_state_kernel(float* __restrict__ state, const float* __restrict__ forget_logits,
                                  const float* __restrict__ input_logits, const float* __restrict__ z, std::size_t n) {
  for (std::size_t e = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const float f = logistic(forget_logits[e] + 1.0f);
    const float i = input_logits ? logistic(input_logits[e] - 1.0f) : 1.0f - f;
    state[e] = f * state[e] + i * z[e];
  }
}

}  // namespace

void layer_norm_rows(const float* x, const float* gamma, const float* beta, float eps, float* y, std::int64_t rows,
                     int cols, cudaStream_t stream) {
  if (rows == 0) return;
  const std::int64_t per_block = kThreads / kWarp;
  layer_norm_kernel<<<static_cast<unsigned>((rows + per_block - 1) / per_block), kThreads, 0, stream>>>(
      x, gamma, beta, eps, y, rows, cols);
  check_launch("layer norm");
}

void gelu_erf(float* x, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  gelu_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n);
  check_launch("gelu");
}

void axpby(float* y, float a, const float* x, float b, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  axpby_kernel<<<grid_for(n), kThreads, 0, stream>>>(y, a, x, b, n);
  check_launch("axpby");
}

void broadcast_rows(float* y, const float* row, std::size_t rows, int cols, cudaStream_t stream) {
  if (rows == 0) return;
  broadcast_rows_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(y, row, rows, cols);
  check_launch("bias broadcast");
}

void embed_tokens(const std::int32_t* ids, const float* table, int d_model, float* out, std::size_t length,
                  cudaStream_t stream) {
  if (length == 0) return;
  embed_kernel<<<grid_for(length * d_model), kThreads, 0, stream>>>(ids, table, d_model,
                                                                     sqrtf(static_cast<float>(d_model)), out, length);
  check_launch("token embedding");
}

void split_heads(const float* x, float* out, std::size_t batch, std::size_t length, int heads, int dim,
                 cudaStream_t stream) {
  if (batch * length == 0) return;
  heads_kernel<<<grid_for(batch * length * heads * dim), kThreads, 0, stream>>>(x, out, batch, length, heads, dim, true);
  check_launch("split heads");
}

void merge_heads(const float* x, float* out, std::size_t batch, std::size_t length, int heads, int dim,
                 cudaStream_t stream) {
  if (batch * length == 0) return;
  heads_kernel<<<grid_for(batch * length * heads * dim), kThreads, 0, stream>>>(x, out, batch, length, heads, dim, false);
  check_launch("merge heads");
}

void fill(float* y, float value, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n), kThreads, 0, stream>>>(y, value, n);
  check_launch("fill");
}

void gate_state(float* state, const float* forget_logits, const float* input_logits, const float* z, std::size_t n,
                cudaStream_t stream) {
  if (n == 0) return;
  gate_state_kernel<<<grid_for(n), kThreads, 0, stream>>>(state, forget_logits, input_logits, z, n);
  check_launch("state gate");
}

}  // namespace attnlab::cuda
