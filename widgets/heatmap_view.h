// The main heatmap: one matrix (queries × keys) drawn with OpenGL 3.3 as a float texture through
// shaders/heatmap.{vert,frag}, QPainter overlays (token labels, axis titles, colorbar, title,
// linked highlight) and a Dear ImGui hover inspector drawn inside the GL canvas.
//
// The matrix is uploaded once per setData(); zoom and pan only change the uniforms that say
// which part of it the single quad shows. Colours come from Colormap's table, the same one the
// exported figures use, so screen and paper match. Nothing numeric happens here beyond mapping
// values to colours and finding the hovered row's maximum for the inspector.
#pragma once

#include <QElapsedTimer>
#include <QFont>
#include <QImage>
#include <QOpenGLExtraFunctions>
#include <QOpenGLWidget>
#include <QPoint>
#include <QPointF>
#include <QRectF>
#include <QString>
#include <QSurfaceFormat>
#include <memory>

#include "colormap.h"
#include "heatmap_data.h"
#include "imgui_bridge.h"

class QOpenGLShaderProgram;

namespace attnlab {

class HeatmapView : public QOpenGLWidget, protected QOpenGLExtraFunctions {
  Q_OBJECT

 public:
  explicit HeatmapView(QWidget* parent = nullptr);
  ~HeatmapView() override;

  // Empty when an OpenGL 3.3 core context can be made here; otherwise one line saying why.
  // Ask before creating a view: Qt 6.4 cannot show any QOpenGLWidget without OpenGL (it
  // crashes while compositing the window), so the app shows a fallback instead.
  static QString openGLUnavailableReason();
  // The surface format every GL view of the app uses (OpenGL 3.3 core). Call before the
  // QApplication is created so that all GL widgets share it.
  static QSurfaceFormat surfaceFormat();
  static void useAsDefaultFormat() { QSurfaceFormat::setDefaultFormat(surfaceFormat()); }

  // Shows `data` (nullptr: nothing) in data->colormap. The view's zoom is kept when the shape is
  // unchanged (live re-runs while typing) and reset otherwise.
  void setData(HeatmapDataPtr data);
  HeatmapDataPtr data() const { return data_; }
  // Overrides the data's colormap until the next setData().
  void setColormap(ColormapId id);
  ColormapId colormap() const { return colormap_; }
  // Marks row `index` and column `index` (one token as query and as key); -1 marks nothing.
  void setHighlightedToken(int index);
  int highlightedToken() const { return highlighted_; }

  void resetView();
  // Zooms by `factor` keeping the matrix point under `widget_pos` (logical px) where it is.
  void zoomAt(double factor, QPointF widget_pos);
  // Moves the matrix by `widget_delta` logical px (clamped so it stays in view).
  void panBy(QPointF widget_delta);
  // 1 = the whole matrix fits; larger = magnified.
  double zoom() const;
  double maxZoom() const;

  // Where the visible part of the matrix is drawn, logical px; empty without data.
  QRectF plotRect() const;
  // Where the colorbar's colour ramp is drawn (maximum at the top), logical px.
  QRectF colorbarRect() const;
  // Where cell (row, col) is drawn, logical px (may lie outside plotRect()).
  QRectF cellRect(int row, int col) const;
  // The cell under `widget_pos` as QPoint(row, col): x() is the row (query), y() the column
  // (key); (-1, -1) outside the matrix.
  QPoint cellAt(QPointF widget_pos) const;

  // When on, paintGL ends with glFinish and its duration is kept (for the benchmark).
  void setMeasureFrameTime(bool on) { measure_frame_time_ = on; }
  double lastFrameMs() const { return last_frame_ms_; }
  // GL_MAX_TEXTURE_SIZE of this widget's context; 0 before GL is initialised.
  int maxTextureSize() const { return max_texture_size_; }

  QSize sizeHint() const override { return {600, 500}; }
  QSize minimumSizeHint() const override { return {200, 160}; }

 signals:
  // The cell under the cursor changed; (-1, -1) when the cursor leaves the matrix.
  void tokenHovered(int row, int col);
  void cellClicked(int row, int col);
  // One line: a shader failed, the matrix exceeds GL_MAX_TEXTURE_SIZE (or its values do not
  // match rows × cols), or there is no usable GL context. Once per cause, not once per frame.
  void glProblem(const QString& message);

 protected:
  void initializeGL() override;
  void paintGL() override;
  void paintEvent(QPaintEvent* event) override;

  void mouseMoveEvent(QMouseEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseReleaseEvent(QMouseEvent* event) override;
  void mouseDoubleClickEvent(QMouseEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  void keyReleaseEvent(QKeyEvent* event) override;
  void leaveEvent(QEvent* event) override;
  void focusInEvent(QFocusEvent* event) override;
  void focusOutEvent(QFocusEvent* event) override;
  void changeEvent(QEvent* event) override;

 private:
  // Where things go for the current size, fonts, data and view; all in logical px.
  struct Layout {
    QRectF area;          // room for the matrix
    double base_cell = 0; // cell size at zoom 1 (whole matrix fits)
    double zoom = 1;      // clamped to [1, max_zoom]
    double max_zoom = 1;
    double cell = 0;      // cell size now
    QPointF centre;       // matrix point (col, row) at the centre of the area, in cells
    QPointF origin;       // top-left corner of cell (0, 0)
    QRectF plot;          // visible part of the matrix
    QRectF colorbar;
    double row_label_width = 0;
    double col_label_height = 0;  // column labels are rotated: their length runs downwards
    double tick_width = 0;
  };

  bool hasMatrix() const;
  Layout layout() const;
  void clampView();
  void afterViewChange();
  void updateFonts();
  void measureLabels();
  void rebuildColorbarImage();
  QString sizeProblem() const;
  void reportProblem(const QString& message);

  // GL side.
  void releaseGL();
  bool buildProgram();
  void prepareBoundTexture();
  void uploadMatrix();
  void uploadColormap();
  void drawMatrix(const Layout& l);
  void drawInspector();

  // QPainter overlays.
  void drawOverlays(QPainter& painter, const Layout& l);
  void drawTitle(QPainter& painter, const Layout& l);
  void drawRowLabels(QPainter& painter, const Layout& l);
  void drawColumnLabels(QPainter& painter, const Layout& l);
  void drawColorbar(QPainter& painter, const Layout& l);
  void drawHighlight(QPainter& painter, const Layout& l);
  void drawHoveredCell(QPainter& painter, const Layout& l);
  void drawMessage(QPainter& painter, const QString& text);

  // Hover and input.
  void updateHover(QPointF pos);
  void findHoveredRowMax();
  void clearHover();
  QString rowLabel(int row) const;
  QString colLabel(int col) const;

  HeatmapDataPtr data_;
  ColormapId colormap_ = ColormapId::Viridis;
  int highlighted_ = -1;

  double zoom_ = 1.0;
  QPointF center_;  // matrix point (col, row), in cells, shown at the centre of the area

  QFont label_font_;
  QFont title_font_;
  double max_row_label_advance_ = 0;  // widest row label, logical px
  double max_col_label_advance_ = 0;
  QImage colorbar_image_;             // 1 × 256, top = maximum

  // Hover, drag and inspector state.
  QPoint hover_cell_{-1, -1};
  QPointF mouse_pos_;
  bool mouse_inside_ = false;
  float hover_row_max_ = 0;
  int hover_row_argmax_ = -1;
  bool left_pressed_ = false;
  bool dragging_ = false;
  QPointF press_pos_;
  QPointF last_drag_pos_;

  // GL state; valid between initializeGL and releaseGL.
  std::unique_ptr<QOpenGLShaderProgram> program_;
  GLuint matrix_texture_ = 0;
  GLuint colormap_texture_ = 0;
  GLuint vertex_array_ = 0;
  int uniform_quad_ = -1;
  int uniform_cells_ = -1;
  int uniform_vmin_ = -1;
  int uniform_vmax_ = -1;
  int max_texture_size_ = 0;
  bool gl_ready_ = false;
  bool matrix_dirty_ = true;
  bool matrix_uploaded_ = false;
  bool colormap_dirty_ = true;
  QString gl_failure_;        // shown in the view instead of the matrix
  QString data_problem_;      // too large or malformed data, shown in the view
  bool problem_reported_ = false;
  bool no_context_reported_ = false;

  ImGuiBridge imgui_;
  bool measure_frame_time_ = false;
  double last_frame_ms_ = 0;
};

}  // namespace attnlab
