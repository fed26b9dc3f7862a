#include "heatmap_view.h"

#include <imgui/imgui.h>

#include <QApplication>
#include <QFontMetricsF>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QOffscreenSurface>
#include <QOpenGLContext>
#include <QOpenGLShaderProgram>
#include <QPainter>
#include <QWheelEvent>
#include <algorithm>
#include <array>
#include <cmath>

namespace attnlab {
namespace {

constexpr double kZoomPerNotch = 1.15;
constexpr double kZoomPerKey = 1.25;
constexpr double kMaxCellPx = 80.0;     // never magnify a cell beyond this many logical px
constexpr double kPanPerKey = 0.1;      // arrow keys move a tenth of the plot
constexpr double kPad = 8.0;            // outer margin, logical px
constexpr double kGap = 4.0;            // between labels and the matrix
constexpr double kColorbarGap = 14.0;
constexpr double kColorbarWidth = 14.0;
constexpr double kTickLength = 4.0;
constexpr double kMinLabelPt = 9.0;
constexpr double kLabelSpacing = 1.2;  // label pitch, in line heights, once labels are thinned

// Tokens can carry whitespace that would be invisible or break a one-line label.
QString visibleToken(QString token) {
  token.replace(QLatin1Char('\n'), QChar(0x21B5));  // ↵
  token.replace(QLatin1Char('\t'), QChar(0x21E5));  // ⇥
  return token;
}

QString formatTick(float value) { return QString::number(static_cast<double>(value), 'g', 3); }

bool isDark(const QPalette& palette) { return palette.color(QPalette::Base).lightness() < 128; }

// Labels are thinned to every `stride`-th so that neighbours are at least a line height and a
// little air apart; multiples of the stride keep the shown labels fixed while panning.
int labelStride(double cell_px, double line_px) {
  if (cell_px <= 0.0 || cell_px >= line_px) return 1;
  return std::max(1, static_cast<int>(std::ceil(kLabelSpacing * line_px / cell_px)));
}

// The first and last index (inclusive) of cells whose centre lies in [from, to).
std::pair<int, int> visibleRange(double origin, double cell, double from, double to, int count) {
  const int first = std::max(0, static_cast<int>(std::ceil((from - origin) / cell - 0.5)));
  const int last = std::min(count - 1, static_cast<int>(std::floor((to - origin) / cell - 0.5)));
  return {first, last};
}

// Keeps the matrix covering the area along one axis, or centred in it where it is smaller.
// `centre` and the result are in cells, `area_px` and `cell_px` in logical px.
double clampCentre(double centre, int count, double area_px, double cell_px) {
  const double half_view = area_px / (2.0 * cell_px);
  if (count <= 2.0 * half_view) return count / 2.0;
  return std::clamp(centre, half_view, count - half_view);
}

QByteArray quoted(const QString& token) { return (QLatin1Char('\'') + token + QLatin1Char('\'')).toUtf8(); }

}  // namespace

QSurfaceFormat HeatmapView::surfaceFormat() {
  QSurfaceFormat format = QSurfaceFormat::defaultFormat();
  format.setRenderableType(QSurfaceFormat::OpenGL);
  format.setVersion(3, 3);
  format.setProfile(QSurfaceFormat::CoreProfile);
  return format;
}

HeatmapView::HeatmapView(QWidget* parent) : QOpenGLWidget(parent) {
  setFormat(surfaceFormat());
  setMouseTracking(true);
  setFocusPolicy(Qt::StrongFocus);
  setCursor(Qt::CrossCursor);
  updateFonts();
  rebuildColorbarImage();
  imgui_.setDarkStyle(isDark(palette()));
}

HeatmapView::~HeatmapView() { releaseGL(); }

QString HeatmapView::openGLUnavailableReason() {
  QOpenGLContext context;
  context.setFormat(surfaceFormat());
  if (!context.create()) return tr("No OpenGL context can be created on this display");
  const QSurfaceFormat actual = context.format();
  if (context.isOpenGLES() || actual.version() < qMakePair(3, 3)) {
    return tr("OpenGL 3.3 core is needed; this display offers %1.%2").arg(actual.majorVersion()).arg(actual.minorVersion());
  }
  QOffscreenSurface surface;
  surface.setFormat(actual);
  surface.create();
  if (!context.makeCurrent(&surface)) return tr("An OpenGL 3.3 context was created but cannot be made current");
  context.doneCurrent();
  return {};
}

// ---- data and view state ---------------------------------------------------------------------

bool HeatmapView::hasMatrix() const { return data_ && data_->rows > 0 && data_->cols > 0 && data_problem_.isEmpty(); }

QString HeatmapView::sizeProblem() const {
  if (!data_ || data_->rows <= 0 || data_->cols <= 0) return {};
  const auto expected = static_cast<std::size_t>(data_->rows) * static_cast<std::size_t>(data_->cols);
  if (data_->values.size() != expected) {
    return tr("Heatmap data is malformed: %1 values for a %2 × %3 matrix")
        .arg(data_->values.size()).arg(data_->rows).arg(data_->cols);
  }
  if (max_texture_size_ > 0 && (data_->rows > max_texture_size_ || data_->cols > max_texture_size_)) {
    return tr("Matrix %1 × %2 is larger than this GPU's texture limit (%3 per side); "
              "export it as .npy or CSV instead")
        .arg(data_->rows).arg(data_->cols).arg(max_texture_size_);
  }
  return {};
}

void HeatmapView::reportProblem(const QString& message) {
  if (problem_reported_) return;
  problem_reported_ = true;
  emit glProblem(message);
}

void HeatmapView::setData(HeatmapDataPtr data) {
  const bool same_shape = data && data_ && data->rows == data_->rows && data->cols == data_->cols;
  data_ = std::move(data);
  if (data_) colormap_ = data_->colormap;
  data_problem_ = sizeProblem();
  problem_reported_ = false;
  if (!data_problem_.isEmpty() && max_texture_size_ > 0) reportProblem(data_problem_);
  matrix_dirty_ = true;
  colormap_dirty_ = true;
  rebuildColorbarImage();
  measureLabels();
  if (!same_shape) resetView();
  if (mouse_inside_) {
    updateHover(mouse_pos_);
    findHoveredRowMax();  // same cell, new numbers
  }
  update();
}

void HeatmapView::setColormap(ColormapId id) {
  if (id == colormap_) return;
  colormap_ = id;
  colormap_dirty_ = true;
  rebuildColorbarImage();
  update();
}

void HeatmapView::setHighlightedToken(int index) {
  if (index == highlighted_) return;
  highlighted_ = index;
  update();
}

void HeatmapView::resetView() {
  zoom_ = 1.0;
  center_ = data_ ? QPointF(data_->cols / 2.0, data_->rows / 2.0) : QPointF();
  afterViewChange();
}

double HeatmapView::zoom() const { return layout().zoom; }

double HeatmapView::maxZoom() const { return layout().max_zoom; }

void HeatmapView::zoomAt(double factor, QPointF widget_pos) {
  if (!hasMatrix() || !(factor > 0.0)) return;
  const Layout l = layout();
  if (l.base_cell <= 0.0) return;
  const double new_zoom = std::clamp(l.zoom * factor, 1.0, l.max_zoom);
  const double new_cell = l.base_cell * new_zoom;
  const QPointF under_cursor = (widget_pos - l.origin) / l.cell;  // matrix point, in cells
  const QPointF new_origin = widget_pos - under_cursor * new_cell;
  zoom_ = new_zoom;
  center_ = (l.area.center() - new_origin) / new_cell;
  clampView();
  afterViewChange();
}

void HeatmapView::panBy(QPointF widget_delta) {
  if (!hasMatrix()) return;
  const Layout l = layout();
  if (l.cell <= 0.0) return;
  zoom_ = l.zoom;
  center_ -= widget_delta / l.cell;
  clampView();
  afterViewChange();
}

// Stores the zoom and centre that layout() clamped, so later steps start from what is shown.
void HeatmapView::clampView() {
  const Layout l = layout();
  zoom_ = l.zoom;
  if (l.cell > 0.0) center_ = l.centre;
}

void HeatmapView::afterViewChange() {
  if (mouse_inside_) updateHover(mouse_pos_);
  update();
}

HeatmapView::Layout HeatmapView::layout() const {
  Layout l;
  const QFontMetricsF fm(label_font_);
  const double line = fm.height();
  const double label_cap = std::clamp(width() * 0.2, 3.0 * line, 12.0 * line);
  l.row_label_width = std::min(max_row_label_advance_, label_cap);
  l.col_label_height = std::min(max_col_label_advance_, label_cap);
  if (data_) {
    const float mid = 0.5f * (data_->vmin + data_->vmax);
    for (float v : {data_->vmin, mid, data_->vmax}) l.tick_width = std::max(l.tick_width, fm.horizontalAdvance(formatTick(v)));
  }
  const bool has_title = data_ && !data_->title.isEmpty();
  const double title_height = has_title ? QFontMetricsF(title_font_).height() + kGap : 0.0;
  const double left = kPad + line + kGap + l.row_label_width + kGap;
  const double top = kPad + title_height;
  const double bottom = kGap + l.col_label_height + kGap + line + kPad;
  const double right = kColorbarGap + kColorbarWidth + kTickLength + kGap + l.tick_width + kGap + line + kPad;
  l.area = QRectF(QPointF(left, top), QPointF(width() - right, height() - bottom));
  if (!hasMatrix() || l.area.width() < 1.0 || l.area.height() < 1.0) return l;

  l.base_cell = std::min(l.area.width() / data_->cols, l.area.height() / data_->rows);
  l.max_zoom = std::max(1.0, kMaxCellPx / l.base_cell);
  l.zoom = std::clamp(zoom_, 1.0, l.max_zoom);
  l.cell = l.base_cell * l.zoom;
  // The stored centre may be stale (after a resize, a zoom or a pan): clamp it for this size.
  l.centre = QPointF(clampCentre(center_.x(), data_->cols, l.area.width(), l.cell),
                     clampCentre(center_.y(), data_->rows, l.area.height(), l.cell));
  l.origin = l.area.center() - l.centre * l.cell;
  const QRectF matrix(l.origin, QSizeF(data_->cols * l.cell, data_->rows * l.cell));
  l.plot = matrix.intersected(l.area);
  // As tall as the matrix, but never a sliver for a wide, short matrix.
  const double bar_height = std::min(l.area.height(), std::max(l.plot.height(), 6.0 * line));
  l.colorbar = QRectF(l.plot.right() + kColorbarGap, l.plot.center().y() - bar_height / 2, kColorbarWidth, bar_height);
  return l;
}

QRectF HeatmapView::plotRect() const { return layout().plot; }

QRectF HeatmapView::colorbarRect() const { return layout().colorbar; }

QRectF HeatmapView::cellRect(int row, int col) const {
  const Layout l = layout();
  if (!hasMatrix() || l.cell <= 0.0) return {};
  return {l.origin.x() + col * l.cell, l.origin.y() + row * l.cell, l.cell, l.cell};
}

QPoint HeatmapView::cellAt(QPointF widget_pos) const {
  const Layout l = layout();
  if (!hasMatrix() || l.cell <= 0.0 || !l.plot.contains(widget_pos)) return {-1, -1};
  const int col = std::clamp(static_cast<int>(std::floor((widget_pos.x() - l.origin.x()) / l.cell)), 0, data_->cols - 1);
  const int row = std::clamp(static_cast<int>(std::floor((widget_pos.y() - l.origin.y()) / l.cell)), 0, data_->rows - 1);
  return {row, col};
}

QString HeatmapView::rowLabel(int row) const {
  return data_ && row < data_->row_labels.size() ? visibleToken(data_->row_labels[row]) : QString::number(row);
}

QString HeatmapView::colLabel(int col) const {
  return data_ && col < data_->col_labels.size() ? visibleToken(data_->col_labels[col]) : QString::number(col);
}

// ---- fonts, labels, colorbar -----------------------------------------------------------------

void HeatmapView::updateFonts() {
  label_font_ = font();
  // Readable on a projector: never below 9 pt. Points scale with the device pixel ratio.
  if (label_font_.pointSizeF() > 0 && label_font_.pointSizeF() < kMinLabelPt) label_font_.setPointSizeF(kMinLabelPt);
  title_font_ = label_font_;
  title_font_.setBold(true);
  if (title_font_.pointSizeF() > 0) title_font_.setPointSizeF(title_font_.pointSizeF() * 1.15);
  measureLabels();
}

void HeatmapView::measureLabels() {
  max_row_label_advance_ = 0;
  max_col_label_advance_ = 0;
  if (!data_) return;
  const QFontMetricsF fm(label_font_);
  for (int r = 0; r < data_->rows; ++r) max_row_label_advance_ = std::max(max_row_label_advance_, fm.horizontalAdvance(rowLabel(r)));
  for (int c = 0; c < data_->cols; ++c) max_col_label_advance_ = std::max(max_col_label_advance_, fm.horizontalAdvance(colLabel(c)));
}

void HeatmapView::rebuildColorbarImage() {
  const auto& table = Colormap::get(colormap_).table();
  colorbar_image_ = QImage(1, Colormap::kSize, QImage::Format_RGB32);
  for (int i = 0; i < Colormap::kSize; ++i) {
    colorbar_image_.setPixel(0, Colormap::kSize - 1 - i, table[static_cast<std::size_t>(i)]);
  }
}

// ---- GL --------------------------------------------------------------------------------------

void HeatmapView::initializeGL() {
  // A reparented widget gets a new context: free what belonged to the old one when it goes.
  connect(context(), &QOpenGLContext::aboutToBeDestroyed, this, &HeatmapView::releaseGL);
  initializeOpenGLFunctions();
  gl_failure_.clear();
  const QSurfaceFormat actual = context()->format();
  if (actual.version() < qMakePair(3, 3) || context()->isOpenGLES()) {
    gl_failure_ = tr("OpenGL 3.3 core is needed; this context offers %1 %2.%3")
                      .arg(context()->isOpenGLES() ? QStringLiteral("OpenGL ES") : QStringLiteral("OpenGL"))
                      .arg(actual.majorVersion()).arg(actual.minorVersion());
    emit glProblem(gl_failure_);
    return;
  }
  glGetIntegerv(GL_MAX_TEXTURE_SIZE, &max_texture_size_);
  if (!buildProgram()) {
    emit glProblem(gl_failure_);
    return;
  }
  glGenVertexArrays(1, &vertex_array_);  // core profile draws need one, even without buffers
  glGenTextures(1, &matrix_texture_);
  glGenTextures(1, &colormap_texture_);
  gl_ready_ = true;
  matrix_dirty_ = true;
  colormap_dirty_ = true;
  if (!imgui_.initialize(devicePixelRatioF())) emit glProblem(imgui_.lastError());
  data_problem_ = sizeProblem();  // the texture limit is known only now
  if (!data_problem_.isEmpty()) reportProblem(data_problem_);
}

bool HeatmapView::buildProgram() {
  program_ = std::make_unique<QOpenGLShaderProgram>();
  const bool ok = program_->addShaderFromSourceFile(QOpenGLShader::Vertex, QStringLiteral(":/shaders/heatmap.vert")) &&
                  program_->addShaderFromSourceFile(QOpenGLShader::Fragment, QStringLiteral(":/shaders/heatmap.frag")) &&
                  program_->link();
  if (!ok) {
    const QString log = program_->log().trimmed();
    gl_failure_ = tr("Heatmap shader failed: %1").arg(log.section(QLatin1Char('\n'), 0, 0));
    program_.reset();
    return false;
  }
  program_->bind();
  program_->setUniformValue("u_matrix", 0);    // texture unit 0
  program_->setUniformValue("u_colormap", 1);  // texture unit 1
  program_->release();
  uniform_quad_ = program_->uniformLocation("u_quad");
  uniform_cells_ = program_->uniformLocation("u_cells");
  uniform_vmin_ = program_->uniformLocation("u_vmin");
  uniform_vmax_ = program_->uniformLocation("u_vmax");
  return true;
}

void HeatmapView::releaseGL() {
  if (!gl_ready_ && !program_ && !imgui_.ready()) return;
  makeCurrent();
  imgui_.shutdown();
  if (matrix_texture_ != 0) glDeleteTextures(1, &matrix_texture_);
  if (colormap_texture_ != 0) glDeleteTextures(1, &colormap_texture_);
  if (vertex_array_ != 0) glDeleteVertexArrays(1, &vertex_array_);
  program_.reset();
  doneCurrent();
  matrix_texture_ = colormap_texture_ = vertex_array_ = 0;
  gl_ready_ = false;
  matrix_uploaded_ = false;
  matrix_dirty_ = true;
  colormap_dirty_ = true;
}

// Texels are cells, never blended (nearest, one level), and never repeated at the edges;
// uploads read tightly packed rows.
void HeatmapView::prepareBoundTexture() {
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAX_LEVEL, 0);
  glPixelStorei(GL_UNPACK_ALIGNMENT, 4);
  glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
}

void HeatmapView::uploadMatrix() {
  matrix_dirty_ = false;
  matrix_uploaded_ = false;
  data_problem_ = sizeProblem();
  if (!data_problem_.isEmpty()) {
    reportProblem(data_problem_);
    return;
  }
  if (!hasMatrix()) return;
  glBindTexture(GL_TEXTURE_2D, matrix_texture_);
  prepareBoundTexture();
  while (glGetError() != GL_NO_ERROR) {
    // drop errors left by others, so the check below is about this upload
  }
  // Texel (x, y) = value at (col x, row y); one float per texel, no conversion.
  glTexImage2D(GL_TEXTURE_2D, 0, GL_R32F, data_->cols, data_->rows, 0, GL_RED, GL_FLOAT, data_->values.data());
  const GLenum error = glGetError();
  glBindTexture(GL_TEXTURE_2D, 0);
  if (error != GL_NO_ERROR) {
    data_problem_ = tr("Could not upload the %1 × %2 matrix to the GPU (GL error 0x%3)")
                        .arg(data_->rows).arg(data_->cols).arg(error, 0, 16);
    reportProblem(data_problem_);
    return;
  }
  matrix_uploaded_ = true;
}

void HeatmapView::uploadColormap() {
  colormap_dirty_ = false;
  // The same table as Colormap::color() and the exported figures, as RGBA bytes.
  const auto& table = Colormap::get(colormap_).table();
  std::array<unsigned char, 4 * Colormap::kSize> bytes{};
  for (std::size_t i = 0; i < table.size(); ++i) {
    bytes[4 * i + 0] = static_cast<unsigned char>(qRed(table[i]));
    bytes[4 * i + 1] = static_cast<unsigned char>(qGreen(table[i]));
    bytes[4 * i + 2] = static_cast<unsigned char>(qBlue(table[i]));
    bytes[4 * i + 3] = 255;
  }
  glBindTexture(GL_TEXTURE_2D, colormap_texture_);
  prepareBoundTexture();
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, Colormap::kSize, 1, 0, GL_RGBA, GL_UNSIGNED_BYTE, bytes.data());
  glBindTexture(GL_TEXTURE_2D, 0);
}

void HeatmapView::drawMatrix(const Layout& l) {
  const QRectF& plot = l.plot;
  if (plot.isEmpty() || l.cell <= 0.0) return;
  const double w = width();
  const double h = height();
  const double dpr = devicePixelRatioF();
  // Viewport and scissor are in device pixels; GL's y axis points up.
  glViewport(0, 0, static_cast<GLsizei>(std::lround(w * dpr)), static_cast<GLsizei>(std::lround(h * dpr)));
  glEnable(GL_SCISSOR_TEST);
  const auto x0 = static_cast<GLint>(std::floor(plot.left() * dpr));
  const auto y0 = static_cast<GLint>(std::floor((h - plot.bottom()) * dpr));
  glScissor(x0, y0, static_cast<GLsizei>(std::ceil(plot.right() * dpr)) - x0,
            static_cast<GLsizei>(std::ceil((h - plot.top()) * dpr)) - y0);
  glDisable(GL_DEPTH_TEST);
  glDisable(GL_BLEND);

  program_->bind();
  // The quad covers the visible part of the matrix: corners in NDC and in cells.
  program_->setUniformValue(uniform_quad_, QVector4D(static_cast<float>(2.0 * plot.left() / w - 1.0),
                                                     static_cast<float>(1.0 - 2.0 * plot.top() / h),
                                                     static_cast<float>(2.0 * plot.right() / w - 1.0),
                                                     static_cast<float>(1.0 - 2.0 * plot.bottom() / h)));
  program_->setUniformValue(uniform_cells_, QVector4D(static_cast<float>((plot.left() - l.origin.x()) / l.cell),
                                                      static_cast<float>((plot.top() - l.origin.y()) / l.cell),
                                                      static_cast<float>((plot.right() - l.origin.x()) / l.cell),
                                                      static_cast<float>((plot.bottom() - l.origin.y()) / l.cell)));
  program_->setUniformValue(uniform_vmin_, data_->vmin);
  program_->setUniformValue(uniform_vmax_, data_->vmax);
  glActiveTexture(GL_TEXTURE1);
  glBindTexture(GL_TEXTURE_2D, colormap_texture_);
  glActiveTexture(GL_TEXTURE0);
  glBindTexture(GL_TEXTURE_2D, matrix_texture_);
  glBindVertexArray(vertex_array_);
  glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
  glBindVertexArray(0);
  glBindTexture(GL_TEXTURE_2D, 0);
  program_->release();
  glDisable(GL_SCISSOR_TEST);
}

void HeatmapView::paintGL() {
  QElapsedTimer timer;
  if (measure_frame_time_) timer.start();
  const Layout l = layout();
  const double dpr = devicePixelRatioF();
  glViewport(0, 0, static_cast<GLsizei>(std::lround(width() * dpr)), static_cast<GLsizei>(std::lround(height() * dpr)));
  const QColor background = palette().color(QPalette::Base);
  glClearColor(background.redF(), background.greenF(), background.blueF(), 1.0f);
  glClear(GL_COLOR_BUFFER_BIT);
  if (gl_ready_) {
    if (colormap_dirty_) uploadColormap();
    if (matrix_dirty_) uploadMatrix();
    if (matrix_uploaded_ && hasMatrix()) drawMatrix(l);
  }
  {
    QPainter painter(this);
    drawOverlays(painter, l);
    if (hover_cell_.x() >= 0 && imgui_.ready() && hasMatrix() && !dragging_) {
      painter.beginNativePainting();
      drawInspector();
      painter.endNativePainting();
    }
  }
  if (measure_frame_time_) {
    glFinish();
    last_frame_ms_ = static_cast<double>(timer.nsecsElapsed()) / 1e6;
  }
}

void HeatmapView::paintEvent(QPaintEvent* event) {
  QOpenGLWidget::paintEvent(event);  // creates the context on first use, then calls paintGL
  // Without a context paintGL never runs and nothing can be drawn: say so once.
  if (!isValid() && !no_context_reported_) {
    no_context_reported_ = true;
    emit glProblem(tr("No OpenGL context could be created for the heatmap (OpenGL 3.3 core is needed)"));
  }
}

// ---- overlays (QPainter, logical px) ---------------------------------------------------------

void HeatmapView::drawOverlays(QPainter& painter, const Layout& l) {
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setRenderHint(QPainter::TextAntialiasing, true);
  // Instead of the matrix, say why there is none.
  const QString message = !gl_failure_.isEmpty()     ? gl_failure_
                          : !data_problem_.isEmpty() ? data_problem_
                          : !hasMatrix()             ? tr("No data to show")
                                                     : QString();
  if (!message.isEmpty()) {
    drawMessage(painter, message);
    return;
  }
  if (l.plot.isEmpty()) return;
  drawTitle(painter, l);
  drawRowLabels(painter, l);
  drawColumnLabels(painter, l);
  drawColorbar(painter, l);
  drawHighlight(painter, l);
  drawHoveredCell(painter, l);
}

void HeatmapView::drawMessage(QPainter& painter, const QString& text) {
  painter.setFont(label_font_);
  painter.setPen(palette().color(QPalette::PlaceholderText));
  painter.drawText(rect().adjusted(20, 20, -20, -20), Qt::AlignCenter | Qt::TextWordWrap, text);
}

void HeatmapView::drawTitle(QPainter& painter, const Layout& l) {
  if (data_->title.isEmpty()) return;
  const QFontMetricsF fm(title_font_);
  const double height_px = fm.height();
  const double available = width() - 2 * kPad;
  const QRectF box(kPad, l.plot.top() - kGap - height_px, available, height_px);
  painter.setFont(title_font_);
  painter.setPen(palette().color(QPalette::Text));
  // Centred over the matrix when it fits there, otherwise over the whole width.
  const QString text = fm.elidedText(data_->title, Qt::ElideRight, available);
  const double advance = fm.horizontalAdvance(text);
  const double left = std::clamp(l.plot.center().x() - advance / 2, kPad, kPad + available - advance);
  painter.drawText(QRectF(left, box.top(), advance + 1, height_px), Qt::AlignLeft | Qt::AlignVCenter, text);
}

void HeatmapView::drawRowLabels(QPainter& painter, const Layout& l) {
  const QFontMetricsF fm(label_font_);
  const double line = fm.height();
  painter.setFont(label_font_);
  const QColor text_colour = palette().color(QPalette::Text);
  const double right = l.plot.left() - kGap;
  const int stride = labelStride(l.cell, line);
  const auto [first, last] = visibleRange(l.origin.y(), l.cell, l.plot.top(), l.plot.bottom(), data_->rows);
  painter.setPen(text_colour);
  for (int r = (first + stride - 1) / stride * stride; r <= last; r += stride) {
    if (r == highlighted_) continue;  // drawn below, on top of its neighbours
    const double centre = l.origin.y() + (r + 0.5) * l.cell;
    const QString text = fm.elidedText(rowLabel(r), Qt::ElideRight, l.row_label_width);
    painter.drawText(QRectF(right - l.row_label_width, centre - line / 2, l.row_label_width, line),
                     Qt::AlignRight | Qt::AlignVCenter, text);
  }
  if (highlighted_ >= first && highlighted_ <= last) {
    const double centre = l.origin.y() + (highlighted_ + 0.5) * l.cell;
    const QString text = fm.elidedText(rowLabel(highlighted_), Qt::ElideRight, l.row_label_width);
    const double advance = fm.horizontalAdvance(text);
    const QRectF box(right - advance - 2, centre - line / 2, advance + 4, line);
    painter.fillRect(box, palette().color(QPalette::Highlight));
    painter.setPen(palette().color(QPalette::HighlightedText));
    painter.drawText(box, Qt::AlignCenter, text);
  }
  // Axis title, rotated, centred on the visible rows.
  painter.save();
  painter.setPen(palette().color(QPalette::PlaceholderText));
  painter.translate(right - l.row_label_width - kGap - line / 2, l.plot.center().y());
  painter.rotate(-90);
  painter.drawText(QRectF(-l.plot.height() / 2, -line / 2, l.plot.height(), line), Qt::AlignCenter,
                   fm.elidedText(data_->row_axis, Qt::ElideRight, std::max(l.plot.height(), 40.0)));
  painter.restore();
}

void HeatmapView::drawColumnLabels(QPainter& painter, const Layout& l) {
  const QFontMetricsF fm(label_font_);
  const double line = fm.height();
  painter.setFont(label_font_);
  const double top = l.plot.bottom() + kGap;
  const double length = l.col_label_height;
  const int stride = labelStride(l.cell, line);
  const auto [first, last] = visibleRange(l.origin.x(), l.cell, l.plot.left(), l.plot.right(), data_->cols);
  // Rotated a quarter turn: the text reads upwards and ends just below the matrix. In the
  // rotated frame x runs up the screen, so the label occupies x in [-length, 0].
  const auto drawLabel = [&](int c, bool highlighted) {
    const double centre = l.origin.x() + (c + 0.5) * l.cell;
    const QString text = fm.elidedText(colLabel(c), Qt::ElideRight, length);
    painter.save();
    painter.translate(centre, top);
    painter.rotate(-90);
    if (highlighted) {
      const double advance = fm.horizontalAdvance(text);
      const QRectF box(-advance - 2, -line / 2, advance + 4, line);
      painter.fillRect(box, palette().color(QPalette::Highlight));
      painter.setPen(palette().color(QPalette::HighlightedText));
      painter.drawText(box, Qt::AlignCenter, text);
    } else {
      painter.setPen(palette().color(QPalette::Text));
      painter.drawText(QRectF(-length, -line / 2, length, line), Qt::AlignRight | Qt::AlignVCenter, text);
    }
    painter.restore();
  };
  for (int c = (first + stride - 1) / stride * stride; c <= last; c += stride) {
    if (c != highlighted_) drawLabel(c, false);
  }
  if (highlighted_ >= first && highlighted_ <= last) drawLabel(highlighted_, true);
  // Axis title under the labels, centred on the visible columns.
  painter.setPen(palette().color(QPalette::PlaceholderText));
  const QRectF title_box(l.plot.left(), top + length + kGap, l.plot.width(), line);
  painter.drawText(title_box.adjusted(-100, 0, 100, 0), Qt::AlignHCenter | Qt::AlignTop, data_->col_axis);
}

void HeatmapView::drawColorbar(QPainter& painter, const Layout& l) {
  const QFontMetricsF fm(label_font_);
  const double line = fm.height();
  const QRectF& bar = l.colorbar;
  const double bar_height = bar.height();
  painter.save();
  painter.setRenderHint(QPainter::SmoothPixmapTransform, false);  // 256 flat steps, like the texture
  painter.drawImage(bar, colorbar_image_);
  painter.restore();
  const QColor text_colour = palette().color(QPalette::Text);
  painter.setPen(QPen(text_colour, 1));
  painter.setBrush(Qt::NoBrush);
  painter.drawRect(bar);
  painter.setFont(label_font_);
  const float mid = 0.5f * (data_->vmin + data_->vmax);
  const std::array<std::pair<float, double>, 3> ticks = {{{data_->vmax, bar.top()}, {mid, bar.center().y()}, {data_->vmin, bar.bottom()}}};
  for (const auto& [value, y] : ticks) {
    painter.drawLine(QPointF(bar.right(), y), QPointF(bar.right() + kTickLength, y));
    painter.drawText(QRectF(bar.right() + kTickLength + kGap, y - line / 2, l.tick_width + 2, line),
                     Qt::AlignLeft | Qt::AlignVCenter, formatTick(value));
  }
  painter.save();
  painter.setPen(palette().color(QPalette::PlaceholderText));
  painter.translate(bar.right() + kTickLength + kGap + l.tick_width + kGap + line / 2, bar.center().y());
  painter.rotate(-90);
  painter.drawText(QRectF(-bar_height / 2, -line / 2, bar_height, line), Qt::AlignCenter,
                   fm.elidedText(data_->value_label, Qt::ElideRight, bar_height));
  painter.restore();
}

// The token's row and column, outlined twice (dark outside, light inside) so the outline shows
// on every colour of every colormap.
void HeatmapView::drawHighlight(QPainter& painter, const Layout& l) {
  if (highlighted_ < 0) return;
  std::vector<QRectF> bands;
  if (highlighted_ < data_->rows) {
    bands.emplace_back(l.plot.left(), l.origin.y() + highlighted_ * l.cell, l.plot.width(), l.cell);
  }
  if (highlighted_ < data_->cols) {
    bands.emplace_back(l.origin.x() + highlighted_ * l.cell, l.plot.top(), l.cell, l.plot.height());
  }
  painter.save();
  painter.setClipRect(l.plot.adjusted(-2, -2, 2, 2));
  painter.setBrush(Qt::NoBrush);
  for (const QRectF& band : bands) {
    if (!band.intersects(l.plot)) continue;
    painter.setPen(QPen(QColor(0, 0, 0, 220), 3.0));
    painter.drawRect(band);
    painter.setPen(QPen(QColor(255, 255, 255), 1.5));
    painter.drawRect(band);
  }
  painter.restore();
}

void HeatmapView::drawHoveredCell(QPainter& painter, const Layout& l) {
  if (hover_cell_.x() < 0 || l.cell < 4.0) return;
  const QRectF cell(l.origin.x() + hover_cell_.y() * l.cell, l.origin.y() + hover_cell_.x() * l.cell, l.cell, l.cell);
  const QRgb under = Colormap::get(colormap_).color(data_->at(hover_cell_.x(), hover_cell_.y()), data_->vmin, data_->vmax);
  painter.save();
  painter.setClipRect(l.plot);
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(Colormap::contrasting(under), 1.5));
  painter.drawRect(cell.adjusted(0.75, 0.75, -0.75, -0.75));
  painter.restore();
}

// ---- hover inspector (Dear ImGui inside the GL canvas) ---------------------------------------

void HeatmapView::drawInspector() {
  const int row = hover_cell_.x();
  const int col = hover_cell_.y();
  const QByteArray heading = QStringLiteral("%1 #%2 %3 \u2192 %4 #%5 %6")
                                 .arg(data_->row_axis).arg(row).arg(QString::fromUtf8(quoted(rowLabel(row))))
                                 .arg(data_->col_axis).arg(col).arg(QString::fromUtf8(quoted(colLabel(col))))
                                 .toUtf8();
  const QByteArray weight = QStringLiteral("%1: %2")
                                .arg(data_->value_label, QString::number(static_cast<double>(data_->at(row, col)), 'g', 4))
                                .toUtf8();
  const QByteArray row_max = QStringLiteral("row max: %1 at %2 #%3 %4")
                                 .arg(QString::number(static_cast<double>(hover_row_max_), 'g', 4), data_->col_axis)
                                 .arg(hover_row_argmax_).arg(QString::fromUtf8(quoted(colLabel(hover_row_argmax_))))
                                 .toUtf8();
  // Near the cursor, flipped to the other side near the right and bottom edges.
  const bool flip_x = mouse_pos_.x() > width() * 0.6;
  const bool flip_y = mouse_pos_.y() > height() * 0.6;
  const ImVec2 anchor(static_cast<float>(mouse_pos_.x() + (flip_x ? -12.0 : 16.0)),
                      static_cast<float>(mouse_pos_.y() + (flip_y ? -12.0 : 18.0)));
  const ImVec2 pivot(flip_x ? 1.0f : 0.0f, flip_y ? 1.0f : 0.0f);
  imgui_.renderFrame(QSizeF(size()), devicePixelRatioF(), [&] {
    ImGui::SetNextWindowPos(anchor, ImGuiCond_Always, pivot);
    ImGui::SetNextWindowBgAlpha(0.92f);
    const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_AlwaysAutoResize |
                                   ImGuiWindowFlags_NoInputs | ImGuiWindowFlags_NoNav |
                                   ImGuiWindowFlags_NoFocusOnAppearing | ImGuiWindowFlags_NoSavedSettings;
    if (ImGui::Begin("##inspector", nullptr, flags)) {
      ImGui::TextUnformatted(heading.constData());
      ImGui::Separator();
      ImGui::TextUnformatted(weight.constData());
      ImGui::TextDisabled("%s", row_max.constData());
    }
    ImGui::End();
  });
}

void HeatmapView::updateHover(QPointF pos) {
  mouse_pos_ = pos;
  const QPoint cell = cellAt(pos);
  const bool changed = cell != hover_cell_;
  if (changed) {
    hover_cell_ = cell;
    findHoveredRowMax();
    emit tokenHovered(cell.x(), cell.y());
  }
  if (changed || cell.x() >= 0) update();  // the inspector follows the cursor
}

// The hovered row's maximum for the inspector: one scan of one row, when the hover moves.
void HeatmapView::findHoveredRowMax() {
  if (hover_cell_.x() < 0 || !hasMatrix()) return;
  const float* begin = data_->values.data() + static_cast<std::size_t>(hover_cell_.x()) * static_cast<std::size_t>(data_->cols);
  const float* best = std::max_element(begin, begin + data_->cols);
  hover_row_max_ = *best;
  hover_row_argmax_ = static_cast<int>(best - begin);
}

void HeatmapView::clearHover() {
  mouse_inside_ = false;
  if (hover_cell_.x() < 0) return;
  hover_cell_ = QPoint(-1, -1);
  emit tokenHovered(-1, -1);
  update();
}

// ---- input -----------------------------------------------------------------------------------

void HeatmapView::mouseMoveEvent(QMouseEvent* event) {
  const QPointF pos = event->position();
  imgui_.mouseMoved(pos, event->modifiers());
  mouse_inside_ = rect().contains(pos.toPoint());
  if (left_pressed_) {
    if (!dragging_ && (pos - press_pos_).manhattanLength() >= QApplication::startDragDistance()) {
      dragging_ = true;
      setCursor(Qt::ClosedHandCursor);
    }
    if (dragging_) {
      const QPointF delta = pos - last_drag_pos_;
      last_drag_pos_ = pos;
      panBy(delta);
    }
  }
  if (mouse_inside_) {
    updateHover(pos);
  } else {
    clearHover();
  }
}

void HeatmapView::mousePressEvent(QMouseEvent* event) {
  imgui_.mouseButton(event->button(), true, event->modifiers());
  if (event->button() == Qt::LeftButton) {
    left_pressed_ = true;
    dragging_ = false;
    press_pos_ = last_drag_pos_ = event->position();
  }
}

void HeatmapView::mouseReleaseEvent(QMouseEvent* event) {
  imgui_.mouseButton(event->button(), false, event->modifiers());
  if (event->button() != Qt::LeftButton) return;
  if (!dragging_) {
    const QPoint cell = cellAt(event->position());
    if (cell.x() >= 0) emit cellClicked(cell.x(), cell.y());
  }
  left_pressed_ = false;
  if (dragging_) {
    dragging_ = false;
    setCursor(Qt::CrossCursor);
    update();
  }
}

void HeatmapView::mouseDoubleClickEvent(QMouseEvent* event) {
  imgui_.mouseButton(event->button(), true, event->modifiers());
  if (event->button() == Qt::LeftButton) resetView();
}

void HeatmapView::wheelEvent(QWheelEvent* event) {
  imgui_.wheel(event->angleDelta());
  const double notches = event->angleDelta().y() / 120.0;
  if (notches == 0.0 || !hasMatrix()) {
    event->ignore();
    return;
  }
  zoomAt(std::pow(kZoomPerNotch, notches), event->position());
  event->accept();
}

void HeatmapView::keyPressEvent(QKeyEvent* event) {
  imgui_.key(*event, true);
  const Layout l = layout();
  const QPointF centre = l.plot.isEmpty() ? QPointF(rect().center()) : l.plot.center();
  const double step_x = kPanPerKey * l.area.width();
  const double step_y = kPanPerKey * l.area.height();
  switch (event->key()) {
    case Qt::Key_Plus:
    case Qt::Key_Equal: zoomAt(kZoomPerKey, centre); break;
    case Qt::Key_Minus: zoomAt(1.0 / kZoomPerKey, centre); break;
    case Qt::Key_0: resetView(); break;
    // An arrow moves the view that way, so the matrix moves the other way.
    case Qt::Key_Left: panBy(QPointF(step_x, 0)); break;
    case Qt::Key_Right: panBy(QPointF(-step_x, 0)); break;
    case Qt::Key_Up: panBy(QPointF(0, step_y)); break;
    case Qt::Key_Down: panBy(QPointF(0, -step_y)); break;
    default: QOpenGLWidget::keyPressEvent(event); return;
  }
  event->accept();
}

void HeatmapView::keyReleaseEvent(QKeyEvent* event) {
  imgui_.key(*event, false);
  QOpenGLWidget::keyReleaseEvent(event);
}

void HeatmapView::leaveEvent(QEvent* event) {
  imgui_.mouseLeft();
  clearHover();
  QOpenGLWidget::leaveEvent(event);
}

void HeatmapView::focusInEvent(QFocusEvent* event) {
  imgui_.focusChanged(true);
  QOpenGLWidget::focusInEvent(event);
}

void HeatmapView::focusOutEvent(QFocusEvent* event) {
  imgui_.focusChanged(false);
  QOpenGLWidget::focusOutEvent(event);
}

void HeatmapView::changeEvent(QEvent* event) {
  switch (event->type()) {
    case QEvent::FontChange: updateFonts(); update(); break;
    case QEvent::PaletteChange:
    case QEvent::StyleChange: imgui_.setDarkStyle(isDark(palette())); update(); break;
    default: break;
  }
  QOpenGLWidget::changeEvent(event);
}

}  // namespace attnlab
