// float32 tensors on Eigen.
//
// A Tensor is a shape plus contiguous row-major float storage (64-byte aligned, counted by the
// memory meter). Arithmetic happens on Eigen maps of 2-D slices: for a tensor of shape
// [H, L, d], matrix(h) is the L x d row-major matrix of head h. Tensors are values: copying one
// copies its data; moving is cheap.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/memory_meter.h"

namespace attnlab {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using MatrixMap = Eigen::Map<RowMatrix, Eigen::Aligned64>;
using ConstMatrixMap = Eigen::Map<const RowMatrix, Eigen::Aligned64>;
using UnalignedMatrixMap = Eigen::Map<RowMatrix>;
using ConstUnalignedMatrixMap = Eigen::Map<const RowMatrix>;

using Shape = std::vector<std::int64_t>;

// "[8, 512, 32]"
std::string shape_to_string(const Shape& shape);

// Allocator for tensor storage: 64-byte aligned, and every byte counted by memory::.
template <typename T>
struct TrackedAllocator {
  using value_type = T;
  TrackedAllocator() noexcept = default;
  template <typename U>
  TrackedAllocator(const TrackedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n);
  void deallocate(T* p, std::size_t n) noexcept;
  // Default-insertion leaves floats uninitialised (vector::resize then costs no memset); value
  // initialisation (assign, resize with a value) still writes.
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const TrackedAllocator<U>&) const noexcept { return true; }
};

class Tensor {
 public:
  using Storage = std::vector<float, TrackedAllocator<float>>;

  Tensor() = default;
  // Zero-filled tensor. Throws ShapeError for a negative dimension and ResourceError when the
  // tensor would exceed memory::allocation_limit_bytes().
  explicit Tensor(Shape shape);
  Tensor(std::initializer_list<std::int64_t> shape) : Tensor(Shape(shape)) {}
  // Copies `data` (must hold exactly the number of elements of `shape`).
  static Tensor from_data(Shape shape, const float* data, std::size_t count);
  // A tensor whose values are unspecified, for outputs the caller overwrites completely
  // (saves clearing megabytes that are written again at once).
  static Tensor uninitialized(Shape shape);
  static Tensor from_matrix(const RowMatrix& m);  // shape [rows, cols]

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // dim(-1) is the last dimension.
  std::int64_t dim(int axis) const;
  std::int64_t size() const { return static_cast<std::int64_t>(data_.size()); }
  bool empty() const { return data_.empty(); }
  std::string shape_string() const { return shape_to_string(shape_); }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }

  // The 2-D slice formed by the last two dimensions at leading (flattened) index i.
  // For rank 2, matrix() is the whole tensor; for rank 1, a 1 x n row.
  std::int64_t matrix_count() const;
  std::int64_t rows() const;
  std::int64_t cols() const;
  UnalignedMatrixMap matrix(std::int64_t i = 0);
  ConstUnalignedMatrixMap matrix(std::int64_t i = 0) const;

  float& at(std::int64_t i, std::int64_t j) { return data_[static_cast<std::size_t>(i * shape_[1] + j)]; }
  float at(std::int64_t i, std::int64_t j) const { return data_[static_cast<std::size_t>(i * shape_[1] + j)]; }
  float& at(std::int64_t h, std::int64_t i, std::int64_t j) {
    return data_[static_cast<std::size_t>((h * shape_[1] + i) * shape_[2] + j)];
  }
  float at(std::int64_t h, std::int64_t i, std::int64_t j) const {
    return data_[static_cast<std::size_t>((h * shape_[1] + i) * shape_[2] + j)];
  }

  // Same data, another shape with the same number of elements.
  Tensor reshaped(Shape shape) const;
  void fill(float value);

 private:
  // Storage whose elements are left as allocated (see uninitialized()).
  struct NoInit {};
  Tensor(Shape shape, NoInit);

  Shape shape_;
  Storage data_;
};

// Number of elements of a shape; throws ShapeError for negative dims and ResourceError when the
// byte count of a float32 tensor of that shape exceeds the allocation limit.
std::int64_t checked_element_count(const Shape& shape);

}  // namespace attnlab
