// Measures this machine's single-precision GEMM rate through Eigen: the ceiling that the
// engine's own kernels are compared with in benchmarks.
#pragma once

namespace attnlab {

struct GemmProbe {
  int n = 0;          // square size
  int threads = 0;    // Eigen threads used
  double best_ms = 0;
  double gflops = 0;  // 2·n³ / best time
};

// Runs C = A·B for n×n float matrices `repeats` times (after one warm-up) on `threads` threads
// (0 = all) and reports the best run.
GemmProbe probe_gemm(int n, int repeats, int threads = 0);

}  // namespace attnlab
