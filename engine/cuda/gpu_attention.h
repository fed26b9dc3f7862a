// The GPU path of the engine, as the rest of the engine sees it: plain C++ on host tensors, no
// CUDA types. In a build with CUDA the functions run the kernels of engine/cuda/*.cu; in a
// CPU-only build (cuda/gpu_unavailable.cpp) every function throws DeviceError saying so, and
// `gpu_available()` is false — callers never need #ifdefs.
//
// Every kernel has a CPU twin that its tests compare with:
//   softmax_attention      <-> the `softmax` variant (attention/softmax.cpp)
//   bigbird_attention      <-> the `bigbird` variant (attention/bigbird.cpp)
//   reformer_lsh_attention <-> the `reformer_lsh` variant (shared QK, no dedup)
//   spherical_kmeans       <-> the `routing` variant's k-means steps
//   linear_attention       <-> the `linear` variant  (attention/linear.cpp), φ = elu + 1
//   matmul                 <-> Eigen's GEMM
//
// Shapes follow the engine: q [H, Lq, d], k [H, Lk, d], v [H, Lk, dv] -> out [H, Lq, dv]
// (a batch folds into H). Host tensors are copied to the GPU, computed, and copied back; the
// figure `kernel_ms` is the device time of the kernels alone (CUDA events), not the copies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/params.h"
#include "core/error.h"
#include "core/tensor.h"

namespace attnlab {

namespace gpu {

// Whether kernels can run here: a CUDA build *and* a device at run time. `why_not` gets the
// reason when not ("built without CUDA", "no CUDA-capable device is detected").
bool gpu_available(std::string* why_not = nullptr);

// The arithmetic the attention kernels use for their inputs. Accumulation and softmax are
// always float32; F16/BF16 round q, k, v on the device and run on the tensor cores (the output
// is rounded to the same type, as in FlashAttention, then widened for the host tensor).
enum class Precision { F32, F16, BF16 };
const char* precision_name(Precision p);
Precision parse_precision(const std::string& text);  // "fp32" | "fp16" | "bf16"; ParamError otherwise

struct SoftmaxAttentionOptions {
  bool causal = false;           // needs Lq == Lk
  Precision precision = Precision::F32;
  bool want_weights = false;     // also the dense [H, Lq, Lk] weights (for the views)
};

struct SoftmaxAttentionResult {
  Tensor out;         // [H, Lq, dv]
  Tensor logsumexp;   // [H, Lq]: log Σ_j exp(q_i·k_j/√d) over visible keys (natural log)
  Tensor weights;     // [H, Lq, Lk] when asked for, else empty
  double kernel_ms = 0;
};

// Exact softmax attention, tiled with an online softmax (flash-attention style): the L × L
// matrix is never stored unless `want_weights`. Head dims: 32, 64, 128 for F32 (dv == d);
// 64 and 128 for F16/BF16. Throws ShapeError for other shapes, DeviceError without a GPU.
SoftmaxAttentionResult softmax_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const SoftmaxAttentionOptions& options);

// BigBird (the `bigbird` variant's block pattern for `params` and `seed`: window, global and the
// same random blocks) on the block-sparse kernel, which visits only the listed 64 × 64 blocks.
// Needs block_size = 64 (the kernel's tile; ParamError otherwise) and no key padding; no weights.
SoftmaxAttentionResult bigbird_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Params& params,
                                         std::uint64_t seed, const SoftmaxAttentionOptions& options);

struct LinearAttentionResult {
  Tensor out;  // [H, Lq, dv]
  double kernel_ms = 0;
};

// Linear attention with φ(x) = elu(x) + 1 (Katharopoulos et al. 2020), float32, chunks of 64
// tokens: per-chunk states φ(K_c)ᵀV_c, a prefix scan over chunks, then each chunk's output from
// the state before it plus its own masked quadratic part. d, dv <= 128. Memory O(L/64·d·dv).
LinearAttentionResult linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                       float eps = 1e-6f);

struct LshAttentionResult {
  Tensor out;                         // [H, L, dv]
  std::vector<std::int32_t> buckets;  // [H, n_hashes, L]
  double kernel_ms = 0;
};

// Reformer LSH attention with the `reformer_lsh` variant's params and seed (the same rotations,
// buckets, sort and chunk windows), float32. Shared QK only (keys are the unit-length queries;
// `k` is not read) and no dedup: ParamError otherwise. d in {32, 64, 128}, dv == d.
LshAttentionResult reformer_lsh_attention(const Tensor& q, const Tensor& v, const Params& params, std::uint64_t seed,
                                          bool causal);

struct KMeansResult {
  Tensor centroids;                   // [k, d] after the steps (unit rows)
  std::vector<std::int32_t> nearest;  // [N] nearest final centroid of every point
  double kernel_ms = 0;
};

// `steps` rounds of the `routing` variant's online spherical k-means (assign by the largest dot
// product, then μ ← normalise(λ·μ + (1 − λ)·mean of the assigned unit points)) from `initial`
// [k, d] on points [N, d], float32, d <= 128.
KMeansResult spherical_kmeans(const Tensor& points, const Tensor& initial, int steps, float decay);

// C = A·B through cuBLAS (float32, no TF32): a [M, K], b [K, N] -> [M, N].
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace gpu
}  // namespace attnlab
