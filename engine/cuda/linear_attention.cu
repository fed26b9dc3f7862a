// Linear attention on the GPU (Katharopoulos et al. 2020), φ(x) = elu(x) + 1, float32 — the twin
// of the `linear` variant (attention/linear.cpp):
//   out_i = φ(q_i)ᵀ S_i / (φ(q_i)ᵀ z_i + ε),  S_i = Σ_{j visible} φ(k_j) v_jᵀ,  z_i = Σ_{j visible} φ(k_j)
//
// Chunked in three launches, chunks of C = 64 tokens, per head:
//   1. chunk_state:  U_c = φ(K_c)ᵀ V_c [d, dv] and u_c = Σ_t φ(K_c)_t [d]      (grid chunks × heads)
//   2. scan:         U_c <- Σ_{c' < c} U_c' (exclusive prefix over chunks, in place), and the total
//   3. chunk_output: causal      out_c = (φ(Q_c) U_c + tril(φ(Q_c) φ(K_c)ᵀ) V_c) / (… + ε)
//                    non-causal  out_c = φ(Q_c) U_total / (φ(Q_c) u_total + ε)
// Work O(L·d·dv + L·C·(d + dv)); memory besides q, k, v, out: (L/C + 1)·(d·dv + d) floats — at
// L = 64k, d = dv = 64 that is 16 MiB, where the cumulative-sum form keeps L·d·dv (1 GiB).
#include <cmath>
#include <string>

#include "core/error.h"
#include "cuda/kernels.h"

namespace attnlab::cuda {
namespace {

constexpr int kChunk = 64;
constexpr int kThreads = 256;
constexpr int kMaxDim = 128;

__device__ __forceinline__ float elu_plus_one(float x) { return x > 0.0f ? x + 1.0f : __expf(x); }

int chunks_of(const AttentionDims& d) { return (d.lk + kChunk - 1) / kChunk; }
std::size_t state_floats(const AttentionDims& d) { return static_cast<std::size_t>(d.d) * d.d + d.d; }  // U then u

// Grid (chunks, heads). states: [H][chunks][d·dv + d].
__global__ void chunk_state_kernel(const float* __restrict__ K, const float* __restrict__ V, float* __restrict__ states,
                                   int L, int D, int chunks) {
  extern __shared__ float smem[];
  float* fk = smem;              // [C][D]
  float* sv = fk + kChunk * D;   // [C][D]
  const int c = blockIdx.x, h = blockIdx.y, t0 = c * kChunk;
  const float* Kh = K + static_cast<std::size_t>(h) * L * D;
  const float* Vh = V + static_cast<std::size_t>(h) * L * D;
  for (int e = threadIdx.x; e < kChunk * D; e += kThreads) {
    const int t = t0 + e / D;
    const bool in = t < L;
    fk[e] = in ? elu_plus_one(Kh[static_cast<std::size_t>(t0) * D + e]) : 0.0f;
    sv[e] = in ? Vh[static_cast<std::size_t>(t0) * D + e] : 0.0f;
  }
  __syncthreads();
  const int E = D * D + D;
  float* dst = states + (static_cast<std::size_t>(h) * chunks + c) * E;
  for (int e = threadIdx.x; e < E; e += kThreads) {
    float acc = 0.0f;
    if (e < D * D) {
      const int a = e / D, b = e % D;
#pragma unroll 8
      for (int t = 0; t < kChunk; ++t) acc = fmaf(fk[t * D + a], sv[t * D + b], acc);
    } else {
      const int a = e - D * D;
#pragma unroll 8
      for (int t = 0; t < kChunk; ++t) acc += fk[t * D + a];
    }
    dst[e] = acc;
  }
}

// Grid (ceil(E / threads), heads): each thread walks one state entry over the chunks. Loads are
// issued eight chunks ahead of the running sum so they overlap.
__global__ void scan_kernel(float* __restrict__ states, float* __restrict__ totals, int chunks, int E) {
  const int e = blockIdx.x * kThreads + threadIdx.x, h = blockIdx.y;
  if (e >= E) return;
  float* base = states + static_cast<std::size_t>(h) * chunks * E + e;
  float running = 0.0f;
  int c = 0;
  for (; c + 8 <= chunks; c += 8) {
    float x[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = base[static_cast<std::size_t>(c + i) * E];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      base[static_cast<std::size_t>(c + i) * E] = running;
      running += x[i];
    }
  }
  for (; c < chunks; ++c) {
    const float x = base[static_cast<std::size_t>(c) * E];
    base[static_cast<std::size_t>(c) * E] = running;
    running += x;
  }
  totals[static_cast<std::size_t>(h) * E + e] = running;
}

// Grid (chunks, heads). Shared: φ(Q_c) [C][D], φ(K_c) [C][D], V_c [C][D], U [D][D], u [D], A [C][C+1].
__global__ void chunk_output_kernel(const float* __restrict__ Q, const float* __restrict__ K,
                                    const float* __restrict__ V, const float* __restrict__ states,
                                    const float* __restrict__ totals, float* __restrict__ O, int Lq, int Lk, int D,
                                    int chunks, int causal, float eps) {
  extern __shared__ float smem[];
  float* fq = smem;
  float* fk = fq + kChunk * D;
  float* sv = fk + kChunk * D;
  float* U = sv + kChunk * D;
  float* u = U + D * D;
  float* A = u + D;  // [C][C + 1]
  constexpr int SA = kChunk + 1;
  const int c = blockIdx.x, h = blockIdx.y, t0 = c * kChunk;
  const int E = D * D + D;
  const float* state = causal ? states + (static_cast<std::size_t>(h) * chunks + c) * E
                              : totals + static_cast<std::size_t>(h) * E;
  const float* Qh = Q + static_cast<std::size_t>(h) * Lq * D;
  for (int e = threadIdx.x; e < kChunk * D; e += kThreads) {
    const int t = t0 + e / D;
    fq[e] = t < Lq ? elu_plus_one(Qh[static_cast<std::size_t>(t0) * D + e]) : 0.0f;
  }
  for (int e = threadIdx.x; e < E; e += kThreads) U[e] = state[e];  // U and u are contiguous
  if (causal) {
    const float* Kh = K + static_cast<std::size_t>(h) * Lk * D;
    const float* Vh = V + static_cast<std::size_t>(h) * Lk * D;
    for (int e = threadIdx.x; e < kChunk * D; e += kThreads) {
      const int t = t0 + e / D;
      const bool in = t < Lk;
      fk[e] = in ? elu_plus_one(Kh[static_cast<std::size_t>(t0) * D + e]) : 0.0f;
      sv[e] = in ? Vh[static_cast<std::size_t>(t0) * D + e] : 0.0f;
    }
  }
  __syncthreads();
  if (causal) {
    for (int e = threadIdx.x; e < kChunk * kChunk; e += kThreads) {
      const int i = e / kChunk, j = e % kChunk;
      float acc = 0.0f;
      if (j <= i)
        for (int a = 0; a < D; ++a) acc = fmaf(fq[i * D + a], fk[j * D + a], acc);
      A[i * SA + j] = acc;
    }
    __syncthreads();
  }
  for (int e = threadIdx.x; e < kChunk * D; e += kThreads) {
    const int i = e / D, b = e % D, t = t0 + i;
    if (t >= Lq) continue;
    float num = 0.0f, den = 0.0f;
    for (int a = 0; a < D; ++a) {
      const float x = fq[i * D + a];
      num = fmaf(x, U[a * D + b], num);
      den = fmaf(x, u[a], den);
    }
    if (causal)
      for (int j = 0; j <= i; ++j) {
        num = fmaf(A[i * SA + j], sv[j * D + b], num);
        den += A[i * SA + j];
      }
    O[(static_cast<std::size_t>(h) * Lq + t) * D + b] = num / (den + eps);
  }
}

int output_shared_bytes(int D) { return (3 * kChunk * D + D * D + D + kChunk * (kChunk + 1)) * 4; }

}  // namespace

std::size_t linear_attention_workspace_bytes(const AttentionDims& dims) {
  return (static_cast<std::size_t>(dims.heads) * chunks_of(dims) + dims.heads) * state_floats(dims) * sizeof(float);
}

void linear_attention_forward(const float* q, const float* k, const float* v, float* out, void* workspace,
                              const AttentionDims& dims, bool causal, float eps, cudaStream_t stream) {
  if (dims.heads < 1 || dims.lq < 1 || dims.lk < 1) throw ShapeError("linear attention needs a head, a query and a key");
  if (dims.d < 1 || dims.d > kMaxDim)
    throw ShapeError("linear attention on the GPU: head dim " + std::to_string(dims.d) + " (1 to 128)");
  if (causal && dims.lq != dims.lk)
    throw ShapeError("causal linear attention needs as many queries as keys (" + std::to_string(dims.lq) + " vs " +
                     std::to_string(dims.lk) + ")");
  const int chunks = chunks_of(dims), D = dims.d, E = D * D + D;
  float* states = static_cast<float*>(workspace);
  float* totals = states + static_cast<std::size_t>(dims.heads) * chunks * E;

  const int state_bytes = 2 * kChunk * D * 4;
  check(cudaFuncSetAttribute(chunk_state_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, state_bytes),
        "raising the shared-memory limit of linear attention");
  chunk_state_kernel<<<dim3(chunks, dims.heads), kThreads, state_bytes, stream>>>(k, v, states, dims.lk, D, chunks);
  check_launch("linear attention: chunk states");
  scan_kernel<<<dim3((E + kThreads - 1) / kThreads, dims.heads), kThreads, 0, stream>>>(states, totals, chunks, E);
  check_launch("linear attention: scan");
  const int out_bytes = output_shared_bytes(D);
  check(cudaFuncSetAttribute(chunk_output_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, out_bytes),
        "raising the shared-memory limit of linear attention");
  const int query_chunks = (dims.lq + kChunk - 1) / kChunk;
  chunk_output_kernel<<<dim3(query_chunks, dims.heads), kThreads, out_bytes, stream>>>(
      q, k, v, states, totals, out, dims.lq, dims.lk, D, chunks, causal ? 1 : 0, eps);
  check_launch("linear attention: chunk outputs");
}

}  // namespace attnlab::cuda
