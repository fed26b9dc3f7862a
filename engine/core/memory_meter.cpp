#include "core/memory_meter.h"

#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <atomic>
#include <cstdio>
#include <cstring>

namespace attnlab::memory {
namespace {
std::atomic<std::int64_t> g_current{0};
std::atomic<std::int64_t> g_peak{0};
}  // namespace

void on_allocate(std::size_t bytes) noexcept {
  const std::int64_t now = g_current.fetch_add(static_cast<std::int64_t>(bytes)) +
                           static_cast<std::int64_t>(bytes);
  std::int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

void on_free(std::size_t bytes) noexcept { g_current.fetch_sub(static_cast<std::int64_t>(bytes)); }

std::int64_t current_bytes() noexcept { return g_current.load(); }
std::int64_t peak_bytes() noexcept { return g_peak.load(); }
void reset_peak() noexcept { g_peak.store(g_current.load()); }

std::int64_t physical_bytes() noexcept {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::int64_t>(pages) * page_size;
}

std::int64_t allocation_limit_bytes() noexcept {
  const std::int64_t physical = physical_bytes();
  if (physical <= 0) return std::int64_t{8} << 30;  // unknown machine: 8 GiB
  return physical / 2;
}

namespace {

// The value in KiB of the line starting with `key` (e.g. "VmHWM:") of a /proc file, in bytes; 0
// if the file or the line is missing.
std::int64_t proc_kib_field(const char* path, const char* key) noexcept {
  std::FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  const std::size_t key_length = std::strlen(key);
  char line[256];
  long kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, key_length) == 0) {
      if (std::sscanf(line + key_length, "%ld", &kib) != 1) kib = 0;
      break;
    }
  }
  std::fclose(f);
  return static_cast<std::int64_t>(kib) * 1024;
}

}  // namespace

std::int64_t available_bytes() noexcept { return proc_kib_field("/proc/meminfo", "MemAvailable:"); }

std::int64_t process_high_water_bytes() noexcept { return proc_kib_field("/proc/self/status", "VmHWM:"); }

std::int64_t process_resident_bytes() noexcept { return proc_kib_field("/proc/self/status", "VmRSS:"); }

bool reset_process_high_water() noexcept {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool written = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && written;
}

void trim_heap() noexcept {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

const char* format_bytes(std::int64_t bytes, char* buffer, std::size_t size) noexcept {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  std::snprintf(buffer, size, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return buffer;
}

}  // namespace attnlab::memory
