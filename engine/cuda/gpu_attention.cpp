// Host-tensor wrappers of the CUDA kernels (see gpu_attention.h): copy in, run, copy out, with
// every CUDA call checked and device memory owned by RAII buffers, so an error leaves nothing
// allocated behind it. Plain C++ (the host compiler) against the CUDA runtime and cuBLAS APIs.
#include "cuda/gpu_attention.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "attention/bigbird.h"
#include "attention/reformer_lsh.h"
#include "core/error.h"
#include "cuda/cuda_device.h"
#include "cuda/kernels.h"
#include "cuda/lsh_dims.h"

namespace attnlab {
namespace gpu {
namespace {

using cuda::check;

// Device memory owned for one call.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) {
    if (bytes == 0) return;
    std::size_t free_bytes = 0, total = 0;
    check(cudaMemGetInfo(&free_bytes, &total), "reading free GPU memory");
    if (bytes > free_bytes)
      throw ResourceError("the GPU has " + std::to_string(free_bytes >> 20) + " MiB free; this needs " +
                          std::to_string(bytes >> 20) + " MiB");
    check(cudaMalloc(&ptr_, bytes), "allocating GPU memory");
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

class Event {
 public:
  Event() { check(cudaEventCreate(&e_), "creating an event"); }
  ~Event() { cudaEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_{};
};

void require_device() {
  std::string why;
  if (!gpu_available(&why)) throw DeviceError("no GPU to run on: " + why);
}

void upload(const Tensor& t, DeviceBuffer& dst) {
  check(cudaMemcpy(dst.get(), t.data(), static_cast<std::size_t>(t.size()) * sizeof(float), cudaMemcpyHostToDevice),
        "copying to the GPU");
}

void download(const DeviceBuffer& src, Tensor& t) {
  check(cudaMemcpy(t.data(), src.get(), static_cast<std::size_t>(t.size()) * sizeof(float), cudaMemcpyDeviceToHost),
        "copying from the GPU");
}

cuda::DType dtype_of(Precision p) {
  switch (p) {
    case Precision::F16:
      return cuda::DType::F16;
    case Precision::BF16:
      return cuda::DType::BF16;
    case Precision::F32:
      break;
  }
  return cuda::DType::F32;
}

cuda::AttentionDims dims_of(const Tensor& q, const Tensor& k, const Tensor& v, const char* what) {
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3)
    throw ShapeError(std::string(what) + ": q, k, v must have shape [heads, length, dim]; got " + q.shape_string() +
                     ", " + k.shape_string() + ", " + v.shape_string());
  if (k.dim(0) != q.dim(0) || v.dim(0) != q.dim(0) || k.dim(2) != q.dim(2) || v.dim(1) != k.dim(1))
    throw ShapeError(std::string(what) + ": shapes disagree: q " + q.shape_string() + ", k " + k.shape_string() +
                     ", v " + v.shape_string());
  if (v.dim(2) != q.dim(2))
    throw ShapeError(std::string(what) + " on the GPU needs the value dim equal to the head dim (" +
                     std::to_string(v.dim(2)) + " vs " + std::to_string(q.dim(2)) + ")");
  constexpr std::int64_t kMax = 1 << 30;
  if (q.dim(0) > kMax || q.dim(1) > kMax || k.dim(1) > kMax)
    throw ShapeError(std::string(what) + ": sizes beyond 2^30 are not supported");
  cuda::AttentionDims d;
  d.heads = static_cast<int>(q.dim(0));
  d.lq = static_cast<int>(q.dim(1));
  d.lk = static_cast<int>(k.dim(1));
  d.d = static_cast<int>(q.dim(2));
  return d;
}

}  // namespace

bool gpu_available(std::string* why_not) {
  const cuda::DeviceQuery query = cuda::query_device();
  if (!query.available && why_not) *why_not = query.reason;
  return query.available;
}

namespace {

// Exact attention, dense or over the key blocks of `lists` (BigBird's CSR lists, 64-token blocks).
SoftmaxAttentionResult run_flash(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const SoftmaxAttentionOptions& options, const BigBirdBlockLists* lists) {
  const cuda::AttentionDims dims = dims_of(q, k, v, "softmax attention");
  require_device();
  const cuda::DType type = dtype_of(options.precision);
  const std::size_t elem = type == cuda::DType::F32 ? 4 : 2;
  const std::size_t nq = static_cast<std::size_t>(q.size()), nk = static_cast<std::size_t>(k.size());
  DeviceBuffer q32(nq * 4), k32(nk * 4), v32(nk * 4), out32(nq * 4);
  DeviceBuffer qt(type == cuda::DType::F32 ? 0 : nq * elem), kt(type == cuda::DType::F32 ? 0 : nk * elem),
      vt(type == cuda::DType::F32 ? 0 : nk * elem), outt(type == cuda::DType::F32 ? 0 : nq * elem);
  DeviceBuffer lse(static_cast<std::size_t>(dims.heads) * dims.lq * 4);
  const std::size_t nw = options.want_weights ? static_cast<std::size_t>(dims.heads) * dims.lq * dims.lk : 0;
  DeviceBuffer weights(nw * 4);
  upload(q, q32);
  upload(k, k32);
  upload(v, v32);
  const bool f32 = type == cuda::DType::F32;
  if (!f32) {
    cuda::convert_from_f32(type, q32.get<float>(), qt.get(), nq, nullptr);
    cuda::convert_from_f32(type, k32.get<float>(), kt.get(), nk, nullptr);
    cuda::convert_from_f32(type, v32.get<float>(), vt.get(), nk, nullptr);
  }
  const void* qd = f32 ? q32.get() : qt.get();
  const void* kd = f32 ? k32.get() : kt.get();
  const void* vd = f32 ? v32.get() : vt.get();
  Event start, stop;
  check(cudaEventRecord(start.get()), "recording an event");
  DeviceBuffer offsets(lists ? lists->offsets.size() * sizeof(std::int32_t) : 0),
      ids(lists ? std::max<std::size_t>(1, lists->blocks.size()) * sizeof(std::int32_t) : 0);
  cuda::BlockList blocks;
  if (lists) {
    check(cudaMemcpy(offsets.get(), lists->offsets.data(), lists->offsets.size() * sizeof(std::int32_t),
                     cudaMemcpyHostToDevice),
          "copying the block lists");
    if (!lists->blocks.empty())
      check(cudaMemcpy(ids.get(), lists->blocks.data(), lists->blocks.size() * sizeof(std::int32_t),
                       cudaMemcpyHostToDevice),
            "copying the block lists");
    blocks.offsets = offsets.get<int>();
    blocks.ids = ids.get<int>();
  }
  cuda::block_sparse_attention_forward(type, qd, kd, vd, f32 ? out32.get() : outt.get(), lse.get<float>(), dims,
                                       options.causal, lists ? &blocks : nullptr, nullptr);
  if (options.want_weights)
    cuda::attention_weights(type, qd, kd, lse.get<float>(), weights.get<float>(), dims, options.causal, nullptr);
  check(cudaEventRecord(stop.get()), "recording an event");
  if (!f32) cuda::convert_to_f32(type, outt.get(), out32.get<float>(), nq, nullptr);
  check(cudaEventSynchronize(stop.get()), "running the attention kernels");
  SoftmaxAttentionResult result;
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "reading the kernel time");
  result.kernel_ms = ms;
  result.out = Tensor::uninitialized({dims.heads, dims.lq, dims.d});
  download(out32, result.out);
  result.logsumexp = Tensor::uninitialized({dims.heads, dims.lq});
  download(lse, result.logsumexp);
  if (options.want_weights) {
    result.weights = Tensor::uninitialized({dims.heads, dims.lq, dims.lk});
    download(weights, result.weights);
  }
  return result;
}

}  // namespace

SoftmaxAttentionResult softmax_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const SoftmaxAttentionOptions& options) {
  return run_flash(q, k, v, options, nullptr);
}

SoftmaxAttentionResult bigbird_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Params& params,
                                         std::uint64_t seed, const SoftmaxAttentionOptions& options) {
  if (q.rank() != 3 || k.rank() != 3 || q.dim(1) != k.dim(1))
    throw ShapeError("bigbird on the GPU is self-attention: q " + q.shape_string() + ", k " + k.shape_string());
  if (options.want_weights)
    throw ParamError("bigbird on the GPU: dense weights are not produced (the CPU variant traces them)");
  const BigBirdLayout layout = bigbird_layout(params, q.dim(1), options.causal);
  if (layout.block_size != cuda::kBlockRows)
    throw ParamError("bigbird on the GPU needs block_size=" + std::to_string(cuda::kBlockRows) + " (its tile); got " +
                     std::to_string(layout.block_size));
  const BigBirdBlockLists lists = bigbird_block_lists(layout, q.dim(0), seed);
  return run_flash(q, k, v, options, &lists);
}

LinearAttentionResult linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, float eps) {
  const cuda::AttentionDims dims = dims_of(q, k, v, "linear attention");
  require_device();
  const std::size_t nq = static_cast<std::size_t>(q.size()), nk = static_cast<std::size_t>(k.size());
  DeviceBuffer qd(nq * 4), kd(nk * 4), vd(nk * 4), out(nq * 4);
  DeviceBuffer workspace(cuda::linear_attention_workspace_bytes(dims));
  upload(q, qd);
  upload(k, kd);
  upload(v, vd);
  Event start, stop;
  check(cudaEventRecord(start.get()), "recording an event");
  cuda::linear_attention_forward(qd.get<float>(), kd.get<float>(), vd.get<float>(), out.get<float>(), workspace.get(),
                                 dims, causal, eps, nullptr);
  check(cudaEventRecord(stop.get()), "recording an event");
  check(cudaEventSynchronize(stop.get()), "running linear attention");
  LinearAttentionResult result;
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "reading the kernel time");
  result.kernel_ms = ms;
  result.out = Tensor::uninitialized({dims.heads, dims.lq, dims.d});
  download(out, result.out);
  return result;
}

LshAttentionResult reformer_lsh_attention(const Tensor& q, const Tensor& v, const Params& params, std::uint64_t seed,
                                          bool causal) {
  const cuda::AttentionDims dims = dims_of(q, q, v, "reformer_lsh attention");
  if (!params.get_bool("shared_qk"))
    throw ParamError("reformer_lsh on the GPU: shared_qk=false is not supported there (the CPU variant has it)");
  if (params.get_bool("dedup"))
    throw ParamError("reformer_lsh on the GPU: dedup=true is not supported there (the CPU variant has it)");
  const LshGeometry g = resolve_lsh_geometry(params, q.dim(1));
  require_device();
  const Tensor rotations = lsh_rotations(seed, q.dim(0), g.n_hashes, q.dim(2), g.n_buckets);
  const cuda::LshDims ld = lsh_dims_of(g, dims.heads, dims.lq, dims.d);
  const std::size_t n = static_cast<std::size_t>(q.size());
  DeviceBuffer qd(n * 4), vd(n * 4), out(n * 4), rot(static_cast<std::size_t>(rotations.size()) * 4),
      buckets(static_cast<std::size_t>(ld.heads) * ld.n_hashes * ld.length * 4),
      workspace(cuda::lsh_attention_workspace_bytes(ld));
  upload(q, qd);
  upload(v, vd);
  upload(rotations, rot);
  Event start, stop;
  check(cudaEventRecord(start.get()), "recording an event");
  cuda::lsh_attention_forward(qd.get<float>(), vd.get<float>(), rot.get<float>(), out.get<float>(), buckets.get<int>(),
                              workspace.get(), ld, causal, nullptr);
  check(cudaEventRecord(stop.get()), "recording an event");
  check(cudaEventSynchronize(stop.get()), "running LSH attention");
  LshAttentionResult result;
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "reading the kernel time");
  result.kernel_ms = ms;
  result.out = Tensor::uninitialized({dims.heads, dims.lq, dims.d});
  download(out, result.out);
  result.buckets.resize(static_cast<std::size_t>(ld.heads) * ld.n_hashes * ld.length);
  check(cudaMemcpy(result.buckets.data(), buckets.get(), result.buckets.size() * 4, cudaMemcpyDeviceToHost),
        "copying the buckets");
  return result;
}

KMeansResult spherical_kmeans(const Tensor& points, const Tensor& initial, int steps, float decay) {
  if (points.rank() != 2 || initial.rank() != 2 || points.dim(1) != initial.dim(1))
    throw ShapeError("k-means: points [N, d] and centroids [k, d] needed; got " + points.shape_string() + " and " +
                     initial.shape_string());
  require_device();
  cuda::KMeansDims kd;
  kd.points = static_cast<int>(points.dim(0));
  kd.clusters = static_cast<int>(initial.dim(0));
  kd.d = static_cast<int>(points.dim(1));
  kd.steps = steps;
  kd.decay = decay;
  DeviceBuffer x(static_cast<std::size_t>(points.size()) * 4), mu(static_cast<std::size_t>(initial.size()) * 4),
      nearest(static_cast<std::size_t>(kd.points) * 4), inv(static_cast<std::size_t>(kd.points) * 4);
  upload(points, x);
  upload(initial, mu);
  Event start, stop;
  check(cudaEventRecord(start.get()), "recording an event");
  cuda::kmeans_steps(x.get<float>(), mu.get<float>(), nearest.get<int>(), inv.get<float>(), kd, nullptr);
  check(cudaEventRecord(stop.get()), "recording an event");
  check(cudaEventSynchronize(stop.get()), "running k-means");
  KMeansResult result;
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "reading the kernel time");
  result.kernel_ms = ms;
  result.centroids = Tensor::uninitialized({kd.clusters, kd.d});
  download(mu, result.centroids);
  result.nearest.resize(static_cast<std::size_t>(kd.points));
  check(cudaMemcpy(result.nearest.data(), nearest.get(), result.nearest.size() * 4, cudaMemcpyDeviceToHost),
        "copying the assignments");
  return result;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.rank() != 2 || b.rank() != 2 || a.dim(1) != b.dim(0))
    throw ShapeError("matmul: need [M, K] and [K, N]; got " + a.shape_string() + " and " + b.shape_string());
  require_device();
  const int M = static_cast<int>(a.dim(0)), K = static_cast<int>(a.dim(1)), N = static_cast<int>(b.dim(1));
  DeviceBuffer da(static_cast<std::size_t>(a.size()) * 4), db(static_cast<std::size_t>(b.size()) * 4),
      dc(static_cast<std::size_t>(M) * N * 4);
  upload(a, da);
  upload(b, db);
  cublasHandle_t handle = nullptr;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) throw DeviceError("cuBLAS: cannot create a handle");
  // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: pass B first.
  const float one = 1.0f, zero = 0.0f;
  cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH);  // no TF32: the float32 twin of Eigen's GEMM
  const cublasStatus_t status = cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, db.get<float>(), N,
                                            da.get<float>(), K, &zero, dc.get<float>(), N);
  cublasDestroy(handle);
  if (status != CUBLAS_STATUS_SUCCESS) throw DeviceError("cuBLAS: sgemm failed (status " + std::to_string(status) + ")");
  Tensor c = Tensor::uninitialized({M, N});
  download(dc, c);
  return c;
}

}  // namespace gpu
}  // namespace attnlab
