// Sessions: JSON round trip, validation with clear errors, atomic saving, and the promise that a
// saved session reopens to the identical figure (computed again from scratch), view options
// included; the Curves and Translate panels' settings travel with it.
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <fstream>

#include "core/npy.h"
#include "figures/figure_export.h"
#include "figures/head_grid_figure.h"
#include "result_views.h"
#include "session.h"
#include "trace_view.h"
#include "test_support.h"

using namespace attnlab;

class TestSession : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  std::string path(const char* name) const { return dir_.filePath(name).toStdString(); }

 private slots:
  void json_round_trip() {
    Session s;
    s.text = "Grüße aus Köln.";
    s.causal = true;
    s.weight_seed = 99;
    s.attention_seed = 7;
    s.layer = 3;
    s.head = 6;
    s.view = "heads";
    s.colormap = "cividis";
    const Session back = Session::from_json(s.to_json());
    QCOMPARE(back.to_json(), s.to_json());
    s.save(path("s.json"));
    QCOMPARE(Session::load(path("s.json")).to_json(), s.to_json());
    const PlaygroundRequest r = s.to_request();
    QCOMPARE(r.text, s.text);
    QCOMPARE(r.weight_seed, std::uint64_t{99});
    QCOMPARE(r.attention_seed, std::uint64_t{7});
    QVERIFY(r.causal);
  }

  // A composed model lives in the session itself and runs as composed.
  void composed_model_round_trips_and_runs() {
    ModelConfig c = builtin_model("switch-moe");
    c.name = "my-moe";
    c.layers[1].ffn_params = {{"experts", 3}, {"top_k", 2}};
    Session s;
    s.text = "Experts share the work of a layer between them.";
    s.model_config = c.to_json();
    const Session back = Session::from_json(s.to_json());
    QCOMPARE(back.model, std::string("my-moe"));
    QCOMPARE(back.model_config, c.to_json());
    Playground playground;
    const PlaygroundResultPtr r = playground.run(back.to_request());
    QCOMPARE(r->model.name, std::string("my-moe"));
    const nlohmann::json experts = r->layers[1].layer_extra("experts")->to_json();
    QCOMPARE(experts["load"].size(), std::size_t{3});
    QCOMPARE(experts["top_k"], nlohmann::json(2));

    nlohmann::json bad = s.to_json();
    bad["model_config"]["layers"][1]["ffn_params"]["experts"] = 0;
    EXPECT_ERROR(ParamError, Session::from_json(bad), "session model_config: layer 1 (transformer) ffn 'moe': ");
  }

  void bad_sessions_give_clear_errors() {
    nlohmann::json good = Session::with_default_example().to_json();
    auto with = [&](const char* key, const nlohmann::json& value) {
      nlohmann::json j = good;
      j[key] = value;
      return j;
    };
    EXPECT_ERROR(ParamError, Session::from_json(with("format", "something")), "not an AttnLab session");
    EXPECT_ERROR(ParamError, Session::from_json(with("version", 9)), "session version 9 is not supported");
    EXPECT_ERROR(ParamError, Session::from_json(with("variant", "nope")), "unknown attention variant 'nope'");
    EXPECT_ERROR(ParamError, Session::from_json(with("params", {{"x", 1}})), "unknown parameter 'x'");
    EXPECT_ERROR(ParamError, Session::from_json(with("view", "nope")), "session view 'nope' is not known");
    EXPECT_ERROR(ParamError, Session::from_json(with("colormap", "jet")), "colormap 'jet' is not known; allowed: viridis");
    EXPECT_ERROR(ParamError, Session::from_json(with("layer", -1)), "layer must be 0 or more");
    EXPECT_ERROR(ParamError, Session::from_json(with("causal", "yes")), "'causal' has the wrong type");
    EXPECT_ERROR(IoError, Session::load(path("missing.json")), "missing.json");
    std::ofstream(path("broken.json")) << "{\"format\": ";
    EXPECT_ERROR(FormatError, Session::load(path("broken.json")), "broken.json' is not valid JSON");
    std::ofstream(path("wrong.json")) << with("colormap", "jet").dump();
    EXPECT_ERROR(ParamError, Session::load(path("wrong.json")), "wrong.json");
  }

  void selection_is_checked_against_the_result() {
    Session s = Session::with_default_example();
    Playground playground;
    ViewContext context;
    context.result = playground.run(s.to_request());
    const ViewSpec& heatmap = view_spec("heatmap");
    check_view_context(heatmap, context);
    context.layer = 4;
    EXPECT_ERROR(ParamError, check_view_context(heatmap, context), "layer 4 does not exist; model 'tiny-encoder' has layers 0..3");
    context.layer = 0;
    context.head = 8;
    EXPECT_ERROR(ParamError, check_view_context(heatmap, context), "head 8 does not exist");
    context.head = 0;
    EXPECT_ERROR(ParamError, check_view_context(view_spec("buckets"), context),
                 "view 'buckets' cannot draw this result (model tiny-encoder, variant softmax); it needs the reformer_lsh variant");
    EXPECT_ERROR(ParamError, view_spec("nope"), "view 'nope' is not known; allowed: heatmap, heads, buckets");
    EXPECT_ERROR(ParamError, check_view_extension(heatmap, "x.bmp"), "allowed extensions .png, .svg, .pdf, .npy, .csv");
  }

  // "view_options": saved, reopened, validated against the view's option specs; sessions
  // without the field read as the view's defaults.
  void view_options_round_trip() {
    Session s;
    s.text = "The animal didn't cross the street because it was too tired.";
    s.variant = "reformer_lsh";
    s.params = {{"bucket_size", 4}};
    s.view = "buckets";
    s.view_options = {{"round", 1}, {"k", 3}, {"stage", "sort"}};
    QCOMPARE(Session::from_json(s.to_json()).to_json(), s.to_json());
    s.save(path("options.json"));
    const Session back = Session::load(path("options.json"));
    QCOMPARE(back.view_options, s.view_options);
    // Reopened with a fresh playground: the identical figure, which the options change.
    const auto render = [](const Session& session) {
      Playground playground;
      ViewContext context;
      context.result = playground.run(session.to_request());
      context.options = session.view_options;
      return render_figure_image(view_spec(session.view).figure(context, FigureStyle{}), 72.0);
    };
    const QImage before = render(s);
    QVERIFY(!before.isNull());
    QCOMPARE(render(back), before);
    Session round0 = s;
    round0.view_options["round"] = 0;
    QVERIFY(render(round0) != before);

    nlohmann::json older = s.to_json();
    older.erase("view_options");
    QCOMPARE(Session::from_json(older).view_options, nlohmann::json::object());
    const auto with_options = [&](const nlohmann::json& options) {
      nlohmann::json j = s.to_json();
      j["view_options"] = options;
      return j;
    };
    EXPECT_ERROR(ParamError, Session::from_json(with_options({{"rounds", 1}})),
                 "session view 'buckets' has no option 'rounds'; its options: round, k, stage");
    EXPECT_ERROR(ParamError, Session::from_json(with_options({{"round", 99}})), "round: an integer in [0, 15]");
    EXPECT_ERROR(ParamError, Session::from_json(with_options(nlohmann::json::array())), "must be a JSON object");
    nlohmann::json heatmap = with_options({{"round", 1}});
    heatmap["view"] = "heatmap";
    EXPECT_ERROR(ParamError, Session::from_json(heatmap), "view 'heatmap' has no options; got 'round'");
  }

  // The Curves panel's settings live in the session: saved, reopened, checked; absent = defaults.
  void curves_settings_round_trip() {
    Session s;
    s.text = "curves";
    s.curves.mode = CurvesMode::Depth;
    s.curves.length.variants = {"linear", "model:tiny-encoder"};
    s.curves.length.lengths = {256, 1024, 4096};
    s.curves.length.seed = 77;
    s.curves.decoding.tokens = {512};
    s.curves.depth.max_layers = 6;
    s.save(path("curves.json"));
    const Session back = Session::load(path("curves.json"));
    QCOMPARE(back.to_json(), s.to_json());
    QCOMPARE(back.curves.length.seed, std::uint64_t{77});
    QCOMPARE(back.curves.mode, CurvesMode::Depth);
    QCOMPARE(back.to_json().at("version").get<int>(), 1);

    nlohmann::json older = s.to_json();
    older.erase("curves");
    QCOMPARE(Session::from_json(older).curves.to_json(), CurvesSettings{}.to_json());
    nlohmann::json partial = s.to_json();
    partial["curves"] = {{"depth", {{"max_layers", 3}}}};
    const Session p = Session::from_json(partial);
    QCOMPARE(p.curves.depth.max_layers, 3);
    QCOMPARE(p.curves.length.lengths, CurvesSettings{}.length.lengths);

    nlohmann::json bad = s.to_json();
    bad["curves"]["length"]["repeats"] = 0;
    EXPECT_ERROR(ParamError, Session::from_json(bad), "session curves length.repeats");
    bad = s.to_json();
    bad["curves"] = "fast";
    EXPECT_ERROR(ParamError, Session::from_json(bad), "curves");
  }

  // The Translate panel's settings live in the session: saved, reopened, checked; absent = defaults.
  void translate_settings_round_trip() {
    Session s;
    s.translate.text = "Wo ist der Bahnhof?";
    s.translate.model = "/models/de-en";
    s.translate.beam = 4;
    s.translate.n_best = 3;
    s.translate.length_penalty = 0.6;
    s.translate.attention = "performer";
    s.translate.params = {{"n_features", 32}};
    s.translate.seed = 11;
    s.translate.tab = TranslateTab::Beam;
    s.translate.layer = 2;
    s.translate.head = -1;
    s.save(path("translate.json"));
    const Session back = Session::load(path("translate.json"));
    QCOMPARE(back.to_json(), s.to_json());
    QCOMPARE(back.translate.text, std::string("Wo ist der Bahnhof?"));
    QCOMPARE(back.translate.tab, TranslateTab::Beam);
    QCOMPARE(back.translate.params.at("n_features").get<int>(), 32);
    QCOMPARE(back.to_json().at("version").get<int>(), 1);

    nlohmann::json older = s.to_json();
    older.erase("translate");
    QCOMPARE(Session::from_json(older).translate.to_json(), TranslateSettings{}.to_json());
    nlohmann::json partial = s.to_json();
    partial["translate"] = {{"beam", 2}};
    const Session p = Session::from_json(partial);
    QCOMPARE(p.translate.beam, 2);
    QCOMPARE(p.translate.text, TranslateSettings{}.text);

    nlohmann::json bad = s.to_json();
    bad["translate"]["length_penalty"] = 9;
    EXPECT_ERROR(ParamError, Session::from_json(bad), "session translate length_penalty");
    bad = s.to_json();
    bad["translate"]["params"] = {{"no_such_key", 1}};
    EXPECT_ERROR(ParamError, Session::from_json(bad), "no_such_key");
    bad = s.to_json();
    bad["translate"] = "fast";
    EXPECT_ERROR(ParamError, Session::from_json(bad), "translate");
  }

  void examples_exist() {
    QVERIFY(Session::with_default_example().text.find("animal") != std::string::npos);
    for (const char* name : {"coreference", "german", "long_paragraph"}) QVERIFY(!example_text(name).empty());
    EXPECT_ERROR(ParamError, example_text("nope"), "no built-in example named 'nope'");
  }

  // Save, then reopen with a fresh Playground (new model, new RNGs): the same pixels.
  void reopened_session_gives_the_identical_figure() {
    Session s;
    s.text = "A saved session must reopen to the identical picture, bit for bit.";
    s.causal = true;
    s.weight_seed = 1234;
    s.layer = 2;
    s.head = 3;
    s.colormap = "magma";
    s.save(path("figure.json"));
    const auto render = [](const Session& session) {
      Playground playground;
      const auto result = playground.run(session.to_request());
      const ColormapId cmap = Colormap::find(QString::fromStdString(session.colormap))->id();
      return render_heatmap_image(*attention_heatmap(*result, session.layer, session.head, cmap), FigureStyle{}, 100);
    };
    const QImage before = render(s);
    const QImage after = render(Session::load(path("figure.json")));
    QVERIFY(!before.isNull());
    QCOMPARE(after, before);
    Session other = s;
    other.attention_seed = s.attention_seed;  // unchanged...
    other.weight_seed = 1235;                 // ...but other weights: another picture
    QVERIFY(render(other) != before);
  }

  void token_spans_follow_utf16() {
    Session s;
    s.text = "Äpfel 🍎 und Birnen.";
    Playground playground;
    const auto result = playground.run(s.to_request());
    const QString text = QString::fromStdString(s.text);
    const auto spans = token_spans_utf16(*result, text);
    QCOMPARE(spans.size(), result->tokens.size());
    for (std::size_t i = 0; i < spans.size(); ++i) {
      const QString piece = text.mid(spans[i].first, spans[i].second - spans[i].first);
      QCOMPARE(piece.toStdString(), result->tokens[i].text);
    }
  }

  void heatmap_data_reflects_the_result() {
    Session s;
    s.text = "one two three";
    Playground playground;
    const auto result = playground.run(s.to_request());
    const auto data = attention_heatmap(*result, 1, 2, ColormapId::Viridis);
    QCOMPARE(data->rows, 3);
    QCOMPARE(data->row_labels, QStringList({"one", "two", "three"}));
    QCOMPARE(data->title, QStringLiteral("softmax · layer 1 · head 2"));
    const Tensor& w = result->layers[1].weights;
    float max_weight = 0.0f;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        QCOMPARE(data->at(i, j), w.at(2, i, j));
        max_weight = std::max(max_weight, w.at(2, i, j));
      }
    QCOMPARE(data->vmax, max_weight);
    QCOMPARE(layer_heatmaps(*result, 0, ColormapId::Viridis).size(), std::size_t{8});
    EXPECT_ERROR(ParamError, attention_heatmap(*result, 9, 0, ColormapId::Viridis), "layer 9 does not exist");
  }

  void head_grid_exports_figure_and_data() {
    Session s;
    s.text = "one two three four";
    Playground playground;
    const auto result = playground.run(s.to_request());
    const auto heads = layer_heatmaps(*result, 0, ColormapId::Viridis);
    for (const char* ext : {"png", "svg", "pdf", "npy", "csv"}) {
      const QString out = dir_.filePath(QStringLiteral("heads.%1").arg(ext));
      export_head_grid(heads, 0, out, ExportOptions{});
      QVERIFY2(QFile(out).size() > 100, ext);
    }
    const Tensor all = read_npy(path("heads.npy"));
    QCOMPARE(all.shape(), (Shape{8, 4, 4}));
    for (int h = 0; h < 8; ++h) QCOMPARE(all.at(h, 3, 1), result->layers[0].weights.at(h, 3, 1));
    QFile csv(dir_.filePath("heads.csv"));
    QVERIFY(csv.open(QIODevice::ReadOnly));
    const QList<QByteArray> lines = csv.readAll().split('\n');
    QCOMPARE(lines.size(), 1 + 8 * 16 + 1);  // header, one line per weight, final empty piece
    QVERIFY(lines[0].startsWith("head,query_index,query,key_index,key,"));
    EXPECT_ERROR(ParamError, export_head_grid({}, 0, dir_.filePath("x.png"), ExportOptions{}), "nothing to export");
  }
};

QTEST_MAIN(TestSession)
#include "test_session.moc"
