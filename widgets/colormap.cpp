#include "colormap.h"

#include <QFile>
#include <QTextStream>
#include <cmath>
#include <stdexcept>

namespace attnlab {
namespace {

const ColormapId kAll[] = {ColormapId::Viridis, ColormapId::Magma, ColormapId::Cividis, ColormapId::Coolwarm};

std::array<QRgb, Colormap::kSize> load_table(const QString& name) {
  std::array<QRgb, Colormap::kSize> table{};
  QFile file(QStringLiteral(":/colormaps/%1.csv").arg(name));
  // The tables are compiled into the binary; a missing one is a build error, not user input.
  if (!file.open(QIODevice::ReadOnly | QIODevice::Text)) {
    throw std::logic_error("colormap resource missing: " + name.toStdString());
  }
  QTextStream in(&file);
  int i = 0;
  while (!in.atEnd() && i < Colormap::kSize) {
    const QStringList parts = in.readLine().split(',');
    if (parts.size() != 3) continue;
    const auto channel = [](const QString& s) {
      return std::clamp(static_cast<int>(std::lround(s.toDouble() * 255.0)), 0, 255);
    };
    table[static_cast<std::size_t>(i++)] = qRgb(channel(parts[0]), channel(parts[1]), channel(parts[2]));
  }
  if (i != Colormap::kSize) throw std::logic_error("colormap resource truncated: " + name.toStdString());
  return table;
}

}  // namespace

QString Colormap::name_of(ColormapId id) {
  switch (id) {
    case ColormapId::Viridis: return QStringLiteral("viridis");
    case ColormapId::Magma: return QStringLiteral("magma");
    case ColormapId::Cividis: return QStringLiteral("cividis");
    case ColormapId::Coolwarm: return QStringLiteral("coolwarm");
  }
  return {};
}

const Colormap& Colormap::get(ColormapId id) {
  static const std::array<Colormap, 4> maps = {
      Colormap(ColormapId::Viridis, load_table(QStringLiteral("viridis"))),
      Colormap(ColormapId::Magma, load_table(QStringLiteral("magma"))),
      Colormap(ColormapId::Cividis, load_table(QStringLiteral("cividis"))),
      Colormap(ColormapId::Coolwarm, load_table(QStringLiteral("coolwarm"))),
  };
  return maps[static_cast<std::size_t>(id)];
}

const Colormap* Colormap::find(const QString& name) {
  for (ColormapId id : kAll) {
    if (name_of(id) == name) return &get(id);
  }
  return nullptr;
}

QStringList Colormap::names() {
  QStringList out;
  for (ColormapId id : kAll) out << name_of(id);
  return out;
}

QRgb Colormap::color(float t) const {
  if (std::isnan(t)) return qRgb(128, 128, 128);
  const float clamped = std::clamp(t, 0.0f, 1.0f);
  const int index = std::min(kSize - 1, static_cast<int>(clamped * static_cast<float>(kSize)));
  return table_[static_cast<std::size_t>(index)];
}

QRgb Colormap::color(float value, float vmin, float vmax) const {
  const float span = vmax - vmin;
  return color(span > 0.0f ? (value - vmin) / span : 0.5f);
}

QColor Colormap::contrasting(QRgb background) {
  const double luma = 0.2126 * qRed(background) + 0.7152 * qGreen(background) + 0.0722 * qBlue(background);
  return luma > 140.0 ? QColor(0, 0, 0) : QColor(255, 255, 255);
}

}  // namespace attnlab
