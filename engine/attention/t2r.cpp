// T2R: finetuning pretrained transformers into RNNs (Kasai et al. 2021), registered as "t2r".
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   feature map   φ(x) = ReLU(W x + b) + floor,   W [k, d], b [k] per head, k = `features`
//   queries       pre-scaled: φ(q_i / sqrt(d)) (as the reference does before its feature map;
//                 keys are not scaled)
//   non-causal    S = Σ_j φ(k_j) v_jᵀ  [k, dv],  z = Σ_j φ(k_j)  [k]
//                 out_i = φ(q_i')ᵀ S / φ(q_i')ᵀ z
//   causal (RNN)  S_t = S_{t-1} + φ(k_t) v_tᵀ,  z_t = z_{t-1} + φ(k_t),  out_t = φ(q_t')ᵀ S_t / φ(q_t')ᵀ z_t
//   weights (trace) [H, Lq, Lk]  A_ij = φ(q_i')·φ(k_j) / Σ_{visible j'} φ(q_i')·φ(k_j'),
//                 exactly 0 on padded keys and, when causal, on j > i.
//
// Reference: jungokasai/T2R, fairseq/random_feature_attention (random_feature = 'mlp':
// φ = activation(W x + b) with W, b learned per head; causal_attention.py for the RNN form).
// Outside a trained model W and b are drawn from the seed: W_ab ~ N(0, 1/d) (unit-variance
// projections of a unit-variance key), b_a ~ N(0, bias_scale²) (default 0: the map is then
// positively homogeneous, so the query pre-scaling changes nothing but the balance with the floor).
// The optional input gate σ(g)·φ(k) of the reference is left out (it needs the layer input x).
//
// The denominator. ReLU features can all be zero, which makes φ(q)ᵀz = 0. The reference clamps
// the denominator at 1e-2; a clamp makes rows sum to less than 1 whenever it bites. We instead
// add a small positive `floor` to every feature (default 1e-3, as Performer's generalised ReLU
// kernel does): every φ is then strictly positive, every denominator with a visible key is
// positive, and the implied rows sum to 1 exactly. Since every term φ(q)·φ(k_j) is >= 0 the
// output is a convex combination of values for any positive denominator, so no further ε is
// needed. With floor = 0 (the paper's exact ReLU map) a query whose features are all zero gets
// output 0 and a zero weight row.
//
// Fast path (no trace): the chunked parallel form. Keys are cut into blocks of kCausalBlock
// tokens; pass 1 computes every block's ΔS = Φ_kᵀ V and Δz in parallel, pass 2 turns them into
// exclusive prefix sums in block order, pass 3 computes every block's outputs in parallel as
// φ(q)ᵀ(S_before + intra-block masked part). Memory O(L/64 · k · dv); the result does not depend
// on the thread count. A query only ever reads sums of earlier blocks and the masked terms of its
// own block (exact zeros for j > i), so causal outputs before j are bit-identical when token j
// changes. Non-causal: the same pass 1 over blocks of kBlock, summed in block order.
// Traced path: the recurrent form, token by token, carrying (S, z) and snapshotting them for the
// streaming state view; the dense matrix from Φ_q Φ_kᵀ.
#include "attention/t2r.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "attention/variants.h"
#include "core/error.h"
#include "core/rng.h"

namespace attnlab {
namespace {

constexpr std::int64_t kCausalBlock = 64;  // tokens per block of the causal chunked form
constexpr std::int64_t kBlock = 256;       // rows per block elsewhere
constexpr std::int64_t kMaxFeatures = 1024;

struct T2rOptions {
  std::int64_t features = 64;
  double bias_scale = 0.0;
  float floor = 1e-3f;
};

// W [H, k, d] and b [H, k], one seeded stream per head and tensor.
struct FeatureParams {
  Tensor weight;
  Tensor bias;
};

FeatureParams draw_feature_params(std::uint64_t seed, std::int64_t heads, std::int64_t d, const T2rOptions& o) {
  FeatureParams p{Tensor::uninitialized({heads, o.features, d}), Tensor::uninitialized({heads, o.features})};
  const double w_std = 1.0 / std::sqrt(static_cast<double>(d));
  for (std::int64_t h = 0; h < heads; ++h) {
    Rng w_rng(Rng::derive(seed, "t2r/weight/head" + std::to_string(h)));
    float* w = p.weight.data() + h * o.features * d;
    for (std::int64_t i = 0; i < o.features * d; ++i) w[i] = static_cast<float>(w_rng.normal() * w_std);
    Rng b_rng(Rng::derive(seed, "t2r/bias/head" + std::to_string(h)));
    float* b = p.bias.data() + h * o.features;
    for (std::int64_t i = 0; i < o.features; ++i) b[i] = static_cast<float>(b_rng.normal() * o.bias_scale);
  }
  return p;
}

// out = ReLU(scale · x Wᵀ + b) + floor for the rows of x ([rows, d] -> [rows, k]).
template <typename In, typename Out>
void feature_rows(const In& x, const FeatureParams& p, std::int64_t head, float scale, float floor, Out&& out) {
  out.noalias() = x * p.weight.matrix(head).transpose();
  if (scale != 1.0f) out *= scale;
  out.array().rowwise() += p.bias.matrix().row(head).array();
  out.array() = out.array().max(0.0f) + floor;
}

class T2rAttention final : public Attention {
 public:
  T2rAttention() {
    spec_.name = "t2r";
    spec_.title = "T2R learned ReLU feature attention";
    spec_.paper = "Kasai et al. 2021, Finetuning Pretrained Transformers into RNNs (arXiv:2103.13076)";
    spec_.summary =
        "Linear attention with a learned feature map φ(x) = ReLU(Wx + b): an RNN carrying (S, z) when causal; "
        "W and b are seeded outside a trained model.";
    spec_.params = {
        ParamSpec::integer("features", "Features k", 64, 1, kMaxFeatures,
                           "Size of the feature map φ(x) = ReLU(Wx + b) (the reference's causal_proj_dim); the "
                           "recurrent state S is k × dv."),
        ParamSpec::real("bias_scale", "Bias scale", 0.0, 0.0, 2.0,
                        "Standard deviation of the seeded bias b; 0 makes φ positively homogeneous."),
        ParamSpec::real("floor", "Feature floor", 1e-3, 0.0, 0.1,
                        "Added to every feature so φ > 0 and every row's denominator is positive; 0 gives the exact "
                        "ReLU map, where a query with all-zero features gets output 0."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    T2rOptions o;
    o.features = in.params->get_int("features");
    o.bias_scale = in.params->get_float("bias_scale");
    o.floor = static_cast<float>(in.params->get_float("floor"));
    const FeatureParams p = draw_feature_params(in.seed, in.q.dim(0), in.q.dim(2), o);
    if (trace) return forward_traced(in, o, p, *trace);
    return forward_chunked(in, o, p);
  }

  // W [H, k, d] and b [H, k], held throughout. Fast path: per key block ΔS [H·nb, k, dv] and Δz
  // [H·nb, k] (blocks of 64 causal, 256 otherwise), the output. Traced: the features [H, Lq, k]
  // and [H, Lk, k], the denominators [H, Lq], the snapshot states [H, T, k, dv] and normalisers
  // [H, T, k] (T = min(Lk, 512)), the weights [H, Lq, Lk], the output, and copies of W and b.
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    const std::int64_t H = s.heads, k = params.get_int("features");
    const std::int64_t feature_params = H * k * s.d + H * k, out = H * s.lq * s.dv;
    if (!s.trace) {
      const std::int64_t block = s.causal ? kCausalBlock : kBlock, nb = (s.lk + block - 1) / block;
      return float_bytes(feature_params + H * nb * (k * s.dv + k) + out);
    }
    const std::int64_t T = std::min(s.lk, RecurrentStates::kMaxSnapshots);
    return float_bytes(2 * feature_params + H * (s.lq + s.lk) * k + H * s.lq + H * T * (k * s.dv + k) + H * s.lq * s.lk + out);
  }

 private:
  static float query_scale(const AttentionInput& in) { return 1.0f / std::sqrt(static_cast<float>(in.q.dim(2))); }

  // Pass 1 of the chunked form: ΔS [H, nb, k, dv] and Δz [H, nb, k] of every key block.
  static void block_sums(const AttentionInput& in, const T2rOptions& o, const FeatureParams& p, std::int64_t block,
                         Tensor& ds, Tensor& dz) {
    const std::int64_t H = in.k.dim(0), Lk = in.k.dim(1);
    const std::int64_t nb = (Lk + block - 1) / block;
    bool cancelled = false;
#pragma omp parallel
    {
      RowMatrix phi(block, o.features);
#pragma omp for schedule(static)
      for (std::int64_t task = 0; task < H * nb; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / nb, j0 = (task % nb) * block, rows = std::min(block, Lk - j0);
        auto f = phi.topRows(rows);
        feature_rows(in.k.matrix(h).middleRows(j0, rows), p, h, 1.0f, o.floor, f);
        for (std::int64_t r = 0; r < rows; ++r)
          if (is_key_padded(in.key_padding, j0 + r)) f.row(r).setZero();
        ds.matrix(task).noalias() = f.transpose() * in.v.matrix(h).middleRows(j0, rows);
        dz.matrix().row(task) = f.colwise().sum();
      }
    }
    if (cancelled) throw CancelledError();
  }

  Tensor forward_chunked(const AttentionInput& in, const T2rOptions& o, const FeatureParams& p) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    const std::int64_t k = o.features;
    const std::int64_t block = in.causal ? kCausalBlock : kBlock;
    const std::int64_t nb = (Lk + block - 1) / block;
    Tensor ds = Tensor::uninitialized({H * nb, k, dv});
    Tensor dz = Tensor::uninitialized({H * nb, k});
    block_sums(in, o, p, block, ds, dz);
    check_cancelled(in.cancel);

    // Pass 2: causal -> exclusive prefix sums in block order (block b holds the sums of blocks < b);
    // non-causal -> the total, in block 0 of each head.
#pragma omp parallel for schedule(static) if (H > 1)
    for (std::int64_t h = 0; h < H; ++h) {
      RowMatrix run_s = RowMatrix::Zero(k, dv);
      RowVector run_z = RowVector::Zero(k);
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::int64_t i = h * nb + b;
        if (in.causal) {
          RowMatrix next = run_s + ds.matrix(i);
          RowVector next_z = run_z + dz.matrix().row(i);
          ds.matrix(i) = run_s;
          dz.matrix().row(i) = run_z;
          run_s = std::move(next);
          run_z = std::move(next_z);
        } else {
          run_s += ds.matrix(i);
          run_z += dz.matrix().row(i);
        }
      }
      if (!in.causal) {
        ds.matrix(h * nb) = run_s;
        dz.matrix().row(h * nb) = run_z;
      }
    }

    // Pass 3: outputs per query block.
    Tensor out = Tensor::uninitialized({H, Lq, dv});
    const std::int64_t qblock = in.causal ? kCausalBlock : kBlock;
    const std::int64_t nqb = (Lq + qblock - 1) / qblock;
    const float qscale = query_scale(in);
    bool cancelled = false;
#pragma omp parallel
    {
      RowMatrix phi_q(qblock, k), phi_k(qblock, k), intra(qblock, qblock), num(qblock, dv);
      Eigen::VectorXf den(qblock);
#pragma omp for schedule(static)
      for (std::int64_t task = 0; task < H * nqb; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / nqb, b = task % nqb, i0 = b * qblock, rows = std::min(qblock, Lq - i0);
        auto fq = phi_q.topRows(rows);
        feature_rows(in.q.matrix(h).middleRows(i0, rows), p, h, qscale, o.floor, fq);
        const std::int64_t state = in.causal ? h * nb + b : h * nb;
        auto n = num.topRows(rows);
        auto dn = den.head(rows);
        n.noalias() = fq * ds.matrix(state);
        dn.noalias() = fq * dz.matrix().row(state).transpose();
        if (in.causal) {  // the block's own keys j <= i (same positions as the queries)
          auto fk = phi_k.topRows(rows);
          feature_rows(in.k.matrix(h).middleRows(i0, rows), p, h, 1.0f, o.floor, fk);
          for (std::int64_t r = 0; r < rows; ++r)
            if (is_key_padded(in.key_padding, i0 + r)) fk.row(r).setZero();
          auto a = intra.topLeftCorner(rows, rows);
          a.noalias() = fq * fk.transpose();
          for (std::int64_t r = 0; r < rows; ++r) a.row(r).tail(rows - r - 1).setZero();
          n.noalias() += a * in.v.matrix(h).middleRows(i0, rows);
          dn += a.rowwise().sum();
        }
        auto dst = out.matrix(h).middleRows(i0, rows);
        for (std::int64_t r = 0; r < rows; ++r) {
          if (dn(r) > 0.0f) dst.row(r) = n.row(r) / dn(r);
          else dst.row(r).setZero();
        }
      }
    }
    if (cancelled) throw CancelledError();
    return out;
  }

  Tensor forward_traced(const AttentionInput& in, const T2rOptions& o, const FeatureParams& p, Trace& trace) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    const std::int64_t k = o.features;
    T2rExtras::Data x;
    x.heads = H;
    x.queries = Lq;
    x.keys = Lk;
    x.head_dim = in.q.dim(2);
    x.features = k;
    x.causal = in.causal;
    x.bias_scale = o.bias_scale;
    x.floor = o.floor;
    x.query_features = Tensor::uninitialized({H, Lq, k});
    x.key_features = Tensor::uninitialized({H, Lk, k});
    x.denominators = Tensor::uninitialized({H, Lq});
    RecurrentStates& rs = x.recurrent;
    rs.steps = RecurrentStates::snapshot_steps(Lk);
    const auto T = static_cast<std::int64_t>(rs.steps.size());
    rs.states = Tensor::uninitialized({H, T, k, dv});
    rs.normalizers = Tensor::uninitialized({H, T, k});
    rs.state_formula = "S_t = S_{t-1} + φ(k_t) v_tᵀ,  z_t = z_{t-1} + φ(k_t),  φ(x) = ReLU(Wx + b) + floor";
    rs.key_axis = "feature of φ(k)";
    rs.value_axis = "value dimension";
    Tensor weights = Tensor::uninitialized({H, Lq, Lk});
    Tensor out = Tensor::uninitialized({H, Lq, dv});
    const float qscale = query_scale(in);

    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      if (cancelled || (in.cancel && in.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      auto fq = x.query_features.matrix(h);
      auto fk = x.key_features.matrix(h);
      feature_rows(in.q.matrix(h), p, h, qscale, o.floor, fq);
      feature_rows(in.k.matrix(h), p, h, 1.0f, o.floor, fk);

      // The recurrent form: one key at a time; a causal query reads the state right after its key.
      RowMatrix s = RowMatrix::Zero(k, dv);
      RowVector z = RowVector::Zero(k);
      std::size_t next_snapshot = 0;
      auto y = out.matrix(h);
      const auto read = [&](std::int64_t i) {
        const float den = fq.row(i).dot(z);
        x.denominators.at(h, i) = den;
        if (den > 0.0f) y.row(i).noalias() = (fq.row(i) * s) / den;
        else y.row(i).setZero();
      };
      for (std::int64_t t = 0; t < Lk; ++t) {
        if (!is_key_padded(in.key_padding, t)) {
          s.noalias() += fk.row(t).transpose() * in.v.matrix(h).row(t);
          z += fk.row(t);
        }
        if (next_snapshot < rs.steps.size() && rs.steps[next_snapshot] == t) {
          rs.states.matrix(h * T + static_cast<std::int64_t>(next_snapshot)) = s;
          rs.normalizers.matrix(h).row(static_cast<std::int64_t>(next_snapshot)) = z;
          ++next_snapshot;
        }
        if (in.causal) read(t);
      }
      if (!in.causal)
        for (std::int64_t i = 0; i < Lq; ++i) read(i);

      // The implied matrix, normalised by its own row sums over the visible keys.
      auto w = weights.matrix(h);
      w.noalias() = fq * fk.transpose();
      for (std::int64_t i = 0; i < Lq; ++i) {
        auto row = w.row(i);
        if (in.causal && i + 1 < Lk) row.tail(Lk - i - 1).setZero();
        if (in.key_padding)
          for (std::int64_t j = 0; j < Lk; ++j)
            if (is_key_padded(in.key_padding, j)) row(j) = 0.0f;
        const float sum = row.sum();
        if (sum > 0.0f) row /= sum;
        else row.setZero();
      }
    }
    if (cancelled) throw CancelledError();
    x.weight = p.weight;
    x.bias = p.bias;
    trace.weights = std::move(weights);
    trace.extras = std::make_shared<T2rExtras>(std::move(x));
    return out;
  }

  VariantSpec spec_;
};

}  // namespace

nlohmann::json T2rExtras::to_json() const {
  const Data& d = data_;
  nlohmann::json j;
  j["kind"] = "t2r";
  j["heads"] = d.heads;
  j["queries"] = d.queries;
  j["keys"] = d.keys;
  j["head_dim"] = d.head_dim;
  j["features"] = d.features;
  j["causal"] = d.causal;
  j["bias_scale"] = d.bias_scale;
  j["floor"] = d.floor;
  j["feature_map"] = "phi(x) = relu(W x + b) + floor; queries scaled by 1/sqrt(d) first";
  j["weight"] = tensor_to_json(d.weight);                  // [H][k][d]
  j["bias"] = tensor_to_json(d.bias);                      // [H][k]
  j["query_features"] = tensor_to_json(d.query_features);  // [H][Lq][k]
  j["key_features"] = tensor_to_json(d.key_features);      // [H][Lk][k]
  j["denominators"] = tensor_to_json(d.denominators);      // [H][Lq]
  nlohmann::json r;
  r["steps"] = d.recurrent.steps;
  r["states"] = tensor_to_json(d.recurrent.states);            // [H][T][k][dv]
  r["normalizers"] = tensor_to_json(d.recurrent.normalizers);  // [H][T][k]
  r["state_formula"] = d.recurrent.state_formula;
  r["key_axis"] = d.recurrent.key_axis;
  r["value_axis"] = d.recurrent.value_axis;
  j["recurrent"] = std::move(r);
  return j;
}

std::unique_ptr<Attention> make_t2r_attention() { return std::make_unique<T2rAttention>(); }

}  // namespace attnlab
