// Exact softmax attention on the GPU, tiled with an online softmax (Dao et al. 2022, 2023:
// FlashAttention and FlashAttention-2). The L × L score matrix never reaches device memory.
//
//   per head h, query block of Br rows, for each key block of Bc = 64 keys (up to the diagonal
//   when causal):   s = q kᵀ · (log2 e / √d)          (scores in the log2 domain)
//                   m' = max(m, rowmax s);  α = 2^(m − m');  p = 2^(s − m')
//                   l = α l + rowsum p;     o = α o + p v
//   at the end      out = o / l,  lse = (m + log2 l) · ln 2   (natural log of the row's Σ exp)
//
// Two implementations of that loop:
//   - F16/BF16 (tensor cores): one warp owns 16 query rows; q stays in registers as mma
//     A-fragments; k and v tiles come to shared memory by cp.async, two stages deep, and reach
//     the tensor cores through ldmatrix (k as the "col" B operand, v through .trans); the score
//     accumulators are re-packed in registers as the A operand of p·v (their m16n8 float layout
//     equals the A layout of m16n8k16), so p never touches shared memory. Rows of the shared
//     tiles are padded by 16 bytes so ldmatrix's 8 row addresses hit 8 different bank groups.
//   - F32 (CUDA cores): 256 threads compute a 64 × 64 score tile as 4 × 4 register blocks from
//     shared memory, the softmax per row across 16 lanes, and p·v from a shared p tile. It is the
//     accurate path (no rounding of the inputs) and the twin of the CPU engine's float32 numbers.
// Both write `out` in their input type and (optionally) lse, from which attention_weights()
// recomputes the dense matrix for the views.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "cuda/kernels.h"

namespace attnlab::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ std::uint32_t smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy that bypasses L1; src_bytes = 0 fills the 16 bytes with zeros
// (rows past the end of the sequence).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}

template <typename T>
struct Mma;

template <>
struct Mma<__nv_bfloat16> {
  __device__ __forceinline__ static void run(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                             std::uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static std::uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&v);
  }
  __device__ __forceinline__ static __nv_bfloat162 pair(float lo, float hi) { return __floats2bfloat162_rn(lo, hi); }
};

template <>
struct Mma<__half> {
  __device__ __forceinline__ static void run(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                             std::uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static std::uint32_t pack(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&v);
  }
  __device__ __forceinline__ static __half2 pair(float lo, float hi) { return __floats2half2_rn(lo, hi); }
};

// ---- tensor-core kernel (F16 / BF16) --------------------------------------------------------

constexpr int kBc = 64;  // keys per block

template <int D, int kWarps>
constexpr int tc_shared_bytes() {
  return (16 * kWarps + 4 * kBc) * (D + 8) * 2;  // q tile + two stages of k and v, 2-byte elements
}

// Grid (query blocks, heads), 32·kWarps threads; warp w owns query rows q0 + 16w .. q0 + 16w + 15.
template <typename T, int D, int kWarps>
__global__ void __launch_bounds__(32 * kWarps) flash_tc_kernel(const T* __restrict__ Q, const T* __restrict__ K,
                                                               const T* __restrict__ V, T* __restrict__ O,
                                                               float* __restrict__ lse_out, int Lq, int Lk,
                                                               float scale_log2, int causal,
                                                               const int* __restrict__ block_offsets,
                                                               const int* __restrict__ block_ids) {
  constexpr int Br = 16 * kWarps;
  constexpr int S = D + 8;         // shared row stride in elements (16 bytes of padding)
  constexpr int kThreads = 32 * kWarps;
  constexpr int kChunks = D / 8;   // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* sQ = reinterpret_cast<T*>(shared_raw);
  T* sK = sQ + Br * S;       // [2][kBc][S]
  T* sV = sK + 2 * kBc * S;  // [2][kBc][S]

  const int h = blockIdx.y;
  // Causal: the longest rows first, so the last wave is made of short blocks.
  const int qb = causal ? static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x) : static_cast<int>(blockIdx.x);
  const int q0 = qb * Br;
  const T* Qh = Q + static_cast<std::size_t>(h) * Lq * D;
  const T* Kh = K + static_cast<std::size_t>(h) * Lk * D;
  const T* Vh = V + static_cast<std::size_t>(h) * Lk * D;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  const auto load_rows = [&](T* dst, const T* src, int row0, int rows, int length) {
    for (int c = tid; c < rows * kChunks; c += kThreads) {
      const int r = c / kChunks, cc = c % kChunks, g = row0 + r;
      const T* from = src + static_cast<std::size_t>(g < length ? g : length - 1) * D + cc * 8;
      cp_async16(dst + r * S + cc * 8, from, g < length ? 16 : 0);
    }
  };

  // The key blocks to visit: 0 .. up to the diagonal, or the block-sparse list of this query block.
  int key_blocks = (Lk + kBc - 1) / kBc, list = 0;
  if (causal) key_blocks = min(key_blocks, (q0 + Br - 1) / kBc + 1);
  if (block_ids) {
    list = block_offsets[h * gridDim.x + qb];
    key_blocks = block_offsets[h * gridDim.x + qb + 1] - list;
  }
  const auto key_block = [&](int it) { return block_ids ? block_ids[list + it] : it; };

  load_rows(sQ, Qh, q0, Br, Lq);
  if (key_blocks > 0) {
    load_rows(sK, Kh, key_block(0) * kBc, kBc, Lk);
    load_rows(sV, Vh, key_block(0) * kBc, kBc, Lk);
  }
  cp_async_commit();

  std::uint32_t qf[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's share; summed over the quad at the end

  const int lrow = lane % 8, lmat = lane / 8;  // ldmatrix: row within a matrix, matrix index
  const int row_a = q0 + warp * 16 + lane / 4;  // this thread's two rows: row_a and row_a + 8

  if (key_blocks == 0) {  // nothing visible: the q tile still arrives before the fragments are read
    cp_async_wait<0>();
    __syncthreads();
  }
  for (int it = 0; it < key_blocks; ++it) {
    const int stage = it & 1, kb = key_block(it);
    if (it + 1 < key_blocks) {
      load_rows(sK + (stage ^ 1) * kBc * S, Kh, key_block(it + 1) * kBc, kBc, Lk);
      load_rows(sV + (stage ^ 1) * kBc * S, Vh, key_block(it + 1) * kBc, kBc, Lk);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (it == 0) {
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks)
        ldmatrix_x4(qf[ks], sQ + (warp * 16 + (lane % 16)) * S + ks * 16 + (lane / 16) * 8);
    }
    const T* k_tile = sK + stage * kBc * S;
    const T* v_tile = sV + stage * kBc * S;

    // s = q kᵀ for 16 rows × 64 keys: 8 n-tiles of 8 keys.
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        std::uint32_t b[4];
        ldmatrix_x4(b, k_tile + (np * 16 + (lmat / 2) * 8 + lrow) * S + ks * 16 + (lmat % 2) * 8);
        Mma<T>::run(s[2 * np], qf[ks], b[0], b[1]);
        Mma<T>::run(s[2 * np + 1], qf[ks], b[2], b[3]);
      }
    }

    const int k0 = kb * kBc;
    const bool edge = k0 + kBc > Lk || (causal && k0 + kBc - 1 > q0 + warp * 16);
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e] * scale_log2;
        if (edge) {
          const int key = k0 + nt * 8 + 2 * (lane % 4) + (e & 1);
          const int row = row_a + (e >= 2 ? 8 : 0);
          if (key >= Lk || (causal && key > row)) x = -INFINITY;
        }
        s[nt][e] = x;
      }

    // Online softmax for the thread's two rows (values of a row are spread over the 4 lanes of a quad).
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = row_max[r];
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -INFINITY ? 0.0f : mx;  // a row that has seen no key yet
      const float alpha = fast_exp2(row_max[r] - base);
      row_max[r] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        s[nt][2 * r] = fast_exp2(s[nt][2 * r] - base);
        s[nt][2 * r + 1] = fast_exp2(s[nt][2 * r + 1] - base);
        sum += s[nt][2 * r] + s[nt][2 * r + 1];
      }
      row_sum[r] = row_sum[r] * alpha + sum;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][2 * r] *= alpha;
        o[dt][2 * r + 1] *= alpha;
      }
    }

    // o += p v: p's accumulators become A fragments, 16 keys per k-step.
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const std::uint32_t a[4] = {Mma<T>::pack(s[2 * j][0], s[2 * j][1]), Mma<T>::pack(s[2 * j][2], s[2 * j][3]),
                                  Mma<T>::pack(s[2 * j + 1][0], s[2 * j + 1][1]),
                                  Mma<T>::pack(s[2 * j + 1][2], s[2 * j + 1][3])};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        std::uint32_t b[4];
        ldmatrix_x4_trans(b, v_tile + (j * 16 + (lmat % 2) * 8 + lrow) * S + dp * 16 + (lmat / 2) * 8);
        Mma<T>::run(o[2 * dp], a, b[0], b[1]);
        Mma<T>::run(o[2 * dp + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = row_sum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = row_a + 8 * r;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    if (row < Lq) {
      T* dst = O + (static_cast<std::size_t>(h) * Lq + row) * D + 2 * (lane % 4);
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt)
        *reinterpret_cast<decltype(Mma<T>::pair(0.f, 0.f))*>(dst + dt * 8) =
            Mma<T>::pair(o[dt][2 * r] * inv, o[dt][2 * r + 1] * inv);
      if (lse_out && lane % 4 == 0)
        lse_out[static_cast<std::size_t>(h) * Lq + row] = l > 0.0f ? (row_max[r] + log2f(l)) * kLn2 : -INFINITY;
    }
  }
}

// ---- float32 kernel (CUDA cores) ------------------------------------------------------------

constexpr int kF32Rows = 64;     // query rows per block
constexpr int kF32Threads = 256;  // 16 × 16: thread (ty, tx) owns rows 4ty..4ty+3

template <int D>
constexpr int f32_shared_bytes() {
  // q and k transposed [D][64 + 4], v [64][D + 4], p [64][64 + 4]
  return (2 * D * (kF32Rows + 4) + kBc * (D + 4) + kF32Rows * (kBc + 4)) * 4;
}

template <int D>
__global__ void __launch_bounds__(kF32Threads) flash_f32_kernel(const float* __restrict__ Q, const float* __restrict__ K,
                                                                const float* __restrict__ V, float* __restrict__ O,
                                                                float* __restrict__ lse_out, int Lq, int Lk,
                                                                float scale_log2, int causal,
                                                                const int* __restrict__ block_offsets,
                                                                const int* __restrict__ block_ids) {
  constexpr int P = kF32Rows + 4;  // stride of the transposed q/k tiles
  constexpr int SV = D + 4;
  constexpr int SP = kBc + 4;
  extern __shared__ __align__(16) float shared_f32[];
  float* sQt = shared_f32;          // [D][P]
  float* sKt = sQt + D * P;         // [D][P]
  float* sV = sKt + D * P;          // [kBc][SV]
  float* sP = sV + kBc * SV;        // [64][SP]

  const int h = blockIdx.y;
  const int qb = causal ? static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x) : static_cast<int>(blockIdx.x);
  const int q0 = qb * kF32Rows;
  const float* Qh = Q + static_cast<std::size_t>(h) * Lq * D;
  const float* Kh = K + static_cast<std::size_t>(h) * Lk * D;
  const float* Vh = V + static_cast<std::size_t>(h) * Lk * D;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;

  for (int e = tid; e < kF32Rows * D; e += kF32Threads) {
    const int r = e / D, c = e % D, g = q0 + r;
    sQt[c * P + r] = g < Lq ? Qh[static_cast<std::size_t>(g) * D + c] * scale_log2 : 0.0f;
  }

  // Output columns of this thread: 4 consecutive columns in each 64-wide band.
  constexpr int kBands = D / 64 > 0 ? D / 64 : 1;
  constexpr int kWidth = D >= 64 ? 4 : D / 16;  // columns per band per thread
  static_assert(kBands * kWidth * 16 == D, "column split");
  float o[4][kBands * kWidth];
#pragma unroll
  for (int r = 0; r < 4; ++r)
#pragma unroll
    for (int c = 0; c < kBands * kWidth; ++c) o[r][c] = 0.0f;
  float row_max[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  float row_sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};

  int key_blocks = (Lk + kBc - 1) / kBc, list = 0;
  if (causal) key_blocks = min(key_blocks, (q0 + kF32Rows - 1) / kBc + 1);
  if (block_ids) {
    list = block_offsets[h * gridDim.x + qb];
    key_blocks = block_offsets[h * gridDim.x + qb + 1] - list;
  }

  for (int it = 0; it < key_blocks; ++it) {
    const int k0 = (block_ids ? block_ids[list + it] : it) * kBc;
    __syncthreads();  // the previous block's k, v and p are consumed
    for (int e = tid; e < kBc * D; e += kF32Threads) {
      const int r = e / D, c = e % D, g = k0 + r;
      const bool in = g < Lk;
      sKt[c * P + r] = in ? Kh[static_cast<std::size_t>(g) * D + c] : 0.0f;
      sV[r * SV + c] = in ? Vh[static_cast<std::size_t>(g) * D + c] : 0.0f;
    }
    __syncthreads();

    float s[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r) s[r][0] = s[r][1] = s[r][2] = s[r][3] = 0.0f;
#pragma unroll 8
    for (int c = 0; c < D; ++c) {
      const float4 qv = *reinterpret_cast<const float4*>(sQt + c * P + 4 * ty);
      const float4 kv = *reinterpret_cast<const float4*>(sKt + c * P + 4 * tx);
      const float qa[4] = {qv.x, qv.y, qv.z, qv.w}, ka[4] = {kv.x, kv.y, kv.z, kv.w};
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int j = 0; j < 4; ++j) s[r][j] = fmaf(qa[r], ka[j], s[r][j]);
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = q0 + 4 * ty + r;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = k0 + 4 * tx + j;
        if (key >= Lk || (causal && key > row)) s[r][j] = -INFINITY;
      }
      float mx = fmaxf(fmaxf(s[r][0], s[r][1]), fmaxf(s[r][2], s[r][3]));
      mx = fmaxf(mx, row_max[r]);
#pragma unroll
      for (int off = 1; off < 16; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float base = mx == -INFINITY ? 0.0f : mx;
      const float alpha = exp2f(row_max[r] - base);
      row_max[r] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[r][j] = exp2f(s[r][j] - base);
        sum += s[r][j];
      }
      row_sum[r] = row_sum[r] * alpha + sum;
#pragma unroll
      for (int c = 0; c < kBands * kWidth; ++c) o[r][c] *= alpha;
      *reinterpret_cast<float4*>(sP + (4 * ty + r) * SP + 4 * tx) = make_float4(s[r][0], s[r][1], s[r][2], s[r][3]);
    }
    __syncthreads();
#pragma unroll 4
    for (int j = 0; j < kBc; ++j) {
      float p[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) p[r] = sP[(4 * ty + r) * SP + j];
#pragma unroll
      for (int band = 0; band < kBands; ++band) {
        float vv[4];
        if constexpr (kWidth == 4) {
          const float4 t = *reinterpret_cast<const float4*>(sV + j * SV + band * 64 + 4 * tx);
          vv[0] = t.x, vv[1] = t.y, vv[2] = t.z, vv[3] = t.w;
        } else {
#pragma unroll
          for (int c = 0; c < kWidth; ++c) vv[c] = sV[j * SV + kWidth * tx + c];
        }
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
          for (int c = 0; c < kWidth; ++c) o[r][band * kWidth + c] = fmaf(p[r], vv[c], o[r][band * kWidth + c]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 4; ++r) {
    float l = row_sum[r];
#pragma unroll
    for (int off = 1; off < 16; off <<= 1) l += __shfl_xor_sync(0xffffffffu, l, off);
    const int row = q0 + 4 * ty + r;
    if (row >= Lq) continue;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* dst = O + (static_cast<std::size_t>(h) * Lq + row) * D;
#pragma unroll
    for (int band = 0; band < kBands; ++band)
#pragma unroll
      for (int c = 0; c < kWidth; ++c) {
        const int col = kWidth == 4 ? band * 64 + 4 * tx + c : kWidth * tx + c;
        dst[col] = o[r][band * kWidth + c] * inv;
      }
    if (lse_out && tx == 0)
      lse_out[static_cast<std::size_t>(h) * Lq + row] = l > 0.0f ? (row_max[r] + log2f(l)) * kLn2 : -INFINITY;
  }
}

// ---- dense weights from lse -----------------------------------------------------------------

template <typename T>
__device__ __forceinline__ float widen(T x) {
  return static_cast<float>(x);
}
template <>
__device__ __forceinline__ float widen<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <>
__device__ __forceinline__ float widen<__half>(__half x) {
  return __half2float(x);
}

// Grid (ceil(Lk/32), ceil(Lq/32), H), 32 × 8 threads; each thread 4 rows of one key column.
template <typename T>
__global__ void weights_kernel(const T* __restrict__ Q, const T* __restrict__ K, const float* __restrict__ lse,
                               float* __restrict__ W, int Lq, int Lk, int D, float scale, int causal) {
  __shared__ float sq[32][33];
  __shared__ float sk[32][33];
  const int h = blockIdx.z, i0 = blockIdx.y * 32, j0 = blockIdx.x * 32;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const T* Qh = Q + static_cast<std::size_t>(h) * Lq * D;
  const T* Kh = K + static_cast<std::size_t>(h) * Lk * D;
  float acc[4] = {0, 0, 0, 0};
  for (int c0 = 0; c0 < D; c0 += 32) {
    for (int r = ty; r < 32; r += 8) {
      const int i = i0 + r, j = j0 + r, c = c0 + tx;
      sq[r][tx] = (i < Lq && c < D) ? widen(Qh[static_cast<std::size_t>(i) * D + c]) : 0.0f;
      sk[r][tx] = (j < Lk && c < D) ? widen(Kh[static_cast<std::size_t>(j) * D + c]) : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int c = 0; c < 32; ++c)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[r] = fmaf(sq[ty + 8 * r][c], sk[tx][c], acc[r]);
    __syncthreads();
  }
  const int j = j0 + tx;
  if (j >= Lk) return;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int i = i0 + ty + 8 * r;
    if (i >= Lq) continue;
    const float l = lse[static_cast<std::size_t>(h) * Lq + i];
    const bool masked = (causal && j > i) || l == -INFINITY;
    W[(static_cast<std::size_t>(h) * Lq + i) * Lk + j] = masked ? 0.0f : expf(acc[r] * scale - l);
  }
}

template <typename T, int D, int kWarps>
void launch_tc(const void* q, const void* k, const void* v, void* out, float* lse, const AttentionDims& dims,
               bool causal, const BlockList* blocks, cudaStream_t stream) {
  constexpr int bytes = tc_shared_bytes<D, kWarps>();
  const auto kernel = flash_tc_kernel<T, D, kWarps>;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "raising the shared-memory limit of the attention kernel");
  const dim3 grid((dims.lq + 16 * kWarps - 1) / (16 * kWarps), dims.heads);
  const float scale_log2 = kLog2e / std::sqrt(static_cast<float>(D));
  kernel<<<grid, 32 * kWarps, bytes, stream>>>(static_cast<const T*>(q), static_cast<const T*>(k),
                                              static_cast<const T*>(v), static_cast<T*>(out), lse, dims.lq, dims.lk,
                                              scale_log2, causal ? 1 : 0, blocks ? blocks->offsets : nullptr,
                                              blocks ? blocks->ids : nullptr);
  check_launch("flash attention (tensor cores)");
}

template <int D>
void launch_f32(const void* q, const void* k, const void* v, void* out, float* lse, const AttentionDims& dims,
                bool causal, const BlockList* blocks, cudaStream_t stream) {
  constexpr int bytes = f32_shared_bytes<D>();
  const auto kernel = flash_f32_kernel<D>;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "raising the shared-memory limit of the attention kernel");
  const dim3 grid((dims.lq + kF32Rows - 1) / kF32Rows, dims.heads);
  const float scale_log2 = kLog2e / std::sqrt(static_cast<float>(D));
  kernel<<<grid, kF32Threads, bytes, stream>>>(static_cast<const float*>(q), static_cast<const float*>(k),
                                               static_cast<const float*>(v), static_cast<float*>(out), lse, dims.lq,
                                               dims.lk, scale_log2, causal ? 1 : 0, blocks ? blocks->offsets : nullptr,
                                               blocks ? blocks->ids : nullptr);
  check_launch("flash attention (float32)");
}

template <typename T>
void launch_tc_dim(const void* q, const void* k, const void* v, void* out, float* lse, const AttentionDims& dims,
                   bool causal, const BlockList* blocks, int warps, cudaStream_t stream) {
  if (warps == 0) warps = 4;  // the default: measured on the H100 against 8 warps (docs/gpu.md)
  if (warps != 4 && warps != 8) throw ParamError("flash attention: warps per block must be 4 or 8");
  if (blocks && warps != 4) throw ParamError("block-sparse attention: query blocks of 64 rows (4 warps) only");
  if (dims.d == 64)
    return warps == 4 ? launch_tc<T, 64, 4>(q, k, v, out, lse, dims, causal, blocks, stream)
                      : launch_tc<T, 64, 8>(q, k, v, out, lse, dims, causal, blocks, stream);
  if (dims.d == 128)
    return warps == 4 ? launch_tc<T, 128, 4>(q, k, v, out, lse, dims, causal, blocks, stream)
                      : launch_tc<T, 128, 8>(q, k, v, out, lse, dims, causal, blocks, stream);
  throw ShapeError("head dim " + std::to_string(dims.d) + ": the fp16/bf16 attention kernel takes 64 or 128");
}

void check_dims(const AttentionDims& dims, bool causal) {
  if (dims.heads < 1 || dims.lq < 1 || dims.lk < 1)
    throw ShapeError("attention on the GPU needs at least one head, query and key");
  if (causal && dims.lq != dims.lk)
    throw ShapeError("causal attention needs as many queries as keys (" + std::to_string(dims.lq) + " vs " +
                     std::to_string(dims.lk) + ")");
}

}  // namespace

void flash_attention_forward(DType type, const void* q, const void* k, const void* v, void* out, float* lse,
                             const AttentionDims& dims, bool causal, cudaStream_t stream, int warps) {
  block_sparse_attention_forward(type, q, k, v, out, lse, dims, causal, nullptr, stream, warps);
}

void block_sparse_attention_forward(DType type, const void* q, const void* k, const void* v, void* out, float* lse,
                                    const AttentionDims& dims, bool causal, const BlockList* blocks,
                                    cudaStream_t stream, int warps) {
  check_dims(dims, causal);
  switch (type) {
    case DType::BF16:
      return launch_tc_dim<__nv_bfloat16>(q, k, v, out, lse, dims, causal, blocks, warps, stream);
    case DType::F16:
      return launch_tc_dim<__half>(q, k, v, out, lse, dims, causal, blocks, warps, stream);
    case DType::F32:
      if (dims.d == 32) return launch_f32<32>(q, k, v, out, lse, dims, causal, blocks, stream);
      if (dims.d == 64) return launch_f32<64>(q, k, v, out, lse, dims, causal, blocks, stream);
      if (dims.d == 128) return launch_f32<128>(q, k, v, out, lse, dims, causal, blocks, stream);
      throw ShapeError("head dim " + std::to_string(dims.d) + ": the float32 attention kernel takes 32, 64 or 128");
  }
}

void attention_weights(DType type, const void* q, const void* k, const float* lse, float* weights,
                       const AttentionDims& dims, bool causal, cudaStream_t stream) {
  check_dims(dims, causal);
  const dim3 grid((dims.lk + 31) / 32, (dims.lq + 31) / 32, dims.heads), block(32, 8);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dims.d));
  const int c = causal ? 1 : 0;
  switch (type) {
    case DType::BF16:
      weights_kernel<__nv_bfloat16><<<grid, block, 0, stream>>>(static_cast<const __nv_bfloat16*>(q),
                                                                 static_cast<const __nv_bfloat16*>(k), lse, weights,
                                                                 dims.lq, dims.lk, dims.d, scale, c);
      break;
    case DType::F16:
      weights_kernel<__half><<<grid, block, 0, stream>>>(static_cast<const __half*>(q), static_cast<const __half*>(k),
                                                         lse, weights, dims.lq, dims.lk, dims.d, scale, c);
      break;
    case DType::F32:
      weights_kernel<float><<<grid, block, 0, stream>>>(static_cast<const float*>(q), static_cast<const float*>(k), lse,
                                                        weights, dims.lq, dims.lk, dims.d, scale, c);
      break;
  }
  check_launch("attention weights");
}

}  // namespace attnlab::cuda
