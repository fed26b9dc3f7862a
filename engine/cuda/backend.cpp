// The checks every compute backend shares (cuda/backend.h): array sizes against the shapes given,
// row ranges, and unsupported() before an attention call — once here, so that a backend's do_*
// functions only compute.
#include "cuda/backend.h"

#include "core/error.h"

namespace attnlab::gpu {
namespace {

void require_size(const DeviceArray& a, std::int64_t n, const char* what) {
  if (n < 0 || a.size() < n)
    throw ShapeError(std::string(what) + ": the array holds " + std::to_string(a.size()) + " floats, the shape needs " +
                     std::to_string(n));
}

}  // namespace

void ComputeBackend::upload(const float* host, std::int64_t n, DeviceArray& dst) {
  require_size(dst, n, "upload");
  do_upload(host, n, dst);
}

void ComputeBackend::download(const DeviceArray& src, std::int64_t n, float* host) {
  require_size(src, n, "download");
  do_download(src, n, host);
}

void ComputeBackend::linear(const DeviceArray& x, const DeviceArray& w, const DeviceArray& bias, DeviceArray& y,
                            std::int64_t rows, std::int64_t in, std::int64_t out) {
  require_size(x, rows * in, "linear input");
  require_size(w, in * out, "linear weight");
  require_size(bias, out, "linear bias");
  require_size(y, rows * out, "linear output");
  do_linear(x, w, bias, y, rows, in, out);
}

void ComputeBackend::layer_norm(const DeviceArray& x, const DeviceArray& gamma, const DeviceArray& beta, float eps,
                                DeviceArray& y, std::int64_t rows, std::int64_t cols) {
  require_size(x, rows * cols, "layer norm input");
  require_size(y, rows * cols, "layer norm output");
  require_size(gamma, cols, "layer norm gamma");
  require_size(beta, cols, "layer norm beta");
  do_layer_norm(x, gamma, beta, eps, y, rows, cols);
}

void ComputeBackend::gelu(DeviceArray& x, std::int64_t n) {
  require_size(x, n, "gelu");
  do_gelu(x, n);
}

void ComputeBackend::axpby(DeviceArray& y, float a, const DeviceArray& x, float b, std::int64_t n) {
  require_size(y, n, "axpby");
  require_size(x, n, "axpby");
  do_axpby(y, a, x, b, n);
}

void ComputeBackend::embed(const std::vector<std::int32_t>& ids, const DeviceArray& table, std::int64_t d_model,
                           DeviceArray& out) {
  require_size(out, static_cast<std::int64_t>(ids.size()) * d_model, "embedding output");
  do_embed(ids, table, d_model, out);
}

void ComputeBackend::fill(DeviceArray& y, float value, std::int64_t n) {
  require_size(y, n, "fill");
  do_fill(y, value, n);
}

void ComputeBackend::split_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length,
                                 std::int64_t heads, std::int64_t dim) {
  require_size(x, batch * length * heads * dim, "split heads");
  require_size(out, batch * length * heads * dim, "split heads");
  do_split_heads(x, out, batch, length, heads, dim);
}

void ComputeBackend::merge_heads(const DeviceArray& x, DeviceArray& out, std::int64_t batch, std::int64_t length,
                                 std::int64_t heads, std::int64_t dim) {
  require_size(x, batch * length * heads * dim, "merge heads");
  require_size(out, batch * length * heads * dim, "merge heads");
  do_merge_heads(x, out, batch, length, heads, dim);
}

void ComputeBackend::copy_rows(const DeviceArray& src, std::int64_t batch, std::int64_t src_rows, std::int64_t row0,
                               std::int64_t rows, std::int64_t width, DeviceArray& dst) {
  if (row0 < 0 || rows < 0 || row0 + rows > src_rows)
    throw ShapeError("copy rows " + std::to_string(row0) + " .. " + std::to_string(row0 + rows) + " of " +
                     std::to_string(src_rows));
  require_size(src, batch * src_rows * width, "copy rows");
  require_size(dst, batch * rows * width, "copy rows");
  if (batch > 0 && rows > 0) do_copy_rows(src, batch, src_rows, row0, rows, width, dst);
}

void ComputeBackend::attention(const AttentionCall& call, const DeviceArray& q, const DeviceArray& k,
                               const DeviceArray& v, DeviceArray& out) {
  const std::string why = unsupported(call);
  if (!why.empty()) throw ParamError(why);
  const std::int64_t n = call.heads * call.length * call.dim;
  for (const DeviceArray* a : {&q, &k, &v, static_cast<const DeviceArray*>(&out)}) require_size(*a, n, "attention");
  do_attention(call, q, k, v, out);
}

void ComputeBackend::cross_attention(const DeviceArray& q, const DeviceArray& k, const DeviceArray& v, DeviceArray& out,
                                     std::int64_t batch, std::int64_t lq, std::int64_t lk, std::int64_t dim) {
  require_size(q, batch * lq * dim, "cross attention queries");
  require_size(k, batch * lk * dim, "cross attention keys");
  require_size(v, batch * lk * dim, "cross attention values");
  require_size(out, batch * lq * dim, "cross attention output");
  do_cross_attention(q, k, v, out, batch, lq, lk, dim);
}

void ComputeBackend::gate_state(DeviceArray& state, const DeviceArray& forget_logits, const DeviceArray* input_logits,
                                const DeviceArray& z, std::int64_t n) {
  require_size(state, n, "state gate");
  require_size(forget_logits, n, "state gate");
  require_size(z, n, "state gate");
  if (input_logits) require_size(*input_logits, n, "state gate");
  do_gate_state(state, forget_logits, input_logits, z, n);
}

}  // namespace attnlab::gpu
