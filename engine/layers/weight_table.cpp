#include "layers/weight_table.h"

#include "core/error.h"

namespace attnlab {

void WeightTable::linear(const std::string& name, Linear& l, std::int64_t in, std::int64_t out) {
  matrix(name + ".weight", l.weight, in, out);
  vector(name + ".bias", l.bias, out);
}

void WeightTable::norm(const std::string& name, LayerNorm& n, std::int64_t dim) {
  vector(name + ".gamma", n.gamma, dim);
  vector(name + ".beta", n.beta, dim);
}

void WeightTable::feed_forward(const std::string& name, FeedForward& ff, std::int64_t d_model, std::int64_t d_ff) {
  linear(name + ".up", ff.up, d_model, d_ff);
  linear(name + ".down", ff.down, d_ff, d_model);
}

void WeightTable::attention(const std::string& name, MultiHeadAttention& mha, std::int64_t d_model) {
  linear(name + ".w_q", mha.w_q, d_model, d_model);
  linear(name + ".w_k", mha.w_k, d_model, d_model);
  linear(name + ".w_v", mha.w_v, d_model, d_model);
  linear(name + ".w_o", mha.w_o, d_model, d_model);
}

void WeightWriter::matrix(const std::string& name, RowMatrix& m, std::int64_t, std::int64_t) {
  out_.tensors[name] = Tensor::from_matrix(m);
}

void WeightWriter::vector(const std::string& name, RowVector& v, std::int64_t) {
  out_.tensors[name] = Tensor::from_data({v.size()}, v.data(), static_cast<std::size_t>(v.size()));
}

const Tensor& WeightReader::lookup(const std::string& name, const Shape& shape) const {
  const auto it = in_.tensors.find(name);
  if (it == in_.tensors.end()) throw FormatError("model weights lack the tensor '" + name + "'");
  if (it->second.shape() != shape) {
    throw FormatError("model weight '" + name + "' has shape " + it->second.shape_string() + ", expected " +
                      shape_to_string(shape));
  }
  return it->second;
}

void WeightReader::matrix(const std::string& name, RowMatrix& m, std::int64_t rows, std::int64_t cols) {
  m = lookup(name, {rows, cols}).matrix();
}

void WeightReader::vector(const std::string& name, RowVector& v, std::int64_t size) {
  v = Eigen::Map<const RowVector>(lookup(name, {size}).data(), size);
}

}  // namespace attnlab
