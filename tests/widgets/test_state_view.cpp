// The "Streaming state" view on the offscreen platform: which results it accepts; the state
// heatmap's colours at cells found through the public layout (the engine's state through the
// colormap, on the range of every step of the head computed here); the normaliser bars against
// z recomputed from linear's key features (z_t = Σ_{j ≤ t} φ(k_j)); the token strip; delta's
// retrieval-error curve; the step option, the slider and Play (a timer that runs only while
// playing and stops at the last step); hover; exports read back.
#include <QImage>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "attention/delta.h"
#include "attention/linear.h"
#include "core/error.h"
#include "core/npy.h"
#include "figure_canvas.h"
#include "figures/state_figure.h"
#include "models/playground.h"
#include "state_view.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText = "the quick brown fox jumps over the lazy dog while a small cat sleeps on the warm mat";

// `params` may be {} (null): no overrides.
PlaygroundResultPtr run(const std::string& variant, nlohmann::json params, bool causal = true) {
  if (params.is_null()) params = nlohmann::json::object();
  return run_playground(variant, std::move(params), causal, kText, 3);
}

const RecurrentStates& states_of(const ViewContext& c) { return recurrent_extras(c)->recurrent(); }

Rendered<StateFigureLayout> render(const ViewContext& c, int step, double dpi = 100) {
  Rendered<StateFigureLayout> r;
  r.image = render_figure_image(state_painted_figure(c, FigureStyle{}, StateFigureOptions{step}), dpi);
  r.layout = compute_state_layout(c, FigureStyle{}, QRectF(r.image.rect()), &r.image);
  return r;
}

}  // namespace

class TestStateView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_recurrent_forms() {
    const ViewSpec& spec = view_spec("state");
    QCOMPARE(spec.title, QStringLiteral("Streaming state"));
    QVERIFY(spec.requirement.contains(QStringLiteral("recurrent form")));
    QCOMPARE(spec.data_extensions, (QStringList{"json", "npy"}));
    for (const char* variant : {"delta", "linear", "t2r", "performer"}) QVERIFY2(spec.accepts(*run(variant, {})), variant);
    QVERIFY(!spec.accepts(*run("performer", {}, false)));  // its recurrent form is the causal one
    QVERIFY(spec.accepts(*run("linear", {}, false)));
    QVERIFY(!spec.accepts(*run("softmax", {})));
    QVERIFY(!spec.accepts(*run("bigbird", {{"block_size", 2}})));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(run("softmax", {}))), "recurrent form");
  }

  // Cells of the state matrix at several steps: the engine's numbers on the diverging map,
  // symmetric over every step of the head.
  void state_cells_are_the_engine_numbers() {
    for (const char* variant : {"delta", "linear"}) {
      const ViewContext c = view_context(run(variant, {}), 1, 2);
      const RecurrentStates& s = states_of(c);
      const Tensor& st = s.states;  // [H, T, rows, cols]
      const std::int64_t T = st.dim(1), R = st.dim(2), C = st.dim(3);
      QCOMPARE(T, c.result->length());  // a snapshot per token for short texts
      const float* head = st.data() + 2 * T * R * C;
      float m = 0;
      for (std::int64_t i = 0; i < T * R * C; ++i) m = std::max(m, std::abs(head[i]));
      QVERIFY(*std::min_element(head, head + T * R * C) < 0);  // signed: values are
      QCOMPARE(state_rows_are_keys(s), std::string(variant) == "linear");
      const Colormap& coolwarm = Colormap::get(ColormapId::Coolwarm);
      for (const int step : {0, 5, static_cast<int>(T - 1)}) {
        const auto r = render(c, step);
        for (std::int64_t i = 0; i < R; i += 3)
          for (std::int64_t j = 0; j < C; j += 2) {
            const float v = head[(step * R + i) * C + j];
            const QRgb got = pixel_at(r.image, r.layout.state.cell_rect(static_cast<int>(i), static_cast<int>(j)).center());
            QVERIFY2(near_colour(got, QColor(coolwarm.color(v, -m, m))),
                     qPrintable(QString("%1 step %2 cell (%3, %4): %5").arg(variant).arg(step).arg(i).arg(j).arg(describe(got))));
          }
        // Token strip: absorbed, current, still to come.
        const std::int64_t current = s.steps[static_cast<std::size_t>(step)];
        for (std::int64_t t = 0; t < c.result->length(); ++t) {
          const QColor expected = t == current ? okabe_ito(OkabeIto::Vermillion)
                                  : t < current ? state_absorbed_color(FigureStyle{})
                                                : state_pending_color(FigureStyle{});
          QVERIFY(near_colour(pixel_at(r.image, r.layout.token_centre(t)), expected));
        }
      }
    }
  }

  // Linear attention's z after step t is the sum of the key features so far: each bar reaches
  // z_f / max(z) of the plot's height.
  void normaliser_bars_equal_summed_key_features() {
    const ViewContext c = view_context(run("linear", {}), 0, 1);
    const auto* extras = dynamic_cast<const LinearExtras*>(recurrent_extras(c));
    QVERIFY(extras);
    const Tensor& phi = extras->data().key_features;  // [H, L, d]
    const std::int64_t L = phi.dim(1), d = phi.dim(2);
    std::vector<std::vector<double>> z(static_cast<std::size_t>(L), std::vector<double>(static_cast<std::size_t>(d), 0.0));
    std::vector<double> running(static_cast<std::size_t>(d), 0.0);
    double top = 0;
    for (std::int64_t t = 0; t < L; ++t) {
      for (std::int64_t f = 0; f < d; ++f) {
        running[static_cast<std::size_t>(f)] += phi.at(1, t, f);
        top = std::max(top, running[static_cast<std::size_t>(f)]);
      }
      z[static_cast<std::size_t>(t)] = running;
    }
    const int step = 6;
    const auto r = render(c, step, 150);
    const QRectF& plot = r.layout.normalizer;
    QVERIFY(!plot.isEmpty());
    const double w = plot.width() / static_cast<double>(d);
    for (std::int64_t f = 0; f < d; ++f) {
      const double height = z[step][static_cast<std::size_t>(f)] / top * plot.height();
      const double x = plot.left() + (static_cast<double>(f) + 0.5) * w;
      if (height > 4) QVERIFY2(near_colour(pixel_at(r.image, QPointF(x, plot.bottom() - height + 2)), state_bar_color()),
                               qPrintable(QString("bar %1 inside").arg(f)));
      if (plot.height() - height > 4)
        QVERIFY2(near_colour(pixel_at(r.image, QPointF(x, plot.bottom() - height - 2)), FigureStyle{}.background),
                 qPrintable(QString("bar %1 above").arg(f)));
    }
  }

  // Delta's retrieval error: a marker at each evaluated snapshot; linear has no curve.
  void delta_retrieval_error_curve() {
    const ViewContext c = view_context(run("delta", {}), 0, 0);
    const auto r = render(c, 3, 150);
    QVERIFY(!r.layout.error_plot.isEmpty());
    const RecurrentStates& s = states_of(c);
    double top = 0;
    for (std::int64_t t = 0; t < s.retrieval_error.dim(1); ++t) top = std::max(top, static_cast<double>(s.retrieval_error.at(0, t)));
    const PlotAxis x = nice_linear_axis(0, static_cast<double>(c.result->length() - 1), 5);
    const PlotAxis y = nice_linear_axis(0, top, 4);
    int checked = 0;
    for (std::int64_t t = 0; t < s.retrieval_error.dim(1); ++t) {
      const float e = s.retrieval_error.at(0, t);
      if (!std::isfinite(e) || t == 3) continue;  // the current step's marker sits under the step line
      const QPointF p = plot_point(r.layout.error_plot, x, y, static_cast<double>(s.steps[static_cast<std::size_t>(t)]), e);
      QVERIFY2(near_colour(pixel_at(r.image, p), state_error_color(), 12), qPrintable(describe(pixel_at(r.image, p))));
      ++checked;
    }
    QVERIFY(checked > 5);
    QVERIFY(render(view_context(run("linear", {}), 0, 0), -1).layout.error_plot.isEmpty());
  }

  void widget_step_slider_play_and_hover() {
    StateView view;
    view.resize(1400, 900);
    view.show();
    const ViewContext c = view_context(run("delta", {}), 0, 0);
    view.setContext(c);
    const int T = static_cast<int>(states_of(c).steps.size());
    QCOMPARE(view.step(), -1);
    QCOMPARE(view.resolvedStep(), T - 1);
    QCOMPARE(view.stepSlider()->maximum(), T - 1);
    QCOMPARE(view.stepSlider()->value(), T - 1);
    QSignalSpy changed(&view, &TraceViewWidget::viewOptionsChanged);
    const QImage last = view.canvas()->grab().toImage();
    view.stepSlider()->setValue(2);
    QCOMPARE(view.step(), 2);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"step", 2}}));
    QVERIFY(view.canvas()->grab().toImage() != last);
    view.setViewOptions({{"step", -1}});
    QCOMPARE(view.stepSlider()->value(), T - 1);
    EXPECT_ERROR(ParamError, view.setViewOptions({{"step", -2}}), "step");
    EXPECT_ERROR(ParamError, view.setViewOptions({{"frame", 1}}), "view 'state' has no option 'frame'; its options: step");

    // Play: from the start, one step per tick, stops at the end; no timer otherwise.
    QVERIFY(!view.playTimer()->isActive());
    view.playButton()->click();
    QVERIFY(view.isPlaying());
    QCOMPARE(view.resolvedStep(), 0);
    QTRY_VERIFY_WITH_TIMEOUT(view.resolvedStep() >= 2, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(!view.isPlaying(), 20000);
    QCOMPARE(view.step(), -1);
    QVERIFY(!view.playTimer()->isActive());
    QVERIFY(!view.playButton()->isChecked());

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    QTest::mouseMove(view.canvas()->surface(), view.figureLayout().token_centre(4).toPoint());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 4);

    view.setContext(view_context(run("softmax", {})));
    QVERIFY(!view.canvas()->hasFigure());
    QVERIFY(view.canvas()->message().contains(QStringLiteral("recurrent form")));
  }

  void step_option_in_exported_figure() {
    const ViewContext c = view_context(run("linear", {}), 0, 0);
    const QImage last = render_view("state", c);
    const int T = static_cast<int>(states_of(c).steps.size());
    QCOMPARE(render_view("state", view_context(c.result, 0, 0, {{"step", T - 1}})), last);
    QCOMPARE(render_view("state", view_context(c.result, 0, 0, {{"step", 511}})), last);  // past the last: the last
    QVERIFY(render_view("state", view_context(c.result, 0, 0, {{"step", 0}})) != last);
  }

  void exports_read_back() {
    const ViewContext c = view_context(run("delta", {}), 1, 3, {{"step", 4}});
    const RecurrentStates& s = states_of(c);
    QTemporaryDir dir;
    export_each("state", c, dir, {"f.png", "f.svg", "f.pdf", "d.json", "d.npy"});
    QVERIFY(!QImage(dir.filePath("f.png")).isNull());
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("Streaming state")));
    QVERIFY(is_pdf(dir.filePath("f.pdf")));
    const Tensor npy = read_npy(dir.filePath("d.npy").toStdString());
    const std::int64_t T = s.states.dim(1), R = s.states.dim(2), C = s.states.dim(3);
    QCOMPARE(npy.shape(), (Shape{T, R, C}));
    const float* head = s.states.data() + 3 * T * R * C;
    for (std::int64_t i = 0; i < T * R * C; ++i) QCOMPARE(npy.data()[i], head[i]);
    const nlohmann::json j = read_json(dir.filePath("d.json"));
    QCOMPARE(j.at("variant").get<std::string>(), std::string("delta"));
    QCOMPARE(j.at("step").get<int>(), 4);
    QCOMPARE(j.at("head").get<int>(), 3);
    QCOMPARE(j.at("state_formula").get<std::string>(), s.state_formula);
    QCOMPARE(j.at("rows_axis").get<std::string>(), s.value_axis);
    QVERIFY(j.at("normalizers").is_null());
    QCOMPARE(j.at("steps").size(), static_cast<std::size_t>(T));
    for (std::int64_t t = 0; t < T; ++t) {
      const float e = s.retrieval_error.at(3, t);
      if (std::isfinite(e)) QCOMPARE(j.at("retrieval_error")[t].get<float>(), e);
      else QVERIFY(j.at("retrieval_error")[t].is_null());
    }
    EXPECT_ERROR(ParamError, export_view(view_spec("state"), c, dir.filePath("d.csv"), ExportOptions{}), ".npy");
  }
};

QTEST_MAIN(TestStateView)
#include "test_state_view.moc"
