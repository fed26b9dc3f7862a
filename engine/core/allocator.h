// Keeps freed memory in the process for reuse instead of handing it back to the OS.
//
// glibc serves blocks above its mmap threshold (128 KiB, rising only as such blocks are freed)
// with fresh mappings and returns freed memory at the top of the heap beyond its trim threshold.
// The engine's per-keystroke work allocates many such blocks (a 512 × 256 activation is 512 KiB,
// an FFN hidden layer 2 MiB), so every edit paid first-touch page faults on each of them again:
// about 2,000 faults per 512-token forward of the tiny-encoder, each costing microseconds on a
// VM. With the thresholds raised, a repeated forward reuses the same pages (7 faults per run).
// Tensors of 1 MiB and more are also recycled by the engine's own block cache (core/tensor.cpp).
//
// Call once at the start of a program, before its threads start. The cost: up to the trim
// threshold of freed memory stays resident until the process ends.
#pragma once

namespace attnlab {

// Sets glibc's mmap threshold to 32 MiB (its maximum) and trim threshold to 256 MiB; a no-op
// where the C library is not glibc. Returns true when the settings were applied.
bool keep_freed_memory_for_reuse() noexcept;

}  // namespace attnlab
