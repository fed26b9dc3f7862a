// One walk over a model's weights, used both to save them and to load them.
//
// A layer lists every weight once, with its safetensors name and shape, in a visit function:
//     void visit_weights(const std::string& prefix, WeightTable& table) {
//       table.linear(prefix + "router", router, d_model, experts);
//       table.vector(prefix + "decay", decay, channels);
//     }
// WeightWriter copies the visited weights into a safetensors table; WeightReader fills them from
// one, refusing a missing tensor or a wrong shape with a FormatError that names it. Because the
// same list serves both directions, saving and loading can never disagree.
#pragma once

#include <cstdint>
#include <string>

#include "core/safetensors.h"
#include "core/tensor.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/multi_head_attention.h"

namespace attnlab {

class WeightTable {
 public:
  virtual ~WeightTable() = default;
  virtual void matrix(const std::string& name, RowMatrix& m, std::int64_t rows, std::int64_t cols) = 0;
  virtual void vector(const std::string& name, RowVector& v, std::int64_t size) = 0;

  // name.weight [in, out], name.bias [out]
  void linear(const std::string& name, Linear& l, std::int64_t in, std::int64_t out);
  // name.gamma [dim], name.beta [dim]
  void norm(const std::string& name, LayerNorm& n, std::int64_t dim);
  // name.up (D -> F), name.down (F -> D)
  void feed_forward(const std::string& name, FeedForward& ff, std::int64_t d_model, std::int64_t d_ff);
  // name.w_q, name.w_k, name.w_v, name.w_o, each D -> D
  void attention(const std::string& name, MultiHeadAttention& mha, std::int64_t d_model);
};

class WeightWriter final : public WeightTable {
 public:
  explicit WeightWriter(SafetensorsFile& out) : out_(out) {}
  void matrix(const std::string& name, RowMatrix& m, std::int64_t rows, std::int64_t cols) override;
  void vector(const std::string& name, RowVector& v, std::int64_t size) override;

 private:
  SafetensorsFile& out_;
};

class WeightReader final : public WeightTable {
 public:
  explicit WeightReader(const SafetensorsFile& in) : in_(in) {}
  void matrix(const std::string& name, RowMatrix& m, std::int64_t rows, std::int64_t cols) override;
  void vector(const std::string& name, RowVector& v, std::int64_t size) override;

 private:
  const Tensor& lookup(const std::string& name, const Shape& shape) const;
  const SafetensorsFile& in_;
};

}  // namespace attnlab
