#include "bench/gemm_probe.h"

#include <omp.h>

#include <algorithm>

#include "core/rng.h"
#include "core/tensor.h"
#include "core/timer.h"

namespace attnlab {

GemmProbe probe_gemm(int n, int repeats, int threads) {
  const int previous = Eigen::nbThreads();
  const int use = threads > 0 ? threads : omp_get_max_threads();
  Eigen::setNbThreads(use);
  Tensor a({n, n}), b({n, n});
  Rng rng(7);
  rng.fill_uniform(a, -1.0f, 1.0f);
  rng.fill_uniform(b, -1.0f, 1.0f);
  RowMatrix c(n, n);
  c.noalias() = a.matrix() * b.matrix();  // warm-up
  double best = 1e300;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    Timer t;
    c.noalias() = a.matrix() * b.matrix();
    best = std::min(best, t.elapsed_ms());
  }
  Eigen::setNbThreads(previous);
  GemmProbe probe;
  probe.n = n;
  probe.threads = use;
  probe.best_ms = best;
  probe.gflops = 2.0 * n * static_cast<double>(n) * n / (best * 1e6);
  return probe;
}

}  // namespace attnlab
