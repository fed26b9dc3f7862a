#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>

#include "core/error.h"

namespace attnlab {

std::string shape_to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

template <typename T>
T* TrackedAllocator<T>::allocate(std::size_t n) {
  const std::size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (!p) throw std::bad_alloc();
  memory::on_allocate(n * sizeof(T));
  return static_cast<T*>(p);
}

template <typename T>
void TrackedAllocator<T>::deallocate(T* p, std::size_t n) noexcept {
  memory::on_free(n * sizeof(T));
  std::free(p);
}

template struct TrackedAllocator<float>;

std::int64_t checked_element_count(const Shape& shape) {
  std::int64_t count = 1;
  const std::int64_t limit_elements = memory::allocation_limit_bytes() / static_cast<std::int64_t>(sizeof(float));
  for (std::int64_t d : shape) {
    if (d < 0) throw ShapeError("negative dimension in shape " + shape_to_string(shape));
    if (d != 0 && count > std::numeric_limits<std::int64_t>::max() / d) {
      throw ResourceError("tensor of shape " + shape_to_string(shape) + " has more elements than can be counted");
    }
    count *= d;
  }
  if (count > limit_elements) {
    char need[32], have[32];
    memory::format_bytes(count * static_cast<std::int64_t>(sizeof(float)), need, sizeof need);
    memory::format_bytes(memory::allocation_limit_bytes(), have, sizeof have);
    throw ResourceError("tensor of shape " + shape_to_string(shape) + " needs " + need +
                        ", more than the " + have + " limit for one allocation on this machine");
  }
  return count;
}

Tensor::Tensor(Shape shape) : shape_(std::move(shape)) {
  data_.assign(static_cast<std::size_t>(checked_element_count(shape_)), 0.0f);
}

Tensor Tensor::from_data(Shape shape, const float* data, std::size_t count) {
  Tensor t(std::move(shape));
  if (static_cast<std::size_t>(t.size()) != count) {
    throw ShapeError("shape " + t.shape_string() + " holds " + std::to_string(t.size()) +
                     " elements, but " + std::to_string(count) + " were given");
  }
  if (count) std::memcpy(t.data(), data, count * sizeof(float));
  return t;
}

Tensor Tensor::from_matrix(const RowMatrix& m) {
  return from_data({m.rows(), m.cols()}, m.data(), static_cast<std::size_t>(m.size()));
}

std::int64_t Tensor::dim(int axis) const {
  const int r = rank();
  const int a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r) {
    throw ShapeError("axis " + std::to_string(axis) + " out of range for shape " + shape_string());
  }
  return shape_[static_cast<std::size_t>(a)];
}

std::int64_t Tensor::rows() const {
  if (rank() == 0) return 1;
  if (rank() == 1) return 1;
  return shape_[shape_.size() - 2];
}

std::int64_t Tensor::cols() const {
  if (rank() == 0) return 1;
  return shape_.back();
}

std::int64_t Tensor::matrix_count() const {
  const std::int64_t per = rows() * cols();
  return per == 0 ? 0 : size() / per;
}

UnalignedMatrixMap Tensor::matrix(std::int64_t i) {
  return UnalignedMatrixMap(data_.data() + i * rows() * cols(), rows(), cols());
}

ConstUnalignedMatrixMap Tensor::matrix(std::int64_t i) const {
  return ConstUnalignedMatrixMap(data_.data() + i * rows() * cols(), rows(), cols());
}

Tensor Tensor::reshaped(Shape shape) const {
  if (checked_element_count(shape) != size()) {
    throw ShapeError("cannot reshape " + shape_string() + " to " + shape_to_string(shape));
  }
  Tensor t;
  t.shape_ = std::move(shape);
  t.data_ = data_;
  return t;
}

void Tensor::fill(float value) { std::fill(data_.begin(), data_.end(), value); }

}  // namespace attnlab
