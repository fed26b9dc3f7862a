// Reformer LSH attention on the GPU, float32 — the twin of the `reformer_lsh` variant
// (attention/reformer_lsh.cpp) with shared QK and without dedup:
//   1. hash:    bucket = argmax [q·R_hr ; −q·R_hr] (first index on ties), tiles of 64 tokens × 64
//               rotation columns; 1/|q| per token for the unit-length keys k̂ = q/|q|
//   2. sort:    every (head, round) by (bucket, position) at once: one CUB radix sort of the keys
//               ((head·R + round)·n_b + bucket)·L + position
//   3. attend:  per (head, round, chunk of the sorted order): the chunk's queries against the
//               keys of the chunk and the `chunks_before` chunks before it (wrapping, distinct),
//               s = q·k̂/√d, the token itself −5·10⁴, keys after the query (original positions)
//               hidden when causal; online softmax; o_r and lse_r stored at the original positions
//   4. combine: out_i = Σ_r o_r(i)·exp(lse_r(i) − log Σ_r' exp(lse_r'(i)))
// A query is handled by D/32 adjacent lanes, each owning 32 of its dims (partial dot products
// summed by shuffles); the window's keys and values pass through shared memory in tiles.
#include <cub/device/device_radix_sort.cuh>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "cuda/kernels.h"

namespace attnlab::cuda {
namespace {

constexpr float kSelfScore = -5e4f;  // ReformerLshExtras::kSelfScore
constexpr float kTinyNorm = 1e-12f;
constexpr int kQueries = 64;         // queries per block pass
template <int D>
constexpr int kKeys = D == 128 ? 32 : 64;  // keys per shared-memory tile (static shared memory < 48 KB)

struct Workspace {
  std::uint64_t* keys_in;
  std::uint64_t* keys_out;
  float* inv_norm;    // [H, L]
  float* round_out;   // [H, R, L, D]
  float* round_lse;   // [H, R, L]
  void* sort_temp;
  std::size_t sort_temp_bytes;
};

int end_bit_for(const LshDims& g) {
  const double range = static_cast<double>(g.heads) * g.n_hashes * g.n_buckets * g.length;
  int bits = 1;
  while (bits < 64 && std::ldexp(1.0, bits) < range) ++bits;
  return bits;
}

std::size_t align256(std::size_t n) { return (n + 255) / 256 * 256; }

std::size_t sort_temp_bytes(const LshDims& g) {
  std::size_t bytes = 0;
  const std::size_t n = static_cast<std::size_t>(g.heads) * g.n_hashes * g.length;
  check(cub::DeviceRadixSort::SortKeys(nullptr, bytes, static_cast<const std::uint64_t*>(nullptr),
                                       static_cast<std::uint64_t*>(nullptr), n, 0, end_bit_for(g)),
        "sizing the LSH sort");
  return bytes;
}

Workspace carve(void* base, const LshDims& g) {
  const std::size_t n = static_cast<std::size_t>(g.heads) * g.n_hashes * g.length;
  auto* p = static_cast<unsigned char*>(base);
  Workspace w{};
  w.keys_in = reinterpret_cast<std::uint64_t*>(p);
  p += align256(n * 8);
  w.keys_out = reinterpret_cast<std::uint64_t*>(p);
  p += align256(n * 8);
  w.inv_norm = reinterpret_cast<float*>(p);
  p += align256(static_cast<std::size_t>(g.heads) * g.length * 4);
  w.round_out = reinterpret_cast<float*>(p);
  p += align256(n * g.d * 4);
  w.round_lse = reinterpret_cast<float*>(p);
  p += align256(n * 4);
  w.sort_temp = p;
  w.sort_temp_bytes = sort_temp_bytes(g);
  return w;
}

// The argmax of one row so far: the best value of x·r over the columns seen (pos) and of −x·r
// (neg), each with its first column.
struct Best {
  float pos = -INFINITY, neg = -INFINITY;
  int pos_at = 0x7fffffff, neg_at = 0x7fffffff;
  __device__ void see(float dot, int col) {
    if (dot > pos || (dot == pos && col < pos_at)) pos = dot, pos_at = col;
    if (-dot > neg || (-dot == neg && col < neg_at)) neg = -dot, neg_at = col;
  }
  __device__ void merge(const Best& o) {
    if (o.pos > pos || (o.pos == pos && o.pos_at < pos_at)) pos = o.pos, pos_at = o.pos_at;
    if (o.neg > neg || (o.neg == neg && o.neg_at < neg_at)) neg = o.neg, neg_at = o.neg_at;
  }
};

constexpr int kHashRows = 64, kHashCols = 64, kHashThreads = 256;

// Grid (ceil(L/64), H·R), 256 threads: a 64-token × 64-column tile of x·R per step, each thread a
// 4 × 4 block of it (rows 4ty.., columns 4tx..), the running argmax per row kept in registers and
// merged over the 16 threads of a row group at the end. rotations [H, R, D, m], m = n_b / 2. The
// dot products sum over the D dims in order, as the CPU's.
template <int D>
__global__ void __launch_bounds__(kHashThreads) hash_kernel(const float* __restrict__ Q,
                                                            const float* __restrict__ rotations,
                                                            std::uint64_t* __restrict__ keys,
                                                            int* __restrict__ buckets_out,
                                                            float* __restrict__ inv_norm, int L, int R, int nb) {
  constexpr int P = kHashRows + 4;
  extern __shared__ __align__(16) float hash_shared[];
  float (*sx)[P] = reinterpret_cast<float (*)[P]>(hash_shared);            // [D][P] tokens transposed
  float (*sr)[P] = reinterpret_cast<float (*)[P]>(hash_shared + D * P);    // [D][P] a rotation column tile
  const int seg = blockIdx.y, h = seg / R, i0 = blockIdx.x * kHashRows, m = nb / 2;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const float* Qh = Q + static_cast<std::size_t>(h) * L * D;
  const float* rot = rotations + static_cast<std::size_t>(seg) * D * m;
  for (int e = tid; e < kHashRows * D; e += kHashThreads) {
    const int r = e / D, a = e % D;
    sx[a][r] = i0 + r < L ? Qh[static_cast<std::size_t>(i0 + r) * D + a] : 0.0f;
  }
  Best best[4];
  for (int c0 = 0; c0 < m; c0 += kHashCols) {
    __syncthreads();
    for (int e = tid; e < D * kHashCols; e += kHashThreads) {
      const int a = e / kHashCols, c = e % kHashCols;
      sr[a][c] = c0 + c < m ? rot[static_cast<std::size_t>(a) * m + c0 + c] : 0.0f;
    }
    __syncthreads();
    float acc[4][4] = {};
#pragma unroll 8
    for (int a = 0; a < D; ++a) {
      const float4 xv = *reinterpret_cast<const float4*>(&sx[a][4 * ty]);
      const float4 rv = *reinterpret_cast<const float4*>(&sr[a][4 * tx]);
      const float xa[4] = {xv.x, xv.y, xv.z, xv.w}, ra[4] = {rv.x, rv.y, rv.z, rv.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(xa[i], ra[j], acc[i][j]);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int col = c0 + 4 * tx + j;
      if (col < m)
#pragma unroll
        for (int i = 0; i < 4; ++i) best[i].see(acc[i][j], col);
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    for (int off = 1; off < 16; off <<= 1) {
      Best other;
      other.pos = __shfl_xor_sync(0xffffffffu, best[i].pos, off);
      other.neg = __shfl_xor_sync(0xffffffffu, best[i].neg, off);
      other.pos_at = __shfl_xor_sync(0xffffffffu, best[i].pos_at, off);
      other.neg_at = __shfl_xor_sync(0xffffffffu, best[i].neg_at, off);
      best[i].merge(other);
    }
    const int t = i0 + 4 * ty + i;
    if (tx == 0 && t < L) {
      // +columns come first in [x·R ; −x·R]: they win ties.
      const int bucket = best[i].pos >= best[i].neg ? best[i].pos_at : m + best[i].neg_at;
      keys[static_cast<std::size_t>(seg) * L + t] =
          (static_cast<std::uint64_t>(seg) * nb + bucket) * static_cast<std::uint64_t>(L) + t;
      if (buckets_out) buckets_out[static_cast<std::size_t>(seg) * L + t] = bucket;
    }
  }
  if (seg % R == 0 && tid < kHashRows && i0 + tid < L) {
    float ss = 0.0f;
    for (int a = 0; a < D; ++a) ss = fmaf(sx[a][tid], sx[a][tid], ss);
    const float norm = sqrtf(ss);
    inv_norm[static_cast<std::size_t>(h) * L + i0 + tid] = norm < kTinyNorm ? 0.0f : 1.0f / norm;
  }
}

// Grid (chunks, H·R), 64·(D/32) threads: thread (query slot, part) with part owning dims
// 32·part .. 32·part + 31.
template <int D>
__global__ void __launch_bounds__(kQueries * (D / 32)) chunk_attention_kernel(
    const float* __restrict__ Q, const float* __restrict__ V, const std::uint64_t* __restrict__ sorted,
    const float* __restrict__ inv_norm, float* __restrict__ round_out, float* __restrict__ round_lse, int L, int R,
    int chunk_size, int n_chunks, int chunks_before, float scale, int causal) {
  constexpr int S = D / 32;
  __shared__ float sk[kKeys<D>][D + 1];
  __shared__ float sv[kKeys<D>][D + 1];
  __shared__ int spos[kKeys<D>];
  const int c = blockIdx.x, seg = blockIdx.y, h = seg / R;
  const int slot = threadIdx.x / S, part = threadIdx.x % S;
  const std::uint64_t* order = sorted + static_cast<std::size_t>(seg) * L;
  const float* Qh = Q + static_cast<std::size_t>(h) * L * D;
  const float* Vh = V + static_cast<std::size_t>(h) * L * D;
  const float* norms = inv_norm + static_cast<std::size_t>(h) * L;
  const int c_begin = c * chunk_size, c_end = min(L, c_begin + chunk_size);
  const int window = min(chunks_before, n_chunks - 1) + 1;

  for (int q0 = c_begin; q0 < c_end; q0 += kQueries) {
    const int t = q0 + slot;
    const bool active = t < c_end;
    const int pos = active ? static_cast<int>(order[t] % static_cast<std::uint64_t>(L)) : -1;
    float q[32], o[32];
#pragma unroll
    for (int a = 0; a < 32; ++a) {
      q[a] = active ? Qh[static_cast<std::size_t>(pos) * D + part * 32 + a] * scale : 0.0f;
      o[a] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int w = 0; w < window; ++w) {
      const int wc = ((c - w) % n_chunks + n_chunks) % n_chunks;
      const int k_begin = wc * chunk_size, k_end = min(L, k_begin + chunk_size);
      for (int k0 = k_begin; k0 < k_end; k0 += kKeys<D>) {
        const int n = min(kKeys<D>, k_end - k0);
        __syncthreads();  // the previous tile is consumed
        for (int e = threadIdx.x; e < n * D; e += blockDim.x) {
          const int r = e / D, a = e % D;
          const int p = static_cast<int>(order[k0 + r] % static_cast<std::uint64_t>(L));
          sk[r][a] = Qh[static_cast<std::size_t>(p) * D + a] * norms[p];
          sv[r][a] = Vh[static_cast<std::size_t>(p) * D + a];
          if (a == 0) spos[r] = p;
        }
        __syncthreads();
        for (int j = 0; j < n; ++j) {
          float dot = 0.0f;
#pragma unroll
          for (int a = 0; a < 32; ++a) dot = fmaf(q[a], sk[j][part * 32 + a], dot);
#pragma unroll
          for (int off = 1; off < S; off <<= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
          const int kp = spos[j];
          if (!active || (causal && kp > pos)) continue;
          const float s = kp == pos ? kSelfScore : dot;
          if (s > m) {
            const float alpha = __expf(m - s);
            l *= alpha;
#pragma unroll
            for (int a = 0; a < 32; ++a) o[a] *= alpha;
            m = s;
          }
          const float p = __expf(s - m);
          l += p;
#pragma unroll
          for (int a = 0; a < 32; ++a) o[a] = fmaf(p, sv[j][part * 32 + a], o[a]);
        }
      }
    }
    if (active) {
      const std::size_t row = static_cast<std::size_t>(seg) * L + pos;
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
      for (int a = 0; a < 32; ++a) round_out[row * D + part * 32 + a] = o[a] * inv;
      if (part == 0) round_lse[row] = l > 0.0f ? m + logf(l) : -INFINITY;
    }
  }
}

// One thread per (head, token, dim).
__global__ void combine_kernel(const float* __restrict__ round_out, const float* __restrict__ round_lse,
                               float* __restrict__ out, int H, int L, int D, int R) {
  const std::size_t e = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (e >= static_cast<std::size_t>(H) * L * D) return;
  const int a = static_cast<int>(e % D);
  const std::size_t token = e / D;  // h·L + i
  const int h = static_cast<int>(token / L), i = static_cast<int>(token % L);
  float top = -INFINITY;
  for (int r = 0; r < R; ++r) top = fmaxf(top, round_lse[(static_cast<std::size_t>(h) * R + r) * L + i]);
  float num = 0.0f, den = 0.0f;
  if (top != -INFINITY)
    for (int r = 0; r < R; ++r) {
      const std::size_t row = (static_cast<std::size_t>(h) * R + r) * L + i;
      const float w = __expf(round_lse[row] - top);
      num = fmaf(w, round_out[row * D + a], num);
      den += w;
    }
  out[e] = den > 0.0f ? num / den : 0.0f;
}

void check_geometry(const LshDims& g) {
  if (g.heads < 1 || g.length < 1) throw ShapeError("LSH attention on the GPU needs a head and a token");
  if (g.d != 32 && g.d != 64 && g.d != 128)
    throw ShapeError("LSH attention on the GPU: head dim " + std::to_string(g.d) + " (32, 64 or 128)");
  if (g.n_hashes < 1 || g.n_buckets < 2 || g.n_buckets % 2 || g.bucket_size < 1 || g.chunks_before < 0)
    throw ParamError("LSH attention on the GPU: n_hashes >= 1, an even n_buckets >= 2, bucket_size >= 1");
}

template <int D>
void launch_hash(dim3 grid, const float* q, const float* rotations, const Workspace& w, int* buckets, const LshDims& g,
                 cudaStream_t stream) {
  constexpr int bytes = 2 * D * (kHashRows + 4) * 4;  // 70 KB at d = 128: above the 48 KB default
  check(cudaFuncSetAttribute(hash_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "raising the shared-memory limit of the LSH hash");
  hash_kernel<D><<<grid, kHashThreads, bytes, stream>>>(q, rotations, w.keys_in, buckets, w.inv_norm, g.length,
                                                        g.n_hashes, g.n_buckets);
}

template <int D>
void launch_chunks(const float* q, const float* v, const Workspace& w, const LshDims& g, bool causal,
                   cudaStream_t stream) {
  const int chunks = (g.length + g.bucket_size - 1) / g.bucket_size;
  chunk_attention_kernel<D><<<dim3(chunks, g.heads * g.n_hashes), kQueries * (D / 32), 0, stream>>>(
      q, v, w.keys_out, w.inv_norm, w.round_out, w.round_lse, g.length, g.n_hashes, g.bucket_size, chunks,
      g.chunks_before, 1.0f / std::sqrt(static_cast<float>(D)), causal ? 1 : 0);
  check_launch("LSH attention: chunks");
}

}  // namespace

std::size_t lsh_attention_workspace_bytes(const LshDims& g) {
  check_geometry(g);
  const std::size_t n = static_cast<std::size_t>(g.heads) * g.n_hashes * g.length;
  return 2 * align256(n * 8) + align256(static_cast<std::size_t>(g.heads) * g.length * 4) + align256(n * g.d * 4) +
         align256(n * 4) + sort_temp_bytes(g);
}

void lsh_attention_forward(const float* q, const float* v, const float* rotations, float* out, int* buckets,
                           void* workspace, const LshDims& g, bool causal, cudaStream_t stream) {
  check_geometry(g);
  const Workspace w = carve(workspace, g);
  const std::size_t n = static_cast<std::size_t>(g.heads) * g.n_hashes * g.length;
  const dim3 hash_grid((g.length + kHashRows - 1) / kHashRows, g.heads * g.n_hashes);
  if (g.d == 32) launch_hash<32>(hash_grid, q, rotations, w, buckets, g, stream);
  else if (g.d == 64) launch_hash<64>(hash_grid, q, rotations, w, buckets, g, stream);
  else launch_hash<128>(hash_grid, q, rotations, w, buckets, g, stream);
  check_launch("LSH attention: hashing");
  std::size_t temp = w.sort_temp_bytes;
  check(cub::DeviceRadixSort::SortKeys(w.sort_temp, temp, w.keys_in, w.keys_out, n, 0, end_bit_for(g), stream),
        "LSH attention: sorting");
  if (g.d == 32) launch_chunks<32>(q, v, w, g, causal, stream);
  else if (g.d == 64) launch_chunks<64>(q, v, w, g, causal, stream);
  else launch_chunks<128>(q, v, w, g, causal, stream);
  const std::size_t total = static_cast<std::size_t>(g.heads) * g.length * g.d;
  combine_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, stream>>>(w.round_out, w.round_lse, out, g.heads,
                                                                               g.length, g.d, g.n_hashes);
  check_launch("LSH attention: combining rounds");
}

}  // namespace attnlab::cuda
