#include "imgui_bridge.h"

#include <imgui/imgui.h>
#include <imgui/backends/imgui_impl_opengl3.h>

#include <QFileInfo>
#include <QKeyEvent>
#include <algorithm>
#include <cfloat>

namespace attnlab {
namespace {

constexpr float kFontLogicalPx = 14.0f;
constexpr const char* kFontPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
// ImGui rejects a zero time step; frames rendered back to back within one paint use this.
constexpr float kMinDeltaSeconds = 1e-4f;
// Text typed while no frame runs would queue up forever; ImGui only needs the recent part.
constexpr int kMaxQueuedCharacters = 256;

// Token labels are arbitrary Unicode: Latin with accents (German umlauts), Greek, Cyrillic,
// punctuation and arrows ("→" in the inspector), box and block elements (SentencePiece's "▁").
// All of these are in DejaVu Sans. Pairs of first and last code point, zero-terminated.
const ImWchar kGlyphRanges[] = {
    0x0020, 0x024F,  // Basic Latin, Latin-1, Latin Extended-A and -B
    0x0370, 0x03FF,  // Greek
    0x0400, 0x04FF,  // Cyrillic
    0x2000, 0x206F,  // General punctuation (dashes, quotes, ellipsis)
    0x2190, 0x21FF,  // Arrows
    0x2200, 0x22FF,  // Mathematical operators
    0x2500, 0x259F,  // Box drawing and block elements
    0,
};

// Our own key indices into io.KeysDown[]: the ImGuiKey_* value itself.
int imguiKeyFor(const QKeyEvent& event) {
  switch (event.key()) {
    case Qt::Key_Tab: return ImGuiKey_Tab;
    case Qt::Key_Left: return ImGuiKey_LeftArrow;
    case Qt::Key_Right: return ImGuiKey_RightArrow;
    case Qt::Key_Up: return ImGuiKey_UpArrow;
    case Qt::Key_Down: return ImGuiKey_DownArrow;
    case Qt::Key_PageUp: return ImGuiKey_PageUp;
    case Qt::Key_PageDown: return ImGuiKey_PageDown;
    case Qt::Key_Home: return ImGuiKey_Home;
    case Qt::Key_End: return ImGuiKey_End;
    case Qt::Key_Insert: return ImGuiKey_Insert;
    case Qt::Key_Delete: return ImGuiKey_Delete;
    case Qt::Key_Backspace: return ImGuiKey_Backspace;
    case Qt::Key_Space: return ImGuiKey_Space;
    case Qt::Key_Return: return ImGuiKey_Enter;
    case Qt::Key_Enter:
      return event.modifiers().testFlag(Qt::KeypadModifier) ? ImGuiKey_KeyPadEnter : ImGuiKey_Enter;
    case Qt::Key_Escape: return ImGuiKey_Escape;
    case Qt::Key_A: return ImGuiKey_A;
    case Qt::Key_C: return ImGuiKey_C;
    case Qt::Key_V: return ImGuiKey_V;
    case Qt::Key_X: return ImGuiKey_X;
    case Qt::Key_Y: return ImGuiKey_Y;
    case Qt::Key_Z: return ImGuiKey_Z;
    default: return -1;
  }
}

int imguiButtonFor(Qt::MouseButton button) {
  switch (button) {
    case Qt::LeftButton: return 0;
    case Qt::RightButton: return 1;
    case Qt::MiddleButton: return 2;
    case Qt::BackButton: return 3;
    case Qt::ForwardButton: return 4;
    default: return -1;
  }
}

}  // namespace

ImGuiBridge::ImGuiBridge() {
  ImGuiContext* previous = ImGui::GetCurrentContext();
  context_ = ImGui::CreateContext();
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // nothing to persist; never write imgui.ini into the working directory
  io.LogFilename = nullptr;
  io.BackendPlatformName = "attnlab_qt_bridge";
  for (int k = 0; k < ImGuiKey_COUNT; ++k) io.KeyMap[k] = k;
  io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
  ImGui::StyleColorsDark();
  ImGuiStyle& style = ImGui::GetStyle();
  style.WindowRounding = 4.0f;
  style.WindowPadding = ImVec2(8.0f, 6.0f);
  // CreateContext makes the new context current only when none was; leave others as we found them.
  ImGui::SetCurrentContext(previous != nullptr ? previous : context_);
  clock_.start();
}

ImGuiBridge::~ImGuiBridge() {
  // The owner calls shutdown() with its GL context current before this; without GL we can only
  // drop the CPU side (DestroyContext does not touch GL).
  if (context_ != nullptr) ImGui::DestroyContext(context_);
}

void ImGuiBridge::makeCurrent() const { ImGui::SetCurrentContext(context_); }

bool ImGuiBridge::initialize(double device_pixel_ratio) {
  makeCurrent();
  if (renderer_ready_) return true;
  loadFont(device_pixel_ratio);
  // Compile its shaders and upload the font now, so the first hover does not stall a frame.
  if (!ImGui_ImplOpenGL3_Init("#version 330 core") || !ImGui_ImplOpenGL3_CreateDeviceObjects()) {
    last_error_ = QStringLiteral("Dear ImGui's OpenGL3 renderer could not start (no GL 3.3 functions)");
    return false;
  }
  renderer_ready_ = true;
  last_error_.clear();
  return true;
}

void ImGuiBridge::shutdown() {
  makeCurrent();
  if (!renderer_ready_) return;
  ImGui_ImplOpenGL3_Shutdown();
  renderer_ready_ = false;
}

void ImGuiBridge::loadFont(double device_pixel_ratio) {
  ImGuiIO& io = ImGui::GetIO();
  io.Fonts->Clear();
  const float ratio = static_cast<float>(device_pixel_ratio > 0.0 ? device_pixel_ratio : 1.0);
  ImFont* font = nullptr;
  if (QFileInfo::exists(QString::fromLatin1(kFontPath))) {
    // Rasterise at device resolution, then scale back to logical size: crisp on high-DPI.
    font = io.Fonts->AddFontFromFileTTF(kFontPath, kFontLogicalPx * ratio, nullptr, kGlyphRanges);
  }
  if (font != nullptr) {
    io.FontGlobalScale = 1.0f / ratio;
  } else {
    io.Fonts->AddFontDefault();  // ASCII bitmap font, 13 px; scaled up rather than rasterised
    io.FontGlobalScale = 1.0f;
  }
  font_pixel_ratio_ = device_pixel_ratio;
}

void ImGuiBridge::setDarkStyle(bool dark) {
  makeCurrent();
  if (dark) {
    ImGui::StyleColorsDark();
  } else {
    ImGui::StyleColorsLight();
  }
}

void ImGuiBridge::setModifiers(Qt::KeyboardModifiers modifiers) {
  ImGuiIO& io = ImGui::GetIO();
  io.KeyCtrl = modifiers.testFlag(Qt::ControlModifier);
  io.KeyShift = modifiers.testFlag(Qt::ShiftModifier);
  io.KeyAlt = modifiers.testFlag(Qt::AltModifier);
  io.KeySuper = modifiers.testFlag(Qt::MetaModifier);
}

void ImGuiBridge::mouseMoved(QPointF pos, Qt::KeyboardModifiers modifiers) {
  makeCurrent();
  ImGui::GetIO().MousePos = ImVec2(static_cast<float>(pos.x()), static_cast<float>(pos.y()));
  setModifiers(modifiers);
}

void ImGuiBridge::mouseButton(Qt::MouseButton button, bool pressed, Qt::KeyboardModifiers modifiers) {
  makeCurrent();
  const int index = imguiButtonFor(button);
  if (index >= 0) ImGui::GetIO().MouseDown[index] = pressed;
  setModifiers(modifiers);
}

void ImGuiBridge::wheel(QPoint angle_delta) {
  makeCurrent();
  ImGuiIO& io = ImGui::GetIO();
  io.MouseWheel += static_cast<float>(angle_delta.y()) / 120.0f;
  io.MouseWheelH += static_cast<float>(angle_delta.x()) / 120.0f;
}

void ImGuiBridge::mouseLeft() {
  makeCurrent();
  ImGuiIO& io = ImGui::GetIO();
  io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
  for (bool& down : io.MouseDown) down = false;
}

void ImGuiBridge::key(const QKeyEvent& event, bool pressed) {
  makeCurrent();
  ImGuiIO& io = ImGui::GetIO();
  setModifiers(event.modifiers());
  const int index = imguiKeyFor(event);
  if (index >= 0) io.KeysDown[index] = pressed;
  if (!pressed) return;
  if (io.InputQueueCharacters.Size > kMaxQueuedCharacters) io.ClearInputCharacters();
  for (const char32_t code_point : event.text().toUcs4()) {
    if (code_point >= 0x20 && code_point != 0x7f) io.AddInputCharacter(code_point);
  }
}

void ImGuiBridge::focusChanged(bool focused) {
  makeCurrent();
  ImGui::GetIO().AddFocusEvent(focused);
}

bool ImGuiBridge::wantsMouse() const {
  makeCurrent();
  return ImGui::GetIO().WantCaptureMouse;
}

float ImGuiBridge::secondsSinceLastFrame() {
  const qint64 now = clock_.nsecsElapsed();
  const float seconds = static_cast<float>(now - last_frame_ns_) * 1e-9f;
  last_frame_ns_ = now;
  return std::max(seconds, kMinDeltaSeconds);
}

void ImGuiBridge::renderFrame(QSizeF logical_size, double device_pixel_ratio, const std::function<void()>& build) {
  makeCurrent();
  if (!renderer_ready_) return;
  ImGuiIO& io = ImGui::GetIO();
  if (device_pixel_ratio != font_pixel_ratio_) {
    // Moved to a screen with another pixel ratio: rasterise the font again for it.
    ImGui_ImplOpenGL3_DestroyFontsTexture();
    loadFont(device_pixel_ratio);
    ImGui_ImplOpenGL3_CreateFontsTexture();
  }
  io.DisplaySize = ImVec2(static_cast<float>(logical_size.width()), static_cast<float>(logical_size.height()));
  const auto scale = static_cast<float>(device_pixel_ratio);
  io.DisplayFramebufferScale = ImVec2(scale, scale);

  // We paint on demand, not continuously. An auto-sized ImGui window measures its content one
  // frame and takes that size the next (a new one stays hidden for its first frame), so settle
  // the layout with a frame that is not drawn, then draw the second.
  io.DeltaTime = secondsSinceLastFrame();
  ImGui_ImplOpenGL3_NewFrame();
  ImGui::NewFrame();
  build();
  ImGui::EndFrame();

  io.DeltaTime = kMinDeltaSeconds;
  ImGui_ImplOpenGL3_NewFrame();
  ImGui::NewFrame();
  build();
  ImGui::Render();
  ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
}

}  // namespace attnlab
