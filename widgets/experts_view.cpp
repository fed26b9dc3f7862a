#include "experts_view.h"

#include <QVBoxLayout>
#include <algorithm>

#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {

ExpertsView::ExpertsView(QWidget* parent) : TraceViewWidget(parent) {
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("expertsCanvas"));
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(canvas_, 1);
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  showFigure();
}

void ExpertsView::setContext(const ViewContext& context) {
  context_ = context;
  showFigure();
}

void ExpertsView::showFigure() {
  if (!experts_trace(context_)) {
    canvas_->clearFigure(context_.result
                             ? tr("This view needs a model with mixture-of-experts layers, e.g. the switch-moe preset.")
                             : tr("Run a model with mixture-of-experts layers (the switch-moe preset) to see its routing."));
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = experts_figure_size(context_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_experts_figure(painter, target, context_, style);
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_experts_layout(context_, style, target, device).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    const ExpertsTrace* e = experts_trace(context_);
    const auto u = static_cast<std::size_t>(token);
    if (!e || u >= e->experts.size()) return QString();
    QStringList choices;
    for (std::size_t s = 0; s < e->experts[u].size(); ++s) {
      if (e->experts[u][s] >= 0)
        choices << tr("expert %1 (gate %2)").arg(e->experts[u][s]).arg(e->gates[u][s], 0, 'g', 3);
      else if (e->routed[u][s] >= 0)
        choices << tr("expert %1 dropped (full)").arg(e->routed[u][s]);
    }
    const QString text = QString::fromStdString(context_.result->tokens[u].text);
    const bool dropped = std::binary_search(e->dropped.begin(), e->dropped.end(), static_cast<std::int32_t>(token));
    return tr("token #%1 “%2”: %3%4")
        .arg(token)
        .arg(text)
        .arg(choices.join(QStringLiteral(", ")))
        .arg(dropped ? tr(" — no expert: passes through the residual") : QString());
  };
  canvas_->setFigure(std::move(figure));
}

void ExpertsView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

nlohmann::json ExpertsView::viewOptions() const { return nlohmann::json::object(); }

void ExpertsView::setViewOptions(const nlohmann::json& options) { view_options(view_spec("experts"), options); }

FigureStyle ExpertsView::figureStyle() const { return canvas_->figureStyle(); }

ExpertsFigureLayout ExpertsView::figureLayout() const {
  if (!experts_trace(context_)) return {};
  return compute_experts_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface());
}

ViewSpec experts_view_spec() {
  ViewSpec v;
  v.name = "experts";
  v.title = QStringLiteral("Experts");
  v.requirement = QStringLiteral("needs a model with mixture-of-experts layers, e.g. the switch-moe preset");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_layer_extra(r, "experts"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) { return experts_painted_figure(c, style); };
  v.export_data = [](const ViewContext& c, const QString& path) { export_experts_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new ExpertsView(parent); };
  return v;
}

}  // namespace attnlab
