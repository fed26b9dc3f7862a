#include "core/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace attnlab {

bool keep_freed_memory_for_reuse() noexcept {
#if defined(__GLIBC__)
  constexpr int kMmapThreshold = 32 << 20;   // glibc's largest allowed value on 64-bit
  constexpr int kTrimThreshold = 256 << 20;
  return mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
#else
  return false;
#endif
}

}  // namespace attnlab
