// Helpers shared by the variant-view tests (offscreen platform): results computed by the
// playground, view contexts, pixels read at positions a figure's public layout gives, the pointer
// moved over a widget, and an RFC 4180 reader for the CSV exports.
#pragma once

#include <QByteArray>
#include <QColor>
#include <QCoreApplication>
#include <QFile>
#include <QImage>
#include <QMouseEvent>
#include <QPointF>
#include <QString>
#include <QTemporaryDir>
#include <QWidget>
#include <QXmlStreamReader>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "figures/figure_kit.h"
#include "models/model_config.h"
#include "models/playground.h"
#include "trace_view.h"

namespace attnlab::test {

// One forward pass of the playground's default model on `text`.
inline PlaygroundResultPtr run_playground(const std::string& variant, nlohmann::json params, bool causal,
                                          const std::string& text, std::uint64_t attention_seed = 1) {
  static Playground playground;
  PlaygroundRequest request;
  request.text = text;
  request.variant = variant;
  request.params = std::move(params);
  request.causal = causal;
  request.attention_seed = attention_seed;
  return playground.run(request);
}

// One forward pass of model `model` (a preset name) on `text`; layers set to "inherit" run `variant`.
inline PlaygroundResultPtr run_model(const std::string& model, const std::string& text, const std::string& variant = "softmax",
                                     bool causal = false, std::uint64_t attention_seed = 1) {
  static Playground playground;
  PlaygroundRequest request;
  request.text = text;
  request.model = model;
  request.variant = variant;
  request.causal = causal;
  request.attention_seed = attention_seed;
  request.compare_exact = false;
  return playground.run(request);
}

// One forward pass of `config` on `text`, from a model file of its own (the playground caches
// models by path).
inline PlaygroundResultPtr run_model_config(const ModelConfig& config, const std::string& text) {
  QTemporaryDir dir;
  const QString path = dir.filePath(QStringLiteral("model.json"));
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly)) return nullptr;
  file.write(QByteArray::fromStdString(config.to_json().dump()));
  file.close();
  return run_model(path.toStdString(), text);
}

// `json` written to a new model file (kept until the test ends); its path.
inline std::string write_model_file(const QByteArray& json) {
  static QTemporaryDir dir;
  static int files = 0;
  const QString path = dir.filePath(QStringLiteral("model-%1.json").arg(files++));
  QFile out(path);
  if (out.open(QIODevice::WriteOnly)) out.write(json);
  return path.toStdString();
}

// `count` word tokens "w0 w1 ... w36 w0 ...".
inline QString numbered_words(int count) {
  QString text;
  for (int i = 0; i < count; ++i) text += QStringLiteral("w%1 ").arg(i % 37);
  return text.trimmed();
}

inline ViewContext view_context(PlaygroundResultPtr result, int layer = 0, int head = 0,
                                nlohmann::json options = nlohmann::json::object()) {
  ViewContext c;
  c.result = std::move(result);
  c.layer = layer;
  c.head = head;
  c.options = std::move(options);
  return c;
}

// A figure rendered as PNG export renders it, with its layout computed by `compute_layout`
// (data, style, target, device) on the same image, so layout positions are the drawn pixels.
template <typename Layout>
struct Rendered {
  QImage image;
  Layout layout;
};

template <typename Layout, typename Data>
Rendered<Layout> render_with_layout(const PaintedFigure& figure, double dpi,
                                    Layout (*compute_layout)(const Data&, const FigureStyle&, const QRectF&, const QPaintDevice*),
                                    const Data& data, const FigureStyle& style) {
  Rendered<Layout> r;
  r.image = render_figure_image(figure, dpi);
  r.layout = compute_layout(data, style, QRectF(r.image.rect()), &r.image);
  return r;
}

// The same for a figure whose layout takes options (compute_layout(data, style, target, device, options)).
template <typename Layout, typename Data, typename Options>
Rendered<Layout> render_with_layout(const PaintedFigure& figure, double dpi,
                                    Layout (*compute_layout)(const Data&, const FigureStyle&, const QRectF&, const QPaintDevice*,
                                                             const Options&),
                                    const Data& data, const FigureStyle& style, const Options& options) {
  Rendered<Layout> r;
  r.image = render_figure_image(figure, dpi);
  r.layout = compute_layout(data, style, QRectF(r.image.rect()), &r.image, options);
  return r;
}

// Each channel within `tolerance`.
inline bool near_colour(QRgb actual, QColor expected, int tolerance = 3) {
  return std::abs(qRed(actual) - expected.red()) <= tolerance && std::abs(qGreen(actual) - expected.green()) <= tolerance &&
         std::abs(qBlue(actual) - expected.blue()) <= tolerance;
}

// `colour` with `alpha` over `background`, as the raster engine composes it.
inline QRgb over(QColor colour, int alpha, QColor background) {
  const auto mix = [&](int c, int b) { return (c * alpha + b * (255 - alpha) + 127) / 255; };
  return qRgb(mix(colour.red(), background.red()), mix(colour.green(), background.green()),
              mix(colour.blue(), background.blue()));
}

// The pixel whose square contains `p`.
inline QRgb pixel_at(const QImage& image, const QPointF& p) {
  return image.pixel(static_cast<int>(std::floor(p.x())), static_cast<int>(std::floor(p.y())));
}

// Whether a pixel within `radius` of `p` is near `colour`.
inline bool colour_near(const QImage& image, QPointF p, const QColor& colour, int radius = 2, int tolerance = 12) {
  for (int dx = -radius; dx <= radius; ++dx)
    for (int dy = -radius; dy <= radius; ++dy)
      if (near_colour(pixel_at(image, p + QPointF(dx, dy)), colour, tolerance)) return true;
  return false;
}

inline QString describe(QRgb c) { return QStringLiteral("(%1, %2, %3)").arg(qRed(c)).arg(qGreen(c)).arg(qBlue(c)); }

// Sends a mouse move to `widget` at `pos` (its coordinates), as the pointer would.
inline void move_pointer(QWidget* widget, QPointF pos) {
  QMouseEvent move(QEvent::MouseMove, pos, widget->mapToGlobal(pos), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
  QCoreApplication::sendEvent(widget, &move);
}

// RFC 4180: fields separated by commas, quoted fields with doubled quotes, CRLF line ends.
inline std::vector<QStringList> parse_csv(const QByteArray& bytes) {
  const QString text = QString::fromUtf8(bytes);
  std::vector<QStringList> rows(1);
  QString field;
  bool quoted = false;
  for (qsizetype i = 0; i < text.size(); ++i) {
    const QChar ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      rows.back() << field;
      field.clear();
    } else if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      rows.back() << field;
      field.clear();
      rows.emplace_back();
      ++i;
    } else {
      field += ch;
    }
  }
  if (!field.isEmpty() || !rows.back().empty()) rows.back() << field;
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

inline std::vector<QStringList> read_csv(const QString& path) {
  QFile file(path);
  return file.open(QIODevice::ReadOnly) ? parse_csv(file.readAll()) : std::vector<QStringList>{};
}

// The float a CSV field holds (shortest round-trip text), NaN when it holds none.
inline float parse_float(const QString& text) {
  const QByteArray bytes = text.toLatin1();
  float out = std::nanf("");
  std::from_chars(bytes.data(), bytes.data() + bytes.size(), out);
  return out;
}

// Exports `context` through `view` to each file of `names` in `dir` (formats from the extensions).
inline void export_each(const std::string& view, const ViewContext& context, const QTemporaryDir& dir, const QStringList& names) {
  for (const QString& name : names) export_view(view_spec(view), context, dir.filePath(name), ExportOptions{});
}

inline nlohmann::json read_json(const QString& path) {
  QFile file(path);
  return file.open(QIODevice::ReadOnly) ? nlohmann::json::parse(file.readAll().toStdString()) : nlohmann::json();
}

// Whether the file is well-formed XML with `text` in one of its text nodes (an SVG's <text>).
inline bool svg_has_text(const QString& path, const QString& text) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) return false;
  QXmlStreamReader xml(&file);
  bool found = false;
  while (!xml.atEnd()) {
    xml.readNext();
    found = found || (xml.isCharacters() && xml.text().toString().contains(text));
  }
  return found && !xml.hasError();
}

inline bool is_pdf(const QString& path) {
  QFile file(path);
  return file.open(QIODevice::ReadOnly) && file.read(5) == "%PDF-";
}

// The figure of `view` for `context` rendered at `dpi` (what export_view writes as PNG).
inline QImage render_view(const std::string& view, const ViewContext& context, double dpi = 72.0,
                          const FigureStyle& style = FigureStyle{}) {
  return render_figure_image(view_spec(view).figure(context, style), dpi);
}

}  // namespace attnlab::test
