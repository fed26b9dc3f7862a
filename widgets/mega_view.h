// The "Mega EMA and gates" view of a model with Mega layers: the damped-EMA kernels per channel,
// the decay of a few channels, the chunk-block attention weights and the gates u and r per
// token, drawn by figures/mega_figure.h for the layer model_view_layer picks. Two controls
// change the MODEL, not the view: the attention chunk size (0: the whole sequence) and the
// attention function; editing either emits layerParamsEdited(layer, {"chunk": n}) or
// ({"attention": name}) and the window reruns. Both show the trace's own values whenever a new
// result arrives (without emitting). Hovering a gate row or an attention row reports its token.
//
// View option: kernel_scale ("per_channel": each kernel map row scaled to its own largest |k|,
// so every channel's decay shows; "shared": one scale for all, so channels compare).
#pragma once

#include <QComboBox>
#include <QLabel>
#include <QSpinBox>

#include "figures/mega_figure.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec mega_view_spec();

class MegaView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit MegaView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  QSpinBox* chunkBox() const { return chunk_box_; }
  QComboBox* attentionBox() const { return attention_box_; }
  QComboBox* kernelScaleBox() const { return scale_box_; }
  MegaFigureOptions figureOptions() const;
  FigureCanvas* canvas() const { return canvas_; }
  MegaFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();
  void syncControls();

  ViewContext context_;
  QSpinBox* chunk_box_ = nullptr;
  QComboBox* attention_box_ = nullptr;
  QComboBox* scale_box_ = nullptr;
  QLabel* layer_label_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
