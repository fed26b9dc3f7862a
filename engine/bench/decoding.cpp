#include "bench/decoding.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>

#include "attention/feature_maps.h"
#include "attention/registry.h"
#include "bench/bench_limits.h"
#include "core/device.h"
#include "core/error.h"
#include "core/memory_meter.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/timer.h"

namespace attnlab {
namespace {

constexpr std::int64_t kMaxTokens = std::int64_t{1} << 20;
constexpr std::int64_t kBudgetCheckSteps = 64;  // steps between looks at the clock (each step: without a cache)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

enum class Method { KvCache, NoCache, LinearRecurrent, PerformerRecurrent };

Method parse_method(const std::string& name) {
  if (name == "softmax_kv_cache") return Method::KvCache;
  if (name == "softmax_no_cache") return Method::NoCache;
  if (name == "linear_recurrent") return Method::LinearRecurrent;
  if (name == "performer_recurrent") return Method::PerformerRecurrent;
  std::string known;
  for (const std::string& m : decoding_methods()) known += (known.empty() ? "" : ", ") + m;
  throw ParamError("unknown decoding method '" + name + "'; known: " + known);
}


// Thrown by a run that passed its deadline; the row says how far it got.
struct OverBudget {
  std::int64_t steps = 0;
  double ms = 0;
};

// One decoder: its state, allocated once (engine tensors, so the meter sees them), and step(t),
// which attends query t to keys 0 … t after taking in key t, writing output row t of every head.
// Shapes: q, k [H, N, d], v [H, N, dv], out [H, N, dv]. No allocation inside step() except in
// softmax_no_cache, whose point is to recompute the prefix.
class Decoder {
 public:
  Decoder(Method method, const Tensor& q, const Tensor& k, const Tensor& v, std::uint64_t seed)
      : method_(method), q_(q), k_(k), v_(v), H_(q.dim(0)), N_(q.dim(1)), d_(q.dim(2)), dv_(v.dim(2)) {
    // Parameters first (performer's feature matrices W [m, d] per head), then the state alone,
    // whose bytes the meter counts.
    if (method_ == Method::LinearRecurrent) {
      eps_ = static_cast<float>(Params(Registry::builtin().get("linear").spec().params).get_float("eps"));
      features_ = d_;
    } else if (method_ == Method::PerformerRecurrent) {
      const FavorSettings settings = favor_settings(Params(Registry::builtin().get("performer").spec().params));
      favor_options_ = PositiveFeatureOptions{settings.eps, true, 0.0f};
      features_ = settings.random.features;
      for (std::int64_t h = 0; h < H_; ++h)
        feature_matrices_.push_back(draw_random_features(d_, favor_seed(seed, h, settings.redraw), settings.random));
      eps_ = 0.0f;  // as performer: features are positive, no ε in the denominator
      running_max_.assign(static_cast<std::size_t>(H_), kNegInf);
    } else {
      softmax_ = &Registry::builtin().get("softmax");
      softmax_params_ = Params(softmax_->spec().params);
      if (method_ == Method::KvCache) scores_.resize(N_);
      scale_ = 1.0f / std::sqrt(static_cast<float>(d_));
    }
    const std::int64_t before = memory::current_bytes();
    if (method_ == Method::KvCache || method_ == Method::NoCache) {
      // The tokens so far: keys [H, N, d] and values [H, N, dv]. The cache proper for the KV
      // method; the history the no-cache method rebuilds its prefix from.
      keys_ = Tensor::uninitialized({H_, N_, d_});
      values_ = Tensor::uninitialized({H_, N_, dv_});
    } else {
      state_ = Tensor({H_, features_, dv_});  // S = Σ φ(k_j) v_jᵀ, zero before the first token
      normalizer_ = Tensor({H_, features_});  // z = Σ φ(k_j)
    }
    state_bytes_ = memory::current_bytes() - before;
    phi_q_.resize(1, features_);
    phi_k_.resize(1, features_);
    numerator_.resize(1, dv_);
  }

  std::int64_t state_bytes() const { return state_bytes_; }
  // Steps between looks at the clock and the cancel flag: every step where a step recomputes the
  // prefix (seconds at long N), else a few dozen (a step is microseconds).
  std::int64_t steps_between_checks() const { return method_ == Method::NoCache ? 1 : kBudgetCheckSteps; }

  void step(std::int64_t t, Tensor& out) {
    switch (method_) {
      case Method::KvCache: return step_kv_cache(t, out);
      case Method::NoCache: return step_no_cache(t, out);
      case Method::LinearRecurrent:
      case Method::PerformerRecurrent: return step_recurrent(t, out);
    }
  }

 private:
  // Row t of head h of a [H, N, c] tensor as a 1 × c matrix map (binds to Eigen::Ref without a copy).
  static ConstUnalignedMatrixMap row(const Tensor& x, std::int64_t h, std::int64_t t) {
    return ConstUnalignedMatrixMap(x.data() + (h * x.dim(1) + t) * x.dim(2), 1, x.dim(2));
  }
  static UnalignedMatrixMap row(Tensor& x, std::int64_t h, std::int64_t t) {
    return UnalignedMatrixMap(x.data() + (h * x.dim(1) + t) * x.dim(2), 1, x.dim(2));
  }

  // Append key and value t to the cache; scores s_j = k_j·q_t/√d over j <= t; stable softmax
  // (subtract the maximum); out = Σ_j p_j v_j / Σ_j p_j.
  void step_kv_cache(std::int64_t t, Tensor& out) {
    for (std::int64_t h = 0; h < H_; ++h) {
      row(keys_, h, t) = row(k_, h, t);
      row(values_, h, t) = row(v_, h, t);
      const ConstUnalignedMatrixMap keys(keys_.data() + h * N_ * d_, t + 1, d_);
      const ConstUnalignedMatrixMap values(values_.data() + h * N_ * dv_, t + 1, dv_);
      auto s = scores_.head(t + 1);
      s.noalias() = keys * row(q_, h, t).transpose();
      s *= scale_;
      const float m = s.maxCoeff();
      s = (s.array() - m).exp().matrix();
      const float l = s.sum();
      auto dst = row(out, h, t);
      dst.noalias() = s.transpose() * values;
      dst /= l;
    }
  }

  // The prefix 0 … t as its own q, k, v [H, t + 1, ·], the engine's exact causal softmax over it
  // (O(t²·d)), and its last row.
  void step_no_cache(std::int64_t t, Tensor& out) {
    const std::int64_t n = t + 1;
    for (std::int64_t h = 0; h < H_; ++h) {
      row(keys_, h, t) = row(k_, h, t);
      row(values_, h, t) = row(v_, h, t);
    }
    Tensor q = Tensor::uninitialized({H_, n, d_}), k = Tensor::uninitialized({H_, n, d_}),
           v = Tensor::uninitialized({H_, n, dv_});
    for (std::int64_t h = 0; h < H_; ++h) {
      q.matrix(h) = ConstUnalignedMatrixMap(q_.data() + h * N_ * d_, n, d_);
      k.matrix(h) = ConstUnalignedMatrixMap(keys_.data() + h * N_ * d_, n, d_);
      v.matrix(h) = ConstUnalignedMatrixMap(values_.data() + h * N_ * dv_, n, dv_);
    }
    const Tensor o = run_attention(*softmax_, AttentionInput{q, k, v, true, nullptr, &softmax_params_, 0}, nullptr);
    for (std::int64_t h = 0; h < H_; ++h) row(out, h, t) = row(o, h, t);
  }

  // The RNN form (Katharopoulos et al. 2020, §3.4): S += φ(k_t) v_tᵀ, z += φ(k_t), then
  // out = φ(q_t)ᵀS / (φ(q_t)·z + ε). Performer's key features come with a log scale g (their own
  // maximum, see feature_maps.h): the state is kept relative to the largest g so far and rescaled
  // when it grows, exactly as the engine's recurrent linear attention does (linear.cpp).
  void step_recurrent(std::int64_t t, Tensor& out) {
    for (std::int64_t h = 0; h < H_; ++h) {
      UnalignedMatrixMap s(state_.data() + h * features_ * dv_, features_, dv_);
      Eigen::Map<RowVector> z(normalizer_.data() + h * features_, features_);
      if (method_ == Method::LinearRecurrent) {
        elu_plus_one(row(q_, h, t), phi_q_);
        elu_plus_one(row(k_, h, t), phi_k_);
      } else {
        const Tensor& w = feature_matrices_[static_cast<std::size_t>(h)];
        float query_scale = 0.0f, key_scale = 0.0f;
        positive_random_features(row(q_, h, t), w, favor_options_, phi_q_, &query_scale);
        positive_random_features(row(k_, h, t), w, favor_options_, phi_k_, &key_scale);
        float& max = running_max_[static_cast<std::size_t>(h)];
        if (key_scale > max) {
          if (max != kNegInf) {
            const float factor = std::exp(max - key_scale);
            s *= factor;
            z *= factor;
          }
          max = key_scale;
        }
        phi_k_ *= std::exp(key_scale - max);
      }
      s.noalias() += phi_k_.transpose() * row(v_, h, t);
      z += phi_k_.row(0);
      const float denominator = phi_q_.row(0).dot(z) + eps_;
      auto dst = row(out, h, t);
      if (denominator > 0.0f) {
        numerator_.noalias() = phi_q_ * s;
        dst = numerator_ / denominator;
      } else {
        dst.setZero();
      }
    }
  }

  Method method_;
  const Tensor &q_, &k_, &v_;
  std::int64_t H_, N_, d_, dv_;
  std::int64_t features_ = 0;
  std::int64_t state_bytes_ = 0;
  // softmax
  const Attention* softmax_ = nullptr;
  Params softmax_params_;
  Tensor keys_, values_;
  Eigen::VectorXf scores_;
  float scale_ = 1.0f;
  // recurrent
  Tensor state_, normalizer_;
  float eps_ = 0.0f;
  std::vector<Tensor> feature_matrices_;
  PositiveFeatureOptions favor_options_;
  std::vector<float> running_max_;
  RowMatrix phi_q_, phi_k_, numerator_;  // [1, F], [1, F], [1, dv]: scratch of one step
};

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3 || q.dim(0) != k.dim(0) || q.dim(0) != v.dim(0) ||
      q.dim(1) != k.dim(1) || q.dim(1) != v.dim(1) || q.dim(2) != k.dim(2) || q.size() == 0 || v.size() == 0) {
    throw ShapeError("decoding needs q, k [heads, N, d] and v [heads, N, dv]; got q " + q.shape_string() + ", k " +
                     k.shape_string() + ", v " + v.shape_string());
  }
}

// All N steps into `out`; with a deadline (ms > 0), throws OverBudget once it has passed.
// Returns the time of the last step in µs.
double decode_into(Decoder& decoder, std::int64_t N, Tensor& out, double deadline_ms, const CancelToken* cancel) {
  Timer total;
  const std::int64_t every = decoder.steps_between_checks();
  for (std::int64_t t = 0; t + 1 < N; ++t) {
    decoder.step(t, out);
    if ((t + 1) % every == 0) {
      check_cancelled(cancel);
      if (deadline_ms > 0 && total.elapsed_ms() > deadline_ms) throw OverBudget{t + 1, total.elapsed_ms()};
    }
  }
  Timer last;
  decoder.step(N - 1, out);
  return last.elapsed_ms() * 1000.0;
}

// Inputs q, k, v and the outputs, and the method's state (its closed form).
std::int64_t run_bytes(Method method, std::int64_t H, std::int64_t N, std::int64_t d, std::int64_t dv) {
  const std::int64_t io = float_bytes(H * N * (2 * d + 2 * dv));
  switch (method) {
    case Method::KvCache: return io + float_bytes(H * N * (d + dv));
    case Method::NoCache: return io + 2 * float_bytes(H * N * (2 * d + dv));  // history and one prefix copy
    case Method::LinearRecurrent: return io + float_bytes(H * (d * dv + d));
    case Method::PerformerRecurrent: {
      const std::int64_t m = Params(Registry::builtin().get("performer").spec().params).get_int("n_features");
      return io + float_bytes(H * (m * d + m * dv + m));  // W and the state
    }
  }
  return io;
}

}  // namespace

const std::vector<std::string>& decoding_methods() {
  static const std::vector<std::string> methods = {"softmax_kv_cache", "softmax_no_cache", "linear_recurrent",
                                                   "performer_recurrent"};
  return methods;
}

Tensor decode_outputs(const std::string& method, const Tensor& q, const Tensor& k, const Tensor& v, std::uint64_t seed) {
  const Method m = parse_method(method);
  check_inputs(q, k, v);
  Decoder decoder(m, q, k, v, seed);
  Tensor out = Tensor::uninitialized({q.dim(0), q.dim(1), v.dim(2)});
  decode_into(decoder, q.dim(1), out, 0.0, nullptr);
  return out;
}

std::vector<DecodingRow> run_decoding(DecodingOptions o) {
  if (o.methods.empty()) throw ParamError("decoding needs at least one method");
  if (o.tokens.empty()) throw ParamError("decoding needs at least one token count");
  std::vector<Method> methods;
  for (const std::string& name : o.methods) methods.push_back(parse_method(name));
  std::sort(o.tokens.begin(), o.tokens.end());
  if (std::adjacent_find(o.tokens.begin(), o.tokens.end()) != o.tokens.end())
    throw ParamError("decoding: a token count is listed twice");
  require_in_range("tokens", static_cast<double>(o.tokens.front()), 1, static_cast<double>(kMaxTokens));
  require_in_range("tokens", static_cast<double>(o.tokens.back()), 1, static_cast<double>(kMaxTokens));
  require_in_range("dim", o.dim, 1, 512);
  require_in_range("heads", o.heads, 1, 64);
  require_in_range("repeats", o.repeats, 1, 100);
  require_in_range("time_budget_ms", o.time_budget_ms, 1, 3.6e6);

  std::vector<DecodingRow> rows;
  const int total = static_cast<int>(o.methods.size() * o.tokens.size());
  int done = 0;
  for (std::size_t mi = 0; mi < methods.size(); ++mi) {
    std::string skip;  // set once an N ran over the time budget or out of memory
    for (const std::int64_t N : o.tokens) {
      check_cancelled(o.cancel);
      DecodingRow row;
      row.method = o.methods[mi];
      row.tokens = N;
      const std::string refusal = memory_refusal(run_bytes(methods[mi], o.heads, N, o.dim, o.dim));
      if (!skip.empty()) {
        row.status = skip;
      } else if (!refusal.empty()) {
        row.status = refusal;
      } else {
        try {
          // The projections of the N generated tokens, drawn up front: only attention is timed.
          Tensor q({o.heads, N, o.dim}), k({o.heads, N, o.dim}), v({o.heads, N, o.dim});
          Rng rng(o.seed);
          rng.fill_normal(q, 0.0f, 1.0f);
          rng.fill_normal(k, 0.0f, 1.0f);
          rng.fill_normal(v, 0.0f, 1.0f);
          Tensor out = Tensor::uninitialized({o.heads, N, o.dim});
          std::vector<double> ms, last_us;
          for (int r = 0; r <= o.repeats; ++r) {  // r = 0: the warm-up
            check_cancelled(o.cancel);
            Decoder decoder(methods[mi], q, k, v, o.seed);  // the state, allocated once per run
            row.state_bytes = decoder.state_bytes();
            Timer timer;
            const double last = decode_into(decoder, N, out, o.time_budget_ms, o.cancel);
            const double elapsed = timer.elapsed_ms();
            if (r > 0) {
              ms.push_back(elapsed);
              last_us.push_back(last);
            }
          }
          std::sort(ms.begin(), ms.end());
          std::sort(last_us.begin(), last_us.end());
          row.median_ms = ms[ms.size() / 2];
          row.min_ms = ms.front();
          row.max_ms = ms.back();
          row.last_step_us = last_us[last_us.size() / 2];
          row.tokens_per_second = static_cast<double>(N) / (row.median_ms / 1000.0);
          row.status = "ok";
          if (row.median_ms > o.time_budget_ms)
            skip = "skipped: " + std::to_string(N) + " tokens took longer than the time budget";
        } catch (const OverBudget& over) {
          char text[160];
          std::snprintf(text, sizeof text, "skipped: over the time budget (%lld of %lld steps in %.0f ms)",
                        static_cast<long long>(over.steps), static_cast<long long>(N), over.ms);
          row.status = text;
          skip = "skipped: a shorter run took longer than the time budget";
        } catch (const ResourceError& e) {
          row.status = std::string("out of memory: ") + e.what();
          skip = "skipped: a shorter run ran out of memory";
        } catch (const std::bad_alloc&) {
          row.status = "out of memory: the system refused an allocation";
          skip = "skipped: a shorter run ran out of memory";
        }
        if (row.status != "ok") row.state_bytes = 0;
      }
      rows.push_back(row);
      if (o.on_row) o.on_row(rows.back());
      if (o.progress) o.progress(++done, total);
    }
  }
  return rows;
}

nlohmann::json decoding_to_json(const DecodingOptions& o, const std::vector<DecodingRow>& rows) {
  nlohmann::json machine{{"device", select_device(DevicePreference::Cpu).describe()},
                         {"cpu_threads", cpu_threads()},
                         {"physical_bytes", memory::physical_bytes()},
                         {"engine_memory_limit_bytes", memory::allocation_limit_bytes()}};
  nlohmann::json out = nlohmann::json::array();
  for (const DecodingRow& r : rows) {
    nlohmann::json j{{"method", r.method}, {"tokens", r.tokens}, {"status", r.status}};
    if (r.status == "ok") {
      j["median_ms"] = r.median_ms;
      j["min_ms"] = r.min_ms;
      j["max_ms"] = r.max_ms;
      j["tokens_per_second"] = r.tokens_per_second;
      j["last_step_us"] = r.last_step_us;
      j["state_bytes"] = r.state_bytes;
    } else {
      j["median_ms"] = j["min_ms"] = j["max_ms"] = j["tokens_per_second"] = j["last_step_us"] = j["state_bytes"] = nullptr;
    }
    out.push_back(std::move(j));
  }
  return nlohmann::json{{"machine", machine},
                        {"options",
                         {{"methods", o.methods},
                          {"dim", o.dim},
                          {"heads", o.heads},
                          {"repeats", o.repeats},
                          {"time_budget_ms", o.time_budget_ms},
                          {"seed", o.seed}}},
                        {"rows", out}};
}

}  // namespace attnlab
