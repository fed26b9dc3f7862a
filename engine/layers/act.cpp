#include "layers/act.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "layers/embedding.h"
#include "layers/weight_table.h"

namespace attnlab {

nlohmann::json HaltingTrace::to_json() const {
  nlohmann::json j;
  j["kind"] = "halting";
  j["steps"] = steps;
  j["probabilities"] = probabilities;
  j["update_weights"] = update_weights;
  j["cumulative"] = cumulative;
  j["remainder"] = remainder;
  j["weights_sum"] = weights_sum;
  j["stopped_by_max"] = stopped_by_max;
  j["ponder_cost"] = ponder_cost;
  j["epsilon"] = epsilon;
  j["max_steps"] = max_steps;
  j["steps_run"] = steps_run;
  return j;
}

const std::vector<ParamSpec>& AdaptiveComputationTime::schema() {
  static const std::vector<ParamSpec> specs{
      ParamSpec::real("epsilon", "Halting epsilon", 0.01, 1e-4, 0.5,
                      "A position halts once its summed halting probability exceeds 1 − epsilon"),
      ParamSpec::integer("max_steps", "Maximum steps", 8, 1, 64,
                         "Steps after which every position stops, halted or not"),
      ParamSpec::real("halting_bias", "Halting bias", 1.0, -20.0, 20.0,
                      "Initial bias of the halting unit: larger halts sooner"),
      ParamSpec::real("ponder_weight", "Ponder weight", 0.01, 0.0, 10.0,
                      "λ of the ponder cost λ·mean(steps + remainder)"),
  };
  return specs;
}

AdaptiveComputationTime AdaptiveComputationTime::seeded(std::int64_t d_model, std::int64_t /*heads*/,
                                                        std::int64_t /*d_ff*/, const Params& params,
                                                        std::uint64_t seed) {
  if (d_model < 1) throw ParamError("ACT needs d_model >= 1, got " + std::to_string(d_model));
  AdaptiveComputationTime act;
  act.d_model = d_model;
  act.epsilon = params.get_float("epsilon");
  act.max_steps = params.get_int("max_steps");
  act.ponder_weight = params.get_float("ponder_weight");
  act.halting = Linear::seeded(d_model, 1, Rng::derive(seed, "halting"));
  act.halting.bias(0) = static_cast<float>(params.get_float("halting_bias"));
  return act;
}

void AdaptiveComputationTime::visit_weights(const std::string& prefix, WeightTable& table) {
  table.linear(prefix + "halting", halting, d_model, 1);
}

RowMatrix AdaptiveComputationTime::run(const RowMatrix& x,
                                       const std::function<RowMatrix(const RowMatrix&, int step)>& transition,
                                       const CancelToken* cancel, Trace* trace) const {
  if (x.cols() != d_model) {
    throw ShapeError("ACT expects [L, " + std::to_string(d_model) + "] input, got [" + std::to_string(x.rows()) +
                     ", " + std::to_string(x.cols()) + "]");
  }
  const std::int64_t L = x.rows();
  const double threshold = 1.0 - epsilon;
  const RowMatrix positions = sinusoidal_positions(L, d_model);        // [L, D]
  const RowMatrix step_signal = sinusoidal_positions(max_steps, d_model);  // [max_steps, D]

  std::vector<double> hp(static_cast<std::size_t>(L), 0.0), remainder(hp), weights_sum(hp);
  std::vector<std::int32_t> n(static_cast<std::size_t>(L), 0);
  std::vector<std::uint8_t> halted(static_cast<std::size_t>(L), 0);
  std::shared_ptr<HaltingTrace> record;
  if (trace) {
    record = std::make_shared<HaltingTrace>();
    record->probabilities.resize(static_cast<std::size_t>(L));
    record->update_weights.resize(static_cast<std::size_t>(L));
    record->cumulative.resize(static_cast<std::size_t>(L));
  }

  RowMatrix state = x;                         // in_t  [L, D]
  RowMatrix out = RowMatrix::Zero(L, d_model);  // out_t [L, D]
  RowMatrix with_timing(L, d_model);           // s_t   [L, D]
  std::int64_t step = 0;
  const auto any_running = [&] {
    for (std::int64_t i = 0; i < L; ++i) {
      const auto u = static_cast<std::size_t>(i);
      if (!halted[u] && hp[u] < threshold && n[u] < max_steps) return true;
    }
    return false;
  };
  while (step < max_steps && any_running()) {
    check_cancelled(cancel);
    with_timing.noalias() = (state + positions).rowwise() + step_signal.row(step);  // one pass
    const RowMatrix logits = halting.forward(with_timing);  // [L, 1]
    RowMatrix transformed = transition(with_timing, static_cast<int>(step));
    if (transformed.rows() != L || transformed.cols() != d_model) {
      throw ShapeError("ACT transition must return [" + std::to_string(L) + ", " + std::to_string(d_model) +
                       "], got [" + std::to_string(transformed.rows()) + ", " + std::to_string(transformed.cols()) +
                       "]");
    }
    for (std::int64_t i = 0; i < L; ++i) {
      const auto u = static_cast<std::size_t>(i);
      const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits(i, 0))));
      const bool was_running = !halted[u];
      const bool halts = was_running && hp[u] + p > threshold;
      const bool running = was_running && !halts;
      double w = 0.0;
      if (running) {
        hp[u] += p;
        w = p;
      } else if (halts) {
        remainder[u] = 1.0 - hp[u];
        hp[u] += remainder[u];
        halted[u] = 1;
        w = remainder[u];
      }
      if (was_running) ++n[u];
      weights_sum[u] += w;
      if (w != 0.0) {
        const auto wf = static_cast<float>(w);
        out.row(i) = wf * transformed.row(i) + static_cast<float>(1.0 - w) * out.row(i);
      }
      if (record) {
        record->probabilities[u].push_back(was_running ? p : 0.0);
        record->update_weights[u].push_back(w);
        record->cumulative[u].push_back(hp[u]);
      }
    }
    state = std::move(transformed);
    ++step;
  }

  if (record) {
    double ponder = 0.0;
    record->steps = n;
    record->remainder = remainder;
    record->weights_sum = weights_sum;
    record->stopped_by_max.resize(static_cast<std::size_t>(L));
    for (std::int64_t i = 0; i < L; ++i) {
      const auto u = static_cast<std::size_t>(i);
      record->stopped_by_max[u] = !halted[u];
      ponder += static_cast<double>(n[u]) + remainder[u];
    }
    record->ponder_cost = L > 0 ? ponder_weight * ponder / static_cast<double>(L) : 0.0;
    record->epsilon = epsilon;
    record->max_steps = max_steps;
    record->steps_run = step;
    trace->layer_extras.push_back(std::move(record));
  }
  return out;
}

}  // namespace attnlab
