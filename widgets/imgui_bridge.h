// The platform half of Dear ImGui for one Qt widget. Qt input (mouse, wheel, keys, text),
// the widget's logical size, its device pixel ratio and the time between frames go into an
// ImGui context owned by this object; the renderer half is ImGui's stock OpenGL3 backend from
// libimgui-dev, reused as is. ImGui 1.86 still takes input through the old io fields
// (io.MousePos, io.MouseDown[], io.KeysDown[] + io.KeyMap[]), which is what this bridge fills.
//
// One context per widget: every method makes this object's context current first, so several
// widgets with a bridge each can live in one process. Calls that touch GL (initialize,
// renderFrame, shutdown) need the widget's GL context current.
#pragma once

#include <QElapsedTimer>
#include <QPoint>
#include <QPointF>
#include <QSizeF>
#include <QString>
#include <functional>

class QKeyEvent;
struct ImGuiContext;

namespace attnlab {

class ImGuiBridge {
 public:
  ImGuiBridge();
  ~ImGuiBridge();
  ImGuiBridge(const ImGuiBridge&) = delete;
  ImGuiBridge& operator=(const ImGuiBridge&) = delete;

  // Loads the font for this device pixel ratio and starts the OpenGL3 renderer. GL current.
  // Returns false (and keeps a message in lastError()) when the renderer cannot start.
  bool initialize(double device_pixel_ratio);
  // Stops the renderer and frees its GL objects. GL current. Safe to call twice.
  void shutdown();
  bool ready() const { return renderer_ready_; }
  QString lastError() const { return last_error_; }

  // Colours of ImGui windows: dark on dark themes, light on light ones.
  void setDarkStyle(bool dark);

  // Input, positions in the widget's logical pixels.
  void mouseMoved(QPointF pos, Qt::KeyboardModifiers modifiers);
  void mouseButton(Qt::MouseButton button, bool pressed, Qt::KeyboardModifiers modifiers);
  void wheel(QPoint angle_delta);  // Qt's eighths of a degree; 120 is one notch
  void mouseLeft();
  void key(const QKeyEvent& event, bool pressed);
  void focusChanged(bool focused);

  // One frame: `build` issues the ImGui:: calls (windows, text). GL current.
  // `logical_size` in logical pixels; the framebuffer is logical_size * device_pixel_ratio.
  void renderFrame(QSizeF logical_size, double device_pixel_ratio, const std::function<void()>& build);

  // True while ImGui wants the mouse (the cursor is over one of its windows).
  bool wantsMouse() const;

 private:
  void makeCurrent() const;
  void loadFont(double device_pixel_ratio);
  void setModifiers(Qt::KeyboardModifiers modifiers);
  float secondsSinceLastFrame();

  ImGuiContext* context_ = nullptr;
  bool renderer_ready_ = false;
  double font_pixel_ratio_ = 0.0;  // device pixel ratio the font atlas was rasterised for
  QElapsedTimer clock_;
  qint64 last_frame_ns_ = 0;
  QString last_error_;
};

}  // namespace attnlab
