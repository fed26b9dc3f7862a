// The Translate panel on the offscreen platform, with a small model folder built here the way
// tests/engine/test_translator.cpp builds one (SentencePiece trained on a generated corpus, a
// seeded Transformer saved as safetensors, config.json; plus test.de/test.en): typing gives the
// translation translate() gives for the same options; the alignment's cells are the
// cross-attention values (figure data and pixels), its averages the means computed here; hovering
// a target piece lights its argmax source piece in the German and on the map (and a source piece
// its argmax target piece); the beam tree has the SearchResult's nodes and edges and its best
// path; "Measure" gives corpus_bleu of translate()'s hypotheses; a bad model folder, a sentence
// too long and a parameter the variant refuses give one line and keep the last result; blank
// text gives no output and no error; exports write PNG/SVG/PDF/JSON/CSV; settings round-trip and
// a reopened panel draws the identical picture.
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTextBlock>
#include <QtTest>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "decode/evaluation.h"
#include "decode/translator.h"
#include "figure_canvas.h"
#include "figures/alignment_figure.h"
#include "figures/beam_figure.h"
#include "param_panel.h"
#include "model_folder.h"
#include "test_support.h"
#include "text/bleu.h"
#include "text/sentencepiece_trainer.h"
#include "train/trainer.h"
#include "translate_view.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;
using namespace attnlab::train;

namespace {

const std::vector<std::string> kTestSources = {"kalo mitu berst ri fonu.", "welza quix öldr.", "apem hoeitz plma?",
                                               "veska lomi tuber.", "schän gest rifo nuwel.", "zaqu ixöl drap emho?"};
const std::vector<std::string> kTestReferences = {"the cat sits.", "a dog runs.", "who is there?",
                                                  "the house is big.", "it rains today.", "where is the station?"};

// Seeded (untrained) weights, sharper than the initialisation so that the search has choices.
void write_model(const std::string& folder, bool with_test_set) {
  test::write_model_folder(folder, test::TinyModel{}, test::train_syllable_tokenizer(folder, 1));
  if (with_test_set) {
    std::ofstream de(folder + "/test.de"), en(folder + "/test.en");
    for (const std::string& s : kTestSources) de << s << "\n";
    for (const std::string& s : kTestReferences) en << s << "\n";
  }
}

bool same_request(const TranslateRequest& a, const TranslateRequest& b) {
  return a.model_dir == b.model_dir && a.text == b.text && a.beam == b.beam && a.length_penalty == b.length_penalty &&
         a.n_best == b.n_best && a.no_repeat_ngram == b.no_repeat_ngram && a.attention == b.attention && a.params == b.params && a.seed == b.seed;
}

// Waits until the panel shows the result of what its controls say now.
bool wait_for_current(TranslateView& view, int timeout_ms = 60000) {
  QElapsedTimer timer;
  timer.start();
  while (timer.elapsed() < timeout_ms) {
    if (view.result() && same_request(view.result()->request, view.request()) && !view.runner()->isTranslating()) return true;
    QTest::qWait(10);
  }
  return false;
}

// The mean over heads of one layer's [H, Lq, Lk] map, or over layers and heads, in double.
std::vector<double> mean_map(const AttentionMaps& maps, int layer) {
  const std::int64_t H = maps[0].dim(0), rows = maps[0].dim(1), cols = maps[0].dim(2);
  std::vector<double> out(static_cast<std::size_t>(rows * cols), 0.0);
  int count = 0;
  for (int l = 0; l < static_cast<int>(maps.size()); ++l) {
    if (layer >= 0 && l != layer) continue;
    for (std::int64_t h = 0; h < H; ++h) {
      ++count;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) out[static_cast<std::size_t>(r * cols + c)] += maps[static_cast<std::size_t>(l)].at(h, r, c);
    }
  }
  for (double& v : out) v /= count;
  return out;
}

template <typename T>
int argmax(const std::vector<T>& values, std::size_t count) {
  int best = 0;
  for (std::size_t i = 1; i < count && i < values.size(); ++i)
    if (values[i] > values[static_cast<std::size_t>(best)]) best = static_cast<int>(i);
  return best;
}

// The input's highlight with the most opaque background: its [start, end).
std::pair<int, int> strongest_selection(const QPlainTextEdit* edit) {
  std::pair<int, int> out{-1, -1};
  double alpha = -1;
  for (const QTextEdit::ExtraSelection& s : edit->extraSelections()) {
    const double a = s.format.background().color().alphaF();
    if (a > alpha) {
      alpha = a;
      out = {s.cursor.selectionStart(), s.cursor.selectionEnd()};
    }
  }
  return out;
}

int utf16(const std::string& text, std::size_t byte) { return static_cast<int>(QString::fromUtf8(text.data(), static_cast<qsizetype>(byte)).size()); }

}  // namespace

class TestTranslateView : public QObject {
  Q_OBJECT

  QTemporaryDir folder_, bare_;
  std::string dir_;
  std::shared_ptr<const TrainedModel> model_;

  // A panel on screen with the model folder set, translating `text`.
  void open(TranslateView& view, const std::string& text) {
    view.resize(1400, 900);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.modelEdit()->setText(QString::fromStdString(dir_));
    view.input()->setPlainText(QString::fromStdString(text));
    view.translateNow();
    QVERIFY(wait_for_current(view));
  }

 private slots:
  void initTestCase() {
    dir_ = folder_.path().toStdString();
    try {
      write_model(dir_, true);
      write_model(bare_.path().toStdString(), false);
    } catch (const std::exception& e) {
      QFAIL(e.what());
    }
    model_ = TrainedModel::load(dir_);
  }

  // Typing (debounced, on the worker) ends in the translation translate() gives directly, for
  // greedy softmax and for a beam search with a swapped-in variant.
  void typing_translates_like_translate() {
    TranslateView view;
    open(view, "");
    QVERIFY(view.result()->blank);
    QVERIFY(view.output()->toPlainText().isEmpty());
    const std::string text = "kalo mitu öldr schän fonu.";
    view.input()->setFocus();
    // QTest types ASCII only: the umlauts go in as an input method would commit them.
    QTest::keyClicks(view.input(), QStringLiteral("kalo mitu "));
    view.input()->insertPlainText(QStringLiteral("öldr schän"));
    QTest::keyClicks(view.input(), QStringLiteral(" fonu."));
    QCOMPARE(view.input()->toPlainText().toStdString(), text);
    QVERIFY(wait_for_current(view));
    const Translation direct = translate(*model_, text, TranslateOptions{});
    const Translation& shown = view.result()->translation;
    QCOMPARE(view.output()->toPlainText(), QString::fromStdString(direct.text));
    QCOMPARE(shown.target_tokens, direct.target_tokens);
    QCOMPARE(shown.cross_attention.size(), direct.cross_attention.size());
    for (std::size_t l = 0; l < direct.cross_attention.size(); ++l) {
      QCOMPARE(shown.cross_attention[l].shape(), direct.cross_attention[l].shape());
      QVERIFY(std::equal(direct.cross_attention[l].data(), direct.cross_attention[l].data() + direct.cross_attention[l].size(),
                         shown.cross_attention[l].data()));
    }
    QVERIFY(view.timingLabel()->text().endsWith(QStringLiteral(" ms")));

    view.beamBox()->setValue(3);
    view.nBestBox()->setValue(2);
    view.lengthPenaltyBox()->setValue(0.5);
    view.attentionBox()->setCurrentText(QStringLiteral("performer"));
    auto* features = qobject_cast<QSpinBox*>(view.paramPanel()->editorFor(QStringLiteral("n_features")));
    QVERIFY(features);
    features->setValue(8);
    view.seedBox()->setValue(5);
    view.noRepeatBox()->setValue(2);
    QVERIFY(wait_for_current(view));
    TranslateOptions o;
    o.beam = 3;
    o.n_best = 2;
    o.no_repeat_ngram = 2;
    o.length_penalty = 0.5f;
    o.attention = make_attention_choice("performer", {"n_features=8"}, 5);
    const Translation beam = translate(*model_, text, o);
    QCOMPARE(view.result()->translation.text, beam.text);
    QCOMPARE(view.result()->translation.nbest_text, beam.nbest_text);
    QCOMPARE(view.result()->translation.search.tree.size(), beam.search.tree.size());
    QCOMPARE(view.result()->translation.log_prob, beam.log_prob);
  }

  // The alignment figure draws the cross-attention: a chosen layer and head cell by cell (data
  // and pixels), the average of heads and of layers as the means computed here.
  void alignment_is_the_cross_attention() {
    TranslateView view;
    const std::string text = "welza quix öldr apem.";
    open(view, text);
    const Translation direct = translate(*model_, text, TranslateOptions{});
    const AttentionMaps& cross = direct.cross_attention;
    const std::int64_t T = cross[0].dim(1), S = cross[0].dim(2);

    TranslateSettings s = view.settings();
    s.layer = 1;
    s.head = 0;
    view.setSettings(s);
    QVERIFY(wait_for_current(view));
    AlignmentFigureData data = view.mapData(TranslateTab::Alignment);
    QCOMPARE(data.map.rows, static_cast<int>(T));
    QCOMPARE(data.map.cols, static_cast<int>(S));
    QCOMPARE(data.map.col_labels.size(), static_cast<qsizetype>(S));
    QCOMPARE(data.map.col_labels.last(), QStringLiteral("</s>"));
    QCOMPARE(data.map.col_labels.first(), QString::fromStdString(direct.source_tokens[0].text));
    for (std::int64_t r = 0; r < T; ++r)
      for (std::int64_t c = 0; c < S; ++c) QCOMPARE(data.map.at(static_cast<int>(r), static_cast<int>(c)), cross[1].at(0, r, c));

    // Pixels: each cell in the colour of its value on [0, largest].
    auto shown = std::make_shared<const AlignmentFigureData>(data);
    const QImage image = render_figure_image(alignment_painted_figure(shown, FigureStyle{}), 150);
    const AlignmentFigureLayout layout = compute_alignment_layout(data, FigureStyle{}, QRectF(image.rect()), &image);
    const Colormap& viridis = Colormap::get(ColormapId::Viridis);
    for (int r = 0; r < data.map.rows; ++r) {
      for (int c = 0; c < data.map.cols; ++c) {
        const QRgb expected = viridis.color(cross[1].at(0, r, c), 0.0f, data.map.vmax);
        const QRgb actual = pixel_at(image, layout.heatmap.cell_rect(r, c).center());
        QVERIFY2(near_colour(actual, QColor(expected)),
                 qPrintable(QStringLiteral("cell %1,%2: %3 vs %4").arg(r).arg(c).arg(describe(actual), describe(expected))));
      }
    }

    // Average of heads (layer 1), of layers and heads: the means written here.
    view.headBox()->setCurrentIndex(0);
    emit view.headBox()->activated(0);
    data = view.mapData(TranslateTab::Alignment);
    std::vector<double> mean = mean_map(cross, 1);
    for (std::size_t i = 0; i < mean.size(); ++i) QVERIFY(std::abs(data.map.values[i] - mean[i]) < 1e-6);
    QVERIFY(data.map.title.contains(QStringLiteral("layer 2 · average of 2 heads")));
    view.layerBox()->setCurrentIndex(0);
    emit view.layerBox()->activated(0);
    data = view.mapData(TranslateTab::Alignment);
    mean = mean_map(cross, -1);
    for (std::size_t i = 0; i < mean.size(); ++i) QVERIFY(std::abs(data.map.values[i] - mean[i]) < 1e-6);
    QCOMPARE(view.settings().layer, -1);
    QCOMPARE(view.settings().head, -1);

    // The self-attention tabs: the encoder's [S, S] and the decoder's [T, T] of the same selection.
    const AlignmentFigureData encoder = view.mapData(TranslateTab::Encoder);
    QCOMPARE(encoder.map.rows, static_cast<int>(S));
    const std::vector<double> encoder_mean = mean_map(direct.encoder_attention, -1);
    for (std::size_t i = 0; i < encoder_mean.size(); ++i) QVERIFY(std::abs(encoder.map.values[i] - encoder_mean[i]) < 1e-6);
    const AlignmentFigureData decoder = view.mapData(TranslateTab::Decoder);
    QCOMPARE(decoder.map.rows, static_cast<int>(T));
    QCOMPARE(decoder.map.row_labels.first(), QStringLiteral("<s>"));
  }

  // Hovering a target piece lights its argmax source piece most (in the German and on the map),
  // and a source piece its argmax target piece; through the API, the map's axis and the text.
  void hover_lights_the_aligned_pieces() {
    TranslateView view;
    const std::string text = "kalo mitu öldr schän fonu.";
    open(view, text);
    const Translation& t = view.result()->translation;
    const std::vector<double> mean = mean_map(t.cross_attention, -1);  // the default: average of both
    const std::size_t S = t.source_tokens.size() + 1, pieces = t.source_tokens.size();
    QVERIFY(!t.target_tokens.empty());
    for (int row = 0; row < static_cast<int>(t.target_tokens.size()); ++row) {
      view.hoverTarget(row);
      const std::vector<double> weights(mean.begin() + static_cast<std::ptrdiff_t>(row * S), mean.begin() + static_cast<std::ptrdiff_t>(row * S + pieces));
      const int expected = argmax(weights, pieces);
      QCOMPARE(view.sourceHighlight().size(), pieces);
      QCOMPARE(argmax(view.sourceHighlight(), pieces), expected);
      QCOMPARE(view.sourceHighlight()[static_cast<std::size_t>(expected)], 1.0f);
      const Token& tok = t.source_tokens[static_cast<std::size_t>(expected)];
      QCOMPARE(strongest_selection(view.input()), std::make_pair(utf16(text, tok.begin), utf16(text, tok.end)));
      const AlignmentFigureData data = view.mapData(TranslateTab::Alignment);
      QCOMPARE(data.overlay.row, row);
      QCOMPARE(argmax(data.overlay.col_tint, pieces), expected);
    }
    for (int col = 0; col < static_cast<int>(pieces); ++col) {
      view.hoverSource(col);
      std::vector<double> column;
      for (std::size_t r = 0; r < t.target_tokens.size(); ++r) column.push_back(mean[r * S + static_cast<std::size_t>(col)]);
      QCOMPARE(argmax(view.targetHighlight(), column.size()), argmax(column, column.size()));
    }
    view.clearHover();
    QVERIFY(view.input()->extraSelections().isEmpty());

    // The pointer over the first target piece's label on the map.
    FigureCanvas* canvas = view.canvas(TranslateTab::Alignment);
    const AlignmentFigureData data = view.mapData(TranslateTab::Alignment);
    const AlignmentFigureLayout layout = compute_alignment_layout(data, canvas->figureStyle(), canvas->figureRect(), canvas->surface());
    move_pointer(canvas->surface(), layout.row_label_centre(0));
    QCOMPARE(view.mapData(TranslateTab::Alignment).overlay.row, 0);
    QVERIFY(!view.sourceHighlight().empty());
    move_pointer(canvas->surface(), layout.col_label_centre(1));
    QCOMPARE(view.mapData(TranslateTab::Alignment).overlay.col, 1);
    QCOMPARE(view.sourceHighlight()[1], 1.0f);

    // The pointer over the German: the piece under it.
    const Token& piece = t.source_tokens[2];
    QTextCursor cursor(view.input()->document());
    cursor.setPosition((utf16(text, piece.begin) + utf16(text, piece.end)) / 2);
    const QRect caret = view.input()->cursorRect(cursor);
    move_pointer(view.input()->viewport(), QPointF(caret.left() + 1, caret.center().y()));
    QCOMPARE(argmax(view.sourceHighlight(), pieces), 2);
    QCOMPARE(view.mapData(TranslateTab::Alignment).overlay.col, 2);

    // The encoder's map: a hovered column (key piece 1) lights the German pieces by how much each
    // attends to it (its column of the mean encoder map, scaled to the largest), itself fully.
    view.setCurrentTab(TranslateTab::Encoder);
    FigureCanvas* enc_canvas = view.canvas(TranslateTab::Encoder);
    const AlignmentFigureData enc = view.mapData(TranslateTab::Encoder);
    const AlignmentFigureLayout enc_layout =
        compute_alignment_layout(enc, enc_canvas->figureStyle(), enc_canvas->figureRect(), enc_canvas->surface());
    move_pointer(enc_canvas->surface(), enc_layout.col_label_centre(1));
    const std::vector<double> enc_mean = mean_map(t.encoder_attention, -1);
    std::vector<double> enc_col;
    for (std::size_t r = 0; r < S; ++r) enc_col.push_back(enc_mean[r * S + 1]);
    const double enc_max = *std::max_element(enc_col.begin(), enc_col.end());
    QCOMPARE(view.sourceHighlight().size(), pieces);
    for (std::size_t p = 0; p < pieces; ++p) {
      const double want = p == 1 ? 1.0 : enc_col[p] / enc_max;
      QVERIFY2(std::abs(view.sourceHighlight()[p] - want) < 1e-5,
               qPrintable(QString("piece %1: %2 vs %3").arg(p).arg(view.sourceHighlight()[p]).arg(want)));
    }
    QVERIFY(view.targetHighlight().empty());

    // The decoder's map: hovering row 2 (the input that is target piece 1) lights the English by
    // that row, shifted by the <s> input, and target piece 1 fully.
    view.setCurrentTab(TranslateTab::Decoder);
    FigureCanvas* dec_canvas = view.canvas(TranslateTab::Decoder);
    const AlignmentFigureData dec = view.mapData(TranslateTab::Decoder);
    QVERIFY(dec.map.rows >= 3);
    const AlignmentFigureLayout dec_layout =
        compute_alignment_layout(dec, dec_canvas->figureStyle(), dec_canvas->figureRect(), dec_canvas->surface());
    move_pointer(dec_canvas->surface(), dec_layout.row_label_centre(2));
    const std::vector<double> dec_mean = mean_map(t.decoder_attention, -1);
    const auto T = static_cast<std::size_t>(dec.map.cols);
    const double dec_max = *std::max_element(dec_mean.begin() + 2 * static_cast<std::ptrdiff_t>(T),
                                             dec_mean.begin() + 3 * static_cast<std::ptrdiff_t>(T));
    QCOMPARE(view.targetHighlight().size(), t.target_tokens.size());
    for (std::size_t p = 0; p < t.target_tokens.size() && p + 1 < T; ++p) {
      const double want = p == 1 ? 1.0 : dec_mean[2 * T + p + 1] / dec_max;
      QVERIFY2(std::abs(view.targetHighlight()[p] - want) < 1e-5,
               qPrintable(QString("target piece %1: %2 vs %3").arg(p).arg(view.targetHighlight()[p]).arg(want)));
    }
    QVERIFY(view.sourceHighlight().empty());
  }

  // The beam tree holds the SearchResult's nodes and edges; the best path spells the best
  // hypothesis; kept markers are drawn in their colour; the n-best list has the hypotheses.
  void beam_tree_is_the_search_tree() {
    TranslateView view;
    TranslateSettings s;
    s.model = dir_;
    s.text = "veska lomi tuber.";
    s.beam = 4;
    s.n_best = 3;
    s.length_penalty = 0.0;
    s.tab = TranslateTab::Beam;
    view.resize(1400, 900);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.setSettings(s);
    QVERIFY(wait_for_current(view));
    const SearchResult& search = view.result()->translation.search;
    const BeamFigureData data = view.beamData();
    QCOMPARE(data.nodes.size(), search.tree.size());
    QCOMPARE(data.nbest.size(), search.hypotheses.size());
    QVERIFY(search.tree.size() > 1 + search.hypotheses.front().tokens.size());  // more than one path
    const QImage image = render_figure_image(beam_painted_figure(std::make_shared<const BeamFigureData>(data), FigureStyle{}), 100);
    const BeamFigureLayout layout = compute_beam_layout(data, FigureStyle{}, QRectF(image.rect()), &image);
    std::vector<std::pair<int, int>> expected;
    for (std::size_t i = 1; i < search.tree.size(); ++i) expected.emplace_back(static_cast<int>(search.tree[i].parent), static_cast<int>(i));
    QCOMPARE(layout.edges, expected);
    std::vector<std::int32_t> best_tokens;
    int kept = 0;
    for (std::size_t i = 0; i < search.tree.size(); ++i) {
      const BeamNode& b = search.tree[i];
      const BeamFigureNode& n = data.nodes[i];
      QCOMPARE(n.step, b.step);
      QCOMPARE(n.parent, static_cast<int>(b.parent));
      QCOMPARE(n.score, b.score);
      QCOMPARE(n.state == BeamFigureNode::State::Finished, b.parent >= 0 && b.finished);
      QCOMPARE(n.state == BeamFigureNode::State::Kept, b.parent >= 0 && !b.finished && b.kept);
      if (n.best && i > 0) {
        QCOMPARE(data.nodes[static_cast<std::size_t>(n.parent)].best, true);
        best_tokens.push_back(b.token);
      }
      if (n.state == BeamFigureNode::State::Kept && !n.best && kept++ < 3) {
        QVERIFY2(colour_near(image, layout.centres[i], beam_kept_color(), 1, 16), qPrintable(QStringLiteral("node %1").arg(i)));
      }
    }
    const Hypothesis& best = search.hypotheses.front();
    std::vector<std::int32_t> path = best.tokens;
    if (best.finished) path.push_back(view.result()->eos_id);
    QCOMPARE(best_tokens, path);
    QVERIFY(view.canvas(TranslateTab::Beam)->hasFigure());
    QCOMPARE(view.tabs()->currentIndex(), 3);
    QVERIFY(!view.layerBox()->isEnabled());
  }

  // Measure: corpus BLEU of translate()'s hypotheses for the first N test sentences; a folder
  // without test files says so in one line.
  void measured_quality_is_corpus_bleu() {
    TranslateView view;
    open(view, "kalo.");
    view.sentencesBox()->setValue(4);
    QSignalSpy measured(view.runner(), &TranslateRunner::measured);
    QVERIFY(view.measureQuality());
    QVERIFY(view.runner()->waitForMeasure(120000));
    QCOMPARE(measured.count(), 1);
    std::vector<std::string> hyps;
    for (int i = 0; i < 4; ++i) {
      try {
        hyps.push_back(translate(*model_, kTestSources[static_cast<std::size_t>(i)], TranslateOptions{}).text);
      } catch (const ParamError&) {
        hyps.emplace_back();
      }
    }
    const BleuResult expected = corpus_bleu(hyps, std::vector<std::string>(kTestReferences.begin(), kTestReferences.begin() + 4));
    const QualityRun& run = view.runner()->qualityRuns().back();
    QCOMPARE(run.sentences, 4);
    QCOMPARE(run.evaluation.hypotheses, hyps);
    QCOMPARE(run.evaluation.bleu.score, expected.score);
    QCOMPARE(run.evaluation.bleu.hyp_len, expected.hyp_len);
    QCOMPARE(view.runsTable()->rowCount(), 1);
    QVERIFY(view.runsTable()->item(0, 0)->text().startsWith(QStringLiteral("softmax\n")));
    QCOMPARE(view.runsTable()->item(0, 1)->text(), QStringLiteral("greedy"));
    QCOMPARE(view.runsTable()->item(0, 2)->text(), QString::number(expected.score, 'f', 2));
    QVERIFY(view.qualityLabel()->text().startsWith(QStringLiteral("softmax: BLEU ")));
    QCOMPARE(view.measureProgress()->value(), 4);

    // A swapped attention adds a row: the table compares the runs of this session.
    view.attentionBox()->setCurrentText(QStringLiteral("linear"));
    QVERIFY(view.measureQuality());
    QVERIFY(view.runner()->waitForMeasure(120000));
    QCOMPARE(view.runsTable()->rowCount(), 2);
    QVERIFY(view.runsTable()->item(1, 0)->text().startsWith(QStringLiteral("linear\n")));

    // Cancel returns at once: whatever the worker still posts is dropped, no run is added.
    QSignalSpy cancelled(view.runner(), &TranslateRunner::measureCancelled);
    QVERIFY(view.measureQuality());
    view.cancelMeasure();
    QCOMPARE(cancelled.count(), 1);
    QVERIFY(!view.runner()->isMeasuring());
    QTest::qWait(200);
    QCOMPARE(view.runsTable()->rowCount(), 2);
    QVERIFY(view.qualityLabel()->text().startsWith(QStringLiteral("Cancelled")));
    QVERIFY(view.measureButton()->isEnabled());

    view.modelEdit()->setText(bare_.path());
    QSignalSpy failed(view.runner(), &TranslateRunner::measureFailed);
    QVERIFY(view.measureQuality());
    QVERIFY(view.runner()->waitForMeasure(60000));
    QCOMPARE(failed.count(), 1);
    QVERIFY(view.qualityLabel()->text().contains(QStringLiteral("has no test.de and test.en")));
    QVERIFY(!view.qualityLabel()->text().contains(QLatin1Char('\n')));
    QCOMPARE(view.runsTable()->rowCount(), 2);
  }

  // Bad input: one line, the last good result stays; blank text: no output, no error.
  void bad_input_keeps_the_last_result() {
    TranslateView fresh;
    fresh.resize(900, 700);
    fresh.show();
    QVERIFY(QTest::qWaitForWindowExposed(&fresh));
    fresh.modelEdit()->setText(QStringLiteral("/nonexistent/attnlab-model"));
    QSignalSpy fresh_failed(fresh.runner(), &TranslateRunner::translationFailed);
    fresh.translateNow();
    QVERIFY(fresh_failed.wait(20000));
    QVERIFY(fresh.statusLine()->text().contains(QStringLiteral("no model folder '/nonexistent/attnlab-model'")));
    QVERIFY(fresh.statusLine()->text().contains(QStringLiteral("attnlab-cli train")));
    QVERIFY(!fresh.statusLine()->text().contains(QLatin1Char('\n')));
    QCOMPARE(fresh.canvas(TranslateTab::Alignment)->message(), fresh.statusLine()->text());  // not a blank view
    QVERIFY(!fresh.result());

    TranslateView view;
    open(view, "kalo mitu.");
    const TranslateResultPtr good = view.result();
    const QString english = view.output()->toPlainText();
    QSignalSpy failed(view.runner(), &TranslateRunner::translationFailed);
    view.modelEdit()->setText(QStringLiteral("/nonexistent/attnlab-model"));
    view.translateNow();
    QVERIFY(failed.wait(20000));
    QVERIFY(view.statusLine()->text().contains(QStringLiteral("no model folder")));
    QCOMPARE(view.result(), good);
    QCOMPARE(view.output()->toPlainText(), english);
    QVERIFY(view.canvas(TranslateTab::Alignment)->hasFigure());

    view.modelEdit()->setText(QString::fromStdString(dir_));
    std::string long_text;
    for (int i = 0; i < 60; ++i) long_text += "kaber ";
    view.input()->setPlainText(QString::fromStdString(long_text));
    view.translateNow();
    QVERIFY(failed.wait(20000));
    QVERIFY(view.statusLine()->text().contains(QStringLiteral("at most 40")));
    QCOMPARE(view.result(), good);

    // A parameter the variant refuses for this model: routing's local heads beyond its 2 heads.
    view.input()->setPlainText(QStringLiteral("kalo mitu."));
    view.attentionBox()->setCurrentText(QStringLiteral("routing"));
    auto* local = qobject_cast<QSpinBox*>(view.paramPanel()->editorFor(QStringLiteral("local_heads")));
    QVERIFY(local);
    local->setValue(5);
    view.translateNow();
    QVERIFY(failed.wait(20000));
    QVERIFY(view.statusLine()->text().contains(QStringLiteral("local_heads=5")));
    QVERIFY(!view.statusLine()->text().contains(QLatin1Char('\n')));
    QCOMPARE(view.result(), good);

    // Blank text: an empty English and no error.
    view.attentionBox()->setCurrentText(QStringLiteral("softmax"));
    view.input()->setPlainText(QStringLiteral("   "));
    QVERIFY(wait_for_current(view));
    QVERIFY(view.result()->blank);
    QVERIFY(view.output()->toPlainText().isEmpty());
    QVERIFY(view.statusLine()->text().contains(QString::fromStdString(dir_)));
    QVERIFY(!view.canvas(TranslateTab::Alignment)->hasFigure());
    QVERIFY(!view.exportButton()->isEnabled());
  }

  // Every export format writes a file that reads back; the JSON is the CLI's translate --json.
  void exports_write_every_format() {
    TranslateView view;
    TranslateSettings s;
    s.model = dir_;
    s.text = "schän gest rifo nuwel.";
    s.beam = 3;
    s.n_best = 2;
    view.resize(1400, 900);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.setSettings(s);
    QVERIFY(wait_for_current(view));
    QTemporaryDir out;
    for (const char* name : {"a.png", "a.svg", "a.pdf", "a.json", "a.csv"}) view.exportCurrent(out.filePath(name));
    view.setCurrentTab(TranslateTab::Beam);
    for (const char* name : {"b.png", "b.svg", "b.pdf"}) view.exportCurrent(out.filePath(name));
    for (const char* name : {"a.png", "a.svg", "a.pdf", "a.json", "a.csv", "b.png", "b.svg", "b.pdf"}) {
      QVERIFY2(QFileInfo(out.filePath(name)).size() > 100, name);
    }
    QVERIFY(!QImage(out.filePath("a.png")).isNull());
    QVERIFY(!QImage(out.filePath("b.png")).isNull());
    QVERIFY(svg_has_text(out.filePath("a.svg"), QStringLiteral("</s>")));
    QVERIFY(svg_has_text(out.filePath("b.svg"), QStringLiteral("n-best")));
    QVERIFY(is_pdf(out.filePath("a.pdf")) && is_pdf(out.filePath("b.pdf")));

    const Translation& t = view.result()->translation;
    const nlohmann::json j = read_json(out.filePath("a.json"));
    QCOMPARE(j.at("translation").get<std::string>(), t.text);
    QCOMPARE(j.at("beam").get<int>(), 3);
    QCOMPARE(j.at("nbest").size(), t.nbest_text.size());
    QCOMPARE(j.at("source_tokens").size(), t.source_tokens.size() + 1);
    const nlohmann::json& cross = j.at("cross_attention");
    QCOMPARE(cross.size(), t.cross_attention.size());
    QCOMPARE(cross[1][0][0][1].get<float>(), t.cross_attention[1].at(0, 0, 1));
    for (const char* key : {"source_tokens", "target_tokens", "translation", "cross_attention", "ms"}) QVERIFY(j.contains(key));

    const std::vector<QStringList> csv = read_csv(out.filePath("a.csv"));
    const AlignmentFigureData map = view.mapData(TranslateTab::Alignment);
    QCOMPARE(csv.size(), static_cast<std::size_t>(map.map.rows + 1));
    QCOMPARE(csv[0].size(), map.map.cols + 1);
    QCOMPARE(csv[1][1].toFloat(), map.map.at(0, 0));

    EXPECT_ERROR(ParamError, view.exportCurrent(out.filePath("a.npy")), ".png, .svg, .pdf, .json or .csv");
  }

  // Settings round-trip through JSON and the panel; bad values are refused with the key named;
  // a second panel given the first one's settings draws the identical figures.
  void settings_round_trip_to_the_identical_picture() {
    TranslateSettings s;
    s.text = "zaqu ixöl drap emho?";
    s.model = dir_;
    s.beam = 3;
    s.length_penalty = 0.5;
    s.n_best = 2;
    s.no_repeat_ngram = 3;
    s.attention = "performer";
    s.params = {{"n_features", 8}};
    s.seed = 9;
    s.quality_sentences = 3;
    s.tab = TranslateTab::Encoder;
    s.layer = 1;
    s.head = 0;
    QCOMPARE(TranslateSettings::from_json(s.to_json()).to_json(), s.to_json());
    QCOMPARE(TranslateSettings::from_json(nlohmann::json::object()).to_json(), TranslateSettings{}.to_json());
    nlohmann::json bad = s.to_json();
    bad["beam"] = 17;
    EXPECT_ERROR(ParamError, TranslateSettings::from_json(bad), "translate beam");
    bad = s.to_json();
    bad["beam"] = "four";
    EXPECT_ERROR(ParamError, TranslateSettings::from_json(bad), "translate field 'beam' has the wrong type: \"four\"");
    bad = s.to_json();
    bad["no_repeat_ngram"] = kMaxNoRepeatNgram + 1;
    EXPECT_ERROR(ParamError, TranslateSettings::from_json(bad), "translate no_repeat_ngram");
    bad = s.to_json();
    bad["attention"] = "nope";
    EXPECT_ERROR(ParamError, TranslateSettings::from_json(bad), "'nope' is not a registered variant");
    bad = s.to_json();
    bad["params"] = {{"n_features", 0}};
    EXPECT_ERROR(ParamError, TranslateSettings::from_json(bad), "translate params");
    bad = s.to_json();
    bad["tab"] = "sideways";
    EXPECT_ERROR(ParamError, TranslateSettings::from_json(bad), "translate tab");

    TranslateView first;
    first.resize(1400, 900);
    first.show();
    QVERIFY(QTest::qWaitForWindowExposed(&first));
    first.setSettings(s);
    QCOMPARE(first.settings().to_json(), s.to_json());
    QVERIFY(wait_for_current(first));
    TranslateSettings refused = s;
    refused.beam = 0;
    refused.text = "anders";
    EXPECT_ERROR(ParamError, first.setSettings(refused), "translate beam");
    QCOMPARE(first.settings().to_json(), s.to_json());  // unchanged

    TranslateView second;
    second.resize(1400, 900);
    second.show();
    QVERIFY(QTest::qWaitForWindowExposed(&second));
    second.setSettings(TranslateSettings::from_json(first.settings().to_json()));
    QVERIFY(wait_for_current(second));
    QCOMPARE(second.currentTab(), TranslateTab::Encoder);
    QCOMPARE(second.layerBox()->currentIndex(), 2);
    for (const TranslateTab tab : {TranslateTab::Alignment, TranslateTab::Encoder, TranslateTab::Decoder}) {
      const auto a = std::make_shared<const AlignmentFigureData>(first.mapData(tab));
      const auto b = std::make_shared<const AlignmentFigureData>(second.mapData(tab));
      QVERIFY(a->map.rows > 0);
      QCOMPARE(render_figure_image(alignment_painted_figure(b, FigureStyle{}), 100),
               render_figure_image(alignment_painted_figure(a, FigureStyle{}), 100));
    }
    QCOMPARE(render_figure_image(beam_painted_figure(std::make_shared<const BeamFigureData>(second.beamData()), FigureStyle{}), 100),
             render_figure_image(beam_painted_figure(std::make_shared<const BeamFigureData>(first.beamData()), FigureStyle{}), 100));
  }
};

QTEST_MAIN(TestTranslateView)
#include "test_translate_view.moc"
