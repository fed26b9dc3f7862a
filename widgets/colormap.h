// The colormap tables (assets/colormaps/*.csv, embedded as Qt resources). One table feeds both
// the GL heatmap texture and the QPainter figures, so screen and paper show the same colours.
#pragma once

#include <QColor>
#include <QString>
#include <QStringList>
#include <array>

namespace attnlab {

enum class ColormapId { Viridis, Magma, Cividis, Coolwarm };

class Colormap {
 public:
  static constexpr int kSize = 256;

  static const Colormap& get(ColormapId id);
  // "viridis", "magma", "cividis", "coolwarm"; nullptr for an unknown name.
  static const Colormap* find(const QString& name);
  static QStringList names();
  static QString name_of(ColormapId id);

  ColormapId id() const { return id_; }
  QString name() const { return name_of(id_); }
  bool diverging() const { return id_ == ColormapId::Coolwarm; }

  // t in [0, 1] (clamped); NaN gives mid grey.
  QRgb color(float t) const;
  // Colour of `value` on the scale [vmin, vmax].
  QRgb color(float value, float vmin, float vmax) const;
  const std::array<QRgb, kSize>& table() const { return table_; }
  // A colour that reads well on top of `background` (for highlight outlines).
  static QColor contrasting(QRgb background);

 private:
  Colormap(ColormapId id, std::array<QRgb, kSize> table) : id_(id), table_(table) {}
  ColormapId id_;
  std::array<QRgb, kSize> table_;
};

}  // namespace attnlab
