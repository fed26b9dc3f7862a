// Exact scaled dot-product attention (Vaswani et al. 2017), registered as "softmax".
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   weights (trace only): [H, Lq, Lk],  A = softmax(q kᵀ / sqrt(d) + M)
//   M_ij = -inf where key j is padded, or j > i when causal.
//
// Fast path (no trace): blockwise with an online softmax, as in FlashAttention — for each block
// of queries, visit blocks of keys, keep the running row maximum m, the running denominator l
// and the unnormalised output, rescaling them by exp(m_old - m_new) whenever the maximum grows.
// The L x L matrix is never materialised: memory is O(L·d) plus one block per thread.
//
// Masked entries are set to exactly 0 after exponentiation, by position (not left to exp(-inf)
// inside a vectorised exp, which may clamp), so a masked key has no influence at all on a query: in
// causal mode, changing token j leaves the outputs of queries before j bit-identical.
// A query with no visible key (every key padded) gets output 0 and a zero weight row.
#include <omp.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "attention/attention.h"
#include "attention/variants.h"
#include "core/error.h"

namespace attnlab {
namespace {

constexpr std::int64_t kQueryBlock = 64;
constexpr std::int64_t kKeyBlock = 256;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Per-query log of the softmax denominator (log-sum-exp of the scaled logits): [H, Lq].
// Later variants (Reformer rounds) combine partial attentions with it.
class SoftmaxExtras final : public TraceExtras {
 public:
  SoftmaxExtras(Tensor lse, float scale) : lse_(std::move(lse)), scale_(scale) {}
  std::string_view kind() const override { return "softmax"; }
  nlohmann::json to_json() const override {
    nlohmann::json j;
    j["kind"] = "softmax";
    j["scale"] = scale_;
    nlohmann::json rows = nlohmann::json::array();
    for (std::int64_t h = 0; h < lse_.dim(0); ++h) {
      nlohmann::json row = nlohmann::json::array();
      for (std::int64_t i = 0; i < lse_.dim(1); ++i) {
        const float x = lse_.at(h, i);
        row.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr));
      }
      rows.push_back(std::move(row));
    }
    j["logsumexp"] = std::move(rows);  // [H, Lq]; null for a query that sees no key
    return j;
  }
  const Tensor& logsumexp() const { return lse_; }

 private:
  Tensor lse_;
  float scale_;
};

// Sets logits of keys a query must not see to -inf. `block` covers queries [q0, q0+rows) and
// keys [k0, k0+cols).
template <typename Block>
void mask_logits(Block& block, std::int64_t q0, std::int64_t k0, bool causal,
                 const std::vector<std::uint8_t>* padding) {
  const std::int64_t rows = block.rows(), cols = block.cols();
  if (padding) {
    for (std::int64_t c = 0; c < cols; ++c) {
      if ((*padding)[static_cast<std::size_t>(k0 + c)]) block.col(c).setConstant(kNegInf);
    }
  }
  if (causal) {
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t first_hidden = q0 + r + 1 - k0;  // keys j > i are hidden
      if (first_hidden < cols) block.row(r).tail(cols - std::max<std::int64_t>(first_hidden, 0)).setConstant(kNegInf);
    }
  }
}

// After exponentiation: exact zeros for the keys query `query` must not see, found from the
// mask's structure (not by comparing values), for the key range [k0, k0 + row.size()).
template <typename Row>
void zero_hidden_keys(Row&& row, std::int64_t query, std::int64_t k0, bool causal,
                      const std::vector<std::uint8_t>* padding) {
  const std::int64_t cols = row.size();
  if (causal) {
    const std::int64_t first_hidden = std::max<std::int64_t>(query + 1 - k0, 0);
    if (first_hidden < cols) row.tail(cols - first_hidden).setZero();
  }
  if (padding) {
    for (std::int64_t c = 0; c < cols; ++c)
      if ((*padding)[static_cast<std::size_t>(k0 + c)]) row(c) = 0.0f;
  }
}

class SoftmaxAttention final : public Attention {
 public:
  SoftmaxAttention() {
    spec_.name = "softmax";
    spec_.title = "Exact softmax attention";
    spec_.paper = "Vaswani et al. 2017, Attention Is All You Need (arXiv:1706.03762)";
    spec_.summary = "Every query attends to every visible key with weights softmax(q·k/√d).";
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    if (trace) return forward_dense(in, *trace);
    return forward_blockwise(in);
  }

  // Fast path: the output only (the per-thread blocks are Eigen scratch, not tensors).
  // Traced: the output, weights [H, Lq, Lk] and the log-sum-exp extras [H, Lq].
  std::int64_t workspace_bytes(const AttentionShape& s, const Params&) const override {
    const std::int64_t out = s.heads * s.lq * s.dv;
    if (!s.trace) return float_bytes(out);
    return float_bytes(out + s.heads * s.lq * s.lk + s.heads * s.lq);
  }

 private:
  Tensor forward_dense(const AttentionInput& in, Trace& trace) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    const float scale = 1.0f / std::sqrt(static_cast<float>(in.q.dim(2)));
    Tensor out = Tensor::uninitialized({H, Lq, dv});
    Tensor weights = Tensor::uninitialized({H, Lq, Lk});  // every row is written below
    Tensor lse = Tensor::uninitialized({H, Lq});
    // Tasks are (head, block of queries), so one head with a long input still uses every core.
    const std::int64_t query_blocks = (Lq + kQueryBlock - 1) / kQueryBlock;
    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t task = 0; task < H * query_blocks; ++task) {
      if (cancelled || (in.cancel && in.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      const std::int64_t h = task / query_blocks;
      const std::int64_t q0 = (task % query_blocks) * kQueryBlock;
      const std::int64_t rows = std::min(kQueryBlock, Lq - q0);
      auto w = weights.matrix(h).middleRows(q0, rows);
      w.noalias() = (in.q.matrix(h).middleRows(q0, rows) * in.k.matrix(h).transpose()) * scale;
      mask_logits(w, q0, 0, in.causal, in.key_padding);
      for (std::int64_t r = 0; r < rows; ++r) {
        auto row = w.row(r);
        const float m = row.maxCoeff();
        if (m == kNegInf) {
          row.setZero();
          lse.at(h, q0 + r) = kNegInf;
          continue;
        }
        row = (row.array() - m).exp().matrix();
        zero_hidden_keys(row, q0 + r, 0, in.causal, in.key_padding);
        const float sum = row.sum();
        row /= sum;
        lse.at(h, q0 + r) = m + std::log(sum);
      }
      out.matrix(h).middleRows(q0, rows).noalias() = w * in.v.matrix(h);
    }
    if (cancelled) throw CancelledError();
    trace.weights = std::move(weights);
    trace.extras = std::make_shared<SoftmaxExtras>(std::move(lse), scale);
    return out;
  }

  Tensor forward_blockwise(const AttentionInput& in) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    const float scale = 1.0f / std::sqrt(static_cast<float>(in.q.dim(2)));
    Tensor out = Tensor::uninitialized({H, Lq, dv});  // every row is written below
    const std::int64_t query_blocks = (Lq + kQueryBlock - 1) / kQueryBlock;
    bool cancelled = false;
#pragma omp parallel
    {
      // Scratch per thread, allocated once outside the loops.
      RowMatrix logits(kQueryBlock, kKeyBlock), probs(kQueryBlock, kKeyBlock), acc(kQueryBlock, dv);
      Eigen::VectorXf row_max(kQueryBlock), row_sum(kQueryBlock);
#pragma omp for schedule(dynamic)
      for (std::int64_t task = 0; task < H * query_blocks; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / query_blocks;
        const std::int64_t q0 = (task % query_blocks) * kQueryBlock;
        const std::int64_t rows = std::min(kQueryBlock, Lq - q0);
        const auto q = in.q.matrix(h).middleRows(q0, rows);
        const auto k_all = in.k.matrix(h);
        const auto v_all = in.v.matrix(h);
        auto m = row_max.head(rows);
        auto l = row_sum.head(rows);
        auto o = acc.topRows(rows);
        m.setConstant(kNegInf);
        l.setZero();
        o.setZero();
        // Causal: keys after the block's last query are invisible to the whole block.
        const std::int64_t key_end = in.causal ? std::min(Lk, q0 + rows) : Lk;
        for (std::int64_t k0 = 0; k0 < key_end; k0 += kKeyBlock) {
          const std::int64_t cols = std::min(kKeyBlock, key_end - k0);
          auto s = logits.topLeftCorner(rows, cols);
          auto p = probs.topLeftCorner(rows, cols);
          s.noalias() = (q * k_all.middleRows(k0, cols).transpose()) * scale;
          mask_logits(s, q0, k0, in.causal, in.key_padding);
          for (std::int64_t r = 0; r < rows; ++r) {
            const float m_new = std::max(m(r), s.row(r).maxCoeff());
            if (m_new == kNegInf) {  // nothing visible to this query yet
              p.row(r).setZero();
              continue;
            }
            const float rescale = m(r) == kNegInf ? 0.0f : std::exp(m(r) - m_new);
            p.row(r) = (s.row(r).array() - m_new).exp().matrix();
            zero_hidden_keys(p.row(r), q0 + r, k0, in.causal, in.key_padding);
            l(r) = l(r) * rescale + p.row(r).sum();
            o.row(r) *= rescale;
            m(r) = m_new;
          }
          o.noalias() += p * v_all.middleRows(k0, cols);
        }
        auto dst = out.matrix(h).middleRows(q0, rows);
        for (std::int64_t r = 0; r < rows; ++r) {
          if (l(r) > 0.0f) dst.row(r) = o.row(r) / l(r);
          else dst.row(r).setZero();
        }
      }
    }
    if (cancelled) throw CancelledError();
    return out;
  }

  VariantSpec spec_;
};

}  // namespace

std::unique_ptr<Attention> make_softmax_attention() { return std::make_unique<SoftmaxAttention>(); }

}  // namespace attnlab
