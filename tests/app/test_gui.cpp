// The GUI as a user meets it, under Xvfb: it opens on the example with a heatmap, reacts to
// typing, hovering, zooming and clicking a head, keeps the last good result on bad input, a
// saved session reopens to the identical exported figure, and a variant view's export (with the
// options its widget shows) is the figure attnlab-cli draws for the same session; the Curves dock
// opens from the Tools menu, runs beside the playground and keeps its settings in the session, and
// so does the Translate dock.
#include <QComboBox>
#include <QDockWidget>
#include <QLabel>
#include <QFileInfo>
#include <QLineEdit>
#include <QMenuBar>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include "curves_view.h"
#include "head_grid.h"
#include "heatmap_view.h"
#include "main_window.h"
#include "model_composer.h"
#include "trace_view.h"
#include "translate_view.h"

using namespace attnlab;

namespace {

bool wait_for_result(QSignalSpy& spy, int previous_count) {
  return spy.count() > previous_count || spy.wait(20000);
}

// Shows `w` at a size where the heatmap is large, and waits for its first result.
bool show_and_wait(MainWindow& w, QSignalSpy& shown) {
  w.resize(1400, 900);
  w.show();
  return QTest::qWaitForWindowExposed(&w) && wait_for_result(shown, 0);
}

// Fraction of pixels that differ between two images of the same size.
double changed_fraction(const QImage& a, const QImage& b) {
  if (a.size() != b.size()) return 1.0;
  qint64 changed = 0;
  for (int y = 0; y < a.height(); ++y)
    for (int x = 0; x < a.width(); ++x) changed += a.pixel(x, y) != b.pixel(x, y);
  return static_cast<double>(changed) / (static_cast<double>(a.width()) * a.height());
}

// attnlab-cli of this build (tests/app/CMakeLists.txt defines the path and builds it first).
QString cli_path() { return QStringLiteral(ATTNLAB_CLI_PATH); }

QImage heatmap_pixels(MainWindow& w) {
  QTest::qWait(50);
  return w.heatmap()->grabFramebuffer();
}

}  // namespace

class TestGui : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);  // never touch the user's settings
    QCoreApplication::setOrganizationName("AttnLab-test");
    QCoreApplication::setApplicationName("AttnLab-test");
    const QString reason = HeatmapView::openGLUnavailableReason();
    if (!reason.isEmpty()) QSKIP(qPrintable("no OpenGL 3.3 context here: " + reason));
  }

  void opens_on_the_example_and_reacts_to_typing() {
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    QCOMPARE(w.lastResult()->length(), 12);
    QVERIFY(w.heatmap() != nullptr);
    const QImage before = heatmap_pixels(w);
    QVERIFY(changed_fraction(before, QImage(before.size(), before.format())) > 0.2);  // not blank

    w.editor()->setFocus();
    w.editor()->moveCursor(QTextCursor::End);
    const int count = shown.count();
    QTest::keyClicks(w.editor(), " Then it slept under a tree.");
    QVERIFY(wait_for_result(shown, count));
    QTRY_COMPARE_WITH_TIMEOUT(w.lastResult()->length(), 19, 20000);
    const QImage after = heatmap_pixels(w);
    QVERIFY2(changed_fraction(before, after) > 0.05, "typing did not change the heatmap");
    QVERIFY(w.errorText().isEmpty());
  }

  void bad_input_keeps_the_last_good_result() {
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QSignalSpy errors(&w, &MainWindow::errorShown);
    QVERIFY(show_and_wait(w, shown));
    const PlaygroundResultPtr good = w.lastResult();
    const HeatmapDataPtr shown_data = w.heatmap()->data();
    w.editor()->selectAll();
    QTest::keyClick(w.editor(), Qt::Key_Delete);
    QVERIFY(errors.wait(20000));
    QVERIFY2(errors.last().first().toString().contains("no tokens"), qPrintable(errors.last().first().toString()));
    QVERIFY(w.errorText().contains("showing the last good result"));
    QCOMPARE(w.lastResult(), good);
    QCOMPARE(w.heatmap()->data(), shown_data);  // the view still shows the last good matrix
    // Fixing the input clears the error.
    QTest::keyClicks(w.editor(), "hello world");
    QVERIFY(shown.wait(20000));
    QVERIFY(w.errorText().isEmpty());
    QCOMPARE(w.lastResult()->length(), 2);
  }

  void hovering_marks_the_token_everywhere() {
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    const QPointF centre = w.heatmap()->cellRect(7, 6).center();  // query 'it', key 'because'
    QTest::mouseMove(w.heatmap(), centre.toPoint());
    QTRY_COMPARE(w.heatmap()->highlightedToken(), 7);
    const auto selections = w.editor()->extraSelections();
    QCOMPARE(selections.size(), 2);
    QCOMPARE(selections[0].cursor.selectedText(), QStringLiteral("it"));
    QCOMPARE(selections[1].cursor.selectedText(), QStringLiteral("because"));
    // And the other way: putting the text cursor in "street" marks token 5 in the heatmap.
    QTextCursor cursor = w.editor()->textCursor();
    cursor.setPosition(static_cast<int>(QString("The animal didn't cross the str").size()));
    w.editor()->setTextCursor(cursor);
    QCOMPARE(w.heatmap()->highlightedToken(), 5);
  }

  void zoom_and_head_selection_change_the_view() {
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    const QImage before = heatmap_pixels(w);
    // 12 tokens fill the view with large cells; the zoom stops at ~80 px per cell.
    w.heatmap()->zoomAt(3.0, w.heatmap()->plotRect().center());
    QVERIFY(w.heatmap()->zoom() > 1.2);
    QVERIFY(changed_fraction(before, heatmap_pixels(w)) > 0.1);
    w.heatmap()->resetView();

    const QRect thumb = w.headGrid()->thumbnailRect(5);
    QTest::mouseClick(w.headGrid(), Qt::LeftButton, Qt::NoModifier, thumb.center());
    QCOMPARE(w.headGrid()->currentHead(), 5);
    QCOMPARE(w.currentSession().head, 5);
    QVERIFY(w.heatmap()->data()->title.contains("head 5"));
    QVERIFY(changed_fraction(before, heatmap_pixels(w)) > 0.05);
  }

  void reopened_session_exports_the_identical_figure() {
    const QString session = dir_.filePath("s.json");
    const QString first = dir_.filePath("first.png"), second = dir_.filePath("second.png");
    {
      MainWindow w;
      QSignalSpy shown(&w, &MainWindow::resultShown);
      QVERIFY(show_and_wait(w, shown));
      Session s = w.currentSession();
      s.text = "Sessions reopen to the identical picture.";
      s.causal = true;
      s.weight_seed = 42;
      s.layer = 2;
      s.head = 3;
      s.colormap = "cividis";
      const int count = shown.count();
      w.applySession(s);
      QVERIFY(wait_for_result(shown, count));
      QTRY_COMPARE_WITH_TIMEOUT(w.lastResult()->weight_seed, std::uint64_t{42}, 20000);
      QVERIFY(w.saveSessionFile(session));
      w.exportCurrentView(first, 120);
    }
    MainWindow w2;
    QSignalSpy shown2(&w2, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w2, shown2));
    const int count = shown2.count();
    QVERIFY(w2.openSessionFile(session));
    QVERIFY(wait_for_result(shown2, count));
    QTRY_COMPARE_WITH_TIMEOUT(w2.lastResult()->weight_seed, std::uint64_t{42}, 20000);
    QCOMPARE(w2.currentSession().to_json(), Session::load(session.toStdString()).to_json());
    w2.exportCurrentView(second, 120);
    const QImage a(first), b(second);
    QVERIFY(!a.isNull());
    QCOMPARE(a, b);
  }

  // A reformer_lsh session on the "buckets" view with view options: the window restores them into
  // the widget, and its export is pixel for pixel the figure attnlab-cli draws from the session.
  void variant_view_export_equals_the_cli_figure() {
    const QString session = dir_.filePath("lsh.json");
    const nlohmann::json options = {{"round", 1}, {"k", 3}, {"stage", "chunk"}};
    {
      QFile f(session);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write(nlohmann::json{{"format", "attnlab-session"}, {"version", 1},
                             {"text", "The animal didn't cross the street because it was too tired, so it lay down."},
                             {"variant", "reformer_lsh"}, {"params", {{"bucket_size", 4}}}, {"layer", 1}, {"head", 2},
                             {"view", "buckets"}, {"view_options", options}}
                  .dump(2)
                  .c_str());
    }
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    const int count = shown.count();
    QVERIFY(w.openSessionFile(session));
    QVERIFY(wait_for_result(shown, count));
    QTRY_COMPARE_WITH_TIMEOUT(w.lastResult()->variant, std::string("reformer_lsh"), 20000);
    QCOMPARE(w.currentViewName(), std::string("buckets"));
    QCOMPARE(w.variantView("buckets")->viewOptions(), options);
    QCOMPARE(w.currentSession().view_options, options);
    QVERIFY(!w.windowTitle().contains('*'));
    QTest::mouseMove(w.menuBar(), QPoint(1, 1));  // no hovered token: the CLI marks none

    const QString gui_png = dir_.filePath("gui.png"), cli_png = dir_.filePath("cli.png");
    w.exportCurrentView(gui_png, 150);
    QVERIFY2(QFileInfo::exists(cli_path()), qPrintable("attnlab-cli not found at " + cli_path() + "; build it first"));
    QProcess cli;
    cli.start(cli_path(), {"figure", "--session", session, "--dpi", "150", "--out", cli_png});
    QVERIFY(cli.waitForFinished(120000));
    QVERIFY2(cli.exitCode() == 0, cli.readAllStandardError().constData());
    const QImage from_gui(gui_png), from_cli(cli_png);
    QVERIFY(!from_gui.isNull());
    QCOMPARE(from_gui, from_cli);

    // The user changes an option: the session is modified, and the export follows the widget.
    w.variantView("buckets")->setViewOptions({{"round", 0}});
    QVERIFY(w.windowTitle().contains('*'));
    QCOMPARE(w.currentSession().view_options["round"].get<int>(), 0);
    w.exportCurrentView(gui_png, 150);
    QVERIFY(QImage(gui_png) != from_cli);
  }

  // A delta session opens on the streaming state tab; a performer session on the approximation
  // lab; a softmax result offers neither.
  void state_and_lab_tabs_follow_the_variant() {
    const auto open = [&](MainWindow& w, QSignalSpy& shown, const nlohmann::json& session) {
      const QString file = dir_.filePath("tabs.json");
      QFile f(file);
      if (!f.open(QIODevice::WriteOnly)) return false;
      f.write(session.dump(2).c_str());
      f.close();
      const int count = shown.count();
      return w.openSessionFile(file) && wait_for_result(shown, count);
    };
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    const nlohmann::json base = {{"format", "attnlab-session"}, {"version", 1},
                                 {"text", "a recurrent state grows one token at a time"}};
    nlohmann::json delta = base;
    delta.update({{"variant", "delta"}, {"causal", true}, {"view", "state"}, {"view_options", {{"step", 3}}}});
    QVERIFY(open(w, shown, delta));
    QTRY_COMPARE_WITH_TIMEOUT(w.lastResult()->variant, std::string("delta"), 20000);
    QCOMPARE(w.currentViewName(), std::string("state"));
    QTRY_VERIFY(w.variantView("state")->isVisible());
    QCOMPARE(w.variantView("state")->viewOptions(), (nlohmann::json{{"step", 3}}));

    nlohmann::json performer = base;
    performer.update({{"variant", "performer"}, {"params", {{"n_features", 16}}}, {"view", "compare"}});
    QVERIFY(open(w, shown, performer));
    QTRY_COMPARE_WITH_TIMEOUT(w.lastResult()->variant, std::string("performer"), 20000);
    QCOMPARE(w.currentViewName(), std::string("compare"));
    QTRY_VERIFY(w.variantView("compare")->isVisible());

    nlohmann::json softmax = base;
    softmax.update({{"variant", "softmax"}});
    QVERIFY(open(w, shown, softmax));
    QTRY_COMPARE_WITH_TIMEOUT(w.lastResult()->variant, std::string("softmax"), 20000);
    QCOMPARE(w.currentViewName(), std::string("heatmap"));
    QVERIFY(!w.variantView("compare")->isVisible());
    QVERIFY(!w.variantView("state")->isVisible());
  }

  // The composer's Run puts its model in the model box and the session; a view's request to change
  // a layer parameter reruns the model with it; the session reopens to the same composed model.
  void composed_models_run_and_reopen() {
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    auto* composer = w.findChild<ModelComposer*>(QStringLiteral("modelComposer"));
    QVERIFY(composer);
    ModelConfig c = builtin_model("universal-act");
    c.name = "my-act";
    composer->setConfig(c);
    int before = shown.count();
    composer->runButton()->click();
    QVERIFY(wait_for_result(shown, before));
    QCOMPARE(w.lastResult()->model.name, std::string("my-act"));
    QCOMPARE(w.lastResult()->layer_types, std::vector<std::string>{"universal"});
    QCOMPARE(w.currentSession().model_config, c.to_json());

    // Any view may ask for new layer parameters; the window reruns with them.
    TraceViewWidget* view = w.variantView("buckets");
    QVERIFY(view);
    before = shown.count();
    emit view->layerParamsEdited(0, nlohmann::json{{"max_steps", 3}});
    QVERIFY(wait_for_result(shown, before));
    QCOMPARE(w.lastResult()->layers[0].layer_extra("halting")->to_json()["max_steps"], nlohmann::json(3));
    QCOMPARE(w.currentSession().model_config["layers"][0]["params"]["max_steps"], nlohmann::json(3));
    // A value out of range is refused in the banner; the model stays.
    emit view->layerParamsEdited(0, nlohmann::json{{"max_steps", 1000}});
    QVERIFY(w.errorText().contains("max_steps"));
    QCOMPARE(w.currentSession().model_config["layers"][0]["params"]["max_steps"], nlohmann::json(3));

    const QString file = dir_.filePath("composed.json");
    QVERIFY(w.saveSessionFile(file));
    MainWindow other;
    QSignalSpy other_shown(&other, &MainWindow::resultShown);
    QVERIFY(show_and_wait(other, other_shown));
    before = other_shown.count();
    QVERIFY(other.openSessionFile(file));
    QVERIFY(wait_for_result(other_shown, before));
    QCOMPARE(other.lastResult()->model.name, std::string("my-act"));
    QCOMPARE(other.currentSession().model_config, w.currentSession().model_config);
  }

  // The Curves dock: hidden at first, shown by Tools ▸ Memory/time curves… and the View menu,
  // floating; a run there leaves the playground responsive; its settings travel in the session.
  void curves_dock_opens_runs_and_saves_its_settings() {
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    QDockWidget* dock = w.curvesDock();
    QVERIFY(dock && !dock->isVisible());
    QVERIFY(dock->isFloating());
    QAction* tools = w.findChild<QAction*>(QStringLiteral("curvesAction"));
    QVERIFY(tools);
    tools->trigger();
    QTRY_VERIFY(dock->isVisible());
    dock->toggleViewAction()->trigger();  // the View menu's entry hides it again
    QVERIFY(!dock->isVisible());
    bool in_view_menu = false;
    for (QAction* menu : w.menuBar()->actions())
      if (menu->menu() && menu->menu()->actions().contains(dock->toggleViewAction())) in_view_menu = true;
    QVERIFY(in_view_menu);
    tools->trigger();

    CurvesView* curves = w.curvesView();
    curves->setMode(CurvesMode::Length);
    curves->setCheckedVariants({"softmax", "linear"});
    curves->lengthsEdit()->setText(QStringLiteral("64, 128"));
    curves->repeatsBox()->setValue(1);
    QVERIFY(curves->run());
    // The playground keeps computing while the curves run.
    const int before = shown.count();
    QTest::keyClicks(w.editor(), " More.");
    QVERIFY(wait_for_result(shown, before));
    QVERIFY(curves->runner()->waitForFinished(60000));
    QCOMPARE(curves->runner()->lengthRows().size(), std::size_t{4});

    const QString file = dir_.filePath("curves.json");
    QVERIFY(w.saveSessionFile(file));
    MainWindow other;
    QVERIFY(other.openSessionFile(file));
    QCOMPARE(other.curvesView()->settings().to_json(), curves->settings().to_json());
    QCOMPARE(other.curvesView()->checkedVariants(), (std::vector<std::string>{"softmax", "linear"}));
    QCOMPARE(other.curvesView()->lengthsEdit()->text(), QStringLiteral("64, 128"));
    QVERIFY(other.curvesView()->runner()->lengthRows().empty());  // measurements are not saved
  }

  // The Translate dock: hidden at first, shown by Tools ▸ Translate German… (floating); where the
  // model folder is missing it says so in one line; its settings travel in the session.
  void translate_dock_opens_and_saves_its_settings() {
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    QDockWidget* dock = w.translateDock();
    QVERIFY(dock && !dock->isVisible());
    QVERIFY(dock->isFloating());
    TranslateView* view = w.translateView();
    view->modelEdit()->setText(dir_.filePath("no-model"));
    QSignalSpy failed(view->runner(), &TranslateRunner::translationFailed);
    QAction* tools = w.findChild<QAction*>(QStringLiteral("translateAction"));
    QVERIFY(tools);
    tools->trigger();
    QTRY_VERIFY(dock->isVisible());
    QVERIFY(failed.count() > 0 || failed.wait(20000));
    QVERIFY(view->statusLine()->text().contains(QStringLiteral("no model folder")));
    QVERIFY(!view->statusLine()->text().contains(QLatin1Char('\n')));
    QVERIFY(!view->result());

    view->input()->setPlainText(QStringLiteral("Ich habe keine Zeit."));
    view->beamBox()->setValue(4);
    view->attentionBox()->setCurrentText(QStringLiteral("linear"));
    const QString file = dir_.filePath("translate.json");
    QVERIFY(w.saveSessionFile(file));
    MainWindow other;
    QVERIFY(other.openSessionFile(file));
    QCOMPARE(other.translateView()->settings().to_json(), view->settings().to_json());
    QCOMPARE(other.translateView()->settings().attention, std::string("linear"));
    QVERIFY(!other.translateView()->result());  // translations are not saved
  }

  void broken_session_changes_nothing() {
    MainWindow w;
    QSignalSpy shown(&w, &MainWindow::resultShown);
    QVERIFY(show_and_wait(w, shown));
    const nlohmann::json before = w.currentSession().to_json();
    const QString bad = dir_.filePath("bad.json");
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"format": "attnlab-session", "version": 1, "variant": "nope"})");
    f.close();
    QVERIFY(!w.openSessionFile(bad));
    QVERIFY(w.errorText().contains("unknown attention variant 'nope'"));
    QCOMPARE(w.currentSession().to_json(), before);
  }
};

int main(int argc, char** argv) {
  HeatmapView::useAsDefaultFormat();
  QApplication app(argc, argv);
  TestGui test;
  return QTest::qExec(&test, argc, argv);
}

#include "test_gui.moc"
