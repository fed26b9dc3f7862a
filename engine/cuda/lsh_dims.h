// Host side only (includes engine headers that nvcc never sees): the LSH kernel's dimensions from
// the `reformer_lsh` variant's geometry, shared by the host-tensor API and the CUDA backend.
#pragma once

#include "attention/reformer_lsh.h"
#include "cuda/kernels.h"

namespace attnlab::gpu {

inline cuda::LshDims lsh_dims_of(const LshGeometry& g, std::int64_t heads, std::int64_t length, std::int64_t d) {
  cuda::LshDims ld;
  ld.heads = static_cast<int>(heads);
  ld.length = static_cast<int>(length);
  ld.d = static_cast<int>(d);
  ld.n_hashes = static_cast<int>(g.n_hashes);
  ld.n_buckets = static_cast<int>(g.n_buckets);
  ld.bucket_size = static_cast<int>(g.chunk_size);
  ld.chunks_before = static_cast<int>(g.chunks_before);
  return ld;
}

}  // namespace attnlab::gpu
