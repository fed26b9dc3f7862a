// For the tests of the model views (∞-former memory, Mega, GSS): runs of a built-in model preset
// with the parameters of its layers of one type replaced, a long text for legibility, a figure
// rendered with its layout, and the largest |value| of a kernel row.
#pragma once

#include <QFile>
#include <QString>
#include <QTemporaryDir>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "models/model_config.h"
#include "view_test_support.h"

namespace attnlab::test {

// `preset` with `params` set over the params of every layer of type `layer_type`, run on `text`.
inline PlaygroundResultPtr run_preset_with(const std::string& preset, const std::string& layer_type, const nlohmann::json& params,
                                           const std::string& text, bool causal = false) {
  ModelConfig config = builtin_model(preset);
  config.name = preset + "-test";
  for (LayerSpec& layer : config.layers)
    if (layer.type == layer_type) layer.params.update(params);
  QTemporaryDir dir;  // a fresh path per config: the playground caches models by path
  const QString path = dir.filePath(QStringLiteral("model.json"));
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly)) return nullptr;
  file.write(QByteArray::fromStdString(config.to_json().dump()));
  file.close();
  return run_model(path.toStdString(), text, "softmax", causal);
}

// `words` word tokens (a few dozen distinct words, repeated).
inline std::string long_text(int words) {
  QString text;
  for (int i = 0; i < words; ++i) text += QStringLiteral("w%1 ").arg((i * 7) % 41);
  return text.trimmed().toStdString();
}

// A figure rendered as the PNG export renders it, with its layout computed on the same image by
// layout_of(target, device).
template <typename Layout, typename LayoutOf>
Rendered<Layout> render_laid_out(const PaintedFigure& figure, double dpi, LayoutOf layout_of) {
  Rendered<Layout> r;
  r.image = render_figure_image(figure, dpi);
  r.layout = layout_of(QRectF(r.image.rect()), &r.image);
  return r;
}

// max over l of |t(row, l)| for a [rows, lags] tensor.
inline float largest_abs(const Tensor& t, std::int64_t row) {
  float top = 0.0f;
  for (std::int64_t l = 0; l < t.dim(1); ++l) top = std::max(top, std::abs(t.at(row, l)));
  return top;
}

}  // namespace attnlab::test
