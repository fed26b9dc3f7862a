// Device-level entry points of the CUDA kernels: pointers are device memory, launches go on
// `stream`, nothing is copied or synchronised. gpu_attention.cu wraps them for host tensors; the
// GPU benchmark (app/cuda_bench_main.cu) calls them directly so that it times kernels alone.
//
// Layouts (row-major, contiguous; a batch folds into H):
//   q [H, Lq, D]   k [H, Lk, D]   v [H, Lk, D]   out [H, Lq, D]   lse [H, Lq]   weights [H, Lq, Lk]
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace attnlab::cuda {

enum class DType { F32, F16, BF16 };

struct AttentionDims {
  int heads = 1;
  int lq = 0;
  int lk = 0;
  int d = 64;  // head dim of q, k and v (dv == d)
};

// Throws attnlab::DeviceError naming `what` and the CUDA error when `status` is not success.
void check(cudaError_t status, const char* what);
// Checks the last launch (cudaGetLastError).
void check_launch(const char* kernel);

// Flash-attention forward: out = softmax(q kᵀ/√d) v, row log-sum-exp in `lse` (may be null).
// F32: d in {32, 64, 128}, CUDA cores. F16/BF16: d in {64, 128}, tensor cores (mma.sync
// m16n8k16, float32 accumulation), out in the input type; `warps` per block 4 or 8 (0 = the
// default, for the benchmark's comparison). Causal needs lq == lk.
void flash_attention_forward(DType type, const void* q, const void* k, const void* v, void* out, float* lse,
                             const AttentionDims& dims, bool causal, cudaStream_t stream, int warps = 0);

// Block-sparse attention: the same kernels visiting, for each head h and query block qb (64
// rows), only the key blocks (64 keys each) ids[offsets[h·nqb + qb] .. offsets[h·nqb + qb + 1]),
// nqb = ceil(lq / 64); both arrays in device memory. Causal masking still applies inside blocks.
struct BlockList {
  const int* offsets = nullptr;  // [H·nqb + 1]
  const int* ids = nullptr;
};
constexpr int kBlockRows = 64;
void block_sparse_attention_forward(DType type, const void* q, const void* k, const void* v, void* out, float* lse,
                                    const AttentionDims& dims, bool causal, const BlockList* blocks,
                                    cudaStream_t stream, int warps = 0);

// Dense weights from the row log-sum-exp of the forward: w_ij = exp(q_i·k_j/√d − lse_i), 0
// where masked. float32 output [H, Lq, Lk].
void attention_weights(DType type, const void* q, const void* k, const float* lse, float* weights,
                       const AttentionDims& dims, bool causal, cudaStream_t stream);

// Chunked linear attention with φ = elu + 1, float32. `workspace` must hold
// linear_attention_workspace_bytes(dims) bytes.
std::size_t linear_attention_workspace_bytes(const AttentionDims& dims);
void linear_attention_forward(const float* q, const float* k, const float* v, float* out, void* workspace,
                              const AttentionDims& dims, bool causal, float eps, cudaStream_t stream);

// Reformer LSH attention with shared QK, float32 (lsh_attention.cu). rotations [H, R, d, n_b/2] as
// drawn by attnlab::lsh_rotations; buckets [H, R, L] written when not null.
struct LshDims {
  int heads = 1;
  int length = 0;
  int d = 64;  // 32, 64 or 128
  int n_hashes = 1;
  int n_buckets = 2;
  int bucket_size = 64;
  int chunks_before = 1;
};
std::size_t lsh_attention_workspace_bytes(const LshDims& dims);
void lsh_attention_forward(const float* q, const float* v, const float* rotations, float* out, int* buckets,
                           void* workspace, const LshDims& dims, bool causal, cudaStream_t stream);

// Spherical k-means steps for `routing` (kmeans.cu): `steps` assignment + update rounds on
// points [N, d] from the centroids given in `centroids` [k, d] (updated in place), then the
// nearest centroid of every point into `nearest` [N]. inverse_norms: N floats of scratch.
struct KMeansDims {
  int points = 0;
  int clusters = 1;
  int d = 64;  // at most 128
  int steps = 10;
  float decay = 0.5f;  // λ of the exponential moving average
};
void kmeans_steps(const float* points, float* centroids, int* nearest, float* inverse_norms, const KMeansDims& dims,
                  cudaStream_t stream);

// The other operations of a Transformer layer (model_kernels.cu), float32; the twins of the CPU
// backend's operations (cuda/backend.h). x, y [rows, cols] row-major.
void layer_norm_rows(const float* x, const float* gamma, const float* beta, float eps, float* y, std::int64_t rows,
                     int cols, cudaStream_t stream);
void gelu_erf(float* x, std::size_t n, cudaStream_t stream);                                     // x·Φ(x)
void axpby(float* y, float a, const float* x, float b, std::size_t n, cudaStream_t stream);      // y ← a·y + b·x
void broadcast_rows(float* y, const float* row, std::size_t rows, int cols, cudaStream_t stream);  // y[r, :] = row
// out[p, :] = table[ids[p], :]·√d_model + sinusoidal position p; ids in device memory, in range.
void embed_tokens(const std::int32_t* ids, const float* table, int d_model, float* out, std::size_t length,
                  cudaStream_t stream);
// [B, L, H·d] -> [B, H, L, d] and back.
void split_heads(const float* x, float* out, std::size_t batch, std::size_t length, int heads, int dim,
                 cudaStream_t stream);
void merge_heads(const float* x, float* out, std::size_t batch, std::size_t length, int heads, int dim,
                 cudaStream_t stream);
void fill(float* y, float value, std::size_t n, cudaStream_t stream);
// "full" (input_logits null): g = σ(f + 1), state ← g·state + (1 − g)·z; "lstm": state ← σ(f + 1)·state + σ(i − 1)·z
void gate_state(float* state, const float* forget_logits, const float* input_logits, const float* z, std::size_t n,
                cudaStream_t stream);

// Elementwise float32 -> f16/bf16 on the device (n elements).
void convert_from_f32(DType type, const float* src, void* dst, std::size_t n, cudaStream_t stream);
// And back: f16/bf16 -> float32.
void convert_to_f32(DType type, const void* src, float* dst, std::size_t n, cudaStream_t stream);

}  // namespace attnlab::cuda
