#include "layers/moe.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "layers/weight_table.h"

namespace attnlab {
namespace {

constexpr std::int32_t kUnused = -1;

// The largest entry of `row` other than `skip` (lower index on ties); -1 when there is none.
std::int32_t argmax_except(const float* row, std::int64_t count, std::int64_t skip) {
  std::int32_t best = kUnused;
  for (std::int64_t e = 0; e < count; ++e) {
    if (e == skip) continue;
    if (best == kUnused || row[e] > row[best]) best = static_cast<std::int32_t>(e);
  }
  return best;
}

}  // namespace

nlohmann::json ExpertsTrace::to_json() const {
  nlohmann::json j;
  j["kind"] = "experts";
  j["experts"] = experts;
  j["routed"] = routed;
  j["gates"] = gates;
  j["router_probabilities"] = tensor_to_json(router_probabilities);
  j["load"] = load;
  j["demand"] = demand;
  j["capacity"] = capacity;
  j["dropped"] = dropped;
  j["aux_loss"] = aux_loss;
  j["aux_loss_weighted"] = aux_loss_weighted;
  j["z_loss"] = z_loss;
  j["z_loss_weighted"] = z_loss_weighted;
  j["top_k"] = top_k;
  j["capacity_factor"] = capacity_factor;
  return j;
}

const std::vector<ParamSpec>& MoeFeedForward::schema() {
  static const std::vector<ParamSpec> specs{
      ParamSpec::integer("experts", "Experts", 4, 1, 128, "Number of expert feed-forward networks E"),
      ParamSpec::integer("top_k", "Experts per token", 1, 1, 2, "1: Switch routing; 2: GShard top-2 routing"),
      ParamSpec::real("capacity_factor", "Capacity factor", 1.25, 0.1, 64.0,
                      "Slots per expert = max(1, floor(tokens · factor / experts)); overflow is dropped"),
      ParamSpec::real("second_threshold", "Second-expert threshold", 0.2, 0.0, 1.0,
                      "Top-2: the second expert is kept with probability min(1, g2 / threshold); 0 keeps it always"),
      ParamSpec::real("aux_weight", "Load-balancing weight", 0.01, 0.0, 10.0,
                      "α of the auxiliary loss α·E·Σ f_e·P_e"),
      ParamSpec::real("z_weight", "Router z-loss weight", 0.001, 0.0, 10.0,
                      "Weight of the router z-loss mean(logsumexp(logits)²)"),
  };
  return specs;
}

MoeFeedForward MoeFeedForward::seeded(std::int64_t d_model, std::int64_t /*heads*/, std::int64_t d_ff,
                                      const Params& params, std::uint64_t seed) {
  if (d_model < 1) throw ParamError("mixture of experts needs d_model >= 1, got " + std::to_string(d_model));
  if (d_ff < 1) throw ParamError("mixture of experts needs d_ff >= 1, got " + std::to_string(d_ff));
  MoeFeedForward moe;
  moe.d_model = d_model;
  moe.d_ff = d_ff;
  moe.top_k = params.get_int("top_k");
  moe.capacity_factor = params.get_float("capacity_factor");
  moe.second_threshold = params.get_float("second_threshold");
  moe.aux_weight = params.get_float("aux_weight");
  moe.z_weight = params.get_float("z_weight");
  const std::int64_t E = params.get_int("experts");
  moe.router = Linear::seeded(d_model, E, Rng::derive(seed, "router"));
  moe.experts.reserve(static_cast<std::size_t>(E));
  for (std::int64_t e = 0; e < E; ++e) {
    moe.experts.push_back(FeedForward::seeded(d_model, d_ff, Rng::derive(seed, "experts." + std::to_string(e))));
  }
  return moe;
}

std::int64_t MoeFeedForward::capacity(std::int64_t tokens) const {
  const double slots = std::floor(static_cast<double>(tokens) * capacity_factor / static_cast<double>(expert_count()));
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(slots));
}

void MoeFeedForward::visit_weights(const std::string& prefix, WeightTable& table) {
  table.linear(prefix + "router", router, d_model, expert_count());
  for (std::int64_t e = 0; e < expert_count(); ++e) {
    table.feed_forward(prefix + "experts." + std::to_string(e), experts[static_cast<std::size_t>(e)], d_model, d_ff);
  }
}

RowMatrix MoeFeedForward::forward(const RowMatrix& x, std::uint64_t seed, Trace* trace) const {
  if (x.cols() != d_model) {
    throw ShapeError("mixture of experts expects [L, " + std::to_string(d_model) + "] input, got [" +
                     std::to_string(x.rows()) + ", " + std::to_string(x.cols()) + "]");
  }
  const std::int64_t L = x.rows(), E = expert_count(), k = top_k;
  const RowMatrix logits = router.forward(x);  // [L, E]
  RowMatrix probs(L, E);                       // [L, E]
  std::vector<double> log_normaliser(static_cast<std::size_t>(L));
  for (std::int64_t i = 0; i < L; ++i) {
    const float peak = logits.row(i).maxCoeff();
    probs.row(i) = (logits.row(i).array() - peak).exp();
    const float total = probs.row(i).sum();
    probs.row(i) /= total;
    log_normaliser[static_cast<std::size_t>(i)] = static_cast<double>(peak) + std::log(static_cast<double>(total));
  }

  // Slot s of token i: choice[i·k + s] (expert or -1) with gate[i·k + s].
  std::vector<std::int32_t> choice(static_cast<std::size_t>(L * k), kUnused);
  std::vector<float> gate(static_cast<std::size_t>(L * k), 0.0f);
  std::vector<std::int32_t> first_choice(static_cast<std::size_t>(L));
  Rng keep_second(Rng::derive(seed, "second_expert"));
  for (std::int64_t i = 0; i < L; ++i) {
    const float* p = probs.row(i).data();
    const std::int32_t e1 = argmax_except(p, E, -1);
    first_choice[static_cast<std::size_t>(i)] = e1;
    const auto slot = static_cast<std::size_t>(i * k);
    choice[slot] = e1;
    if (k == 1) {
      gate[slot] = p[e1];
      continue;
    }
    const double draw = keep_second.uniform();  // drawn for every token, so draws never shift
    const std::int32_t e2 = argmax_except(p, E, e1);
    if (e2 == kUnused) {  // a single expert: the first slot takes the whole (renormalised) gate
      gate[slot] = 1.0f;
      continue;
    }
    const float total = p[e1] + p[e2];
    gate[slot] = p[e1] / total;
    const float g2 = p[e2] / total;
    if (second_threshold <= 0.0 || draw < static_cast<double>(g2) / second_threshold) {
      choice[slot + 1] = e2;
      gate[slot + 1] = g2;
    }
  }

  // Positions in each expert: all first choices in token order, then all second choices.
  const std::vector<std::int32_t> choice_before_capacity = choice;  // for the trace
  const std::int64_t C = capacity(L);
  std::vector<std::int32_t> demand(static_cast<std::size_t>(E), 0);
  for (std::int64_t s = 0; s < k; ++s) {
    for (std::int64_t i = 0; i < L; ++i) {
      const auto slot = static_cast<std::size_t>(i * k + s);
      if (choice[slot] == kUnused) continue;
      const std::int32_t position = demand[static_cast<std::size_t>(choice[slot])]++;
      if (position >= C) {
        choice[slot] = kUnused;
        gate[slot] = 0.0f;
      }
    }
  }

  // Each expert runs once on its gathered tokens [n_e, D]; results are scattered back with their gates.
  RowMatrix y = RowMatrix::Zero(L, d_model);
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(E));
  for (std::int64_t i = 0; i < L * k; ++i) {
    if (choice[static_cast<std::size_t>(i)] != kUnused) members[static_cast<std::size_t>(choice[static_cast<std::size_t>(i)])].push_back(i);
  }
  for (std::int64_t e = 0; e < E; ++e) {
    const std::vector<std::int64_t>& slots = members[static_cast<std::size_t>(e)];
    if (slots.empty()) continue;
    const auto count = static_cast<std::int64_t>(slots.size());
    RowMatrix gathered(count, d_model);
    for (std::int64_t r = 0; r < count; ++r) gathered.row(r) = x.row(slots[static_cast<std::size_t>(r)] / k);
    const RowMatrix expert_out = experts[static_cast<std::size_t>(e)].forward(gathered);
    for (std::int64_t r = 0; r < count; ++r) {
      const std::int64_t slot = slots[static_cast<std::size_t>(r)];
      y.row(slot / k) += gate[static_cast<std::size_t>(slot)] * expert_out.row(r);
    }
  }

  if (trace) {
    auto record = std::make_shared<ExpertsTrace>();
    record->experts.resize(static_cast<std::size_t>(L));
    record->routed.resize(static_cast<std::size_t>(L));
    record->gates.resize(static_cast<std::size_t>(L));
    record->load.assign(static_cast<std::size_t>(E), 0);
    for (std::int64_t i = 0; i < L; ++i) {
      const auto first = choice.begin() + i * k;
      record->experts[static_cast<std::size_t>(i)].assign(first, first + k);
      const auto before = choice_before_capacity.begin() + i * k;
      record->routed[static_cast<std::size_t>(i)].assign(before, before + k);
      const auto g = gate.begin() + i * k;
      record->gates[static_cast<std::size_t>(i)].assign(g, g + k);
      bool kept = false;
      for (std::int64_t s = 0; s < k; ++s) {
        const std::int32_t e = choice[static_cast<std::size_t>(i * k + s)];
        if (e == kUnused) continue;
        kept = true;
        ++record->load[static_cast<std::size_t>(e)];
      }
      if (!kept) record->dropped.push_back(static_cast<std::int32_t>(i));
    }
    record->router_probabilities = Tensor::from_matrix(probs);
    record->demand = demand;
    record->capacity = C;
    // aux = E · Σ_e f_e · P_e;  z = mean(logsumexp²).
    std::vector<double> routed(static_cast<std::size_t>(E), 0.0), mean_prob(static_cast<std::size_t>(E), 0.0);
    double z = 0.0;
    for (std::int64_t i = 0; i < L; ++i) {
      routed[static_cast<std::size_t>(first_choice[static_cast<std::size_t>(i)])] += 1.0;
      for (std::int64_t e = 0; e < E; ++e) mean_prob[static_cast<std::size_t>(e)] += probs(i, e);
      const double lse = log_normaliser[static_cast<std::size_t>(i)];
      z += lse * lse;
    }
    double aux = 0.0;
    if (L > 0) {
      for (std::int64_t e = 0; e < E; ++e) {
        aux += (routed[static_cast<std::size_t>(e)] / static_cast<double>(L)) *
               (mean_prob[static_cast<std::size_t>(e)] / static_cast<double>(L));
      }
      aux *= static_cast<double>(E);
      z /= static_cast<double>(L);
    }
    record->aux_loss = aux;
    record->aux_loss_weighted = aux_weight * aux;
    record->z_loss = z;
    record->z_loss_weighted = z_weight * z;
    record->top_k = k;
    record->capacity_factor = capacity_factor;
    trace->layer_extras.push_back(std::move(record));
  }
  return y;
}

}  // namespace attnlab
