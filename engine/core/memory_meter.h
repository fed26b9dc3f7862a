// Counts the bytes the engine's tensors hold: current and high-water mark. Benchmarks reset the
// peak before a call and read it after ("peak bytes the engine allocated for that call").
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnlab::memory {

void on_allocate(std::size_t bytes) noexcept;
void on_free(std::size_t bytes) noexcept;

std::int64_t current_bytes() noexcept;
std::int64_t peak_bytes() noexcept;
// Sets the peak to the current value, so the next peak_bytes() measures from now on.
void reset_peak() noexcept;

// Physical memory of this machine in bytes (0 if unknown).
std::int64_t physical_bytes() noexcept;
// The largest single allocation the engine accepts: a fraction of physical memory, so that a
// sequence too long for memory is refused with a message instead of the OS killing the app.
std::int64_t allocation_limit_bytes() noexcept;

// Memory the system could hand out now without swapping (MemAvailable of /proc/meminfo) in
// bytes, 0 if unknown.
std::int64_t available_bytes() noexcept;

// Peak resident set size of this process (VmHWM) in bytes, 0 if unknown.
std::int64_t process_high_water_bytes() noexcept;
// Resident set size of this process now (VmRSS) in bytes, 0 if unknown.
std::int64_t process_resident_bytes() noexcept;
// Sets the process high-water mark back to the current resident size, so that the next
// process_high_water_bytes() measures from now on (Linux: "5" written to /proc/self/clear_refs).
// False where the system does not allow it.
bool reset_process_high_water() noexcept;
// Hands freed heap pages back to the system (glibc's malloc_trim), so that a following
// high-water measurement sees a call's own pages rather than reused ones. No-op elsewhere.
void trim_heap() noexcept;

// Frees the large tensor blocks kept for reuse (see tensor.cpp); the counters above count only
// live tensors, never cached blocks.
void release_cached_blocks() noexcept;

// "1.5 GiB", "512 KiB": for messages.
const char* format_bytes(std::int64_t bytes, char* buffer, std::size_t size) noexcept;

}  // namespace attnlab::memory
