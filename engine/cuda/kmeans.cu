// Spherical k-means steps for `routing` on the GPU, float32 — the twin of the CPU variant's
// online k-means (attention/routing.cpp, RoutingRun::assign_block and update_head):
//   assign: every point goes to the centroid with the largest dot product with the raw point
//           (first maximum on ties);
//   update: μ_c ← normalise(λ·μ_c + (1 − λ)·mean{x̂ assigned to c}),  x̂ = x/|x| (0 for x = 0);
//           a cluster that got no point keeps its centroid.
// The update is one block per centroid, one thread per dimension, summing the points in index
// order: deterministic (no atomics), O(k·N·d) reads per step — fine for the playground's sizes
// (N = Lq + Lk, k = √L); a sort by cluster would make it O(N·d) for very long inputs.
#include <cmath>
#include <string>

#include "core/error.h"
#include "cuda/kernels.h"

namespace attnlab::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void inverse_norm_kernel(const float* __restrict__ x, float* __restrict__ inv, int N, int D) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  double ss = 0.0;  // as the CPU's Eigen norm in double (row_norm_inverse)
  for (int a = 0; a < D; ++a) ss += static_cast<double>(x[static_cast<std::size_t>(n) * D + a]) * x[static_cast<std::size_t>(n) * D + a];
  const double norm = sqrt(ss);
  inv[n] = norm > 0.0 ? static_cast<float>(1.0 / norm) : 0.0f;
}

__global__ void assign_kernel(const float* __restrict__ x, const float* __restrict__ mu, int* __restrict__ nearest,
                              int N, int K, int D) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* p = x + static_cast<std::size_t>(n) * D;
  float best = -INFINITY;
  int arg = 0;
  for (int c = 0; c < K; ++c) {
    const float* m = mu + static_cast<std::size_t>(c) * D;
    float dot = 0.0f;
    for (int a = 0; a < D; ++a) dot = fmaf(p[a], m[a], dot);
    if (dot > best) best = dot, arg = c;
  }
  nearest[n] = arg;
}

// Grid (K), kThreads threads (thread a owns dimension a, D <= kThreads).
__global__ void update_kernel(const float* __restrict__ x, const float* __restrict__ inv, const int* __restrict__ nearest,
                              float* __restrict__ mu, int N, int D, float decay) {
  __shared__ float partial[kThreads];
  const int c = blockIdx.x, a = threadIdx.x;
  float sum = 0.0f;
  int count = 0;
  for (int n = 0; n < N; ++n) {
    if (nearest[n] != c) continue;
    ++count;
    if (a < D) sum = fmaf(x[static_cast<std::size_t>(n) * D + a], inv[n], sum);
  }
  if (count == 0) return;  // an empty cluster keeps its centroid (uniform across the block)
  const float next = a < D ? decay * mu[static_cast<std::size_t>(c) * D + a] + (1.0f - decay) * (sum / count) : 0.0f;
  partial[a] = next * next;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (a < stride) partial[a] += partial[a + stride];
    __syncthreads();
  }
  const float norm = sqrtf(partial[0]);
  if (a < D && norm > 0.0f) mu[static_cast<std::size_t>(c) * D + a] = next / norm;
}

}  // namespace

void kmeans_steps(const float* points, float* centroids, int* nearest, float* inverse_norms, const KMeansDims& dims,
                  cudaStream_t stream) {
  if (dims.points < 1 || dims.clusters < 1 || dims.d < 1 || dims.d > kThreads || dims.steps < 0)
    throw ShapeError("k-means on the GPU: need points, clusters >= 1, 1 <= d <= 128, steps >= 0; got N=" +
                     std::to_string(dims.points) + " k=" + std::to_string(dims.clusters) + " d=" + std::to_string(dims.d));
  if (!(dims.decay >= 0.0f && dims.decay <= 1.0f)) throw ParamError("k-means on the GPU: decay must be in [0, 1]");
  const int blocks = (dims.points + 255) / 256;
  inverse_norm_kernel<<<blocks, 256, 0, stream>>>(points, inverse_norms, dims.points, dims.d);
  check_launch("k-means: norms");
  for (int s = 0; s < dims.steps; ++s) {
    assign_kernel<<<blocks, 256, 0, stream>>>(points, centroids, nearest, dims.points, dims.clusters, dims.d);
    check_launch("k-means: assignment");
    update_kernel<<<dims.clusters, kThreads, 0, stream>>>(points, inverse_norms, nearest, centroids, dims.points,
                                                          dims.d, dims.decay);
    check_launch("k-means: centroid update");
  }
  // The assignment to the final centroids (what routing uses to pick nearest clusters).
  assign_kernel<<<blocks, 256, 0, stream>>>(points, centroids, nearest, dims.points, dims.clusters, dims.d);
  check_launch("k-means: final assignment");
}

}  // namespace attnlab::cuda
