#include "figures/figure_kit.h"

#include <QFileInfo>
#include <QFontMetricsF>
#include <QPainter>
#include <algorithm>
#include <array>
#include <cmath>

#include "attention/registry.h"

namespace attnlab {
namespace {

constexpr double kMetresPerInch = 0.0254;
constexpr double kPointsPerInch = 72.0;
constexpr double kNearTie = 1.01;  // a split with more rows must give panels 1% larger to win

constexpr std::array<QRgb, 8> kOkabeIto = {qRgb(230, 159, 0),  qRgb(86, 180, 233), qRgb(0, 158, 115),
                                           qRgb(240, 228, 66), qRgb(0, 114, 178),  qRgb(213, 94, 0),
                                           qRgb(204, 121, 167), qRgb(153, 153, 153)};
constexpr std::array<QRgb, 7> kTolBright = {qRgb(0x44, 0x77, 0xAA), qRgb(0xEE, 0x66, 0x77), qRgb(0x22, 0x88, 0x33),
                                            qRgb(0xCC, 0xBB, 0x44), qRgb(0x66, 0xCC, 0xEE), qRgb(0xAA, 0x33, 0x77),
                                            qRgb(0xBB, 0xBB, 0xBB)};

// Widths of the rows of `rows` and the height of the tallest panel of each.
struct RowExtents {
  std::vector<double> width, height;
};

RowExtents row_extents(const std::vector<FlowPanel>& panels, const PanelRows& rows, double side, double panel_gap) {
  RowExtents e;
  std::size_t next = 0;
  for (const int count : rows) {
    double w = 0, h = 0;
    for (int i = 0; i < count; ++i, ++next) {
      w += panels[next].outer_w(side) + (i > 0 ? panel_gap : 0.0);
      h = std::max(h, panels[next].outer_h(side));
    }
    e.width.push_back(w);
    e.height.push_back(h);
  }
  return e;
}

// The largest panel side for which `rows` fits `size` (bisection; 0 when even labels do not fit).
double fitting_side(const std::vector<FlowPanel>& panels, const PanelRows& rows, const QSizeF& size,
                    const PanelFlowSpacing& spacing) {
  const auto fits = [&](double side) {
    const QSizeF s = panel_rows_size(panels, rows, side, spacing);
    return s.width() <= size.width() && s.height() <= size.height();
  };
  if (!fits(0.0)) return 0.0;
  double lo = 0.0, hi = std::max(size.width(), size.height());
  for (int i = 0; i < 48; ++i) {
    const double mid = 0.5 * (lo + hi);
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

// ---- text -----------------------------------------------------------------------------------

QFont scaled_font(const QFont& font, double factor) {
  QFont out = font;
  if (font.pointSizeF() > 0) out.setPointSizeF(font.pointSizeF() * factor);
  else out.setPixelSize(std::max(1, static_cast<int>(std::lround(font.pixelSize() * factor))));
  return out;
}

FigureText measure_figure_text(const FigureStyle& style, const QPaintDevice* device, const FigureTextSpec& spec) {
  FigureText t;
  t.label = style.font;
  t.bold = style.font;
  t.bold.setBold(true);
  t.title = scaled_font(t.bold, spec.title_scale);
  t.small = scaled_font(t.label, spec.small_scale);
  t.small_bold = scaled_font(t.bold, spec.small_scale);
  t.line = QFontMetricsF(t.label, device).height();
  t.small_line = QFontMetricsF(t.small, device).height();
  t.title_line = QFontMetricsF(t.title, device).height();
  t.gap = spec.gap_lines * t.line;
  t.margin = spec.margin_lines * t.line;
  return t;
}

QImage measuring_device(double dpi) {
  QImage image(1, 1, QImage::Format_RGB32);
  image.setDotsPerMeterX(static_cast<int>(std::lround(dpi / kMetresPerInch)));
  image.setDotsPerMeterY(image.dotsPerMeterX());
  return image;
}

double measured_to_points(double length) { return length * kPointsPerInch / kMeasureDpi; }

QSizeF measured_size_in_points(const QSizeF& size) {
  return QSizeF(std::ceil(measured_to_points(size.width())) + 1, std::ceil(measured_to_points(size.height())) + 1);
}

QSizeF natural_size_in_lines(const FigureStyle& style, double width_lines, double height_lines) {
  const QImage device = measuring_device();
  const FigureText t = measure_figure_text(style, &device);
  return measured_size_in_points(QSizeF(width_lines * t.line, height_lines * t.line));
}

FigureScope::FigureScope(QPainter& painter, const QRectF& target, const FigureStyle& style) : painter_(painter) {
  painter_.save();
  painter_.setRenderHint(QPainter::Antialiasing, true);
  painter_.setRenderHint(QPainter::TextAntialiasing, true);
  painter_.fillRect(target, style.background);
}

FigureScope::~FigureScope() { painter_.restore(); }

FigureStyle with_highlight(const FigureStyle& style, int token) {
  FigureStyle s = style;
  s.highlight_index = token;
  return s;
}

void draw_text_line(QPainter& painter, const QRectF& rect, const QFont& font, const QString& text, Qt::Alignment align) {
  painter.setFont(font);
  const QFontMetricsF fm(font, painter.device());
  painter.drawText(rect, align, fm.elidedText(text, Qt::ElideRight, rect.width()));
}

void draw_caption_above(QPainter& painter, const QRectF& area, double width, const FigureText& text, const QColor& colour,
                        const QString& caption) {
  painter.save();
  painter.setPen(colour);
  draw_text_line(painter, QRectF(area.left(), area.top() - text.gap - text.line, width, text.line), text.bold, caption);
  painter.restore();
}

// ---- panels ---------------------------------------------------------------------------------

std::vector<PanelRows> panel_row_choices(int count) {
  std::vector<PanelRows> out;
  out.push_back({count});
  for (int a = 1; a < count; ++a) out.push_back({a, count - a});
  for (int a = 1; a < count; ++a)
    for (int b = 1; a + b < count; ++b) out.push_back({a, b, count - a - b});
  return out;
}

QSizeF panel_rows_size(const std::vector<FlowPanel>& panels, const PanelRows& rows, double side,
                       const PanelFlowSpacing& spacing) {
  const RowExtents e = row_extents(panels, rows, side, spacing.panel_gap);
  double width = 0, height = spacing.header + spacing.footer;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    width = std::max(width, e.width[r]);
    height += e.height[r] + (r > 0 ? spacing.row_gap : 0.0);
  }
  return QSizeF(width + 2 * spacing.margin, height);
}

PanelFlow flow_panels(const std::vector<FlowPanel>& panels, const QRectF& target, const PanelFlowSpacing& spacing) {
  PanelFlow best;
  for (const PanelRows& rows : panel_row_choices(static_cast<int>(panels.size()))) {
    const double side = fitting_side(panels, rows, target.size(), spacing);
    if (side > best.side * kNearTie) {
      best.rows = rows;
      best.side = side;
    }
  }
  if (best.rows.empty()) best.rows = {static_cast<int>(panels.size())};
  const QSizeF used = panel_rows_size(panels, best.rows, best.side, spacing);
  best.top = target.top() + 0.5 * std::max(0.0, target.height() - used.height());
  const RowExtents e = row_extents(panels, best.rows, best.side, spacing.panel_gap);
  double y = best.top + spacing.header;
  std::size_t next = 0;
  for (std::size_t r = 0; r < best.rows.size(); ++r) {
    double x = target.left() + 0.5 * (target.width() - e.width[r]);
    for (int i = 0; i < best.rows[r]; ++i, ++next) {
      const FlowPanel& p = panels[next];
      best.outer.emplace_back(x, y, p.outer_w(best.side), p.outer_h(best.side));
      x += p.outer_w(best.side) + spacing.panel_gap;
    }
    y += e.height[r] + spacing.row_gap;
  }
  best.footer_top = y - spacing.row_gap;
  return best;
}

QSizeF two_row_size(const std::vector<FlowPanel>& panels, double side, const PanelFlowSpacing& spacing) {
  PanelRows best = {static_cast<int>(panels.size())};
  double best_w = -1;
  for (const PanelRows& rows : panel_row_choices(static_cast<int>(panels.size()))) {
    if (rows.size() != 2) continue;
    const double w = panel_rows_size(panels, rows, side, spacing).width();
    if (best_w < 0 || w < best_w) {
      best = rows;
      best_w = w;
    }
  }
  return panel_rows_size(panels, best, side, spacing);
}

QSizeF natural_flow_size(const FigureStyle& style, double panel_lines,
                         const std::function<std::vector<FlowPanel>(const FigureText&, const QPaintDevice*)>& make_panels,
                         const std::function<PanelFlowSpacing(const FigureText&)>& spacing) {
  const QImage device = measuring_device();
  const FigureText t = measure_figure_text(style, &device);
  return measured_size_in_points(two_row_size(make_panels(t, &device), panel_lines * t.line, spacing(t)));
}

double caption_room(const std::vector<QRectF>& outer, const QRectF& area, double panel_gap) {
  for (const QRectF& panel : outer)
    if (panel.contains(area.center())) return std::max(area.width(), panel.right() - area.left() + 0.8 * panel_gap);
  return area.width();
}

// ---- the frame of a titled figure -------------------------------------------------------------

double titled_frame_header(const FigureText& t) { return t.margin + t.title_line + t.gap; }

double titled_frame_footer(const FigureText& t) { return t.gap + t.line + t.gap + t.line + t.margin; }

namespace {

QRectF title_rect(const FigureText& t, const QRectF& target, double top) {
  return QRectF(target.left() + t.margin, top + t.margin, target.width() - 2 * t.margin, t.title_line);
}

// The legend line a gap below `bottom` and the summary line under it.
void place_footer(TitledFrame& frame, const FigureText& t, const QRectF& target, double bottom) {
  frame.legend = QRectF(target.left() + t.margin, bottom + t.gap, target.width() - 2 * t.margin, t.line);
  frame.summary = QRectF(frame.legend.left(), frame.legend.bottom() + t.gap, frame.legend.width(), t.line);
}

}  // namespace

TitledFrame titled_frame(const FigureText& t, const QRectF& target) {
  TitledFrame f;
  f.title = title_rect(t, target, target.top());
  const double body_top = f.title.bottom() + t.gap;
  f.body = QRectF(target.left() + t.margin, body_top, target.width() - 2 * t.margin,
                  std::max(0.0, target.bottom() - titled_frame_footer(t) - body_top));
  place_footer(f, t, target, f.body.bottom());
  return f;
}

TitledFrame titled_frame(const FigureText& t, const QRectF& target, const PanelFlow& placement) {
  TitledFrame f;
  f.title = title_rect(t, target, placement.top);
  const double body_top = f.title.bottom() + t.gap;
  f.body = QRectF(target.left() + t.margin, body_top, target.width() - 2 * t.margin, std::max(0.0, placement.footer_top - body_top));
  place_footer(f, t, target, placement.footer_top);
  return f;
}

PanelFlowSpacing titled_flow_spacing(const FigureText& t, double panel_gap_lines, double row_gap_lines) {
  return PanelFlowSpacing{t.margin, panel_gap_lines * t.line, row_gap_lines * t.line, titled_frame_header(t),
                          titled_frame_footer(t)};
}

void draw_centred_title(QPainter& painter, const QRectF& rect, const FigureText& t, const FigureStyle& style, const QString& title) {
  painter.setFont(t.title);
  painter.setPen(style.foreground);
  painter.drawText(rect, Qt::AlignHCenter | Qt::AlignVCenter, title);
}

void draw_summary_line(QPainter& painter, const QRectF& rect, const FigureText& t, const FigureStyle& style, const QString& line) {
  painter.setPen(style.foreground);
  draw_text_line(painter, rect, t.label, line);
}

double draw_legend_entry(QPainter& painter, double x, const QRectF& row, const QString& label, const FigureText& t,
                         const FigureStyle& style, const std::function<void(const QRectF&)>& sample) {
  const QFontMetricsF fm(t.label, painter.device());
  const double sample_w = 1.6 * t.line;
  const double width = sample_w + t.gap + fm.horizontalAdvance(label);
  if (x + width > row.right()) return x;
  sample(QRectF(x, row.top() + 0.15 * t.line, sample_w, 0.7 * t.line));
  painter.setPen(style.foreground);
  painter.setFont(t.label);
  painter.drawText(QRectF(x + sample_w + t.gap, row.top(), width, row.height()), Qt::AlignLeft | Qt::AlignVCenter, label);
  return x + width + 1.5 * t.line;
}

void draw_note_box(QPainter& painter, const QRectF& box, const FigureText& t, const FigureStyle& style, double frame_lines,
                   const QString& note) {
  painter.save();
  QColor frame = style.foreground;
  frame.setAlphaF(0.3f);
  painter.setPen(QPen(frame, frame_lines * t.line));
  painter.setBrush(Qt::NoBrush);
  painter.drawRect(box);
  painter.setPen(style.foreground);
  painter.setFont(t.label);
  painter.drawText(box.adjusted(t.gap, t.gap, -t.gap, -t.gap), Qt::AlignLeft | Qt::AlignTop | Qt::TextWordWrap, note);
  painter.restore();
}

// ---- heatmap panels -----------------------------------------------------------------------------

ColormapId sequential_colormap(ColormapId id) { return id == ColormapId::Coolwarm ? ColormapId::Viridis : id; }

float largest_finite(const std::vector<float>& values) {
  float top = 0.0f;
  for (float v : values)
    if (std::isfinite(v)) top = std::max(top, v);
  return top > 0.0f ? top : 1.0f;
}

FlowPanel heatmap_flow_panel(int kind, const HeatmapData& data, const FigureStyle& style, const FigureText& t,
                             const QPaintDevice* device, double scale) {
  // Probes in which the matrix is bound by one side only (the other has room for any aspect):
  // what is left of that side is the room the labels and the colorbar take.
  const double probe = 1000.0 * t.line;
  const double rows = std::max(1, data.rows), cols = std::max(1, data.cols), longest = std::max(rows, cols);
  const HeatmapFigureLayout wide = compute_heatmap_layout(data, style, QRectF(0, 0, 4 * probe * (1 + cols / rows), probe), device);
  const HeatmapFigureLayout tall = compute_heatmap_layout(data, style, QRectF(0, 0, probe, 4 * probe * (1 + rows / cols)), device);
  const double caption = t.line + t.gap;
  return FlowPanel{kind, scale * cols / longest, scale * rows / longest, tall.matrix.left(), probe - tall.matrix.right(), caption,
                   probe - wide.matrix.height()};
}

QColor heatmap_outline_color(const HeatmapData& data) { return Colormap::contrasting(Colormap::get(data.colormap).color(0.0f)); }

void draw_outline(QPainter& painter, const QRectF& rect, const QColor& colour, double width) {
  painter.save();
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(colour, width, Qt::SolidLine, Qt::SquareCap, Qt::MiterJoin));
  painter.drawRect(rect);
  painter.restore();
}

void draw_column_boundary(QPainter& painter, const QRectF& matrix, double x, const QColor& colour, double width,
                          const FigureText& t) {
  painter.save();
  painter.setPen(QPen(colour, width, Qt::SolidLine, Qt::FlatCap));
  painter.drawLine(QPointF(x, matrix.top() - 0.4 * t.gap), QPointF(x, matrix.bottom() + 0.4 * t.gap));
  painter.restore();
}

// ---- axes -------------------------------------------------------------------------------------

double PlotAxis::fraction(double v) const {
  if (log) return (std::log(std::max(v, 1e-300)) - std::log(lo)) / (std::log(hi) - std::log(lo));
  return (v - lo) / (hi - lo);
}

PlotAxis nice_linear_axis(double lo, double hi, int steps) {
  if (!(hi > lo)) {
    const double pad = std::max(1e-12, std::abs(lo) * 0.1 + (lo == 0 ? 1 : 0));
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / steps;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  PlotAxis axis;
  axis.lo = std::floor(lo / step) * step;
  axis.hi = std::ceil(hi / step) * step;
  for (double t = axis.lo; t <= axis.hi + step * 1e-9; t += step) axis.ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return axis;
}

PlotAxis decade_axis(double lo, double hi) {
  PlotAxis axis;
  axis.log = true;
  axis.lo = std::pow(10.0, std::floor(std::log10(lo)));
  axis.hi = std::pow(10.0, std::ceil(std::log10(hi)));
  if (axis.hi <= axis.lo) axis.hi = axis.lo * 10;
  for (double t = axis.lo; t <= axis.hi * 1.0001; t *= 10) axis.ticks.push_back(t);
  return axis;
}

QPointF plot_point(const QRectF& plot, const PlotAxis& x, const PlotAxis& y, double vx, double vy) {
  return QPointF(plot.left() + x.fraction(vx) * plot.width(), plot.bottom() - y.fraction(vy) * plot.height());
}

QString superscript(int value) {
  static const QString digits[] = {QStringLiteral("⁰"), QStringLiteral("¹"), QStringLiteral("²"), QStringLiteral("³"),
                                   QStringLiteral("⁴"), QStringLiteral("⁵"), QStringLiteral("⁶"), QStringLiteral("⁷"),
                                   QStringLiteral("⁸"), QStringLiteral("⁹")};
  QString text = value < 0 ? QStringLiteral("⁻") : QString();
  for (const QChar ch : QString::number(std::abs(value))) text += digits[ch.digitValue()];
  return text;
}

QString decade_label(int exponent) {
  if (exponent == 0) return QStringLiteral("1");
  if (exponent == 1) return QStringLiteral("10");
  if (exponent == -1) return QStringLiteral("0.1");
  return QStringLiteral("10") + superscript(exponent);
}

// ---- data ---------------------------------------------------------------------------------------

std::int64_t variant_param_max(const std::string& variant, const std::string& key) {
  for (const ParamSpec& spec : Registry::builtin().get(variant).spec().params) {
    if (spec.key == key) return static_cast<std::int64_t>(spec.max);
  }
  throw ParamError("variant '" + variant + "' has no parameter '" + key + "'");
}

QByteArray view_json_bytes(nlohmann::json j, int layer, int head, const QStringList& tokens) {
  j["layer"] = layer;
  j["head"] = head;
  nlohmann::json texts = nlohmann::json::array();
  for (const QString& token : tokens) texts.push_back(token.toStdString());
  j["tokens"] = std::move(texts);
  return QByteArray::fromStdString(j.dump(1));
}

int highlighted_token(const ViewContext& context, std::int64_t tokens) {
  return context.highlighted_token >= 0 && context.highlighted_token < tokens ? context.highlighted_token : -1;
}

QString layer_type_name(const PlaygroundResult& result, int layer, const QString& fallback) {
  const auto at = static_cast<std::size_t>(layer);
  return at < result.layer_types.size() ? QString::fromStdString(result.layer_types[at]) : fallback;
}

void write_view_json(const QString& path, nlohmann::json j, int layer, int head, const QStringList& tokens) {
  write_bytes_atomically(path, view_json_bytes(std::move(j), layer, head, tokens));
}

QString view_data_format(const std::string& view, const QString& path, const QStringList& formats) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (formats.contains(suffix)) return suffix;
  QStringList listed;
  for (const QString& f : formats) listed << QStringLiteral(".") + f;
  throw ParamError(QStringLiteral("cannot export '%1' from view '%2': data formats are %3")
                       .arg(path, QString::fromStdString(view), listed.join(QStringLiteral(", ")))
                       .toStdString());
}

PaintedFigure view_painted_figure(const QSizeF& size, const QString& title, const QString& description,
                                  const ViewContext& context, const FigureStyle& style, ViewFigureDraw draw) {
  return PaintedFigure{size, title, description, style.background,
                       [context, style, draw = std::move(draw)](QPainter& painter, const QRectF& target) {
                         draw(painter, target, context, style);
                       }};
}

// ---- colours ------------------------------------------------------------------------------------

QColor okabe_ito(OkabeIto colour) { return QColor(kOkabeIto[static_cast<std::size_t>(colour)]); }

int categorical_count(CategoricalPalette palette) {
  return static_cast<int>(palette == CategoricalPalette::TolBright ? kTolBright.size() : kOkabeIto.size());
}

QColor categorical_color(int index, CategoricalPalette palette) {
  const int n = categorical_count(palette);
  const auto at = static_cast<std::size_t>(((index % n) + n) % n);
  return QColor(palette == CategoricalPalette::TolBright ? kTolBright[at] : kOkabeIto[at]);
}

bool result_has_layer_extra(const PlaygroundResult& result, std::string_view kind) {
  for (const Trace& t : result.layers) {
    if (t.layer_extra(kind)) return true;
  }
  return false;
}

int model_view_layer(const ViewContext& context, std::string_view kind) {
  if (!context.result) return -1;
  const auto& layers = context.result->layers;
  if (context.layer >= 0 && context.layer < static_cast<int>(layers.size()) &&
      layers[static_cast<std::size_t>(context.layer)].layer_extra(kind)) {
    return context.layer;
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].layer_extra(kind)) return static_cast<int>(i);
  }
  return -1;
}

double widest_text(const QFontMetricsF& fm, const QStringList& texts) {
  double w = 0;
  for (const QString& s : texts) w = std::max(w, fm.horizontalAdvance(s));
  return w;
}

}  // namespace attnlab
