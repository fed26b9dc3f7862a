#include "core/memory_meter.h"

#include <unistd.h>

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

std::int64_t process_high_water_bytes() noexcept {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  std::int64_t kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) {
      std::sscanf(line + 6, "%ld", &kib);
      break;
    }
  }
  std::fclose(f);
  return kib * 1024;
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
