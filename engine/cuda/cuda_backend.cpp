// The CUDA compute backend (cuda/backend.h): one stream, arrays from the stream-ordered allocator
// (cudaMallocAsync, so the per-layer temporaries of a forward pass cost no device-wide
// synchronisation), GEMMs through cuBLAS, everything else the kernels of engine/cuda/*.cu.
// Plain C++ against the CUDA runtime and cuBLAS APIs, compiled only in a build with CUDA.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>

#include "attention/bigbird.h"
#include "attention/reformer_lsh.h"
#include "core/error.h"
#include "cuda/backend.h"
#include "cuda/cuda_device.h"
#include "cuda/kernels.h"
#include "cuda/lsh_dims.h"

namespace attnlab::gpu {
namespace {

using cuda::check;

static_assert(kSparseBlock == cuda::kBlockRows, "the window lists use the block-sparse kernel's tile");

constexpr std::int64_t kMaxSide = std::int64_t{1} << 30;  // the kernels index with int

// What outlives every array: the stream their memory is freed on and the byte counters.
struct StreamState {
  cudaStream_t stream = nullptr;
  std::atomic<std::int64_t> in_use{0};
  std::atomic<std::int64_t> peak{0};
  ~StreamState() {
    if (stream) {
      cudaStreamSynchronize(stream);
      cudaStreamDestroy(stream);
    }
  }
};

int as_int(std::int64_t n, const char* what) {
  if (n < 0 || n > kMaxSide)
    throw ShapeError(std::string(what) + " = " + std::to_string(n) + " is beyond what the GPU kernels index (2^30)");
  return static_cast<int>(n);
}

const char* kGpuVariants = "softmax, bigbird (block_size 64), linear, reformer_lsh (shared QK, no dedup)";

class CudaBackend final : public ComputeBackend {
 public:
  explicit CudaBackend(const BackendOptions& options) : options_(options), state_(std::make_shared<StreamState>()) {
    const cuda::DeviceQuery query = cuda::query_device();
    if (!query.available) throw DeviceError("no GPU to run on: " + query.reason);
    device_name_ = query.name;
    check(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "creating a stream");
    if (cublasCreate(&blas_) != CUBLAS_STATUS_SUCCESS) throw DeviceError("cuBLAS: cannot create a handle");
    cublasSetStream(blas_, state_->stream);
    // F32: no TF32, the float32 twin of Eigen's GEMM; BF16: TF32 tensor cores.
    cublasSetMathMode(blas_, options_.precision == Precision::F32 ? CUBLAS_DEFAULT_MATH : CUBLAS_TF32_TENSOR_OP_MATH);
    check(cudaEventCreate(&start_), "creating an event");
    check(cudaEventCreate(&stop_), "creating an event");
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(state_->stream);
    cublasDestroy(blas_);
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string describe() const override {
    if (options_.precision == Precision::F32) return "CUDA: " + device_name_ + ", fp32";
    return "CUDA: " + device_name_ + ", " + precision_name(options_.precision) + " attention + TF32 GEMMs";
  }
  DeviceKind kind() const override { return DeviceKind::Cuda; }

  DeviceArray alloc(std::int64_t n) override {
    if (n < 0) throw ShapeError("a GPU array of " + std::to_string(n) + " floats");
    const std::int64_t bytes = std::max<std::int64_t>(n, 1) * static_cast<std::int64_t>(sizeof(float));
    void* p = nullptr;
    const cudaError_t status = cudaMallocAsync(&p, static_cast<std::size_t>(bytes), state_->stream);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      std::size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      throw ResourceError("the GPU is out of memory: " + std::to_string(bytes >> 20) + " MiB asked, " +
                          std::to_string(free_bytes >> 20) + " MiB free of " + std::to_string(total >> 20));
    }
    check(status, "allocating GPU memory");
    const std::int64_t now = state_->in_use.fetch_add(bytes) + bytes;
    std::int64_t peak = state_->peak.load();
    while (now > peak && !state_->peak.compare_exchange_weak(peak, now)) {
    }
    std::shared_ptr<StreamState> state = state_;
    return DeviceArray(std::shared_ptr<float>(static_cast<float*>(p),
                                              [state, bytes](float* q) {
                                                cudaFreeAsync(q, state->stream);
                                                state->in_use.fetch_sub(bytes);
                                              }),
                       n);
  }
  void do_upload(const float* host, std::int64_t n, DeviceArray& dst) override {
    check(cudaMemcpyAsync(dst.data(), host, static_cast<std::size_t>(n) * sizeof(float), cudaMemcpyHostToDevice,
                          state_->stream),
          "copying to the GPU");
    // The host buffer may go away when this returns.
    check(cudaStreamSynchronize(state_->stream), "copying to the GPU");
  }
  void do_download(const DeviceArray& src, std::int64_t n, float* host) override {
    check(cudaMemcpyAsync(host, src.data(), static_cast<std::size_t>(n) * sizeof(float), cudaMemcpyDeviceToHost,
                          state_->stream),
          "copying from the GPU");
    check(cudaStreamSynchronize(state_->stream), "copying from the GPU");
  }

  void do_linear(const DeviceArray& x, const DeviceArray& w, const DeviceArray& bias, DeviceArray& y, std::int64_t rows,
                 std::int64_t in, std::int64_t out) override {
    const int m = as_int(out, "linear outputs"), n = as_int(rows, "linear rows"), k = as_int(in, "linear inputs");
    cuda::broadcast_rows(y.data(), bias.data(), static_cast<std::size_t>(rows), m, state_->stream);
    // Row-major y = x·w is column-major yᵀ = wᵀ·xᵀ: w first. β = 1 keeps the bias.
    const float one = 1.0f;
    const cublasStatus_t status =
        cublasSgemm(blas_, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, w.data(), m, x.data(), k, &one, y.data(), m);
    if (status != CUBLAS_STATUS_SUCCESS)
      throw DeviceError("cuBLAS: sgemm [" + std::to_string(rows) + ", " + std::to_string(in) + "] · [" +
                        std::to_string(in) + ", " + std::to_string(out) + "] failed (status " + std::to_string(status) +
                        ")");
  }
  void do_layer_norm(const DeviceArray& x, const DeviceArray& gamma, const DeviceArray& beta, float eps, DeviceArray& y,
                     std::int64_t rows, std::int64_t cols) override {
    cuda::layer_norm_rows(x.data(), gamma.data(), beta.data(), eps, y.data(), rows, as_int(cols, "layer norm width"),
                          state_->stream);
  }
  void do_gelu(DeviceArray& x, std::int64_t n) override {
    cuda::gelu_erf(x.data(), static_cast<std::size_t>(n), state_->stream);
  }
  void do_axpby(DeviceArray& y, float a, const DeviceArray& x, float b, std::int64_t n) override {
    cuda::axpby(y.data(), a, x.data(), b, static_cast<std::size_t>(n), state_->stream);
  }
  void do_embed(const std::vector<std::int32_t>& ids, const DeviceArray& table, std::int64_t d_model,
                DeviceArray& out) override {
    const auto L = static_cast<std::int64_t>(ids.size());
    const DeviceArray device_ids = alloc(L);  // int32 and float are both 4 bytes
    check(cudaMemcpyAsync(device_ids.data(), ids.data(), ids.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                          state_->stream),
          "copying the token ids");
    cuda::embed_tokens(reinterpret_cast<const std::int32_t*>(device_ids.data()), table.data(),
                       as_int(d_model, "d_model"), out.data(), ids.size(), state_->stream);
    check(cudaStreamSynchronize(state_->stream), "embedding the tokens");  // ids may go away on return
  }
  void do_fill(DeviceArray& y, float value, std::int64_t n) override {
    cuda::fill(y.data(), value, static_cast<std::size_t>(n), state_->stream);
  }
  void do_split_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length,
                      std::int64_t heads, std::int64_t dim) override {
    cuda::split_heads(x.data(), out.data(), static_cast<std::size_t>(batch), static_cast<std::size_t>(length),
                      as_int(heads, "heads"), as_int(dim, "head dim"), state_->stream);
  }
  void do_merge_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length,
                      std::int64_t heads, std::int64_t dim) override {
    cuda::merge_heads(x.data(), out.data(), static_cast<std::size_t>(batch), static_cast<std::size_t>(length),
                      as_int(heads, "heads"), as_int(dim, "head dim"), state_->stream);
  }
  void do_copy_rows(const DeviceArray& src, std::int64_t batch, std::int64_t src_rows, std::int64_t row0,
                    std::int64_t rows, std::int64_t width, DeviceArray& dst) override {
    // One strided copy: `batch` runs of rows·width floats, src pitch src_rows·width.
    const std::size_t run = static_cast<std::size_t>(rows * width) * sizeof(float);
    check(cudaMemcpy2DAsync(dst.data(), run, src.data() + row0 * width,
                            static_cast<std::size_t>(src_rows * width) * sizeof(float), run,
                            static_cast<std::size_t>(batch), cudaMemcpyDeviceToDevice, state_->stream),
          "copying rows");
  }
  void do_cross_attention(const DeviceArray& q, const DeviceArray& k, const DeviceArray& v, DeviceArray& out,
                          std::int64_t batch, std::int64_t lq, std::int64_t lk, std::int64_t dim) override {
    if (dim != 32 && dim != 64 && dim != 128)
      throw ParamError("attention on the GPU needs head dim 32, 64 or 128; got " + std::to_string(dim));
    cuda::AttentionDims dims;
    dims.heads = as_int(batch, "attention batch");
    dims.lq = as_int(lq, "queries");
    dims.lk = as_int(lk, "keys");
    dims.d = static_cast<int>(dim);
    block_sparse(dims, false, {}, {}, q, k, v, out);
  }
  void do_gate_state(DeviceArray& state, const DeviceArray& forget_logits, const DeviceArray* input_logits,
                     const DeviceArray& z, std::int64_t n) override {
    cuda::gate_state(state.data(), forget_logits.data(), input_logits ? input_logits->data() : nullptr, z.data(),
                     static_cast<std::size_t>(n), state_->stream);
  }

  std::string unsupported(const AttentionCall& call) const override {
    const std::string d = std::to_string(call.dim);
    const bool flash_dim = call.dim == 32 || call.dim == 64 || call.dim == 128;
    if (call.length > kMaxSide || call.heads > kMaxSide) return "sequences beyond 2^30 tokens are not run on the GPU";
    if (call.window > 0) {
      if (call.window % kSparseBlock != 0)
        return "the sliding window on the GPU needs a window that is a multiple of 64; got " +
               std::to_string(call.window);
      return flash_dim ? "" : "attention on the GPU needs head dim 32, 64 or 128; got " + d;
    }
    if (!call.variant || !call.params) return "an attention call needs a variant and its params";
    const std::string& name = call.variant->spec().name;
    if (name == "softmax") return flash_dim ? "" : "softmax on the GPU needs head dim 32, 64 or 128; got " + d;
    if (name == "bigbird") {
      const BigBirdLayout layout = bigbird_layout(*call.params, call.length, call.causal);
      if (layout.block_size != kSparseBlock)
        return "bigbird on the GPU needs block_size=64 (the kernel's tile); this length resolves to " +
               std::to_string(layout.block_size);
      return flash_dim ? "" : "bigbird on the GPU needs head dim 32, 64 or 128; got " + d;
    }
    if (name == "linear") return call.dim <= 128 ? "" : "linear on the GPU needs head dim <= 128; got " + d;
    if (name == "reformer_lsh") {
      if (!call.params->get_bool("shared_qk")) return "reformer_lsh on the GPU needs shared_qk=true";
      if (call.params->get_bool("dedup")) return "reformer_lsh on the GPU needs dedup=false";
      return flash_dim ? "" : "reformer_lsh on the GPU needs head dim 32, 64 or 128; got " + d;
    }
    return "variant '" + name + "' has no GPU kernel; the GPU runs " + kGpuVariants;
  }

  void do_attention(const AttentionCall& call, const DeviceArray& q, const DeviceArray& k, const DeviceArray& v,
                    DeviceArray& out) override {
    cuda::AttentionDims dims;
    dims.heads = static_cast<int>(call.heads);
    dims.lq = dims.lk = static_cast<int>(call.length);
    dims.d = static_cast<int>(call.dim);
    if (call.window > 0) {
      const WindowBlockLists lists = sliding_window_block_lists(call.heads, call.length, call.window);
      return block_sparse(dims, true, lists.offsets, lists.blocks, q, k, v, out);
    }
    const std::string& name = call.variant->spec().name;
    if (name == "softmax") return block_sparse(dims, call.causal, {}, {}, q, k, v, out);
    if (name == "bigbird") {
      const BigBirdLayout layout = bigbird_layout(*call.params, call.length, call.causal);
      const BigBirdBlockLists lists = bigbird_block_lists(layout, call.heads, call.seed);
      return block_sparse(dims, call.causal, lists.offsets, lists.blocks, q, k, v, out);
    }
    if (name == "linear") {
      const DeviceArray workspace = alloc_bytes(cuda::linear_attention_workspace_bytes(dims));
      cuda::linear_attention_forward(q.data(), k.data(), v.data(), out.data(), workspace.data(), dims, call.causal,
                                     static_cast<float>(call.params->get_float("eps")), state_->stream);
      return;
    }
    // reformer_lsh (unsupported() let nothing else through)
    const LshGeometry g = resolve_lsh_geometry(*call.params, call.length);
    const Tensor rotations = lsh_rotations(call.seed, call.heads, g.n_hashes, call.dim, g.n_buckets);
    const cuda::LshDims ld = lsh_dims_of(g, dims.heads, dims.lq, dims.d);
    DeviceArray rot = alloc(rotations.size());
    upload(rotations.data(), rotations.size(), rot);
    const DeviceArray workspace = alloc_bytes(cuda::lsh_attention_workspace_bytes(ld));
    cuda::lsh_attention_forward(q.data(), v.data(), rot.data(), out.data(), nullptr, workspace.data(), ld, call.causal,
                                state_->stream);
  }

  void start_timer() override { check(cudaEventRecord(start_, state_->stream), "recording an event"); }
  double stop_timer() override {
    check(cudaEventRecord(stop_, state_->stream), "recording an event");
    check(cudaEventSynchronize(stop_), "running the forward pass");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start_, stop_), "reading the GPU time");
    return ms;
  }
  std::int64_t bytes_in_use() const override { return state_->in_use.load(); }
  std::int64_t peak_bytes() const override { return state_->peak.load(); }
  void reset_peak() override { state_->peak.store(state_->in_use.load()); }

 private:
  DeviceArray alloc_bytes(std::size_t bytes) {
    return alloc(static_cast<std::int64_t>((bytes + sizeof(float) - 1) / sizeof(float)));
  }

  // Exact attention over all keys (empty lists) or over the listed 64 × 64 blocks, in the
  // backend's precision: BF16 rounds q, k, v into temporaries for the tensor cores (head dims 64
  // and 128; 32 stays float32).
  void block_sparse(const cuda::AttentionDims& dims, bool causal, const std::vector<std::int32_t>& offsets,
                    const std::vector<std::int32_t>& blocks, const DeviceArray& q, const DeviceArray& k,
                    const DeviceArray& v, DeviceArray& out) {
    DeviceArray device_offsets, device_blocks;
    cuda::BlockList list;
    if (!offsets.empty()) {
      device_offsets = alloc(static_cast<std::int64_t>(offsets.size()));
      device_blocks = alloc(std::max<std::int64_t>(1, static_cast<std::int64_t>(blocks.size())));
      check(cudaMemcpyAsync(device_offsets.data(), offsets.data(), offsets.size() * 4, cudaMemcpyHostToDevice,
                            state_->stream),
            "copying the block lists");
      if (!blocks.empty())
        check(cudaMemcpyAsync(device_blocks.data(), blocks.data(), blocks.size() * 4, cudaMemcpyHostToDevice,
                              state_->stream),
              "copying the block lists");
      list.offsets = reinterpret_cast<const int*>(device_offsets.data());
      list.ids = reinterpret_cast<const int*>(device_blocks.data());
    }
    const cuda::BlockList* lists = offsets.empty() ? nullptr : &list;
    const bool half = options_.precision != Precision::F32 && dims.d != 32;
    if (!half) {
      cuda::block_sparse_attention_forward(cuda::DType::F32, q.data(), k.data(), v.data(), out.data(), nullptr, dims,
                                           causal, lists, state_->stream);
    } else {
      const cuda::DType type = options_.precision == Precision::F16 ? cuda::DType::F16 : cuda::DType::BF16;
      const auto nq = static_cast<std::size_t>(dims.heads) * dims.lq * dims.d;
      const auto nk = static_cast<std::size_t>(dims.heads) * dims.lk * dims.d;
      // Two 2-byte values per float slot.
      const auto halves = [](std::size_t n) { return static_cast<std::int64_t>((n + 1) / 2); };
      DeviceArray qh = alloc(halves(nq)), kh = alloc(halves(nk)), vh = alloc(halves(nk)), oh = alloc(halves(nq));
      cuda::convert_from_f32(type, q.data(), qh.data(), nq, state_->stream);
      cuda::convert_from_f32(type, k.data(), kh.data(), nk, state_->stream);
      cuda::convert_from_f32(type, v.data(), vh.data(), nk, state_->stream);
      cuda::block_sparse_attention_forward(type, qh.data(), kh.data(), vh.data(), oh.data(), nullptr, dims, causal,
                                           lists, state_->stream);
      cuda::convert_to_f32(type, oh.data(), out.data(), nq, state_->stream);
    }
    // No wait for the lists: a copy from pageable host memory returns once the bytes are staged.
  }

  BackendOptions options_;
  std::shared_ptr<StreamState> state_;
  std::string device_name_;
  cublasHandle_t blas_ = nullptr;
  cudaEvent_t start_{}, stop_{};
};

}  // namespace

std::unique_ptr<ComputeBackend> make_cuda_backend(const BackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace attnlab::gpu
