#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
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

namespace {

// Freed large blocks are kept and handed out again for the same size. The playground allocates
// the same shapes on every keystroke, and touching fresh pages can cost more than the
// computation: on this project's VMs a first-touch page fault costs ~10 µs, so a new 8 MiB
// weight tensor took 20 ms before any arithmetic. Blocks below kMinCachedBytes go straight to
// malloc, which keeps small blocks itself; from glibc's mmap threshold (128 KiB) up, malloc maps
// fresh pages per block and returns them on free, so those are cached here (a 1 MiB threshold
// left kernel attention at L = 1024 paying page faults: 1.0 ms a call instead of 0.26). The
// cache never holds more than its capacity.
class BlockCache {
 public:
  static constexpr std::size_t kMinCachedBytes = std::size_t{128} << 10;

  static BlockCache& instance() {
    static BlockCache cache;
    return cache;
  }

  void* take(std::size_t bytes) {
    if (bytes < kMinCachedBytes) return nullptr;
    std::lock_guard lock(mutex_);
    const auto it = blocks_.find(bytes);
    if (it == blocks_.end()) return nullptr;
    void* p = it->second;
    blocks_.erase(it);
    cached_bytes_ -= bytes;
    return p;
  }

  // Keeps `p` for reuse if there is room; returns false when the caller must free it.
  bool keep(void* p, std::size_t bytes) {
    if (bytes < kMinCachedBytes) return false;
    std::lock_guard lock(mutex_);
    if (cached_bytes_ + bytes > capacity()) return false;
    blocks_.emplace(bytes, p);
    cached_bytes_ += bytes;
    return true;
  }

  void release_all() {
    std::lock_guard lock(mutex_);
    for (auto& [bytes, p] : blocks_) std::free(p);
    blocks_.clear();
    cached_bytes_ = 0;
  }

 private:
  static std::size_t capacity() {
    return static_cast<std::size_t>(std::min<std::int64_t>(std::int64_t{512} << 20, memory::physical_bytes() / 16));
  }
  std::mutex mutex_;
  std::multimap<std::size_t, void*> blocks_;
  std::size_t cached_bytes_ = 0;
};

std::size_t block_bytes(std::size_t n, std::size_t element) { return std::max<std::size_t>(64, ((n * element + 63) / 64) * 64); }

}  // namespace

void memory::release_cached_blocks() noexcept { BlockCache::instance().release_all(); }

template <typename T>
T* TrackedAllocator<T>::allocate(std::size_t n) {
  const std::size_t bytes = block_bytes(n, sizeof(T));
  void* p = BlockCache::instance().take(bytes);
  if (!p) p = std::aligned_alloc(64, bytes);
  if (!p) {
    BlockCache::instance().release_all();  // memory is short: give the cache back and retry
    p = std::aligned_alloc(64, bytes);
  }
  if (!p) throw std::bad_alloc();
  memory::on_allocate(n * sizeof(T));
  return static_cast<T*>(p);
}

template <typename T>
void TrackedAllocator<T>::deallocate(T* p, std::size_t n) noexcept {
  memory::on_free(n * sizeof(T));
  if (!BlockCache::instance().keep(p, block_bytes(n, sizeof(T)))) std::free(p);
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

Tensor::Tensor(Shape shape, NoInit) : shape_(std::move(shape)) {
  data_.resize(static_cast<std::size_t>(checked_element_count(shape_)));  // default-insert: no clearing
}

Tensor Tensor::uninitialized(Shape shape) { return Tensor(std::move(shape), NoInit{}); }

Tensor Tensor::from_data(Shape shape, const float* data, std::size_t count) {
  Tensor t = uninitialized(std::move(shape));
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
