#include "layers/sparse_ff.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "layers/weight_table.h"

namespace attnlab {

nlohmann::json SparseFfTrace::to_json() const {
  nlohmann::json j;
  j["kind"] = "sparse_ff";
  j["active_units"] = active_units;
  j["controller_entropy"] = controller_entropy;
  j["block_size"] = block_size;
  j["blocks"] = blocks;
  return j;
}

const std::vector<ParamSpec>& SparseFeedForward::schema() {
  static const std::vector<ParamSpec> specs{
      ParamSpec::integer("block_size", "Units per block", 32, 2, 1024,
                         "N: d_ff is cut into d_ff / N blocks with one active unit each; must divide d_ff"),
      ParamSpec::integer("d_lowrank", "Controller rank", 64, 1, 4096,
                         "Inner width of the low-rank controller x·M1·M2"),
  };
  return specs;
}

SparseFeedForward SparseFeedForward::seeded(std::int64_t d_model, std::int64_t /*heads*/, std::int64_t d_ff,
                                            const Params& params, std::uint64_t seed) {
  if (d_model < 1) throw ParamError("sparse feed-forward needs d_model >= 1, got " + std::to_string(d_model));
  SparseFeedForward ff;
  ff.d_model = d_model;
  ff.d_ff = d_ff;
  ff.block_size = params.get_int("block_size");
  ff.d_lowrank = params.get_int("d_lowrank");
  if (d_ff < 1 || d_ff % ff.block_size != 0) {
    throw ParamError("d_ff=" + std::to_string(d_ff) + " is not divisible by block_size=" +
                     std::to_string(ff.block_size) + "; block_size must divide d_ff");
  }
  ff.up = Linear::seeded(d_model, d_ff, Rng::derive(seed, "up"));
  ff.down = Linear::seeded(d_ff, d_model, Rng::derive(seed, "down"));
  ff.controller_m1 = Linear::seeded(d_model, ff.d_lowrank, Rng::derive(seed, "controller.m1"));
  ff.controller_m2 = Linear::seeded(ff.d_lowrank, d_ff, Rng::derive(seed, "controller.m2"));
  return ff;
}

void SparseFeedForward::visit_weights(const std::string& prefix, WeightTable& table) {
  table.linear(prefix + "up", up, d_model, d_ff);
  table.linear(prefix + "down", down, d_ff, d_model);
  table.linear(prefix + "controller.m1", controller_m1, d_model, d_lowrank);
  table.linear(prefix + "controller.m2", controller_m2, d_lowrank, d_ff);
}

RowMatrix SparseFeedForward::controller_logits(const RowMatrix& x) const {
  return controller_m2.forward(controller_m1.forward(x));
}

void SparseFeedForward::choose_units(const RowMatrix& x, std::vector<std::int32_t>& active,
                                     std::vector<double>* entropy) const {
  // The controller runs on chunks of rows so its [rows, F] logits stay in cache: the argmax (and
  // entropy) read them right after the two small products that write them.
  constexpr std::int64_t kRows = 128;
  const std::int64_t L = x.rows(), N = block_size, B = blocks();
  const std::int64_t chunks = (L + kRows - 1) / kRows;
#pragma omp parallel if (chunks > 1)
  {
    RowMatrix low, logits;  // [rows, d_lowrank], [rows, F]
#pragma omp for schedule(dynamic)
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::int64_t first = c * kRows, rows = std::min(kRows, L - first);
      low.resize(rows, d_lowrank);
      low.noalias() = x.middleRows(first, rows) * controller_m1.weight;
      low.rowwise() += controller_m1.bias;
      logits.resize(rows, d_ff);
      logits.noalias() = low * controller_m2.weight;
      logits.rowwise() += controller_m2.bias;
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t i = first + r;
        double mean_entropy = 0.0;
        for (std::int64_t b = 0; b < B; ++b) {
          const float* block = logits.row(r).data() + b * N;
          std::int32_t best = 0;
          for (std::int64_t n = 1; n < N; ++n) {
            if (block[n] > block[best]) best = static_cast<std::int32_t>(n);
          }
          active[static_cast<std::size_t>(i * B + b)] = best;
          if (!entropy) continue;
          // H = −Σ p log p with p = e^(z − peak) / total, log p = (z − peak) − log total.
          double total = 0.0, weighted = 0.0;
          for (std::int64_t n = 0; n < N; ++n) {
            const double shifted = static_cast<double>(block[n]) - static_cast<double>(block[best]);
            const double e = std::exp(shifted);
            total += e;
            weighted += e * shifted;
          }
          mean_entropy += std::log(total) - weighted / total;
        }
        if (entropy) (*entropy)[static_cast<std::size_t>(i)] = mean_entropy / static_cast<double>(B);
      }
    }
  }
}

RowMatrix SparseFeedForward::forward(const RowMatrix& x, std::uint64_t /*seed*/, Trace* trace) const {
  if (x.cols() != d_model) {
    throw ShapeError("sparse feed-forward expects [L, " + std::to_string(d_model) + "] input, got [" +
                     std::to_string(x.rows()) + ", " + std::to_string(x.cols()) + "]");
  }
  const std::int64_t L = x.rows(), N = block_size, B = blocks();
  // active[i·B + b] = unit index within block b (first maximum).
  std::vector<std::int32_t> active(static_cast<std::size_t>(L * B));
  std::vector<double> entropy;
  if (trace) entropy.resize(static_cast<std::size_t>(L));
  choose_units(x, active, trace ? &entropy : nullptr);

  RowMatrix y(L, d_model);
  if (!trace) {
    // Gather: per token only the B active columns of W1 and rows of W2. For L >= N the columns are
    // read from a transposed copy [F, D] (contiguous dot products; copying D·F floats costs no more
    // than L·D·F/N), for fewer tokens (decoding) straight from W1's strided columns.
    RowMatrix w1_by_unit;  // [F, D]
    const bool transposed = L >= N;
    if (transposed) w1_by_unit = up.weight.transpose();
#pragma omp parallel for schedule(static) if (L > 1)
    for (std::int64_t i = 0; i < L; ++i) {
      auto out = y.row(i);
      out = down.bias;
      for (std::int64_t b = 0; b < B; ++b) {
        const std::int64_t unit = b * N + active[static_cast<std::size_t>(i * B + b)];
        const float h = up.bias(unit) + (transposed ? x.row(i).dot(w1_by_unit.row(unit)) : x.row(i).dot(up.weight.col(unit)));
        if (h > 0.0f) out += h * down.weight.row(unit);  // ReLU: a unit at 0 adds nothing
      }
    }
    return y;
  }

  // Traced: the masked dense formula h = ReLU(x·W1 + b1) ⊙ mask, y = h·W2 + b2.
  RowMatrix hidden = up.forward(x);  // [L, F]
  for (std::int64_t i = 0; i < L; ++i) {
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t keep = b * N + active[static_cast<std::size_t>(i * B + b)];
      for (std::int64_t u = b * N; u < (b + 1) * N; ++u) {
        if (u != keep || hidden(i, u) < 0.0f) hidden(i, u) = 0.0f;
      }
    }
  }
  y.noalias() = hidden * down.weight;
  y.rowwise() += down.bias;

  auto record = std::make_shared<SparseFfTrace>();
  record->block_size = N;
  record->blocks = B;
  record->active_units.resize(static_cast<std::size_t>(L));
  for (std::int64_t i = 0; i < L; ++i) {
    const auto first = active.begin() + i * B;
    record->active_units[static_cast<std::size_t>(i)].assign(first, first + B);
  }
  record->controller_entropy = std::move(entropy);
  trace->layer_extras.push_back(std::move(record));
  return y;
}

}  // namespace attnlab
