#include "yoso_view.h"

#include <QHBoxLayout>
#include <QVBoxLayout>

#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {

namespace {

YosoFigureOptions figure_options(const nlohmann::json& options) {
  return YosoFigureOptions{view_options(view_spec("yoso"), options).get_bool("log_probability")};
}

}  // namespace

YosoView::YosoView(QWidget* parent) : TraceViewWidget(parent) {
  log_box_ = new QCheckBox(tr("Logarithmic probability axis"));
  log_box_->setObjectName(QStringLiteral("logProbability"));
  log_box_->setChecked(true);
  log_box_->setToolTip(tr("Collision probabilities fall fast with the angle ((1 − θ/π)^τ); a log axis shows the "
                          "measured points against the curve over the whole range"));
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("yosoCanvas"));

  auto* controls = new QHBoxLayout;
  controls->addWidget(log_box_);
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);
  connect(log_box_, &QCheckBox::toggled, canvas_, &FigureCanvas::refresh);
  connect(log_box_, &QCheckBox::toggled, this, &TraceViewWidget::viewOptionsChanged);
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  showFigure();
}

void YosoView::setContext(const ViewContext& context) {
  context_ = context;
  showFigure();
}

void YosoView::showFigure() {
  if (!yoso_extras(context_)) {
    canvas_->clearFigure(context_.result ? tr("This view needs the yoso variant.") : tr("Run the yoso variant to see its kernel."));
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = yoso_figure_size(context_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_yoso_figure(painter, target, context_, style, figureOptions());
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_yoso_layout(context_, style, target, device).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    return tr("query #%1 “%2”").arg(token).arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text));
  };
  canvas_->setFigure(std::move(figure));
}

void YosoView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

YosoFigureOptions YosoView::figureOptions() const { return YosoFigureOptions{log_box_->isChecked()}; }

nlohmann::json YosoView::viewOptions() const { return {{"log_probability", log_box_->isChecked()}}; }

void YosoView::setViewOptions(const nlohmann::json& options) { log_box_->setChecked(figure_options(options).log_probability); }

FigureStyle YosoView::figureStyle() const { return canvas_->figureStyle(); }

YosoFigureLayout YosoView::figureLayout() const {
  if (!yoso_extras(context_)) return {};
  return compute_yoso_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface());
}

ViewSpec yoso_view_spec() {
  ViewSpec v;
  v.name = "yoso";
  v.title = QStringLiteral("YOSO kernel");
  v.requirement = QStringLiteral("needs the yoso variant");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_extras<YosoExtras>(r, "yoso"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) { return yoso_painted_figure(c, style, figure_options(c.options)); };
  v.export_data = [](const ViewContext& c, const QString& path) { export_yoso_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new YosoView(parent); };
  v.options = {ParamSpec::boolean("log_probability", "Logarithmic probability axis", true,
                                  "The collision plot's probability axis: logarithmic (decades down to the smallest "
                                  "measured value) or linear from 0 to 1")};
  return v;
}

}  // namespace attnlab
