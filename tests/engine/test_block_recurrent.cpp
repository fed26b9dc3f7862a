// Block-Recurrent Transformer layer: the sliding-window layer against a one-pass banded causal
// reference and the recurrent layer against a window-by-window reference (both naive, in
// double, written here from the equations in block_recurrent.h); gate limits, causality, trace
// shapes, weights, errors.
#include <QtTest>

#include <functional>
#include <set>

#include "attention/registry.h"
#include "core/safetensors.h"
#include "layers/block_recurrent.h"
#include "layers/weight_table.h"
#include "naive_reference.h"
#include "test_support.h"

using namespace attnlab;
using namespace attnlab::test::naive;  // layer_norm, affine, options, max_relative, ...

namespace {

using DMatrix = Eigen::MatrixXd;

Params block_params(const nlohmann::json& values) {
  Params p(BlockRecurrentLayer::schema());
  p.set_from_json(values);
  return p;
}

// ---- naive double-precision building blocks ----------------------------------------------------

// Multi-head softmax attention by loops: query i sees key j where visible(i, j); head h uses
// columns h·d .. h·d + d − 1. A query that sees nothing gets 0.
DMatrix attention(const DMatrix& q, const DMatrix& k, const DMatrix& v, std::int64_t heads,
                  const std::function<bool(std::int64_t, std::int64_t)>& visible) {
  const std::int64_t d = q.cols() / heads;
  DMatrix out = DMatrix::Zero(q.rows(), q.cols());
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t i = 0; i < q.rows(); ++i) {
      std::vector<double> logit(static_cast<std::size_t>(k.rows()), -INFINITY);
      double m = -INFINITY;
      for (std::int64_t j = 0; j < k.rows(); ++j) {
        if (!visible(i, j)) continue;
        double dot = 0;
        for (std::int64_t c = 0; c < d; ++c) dot += q(i, h * d + c) * k(j, h * d + c);
        logit[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
        m = std::max(m, logit[static_cast<std::size_t>(j)]);
      }
      if (m == -INFINITY) continue;
      double sum = 0;
      for (double& l : logit) sum += (l = (l == -INFINITY ? 0.0 : std::exp(l - m)));
      for (std::int64_t j = 0; j < k.rows(); ++j)
        for (std::int64_t c = 0; c < d; ++c) out(i, h * d + c) += logit[static_cast<std::size_t>(j)] / sum * v(j, h * d + c);
    }
  }
  return out;
}

bool all_visible(std::int64_t, std::int64_t) { return true; }

// The banded causal mask of the whole sequence: j ≤ i and j ≥ the start of the window before i's.
std::function<bool(std::int64_t, std::int64_t)> banded(std::int64_t W, const std::vector<std::uint8_t>* padding) {
  return [W, padding](std::int64_t i, std::int64_t j) {
    const std::int64_t start = std::max<std::int64_t>(0, (i / W - 1) * W);
    return j <= i && j >= start && !(padding && (*padding)[static_cast<std::size_t>(j)]);
  };
}

// The sliding-window layer in one pass over the whole sequence.
DMatrix sliding_window_reference(const BlockRecurrentLayer& l, const RowMatrix& x, const std::vector<std::uint8_t>* padding) {
  const DMatrix xd = x.cast<double>();
  const DMatrix u = layer_norm(l.norm_attention, xd);
  const DMatrix a = attention(affine(l.attention.w_q, u), affine(l.attention.w_k, u), affine(l.attention.w_v, u), l.heads,
                              banded(l.window, padding));
  const DMatrix h = xd + affine(l.attention.w_o, a);
  return h + feed_forward(l.feed_forward, layer_norm(l.norm_ff, h));
}

// The recurrent layer window by window; `states` gets s_0 .. s_{n_w}.
DMatrix recurrent_reference(const BlockRecurrentLayer& l, const RowMatrix& x, std::vector<DMatrix>& states) {
  const std::int64_t L = x.rows(), D = l.d_model, W = l.window, S = l.state_size;
  const DMatrix xd = x.cast<double>();
  const DMatrix u = layer_norm(l.norm_attention, xd);
  const DMatrix k = affine(l.attention.w_k, u), v = affine(l.attention.w_v, u);
  const DMatrix self = attention(affine(l.attention.w_q, u), k, v, l.heads, banded(W, nullptr));
  const DMatrix token_queries = affine(l.token_state_q, u);
  DMatrix from_state = DMatrix::Zero(L, D);
  DMatrix s = l.initial_state.cast<double>();
  states = {s};
  for (std::int64_t w = 0; w * W < L; ++w) {
    const DMatrix s_hat = layer_norm(l.norm_state, s) + l.state_position.cast<double>();
    const DMatrix ks = affine(l.state_k, s_hat), vs = affine(l.state_v, s_hat);
    // Vertical: the tokens of window w read s_w.
    const std::int64_t r0 = w * W, n = std::min(W, L - r0);
    from_state.middleRows(r0, n) = attention(token_queries.middleRows(r0, n), ks, vs, l.heads, all_visible);
    // Horizontal: s_w -> s_{w+1} from the tokens of windows w−1 and w.
    const std::int64_t k0 = std::max<std::int64_t>(0, r0 - W), k1 = r0 + n;
    DMatrix gate_in(S, 2 * D);
    gate_in.leftCols(D) = attention(affine(l.state_q_self, s_hat), ks, vs, l.heads, all_visible);
    gate_in.rightCols(D) = attention(affine(l.state_q_tokens, s_hat), k.middleRows(k0, k1 - k0), v.middleRows(k0, k1 - k0),
                                     l.heads, all_visible);
    const DMatrix z = affine(l.state_projection, gate_in);
    DMatrix next(S, D);
    if (l.gate == BlockRecurrentGate::Fixed) {
      const double g = sigmoid(l.gate_bias);
      next = g * s + (1 - g) * z;
    } else if (l.gate == BlockRecurrentGate::Full) {
      const DMatrix logits = affine(l.gate_full, gate_in);
      for (Eigen::Index i = 0; i < next.size(); ++i) {
        const double g = sigmoid(logits(i) + 1);
        next(i) = g * s(i) + (1 - g) * z(i);
      }
    } else {
      const DMatrix f = affine(l.gate_forget, gate_in), in = affine(l.gate_input, gate_in);
      for (Eigen::Index i = 0; i < next.size(); ++i) next(i) = sigmoid(f(i) + 1) * s(i) + sigmoid(in(i) - 1) * z(i);
    }
    s = next;
    states.push_back(s);
  }
  const DMatrix h = xd + affine(l.attention.w_o, self) + affine(l.token_state_o, from_state);
  return h + feed_forward(l.feed_forward, layer_norm(l.norm_ff, h));
}

const BlockRecurrentTrace& block_trace(const Trace& t) {
  return dynamic_cast<const BlockRecurrentTrace&>(*t.layer_extra("block_recurrent"));
}

}  // namespace

class TestBlockRecurrent : public QObject {
  Q_OBJECT

 private slots:
  // recurrent = false, computed window by window with the previous window's keys cached, equals
  // one pass over the sequence with the banded causal mask (last window short, W = 1, W ≥ L,
  // and with padded keys).
  void sliding_window_equals_one_pass_banded_reference() {
    const std::int64_t L = 37, D = 32;
    const auto padding = attnlab::test::padding_every(L, 5, 2);
    for (const std::int64_t W : {8, 1, 64}) {
      for (const bool padded : {false, true}) {
        const BlockRecurrentLayer layer =
            BlockRecurrentLayer::seeded(D, 4, 48, block_params({{"window", W}, {"recurrent", false}}), 11);
        const RowMatrix x = random_input(L, D, 12);
        const auto* p = padded ? &padding : nullptr;
        const RowMatrix y = layer.forward(x, options(false, p), nullptr);
        const double error = max_relative(y, sliding_window_reference(layer, x, p));
        QVERIFY2(error < 1e-4, qPrintable(QString("W=%1 padded=%2 error %3").arg(W).arg(padded).arg(error)));
        // The traced path gives the same numbers and the banded weights.
        Trace trace;
        const RowMatrix traced = layer.forward(x, options(false, p), &trace);
        QVERIFY((traced - y).cwiseAbs().maxCoeff() < 1e-5f);
        QCOMPARE(trace.weights.shape(), (Shape{4, L, L}));
        const auto visible = banded(W, p);
        for (std::int64_t h = 0; h < 4; ++h) {
          for (std::int64_t i = 0; i < L; ++i) {
            double sum = 0;
            bool any = false;
            for (std::int64_t j = 0; j < L; ++j) {
              const float a = trace.weights.at(h, i, j);
              if (!visible(i, j)) QCOMPARE(a, 0.0f);
              any = any || visible(i, j);
              sum += a;
            }
            QVERIFY(std::abs(sum - (any ? 1.0 : 0.0)) < 1e-5);
          }
        }
      }
    }
  }

  // The recurrent layer (each gate) against the window-by-window reference: outputs and states.
  void recurrent_layer_matches_window_by_window_reference() {
    const std::int64_t L = 29, D = 24, W = 6;
    for (const std::string gate : {"lstm", "full", "fixed"}) {
      const BlockRecurrentLayer layer = BlockRecurrentLayer::seeded(
          D, 3, 40, block_params({{"window", W}, {"state_size", 5}, {"gate", gate}, {"gate_bias", 0.5}}), 21);
      const RowMatrix x = random_input(L, D, 22);
      std::vector<DMatrix> states;
      const DMatrix reference = recurrent_reference(layer, x, states);
      const RowMatrix y = layer.forward(x, options(), nullptr);
      double error = max_relative(y, reference);
      QVERIFY2(error < 1e-4, qPrintable(QString("%1: output error %2").arg(QString::fromStdString(gate)).arg(error)));
      Trace trace;
      const RowMatrix traced = layer.forward(x, options(), &trace);
      QVERIFY((traced - y).cwiseAbs().maxCoeff() < 1e-5f);
      const BlockRecurrentTrace& t = block_trace(trace);
      QCOMPARE(static_cast<std::size_t>(t.windows + 1), states.size());
      for (std::int64_t w = 0; w <= t.windows; ++w) {
        const RowMatrix s = t.states.matrix(w);
        error = max_relative(s, states[static_cast<std::size_t>(w)]);
        QVERIFY2(error < 1e-4, qPrintable(QString("%1: state %2 error %3").arg(QString::fromStdString(gate)).arg(w).arg(error)));
      }
    }
  }

  // σ(20) rounds to exactly 1 in float: the fixed gate keeps the state as it is (20 is the
  // largest gate_bias the schema allows; 30 is refused).
  void saturated_fixed_gate_keeps_the_initial_state() {
    const BlockRecurrentLayer layer = BlockRecurrentLayer::seeded(
        16, 2, 32, block_params({{"window", 4}, {"state_size", 3}, {"gate", "fixed"}, {"gate_bias", 20.0}}), 31);
    Trace trace;
    layer.forward(random_input(19, 16, 32), options(), &trace);
    const BlockRecurrentTrace& t = block_trace(trace);
    QCOMPARE(t.windows, std::int64_t{5});
    for (std::int64_t w = 0; w <= t.windows; ++w) {
      QVERIFY2((t.states.matrix(w).array() == layer.initial_state.array()).all(), qPrintable(QString("state %1").arg(w)));
    }
    for (std::int64_t w = 0; w < t.windows; ++w)
      for (std::int64_t s = 0; s < 3; ++s) QCOMPARE(t.gate_values.at(w, s), 1.0f);
    Params p(BlockRecurrentLayer::schema());
    EXPECT_ERROR(ParamError, p.set("gate_bias", 30.0), "gate_bias: a number in [-20, 20]");
  }

  // Changing a token of window w leaves every earlier output bit-identical (earlier windows and
  // the earlier tokens of window w); it reaches window w + 2 only through the state.
  void later_tokens_never_change_earlier_outputs() {
    const std::int64_t L = 50, D = 16, W = 8;
    for (const std::string gate : {"lstm", "full", "fixed"}) {
      for (const bool recurrent : {true, false}) {
        const BlockRecurrentLayer layer = BlockRecurrentLayer::seeded(
            D, 2, 32, block_params({{"window", W}, {"state_size", 4}, {"gate", gate}, {"recurrent", recurrent}}), 41);
        const RowMatrix x = random_input(L, D, 42);
        RowMatrix changed = x;
        const std::int64_t j = 2 * W + 3;  // in window 2
        changed.row(j) = random_input(1, D, 43).row(0);
        const RowMatrix a = layer.forward(x, options(), nullptr);
        const RowMatrix b = layer.forward(changed, options(), nullptr);
        QVERIFY(rows_identical(a, b, 0, 2 * W));
        QVERIFY(rows_identical(a, b, 0, j));
        QVERIFY(a.row(j) != b.row(j));
        // Window 4 does not see window 2 directly: only a recurrent layer's state carries it there.
        const bool window4_changed = a.middleRows(4 * W, W) != b.middleRows(4 * W, W);
        QCOMPARE(window4_changed, recurrent);
      }
    }
  }

  void trace_has_the_documented_shapes_and_sums() {
    const std::int64_t L = 21, D = 16, W = 8, S = 4, H = 2;
    const BlockRecurrentLayer layer =
        BlockRecurrentLayer::seeded(D, H, 32, block_params({{"window", W}, {"state_size", S}}), 51);
    Trace trace;
    layer.forward(random_input(L, D, 52), options(), &trace);
    QCOMPARE(trace.layer_extras.size(), std::size_t{1});
    const BlockRecurrentTrace& t = block_trace(trace);
    QCOMPARE(t.kind(), std::string_view("block_recurrent"));
    QCOMPARE(t.windows, std::int64_t{3});
    QCOMPARE(t.window, W);
    QCOMPARE(t.state_size, S);
    QCOMPARE(t.gate, std::string("lstm"));
    QCOMPARE(trace.weights.shape(), (Shape{H, L, L}));
    QCOMPARE(t.gate_values.shape(), (Shape{3, S}));
    QCOMPARE(t.state_norms.shape(), (Shape{4, S}));
    QCOMPARE(t.states.shape(), (Shape{4, S, D}));
    QCOMPARE(t.state_token_attention.shape(), (Shape{3, S, 2 * W}));
    QCOMPARE(t.token_state_attention.shape(), (Shape{3, W, S}));
    for (std::int64_t w = 0; w < 3; ++w) {
      for (std::int64_t s = 0; s < S; ++s) {
        QVERIFY(t.gate_values.at(w, s) > 0.0f && t.gate_values.at(w, s) < 1.0f);
        // Window w's state reads tokens (w−1)·W .. (w+1)·W − 1 that exist: column c is token (w−1)·W + c.
        double sum = 0;
        for (std::int64_t c = 0; c < 2 * W; ++c) {
          const std::int64_t token = (w - 1) * W + c;
          if (token < 0 || token >= L) QCOMPARE(t.state_token_attention.at(w, s, c), 0.0f);
          sum += t.state_token_attention.at(w, s, c);
        }
        QVERIFY(std::abs(sum - 1.0) < 1e-5);
      }
      for (std::int64_t r = 0; r < W; ++r) {
        double sum = 0;
        for (std::int64_t s = 0; s < S; ++s) sum += t.token_state_attention.at(w, r, s);
        QVERIFY(std::abs(sum - (w * W + r < L ? 1.0 : 0.0)) < 1e-5);
      }
    }
    for (std::int64_t w = 0; w <= 3; ++w)
      for (std::int64_t s = 0; s < S; ++s)
        QVERIFY(std::abs(t.state_norms.at(w, s) - t.states.matrix(w).row(s).norm()) < 1e-5f * t.state_norms.at(w, s));
    const nlohmann::json j = t.to_json();
    for (const char* key : {"windows", "window", "state_size", "gate", "gate_values", "state_norms", "states",
                            "state_token_attention", "token_state_attention"}) {
      QVERIFY2(j.contains(key), key);
    }
    QCOMPARE(j["states"].size(), std::size_t{4});
    QCOMPARE(j["token_state_attention"][0].size(), std::size_t{W});
    // Large state histories stay out of the JSON (S·D·windows > 1e6) but remain in the typed trace.
    BlockRecurrentTrace big;
    big.windows = 1000;
    big.state_size = 100;
    big.states = Tensor({1, 1, 11});
    QVERIFY(!big.to_json().contains("states"));
    big.states = Tensor({1, 1, 10});
    QVERIFY(big.to_json().contains("states"));
    // Without a state, the state tables are empty.
    const BlockRecurrentLayer plain = BlockRecurrentLayer::seeded(D, H, 32, block_params({{"recurrent", false}}), 53);
    Trace plain_trace;
    plain.forward(random_input(L, D, 54), options(), &plain_trace);
    QVERIFY(!block_trace(plain_trace).recurrent);
    QCOMPARE(block_trace(plain_trace).windows, std::int64_t{1});
    QVERIFY(block_trace(plain_trace).states.empty());
  }

  // Every weight is visited once under its name; loading them into a layer seeded otherwise
  // reproduces the output exactly.
  void weights_round_trip_through_the_weight_table() {
    for (const std::string gate : {"lstm", "full", "fixed"}) {
      const Params p = block_params({{"window", 4}, {"state_size", 3}, {"gate", gate}});
      BlockRecurrentLayer a = BlockRecurrentLayer::seeded(16, 2, 24, p, 61);
      BlockRecurrentLayer b = BlockRecurrentLayer::seeded(16, 2, 24, p, 62);
      SafetensorsFile file;
      WeightWriter writer(file);
      a.visit_weights("layers.0.", writer);
      const std::size_t gate_tensors = gate == "lstm" ? 4 : gate == "full" ? 2 : 0;
      // 4 (norms) + 8 (attention) + 4 (FFN) + 4 (token_state) + 2 (state tables) + 2 (state norm)
      // + 8 (state q/k/v/q_tokens) + 2 (projection) + gate
      QCOMPARE(file.tensors.size(), std::size_t{34} + gate_tensors);
      QCOMPARE(file.tensors.at("layers.0.state.initial").shape(), (Shape{3, 16}));
      QCOMPARE(file.tensors.at("layers.0.state.projection.weight").shape(), (Shape{32, 16}));
      WeightReader reader(file);
      b.visit_weights("layers.0.", reader);
      const RowMatrix x = random_input(11, 16, 63);
      QVERIFY(a.forward(x, options(), nullptr) == b.forward(x, options(), nullptr));
    }
    BlockRecurrentLayer plain = BlockRecurrentLayer::seeded(16, 2, 24, block_params({{"recurrent", false}}), 64);
    SafetensorsFile file;
    WeightWriter writer(file);
    plain.visit_weights("", writer);
    QCOMPARE(file.tensors.size(), std::size_t{16});
  }

  // Without a trace nothing of L×L floats is allocated: the meter's peak stays far below one.
  void fast_path_memory_is_far_below_one_length_squared_matrix() {
    const std::int64_t L = 2048, D = 32;
    const BlockRecurrentLayer layer =
        BlockRecurrentLayer::seeded(D, 4, 64, block_params({{"window", 64}, {"state_size", 8}}), 71);
    const RowMatrix x = random_input(L, D, 72);
    const std::int64_t peak = attnlab::test::peak_bytes_of([&] { layer.forward(x, options(), nullptr); });
    QVERIFY2(peak < L * L * 4 / 8, qPrintable(QString("peak %1 bytes").arg(peak)));
  }

  void bad_params_and_inputs_are_refused() {
    Params p(BlockRecurrentLayer::schema());
    EXPECT_ERROR(ParamError, p.set("window", std::int64_t{0}), "window: an integer in [1, 65536]");
    EXPECT_ERROR(ParamError, p.set("state_size", std::int64_t{4097}), "state_size: an integer in [1, 4096]");
    EXPECT_ERROR(ParamError, p.set("gate", std::string("gru")), "gate: one of lstm, fixed, full");
    EXPECT_ERROR(ParamError, p.set("gate_bias", -21.0), "gate_bias");
    EXPECT_ERROR(ParamError, BlockRecurrentLayer::seeded(16, 3, 32, p, 1), "heads=3 does not divide d_model=16");
    EXPECT_ERROR(ParamError, BlockRecurrentLayer::seeded(16, 2, 0, p, 1), "d_ff=0");
    const BlockRecurrentLayer layer = BlockRecurrentLayer::seeded(16, 2, 32, p, 1);
    EXPECT_ERROR(ShapeError, layer.forward(random_input(5, 8, 2), options(), nullptr), "[L, 16]");
    EXPECT_ERROR(ShapeError, layer.forward(RowMatrix(0, 16), options(), nullptr), "at least one token");
    RowMatrix bad = random_input(5, 16, 3);
    bad(2, 3) = NAN;
    EXPECT_ERROR(ShapeError, layer.forward(bad, options(), nullptr), "non-finite");
    const std::vector<std::uint8_t> short_padding(4, 0);
    EXPECT_ERROR(ShapeError, layer.forward(random_input(5, 16, 4), options(false, &short_padding), nullptr),
                 "4 entries but there are 5 tokens");
  }

  void cancel_stops_both_paths() {
    const BlockRecurrentLayer layer = BlockRecurrentLayer::seeded(16, 2, 32, block_params({{"window", 4}}), 81);
    CancelToken token;
    token.cancel();
    AttentionOptions o = options();
    o.cancel = &token;
    Trace trace;
    EXPECT_ERROR(CancelledError, layer.forward(random_input(20, 16, 82), o, nullptr), "cancelled");
    EXPECT_ERROR(CancelledError, layer.forward(random_input(20, 16, 82), o, &trace), "cancelled");
  }
};

QTEST_APPLESS_MAIN(TestBlockRecurrent)
#include "test_block_recurrent.moc"
