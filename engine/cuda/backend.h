// Compute backends for whole-model forward passes (cuda/device_model.h): float32 arrays that live
// on one device, and the few operations a Transformer layer is made of. Model code written
// against this interface runs unchanged on
//   - the CPU backend (cpu_backend.cpp): Eigen and the engine's own attention variants, the
//     reference every GPU operation is tested against, and available in every build;
//   - the CUDA backend (cuda_backend.cpp): cuBLAS GEMMs and the kernels of engine/cuda/*.cu on
//     one stream, arrays from the stream-ordered allocator, time from CUDA events. In a build
//     without CUDA make_cuda_backend() throws DeviceError saying so.
//
// Shapes are given with each call (arrays are flat, row-major) and checked once, in the public
// functions (backend.cpp), before a backend's do_* runs. Errors: ShapeError when an array is
// smaller than the shape given, ParamError for an attention the backend cannot run (see
// unsupported()), ResourceError when the device is out of memory, DeviceError for CUDA failures.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "core/device.h"
#include "cuda/gpu_attention.h"

namespace attnlab::gpu {

// A float32 array on a backend's device. Copies share the storage; it is freed when the last
// copy goes (on the device's stream for CUDA).
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(std::shared_ptr<float> storage, std::int64_t size) : storage_(std::move(storage)), size_(size) {}
  float* data() const { return storage_.get(); }
  std::int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Elements [offset, offset + n) as an array of their own that keeps the whole storage alive.
  DeviceArray slice(std::int64_t offset, std::int64_t n) const {
    return DeviceArray(std::shared_ptr<float>(storage_, storage_.get() + offset), n);
  }

 private:
  std::shared_ptr<float> storage_;
  std::int64_t size_ = 0;
};

// One multi-head attention call: q, k, v, out are [heads, length, dim] (self-attention).
struct AttentionCall {
  const Attention* variant = nullptr;  // the registered variant (ignored when window > 0)
  const Params* params = nullptr;      // its values (required with a variant)
  std::uint64_t seed = 0;              // its random draws, as AttentionInput::seed
  bool causal = false;
  // > 0: the block-recurrent layer's banded causal sliding window instead of a variant — query i
  // in window w = ⌊i/W⌋ sees keys max(0, (w−1)·W) ≤ j ≤ i (layers/block_recurrent.h).
  std::int64_t window = 0;
  std::int64_t heads = 1;
  std::int64_t length = 0;
  std::int64_t dim = 0;
};

// How the CUDA backend trades exactness for speed (the CPU backend is always float32).
struct BackendOptions {
  // F32: float32 attention on CUDA cores and float32 GEMMs — the exact twin of the CPU engine.
  // BF16: attention inputs rounded to bf16 on the tensor cores (softmax, bigbird, sliding
  // windows; the other kernels stay float32) and GEMMs in TF32 — the fast setting.
  Precision precision = Precision::F32;
};

class ComputeBackend {
 public:
  virtual ~ComputeBackend() = default;

  // "CPU (Eigen, 2 threads)" / "CUDA: NVIDIA H100 80GB HBM3, fp32"
  virtual std::string describe() const = 0;
  virtual DeviceKind kind() const = 0;

  // Uninitialised storage for n floats.
  virtual DeviceArray alloc(std::int64_t n) = 0;
  void upload(const float* host, std::int64_t n, DeviceArray& dst);
  void download(const DeviceArray& src, std::int64_t n, float* host);

  // y[rows, out] = x[rows, in] · w[in, out] + bias[out]
  void linear(const DeviceArray& x, const DeviceArray& w, const DeviceArray& bias, DeviceArray& y, std::int64_t rows,
              std::int64_t in, std::int64_t out);
  // y = (x − mean) / sqrt(var + eps) · gamma + beta over each row of x[rows, cols]
  void layer_norm(const DeviceArray& x, const DeviceArray& gamma, const DeviceArray& beta, float eps, DeviceArray& y,
                  std::int64_t rows, std::int64_t cols);
  // x ← x·Φ(x) on the first n elements (GELU, erf form, as layers/feed_forward.h)
  void gelu(DeviceArray& x, std::int64_t n);
  // y ← a·y + b·x on the first n elements; with a = 0, y ← b·x (y is not read: it may be uninitialised)
  void axpby(DeviceArray& y, float a, const DeviceArray& x, float b, std::int64_t n);
  // out[p, :] = table[ids[p], :]·√D + sinusoidal position p (layers/embedding.h); ids checked by the caller
  void embed(const std::vector<std::int32_t>& ids, const DeviceArray& table, std::int64_t d_model, DeviceArray& out);
  // y ← value on the first n elements
  void fill(DeviceArray& y, float value, std::int64_t n);
  // [B, L, H·d] -> [B, H, L, d] and back (B sequences of L tokens each; B = 1 for a plain layer)
  void split_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length, std::int64_t heads,
                   std::int64_t dim);
  void merge_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length, std::int64_t heads,
                   std::int64_t dim);
  // dst [B, rows, width] = src [B, src_rows, width] rows row0 .. row0 + rows − 1
  void copy_rows(const DeviceArray& src, std::int64_t batch, std::int64_t src_rows, std::int64_t row0,
                 std::int64_t rows, std::int64_t width, DeviceArray& dst);
  // out = attention(q, k, v) as `call` says. Throws ParamError when unsupported(call) is not empty.
  void attention(const AttentionCall& call, const DeviceArray& q, const DeviceArray& k, const DeviceArray& v,
                 DeviceArray& out);
  // Empty when the backend can run `call`, else one line saying why not.
  virtual std::string unsupported(const AttentionCall& call) const = 0;
  // Exact softmax attention without a mask, scale 1/√dim: q [B, lq, dim], k, v [B, lk, dim] ->
  // out [B, lq, dim] (the block-recurrent state's attention; dim 32, 64 or 128 on the GPU).
  void cross_attention(const DeviceArray& q, const DeviceArray& k, const DeviceArray& v, DeviceArray& out,
                       std::int64_t batch, std::int64_t lq, std::int64_t lk, std::int64_t dim);
  // The block-recurrent state update on n elements (layers/block_recurrent.h), σ the logistic:
  //   "full" (input_logits null):  g = σ(f + 1);               state ← g∘state + (1 − g)∘z
  //   "lstm":                      f = σ(f + 1), i = σ(i − 1);  state ← f∘state + i∘z
  void gate_state(DeviceArray& state, const DeviceArray& forget_logits, const DeviceArray* input_logits,
                  const DeviceArray& z, std::int64_t n);

  // Timing of the work issued between start_timer() and stop_timer(), in ms (waits for it).
  virtual void start_timer() = 0;
  virtual double stop_timer() = 0;
  // Bytes of arrays alive now and at the peak since reset_peak() (the backend's own arrays and
  // attention workspaces; the CPU backend counts the arrays only).
  virtual std::int64_t bytes_in_use() const = 0;
  virtual std::int64_t peak_bytes() const = 0;
  virtual void reset_peak() = 0;

 protected:
  // The operations proper, called by the public functions above once the array sizes, ranges
  // and (for attention) unsupported() have been checked there (backend.cpp).
  virtual void do_upload(const float* host, std::int64_t n, DeviceArray& dst) = 0;
  virtual void do_download(const DeviceArray& src, std::int64_t n, float* host) = 0;
  virtual void do_linear(const DeviceArray& x, const DeviceArray& w, const DeviceArray& bias, DeviceArray& y,
                         std::int64_t rows, std::int64_t in, std::int64_t out) = 0;
  virtual void do_layer_norm(const DeviceArray& x, const DeviceArray& gamma, const DeviceArray& beta, float eps,
                             DeviceArray& y, std::int64_t rows, std::int64_t cols) = 0;
  virtual void do_gelu(DeviceArray& x, std::int64_t n) = 0;
  virtual void do_axpby(DeviceArray& y, float a, const DeviceArray& x, float b, std::int64_t n) = 0;
  virtual void do_embed(const std::vector<std::int32_t>& ids, const DeviceArray& table, std::int64_t d_model,
                        DeviceArray& out) = 0;
  virtual void do_fill(DeviceArray& y, float value, std::int64_t n) = 0;
  virtual void do_split_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length,
                              std::int64_t heads, std::int64_t dim) = 0;
  virtual void do_merge_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length,
                              std::int64_t heads, std::int64_t dim) = 0;
  virtual void do_copy_rows(const DeviceArray& src, std::int64_t batch, std::int64_t src_rows, std::int64_t row0,
                            std::int64_t rows, std::int64_t width, DeviceArray& dst) = 0;
  virtual void do_attention(const AttentionCall& call, const DeviceArray& q, const DeviceArray& k, const DeviceArray& v,
                            DeviceArray& out) = 0;
  virtual void do_cross_attention(const DeviceArray& q, const DeviceArray& k, const DeviceArray& v, DeviceArray& out,
                                  std::int64_t batch, std::int64_t lq, std::int64_t lk, std::int64_t dim) = 0;
  virtual void do_gate_state(DeviceArray& state, const DeviceArray& forget_logits, const DeviceArray* input_logits,
                             const DeviceArray& z, std::int64_t n) = 0;
};

std::unique_ptr<ComputeBackend> make_cpu_backend();
// Throws DeviceError when there is no GPU to run on (or the build has no CUDA), with the reason.
std::unique_ptr<ComputeBackend> make_cuda_backend(const BackendOptions& options = {});
// The backend for `device` (Cpu or Cuda).
std::unique_ptr<ComputeBackend> make_backend(DeviceKind device, const BackendOptions& options = {});

// The block-sparse kernels' tile: 64 queries by 64 keys (cuda::kBlockRows).
inline constexpr std::int64_t kSparseBlock = 64;

// The key blocks of the sliding window as block-sparse lists of kSparseBlock-token blocks: for head
// h and query block qb, blocks [max(0, (w−1)·W) / 64, qb] with w = ⌊64·qb / W⌋. Exact only when
// W is a multiple of 64 (the GPU refuses other windows). offsets [H·nqb + 1].
struct WindowBlockLists {
  std::vector<std::int32_t> offsets;
  std::vector<std::int32_t> blocks;
};
WindowBlockLists sliding_window_block_lists(std::int64_t heads, std::int64_t length, std::int64_t window);

}  // namespace attnlab::gpu
