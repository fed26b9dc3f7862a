#include "routing_view.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QTimer>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {

namespace {

// Clusters holding each token, from the member tables [k, w].
std::vector<QStringList> clusters_of(const std::vector<std::int32_t>& members, std::int64_t w, int clusters, int tokens) {
  std::vector<QStringList> out(static_cast<std::size_t>(tokens));
  for (int c = 0; c < clusters; ++c) {
    for (std::int64_t a = 0; a < w; ++a) {
      const int t = members[static_cast<std::size_t>(c * w + a)];
      if (t >= 0 && t < tokens) out[static_cast<std::size_t>(t)] << QString::number(c);
    }
  }
  return out;
}

bool row_is_routed(const RoutingFigureData& data, int i) {
  const RoutingHeadTrace& t = data.trace();
  if (!t.local) return t.query_averaged[static_cast<std::size_t>(i)] > 0;
  for (int j = 0; j < data.matrix->cols; ++j) {
    if (data.matrix->at(i, j) > 0.0f) return true;
  }
  return false;
}

}  // namespace

QByteArray routing_csv(const RoutingFigureData& data) {
  const RoutingHeadTrace& t = data.trace();
  const RoutingSettings& s = data.extras->settings();
  const int tokens = data.matrix->rows;
  const int k = static_cast<int>(s.n_clusters);
  std::vector<QStringList> query_clusters(static_cast<std::size_t>(tokens)), key_clusters(static_cast<std::size_t>(tokens));
  if (!t.local) {
    query_clusters = clusters_of(t.query_members, s.query_window, k, tokens);
    key_clusters = clusters_of(t.key_members, s.key_window, k, tokens);
  }
  QByteArray out = "position,token,query_clusters,key_clusters,nearest_query_cluster,nearest_key_cluster,routed\r\n";
  const std::int64_t last = t.steps - 1;
  for (int i = 0; i < tokens; ++i) {
    out += QByteArray::number(i) + ',' + csv_field(i < data.tokens.size() ? data.tokens[i] : QString()) + ',';
    out += query_clusters[static_cast<std::size_t>(i)].join(QLatin1Char(' ')).toUtf8() + ',';
    out += key_clusters[static_cast<std::size_t>(i)].join(QLatin1Char(' ')).toUtf8() + ',';
    if (!t.local) {
      out += QByteArray::number(t.nearest_query_cluster(last, i)) + ',';
      const int nk = i < static_cast<int>(t.key_xy.rows()) ? t.nearest_key_cluster(last, i) : -1;
      out += (nk >= 0 ? QByteArray::number(nk) : QByteArray()) + ',';
    } else {
      out += ",,";
    }
    out += row_is_routed(data, i) ? "1" : "0";
    out += "\r\n";
  }
  return out;
}

QByteArray routing_json(const RoutingFigureData& data) {
  const nlohmann::json j = {{"view", "clusters"},
                            {"title", data.variant_title.toStdString()},
                            {"routing", data.extras->head_to_json(data.head)}};
  return view_json_bytes(j, data.layer, data.head, data.tokens);
}

ViewSpec routing_view_spec() {
  ViewSpec v;
  v.name = "clusters";
  v.title = QStringLiteral("Routing clusters");
  v.requirement = QStringLiteral("needs the routing variant");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_extras<RoutingExtras>(r, "routing"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    RoutingFigureOptions options;
    options.step = static_cast<int>(view_options(view_spec("clusters"), c.options).get_int("step"));  // clamped by the figure
    options.highlighted = c.highlighted_token;
    return routing_painted_figure(routing_figure_data(*c.result, c.layer, c.head, c.colormap), style, options);
  };
  v.export_data = [](const ViewContext& c, const QString& path) {
    const RoutingFigureData data = routing_figure_data(*c.result, c.layer, c.head, c.colormap);
    const QString suffix = QFileInfo(path).suffix().toLower();
    write_bytes_atomically(path, suffix == QLatin1String("json") ? routing_json(data) : routing_csv(data));
  };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new RoutingView(parent); };
  v.options = {ParamSpec::integer("step", "k-means step", -1, -1, variant_param_max("routing", "kmeans_iters"),
                                  "k-means step shown: 0 = the seeded initial centroids, -1 = the last; a step beyond the "
                                  "result's last (its kmeans_iters) is clamped to it")};
  return v;
}

// ---- the widget ----------------------------------------------------------------------------------

RoutingView::RoutingView(QWidget* parent) : TraceViewWidget(parent) {
  play_button_ = new QPushButton(tr("Play"));
  play_button_->setObjectName(QStringLiteral("routingPlay"));
  play_button_->setToolTip(tr("Animate the k-means steps from the initial centroids"));
  step_slider_ = new QSlider(Qt::Horizontal);
  step_slider_->setObjectName(QStringLiteral("routingStep"));
  step_slider_->setToolTip(tr("k-means step shown: 0 = the seeded initial centroids"));
  step_label_ = new QLabel;
  hover_label_ = new QLabel;
  hover_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("routingCanvas"));
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  timer_ = new QTimer(this);
  timer_->setInterval(kStepIntervalMs);

  auto* controls = new QHBoxLayout;
  controls->addWidget(play_button_);
  controls->addWidget(new QLabel(tr("k-means step")));
  controls->addWidget(step_slider_, 1);
  controls->addWidget(step_label_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);
  layout->addWidget(hover_label_);

  connect(play_button_, &QPushButton::clicked, this, [this] { playing() ? pause() : play(); });
  connect(step_slider_, &QSlider::valueChanged, this, [this](int value) { setStep(value); });
  connect(timer_, &QTimer::timeout, this, [this] { advance(); });
  message_ = tr("Run the routing variant to see its clusters.");
  refreshControls();
  showFigure();
}

FigureStyle RoutingView::figureStyle() const { return canvas_->figureStyle(); }

bool RoutingView::playing() const { return timer_->isActive(); }

void RoutingView::setContext(const ViewContext& context) {
  data_.reset();
  if (!context.result || !view_spec("clusters").accepts(*context.result)) {
    message_ = tr("This view needs the routing variant.");
  } else {
    try {
      data_ = routing_figure_data(*context.result, context.layer, context.head, context.colormap);
    } catch (const Error& e) {
      message_ = QString::fromStdString(e.what());
    }
  }
  // The chosen step stays (clamped to this result's steps; -1 follows the last), so another
  // head, text or step count keeps what the user looks at, and an animation goes on.
  if (!data_ || data_->local()) timer_->stop();
  highlighted_ = context.highlighted_token;
  refreshControls();
  showFigure();
}

void RoutingView::showFigure() {
  if (!data_) {
    canvas_->clearFigure(message_);
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = routing_figure_size(*data_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    RoutingFigureOptions options;
    options.step = step();
    options.highlighted = highlighted_;
    draw_routing_figure(painter, target, *data_, style, options);
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return routing_token_at(compute_routing_layout(*data_, style, target, device), *data_, pos);
  };
  canvas_->setFigure(std::move(figure));
}

int RoutingView::step() const {
  const int last = std::max(0, steps() - 1);
  return step_option_ < 0 ? last : std::min(step_option_, last);
}

nlohmann::json RoutingView::viewOptions() const {
  // The last step is saved as -1, so that a session follows a changed number of k-means steps.
  return {{"step", data_ && step() == steps() - 1 ? -1 : (data_ ? step() : step_option_)}};
}

void RoutingView::setViewOptions(const nlohmann::json& options) {
  step_option_ = static_cast<int>(view_options(view_spec("clusters"), options).get_int("step"));
  refreshControls();
  canvas_->refresh();
  emit viewOptionsChanged();
}

void RoutingView::setHighlightedToken(int token) {
  if (token == highlighted_) return;
  highlighted_ = token;
  hover_label_->setText(hoverText());
  canvas_->refresh();
}

void RoutingView::setStep(int step) {
  const int last = std::max(0, steps() - 1);
  step = std::clamp(step, 0, last);
  const int option = data_ && step == last ? -1 : step;
  if (option == step_option_) return;
  step_option_ = option;
  refreshControls();
  canvas_->refresh();
  emit viewOptionsChanged();
}

void RoutingView::play() {
  if (!data_ || data_->local() || steps() < 2) return;
  if (step() >= steps() - 1) setStep(0);  // from the start again
  timer_->start();
  refreshControls();
}

void RoutingView::pause() {
  timer_->stop();
  refreshControls();
}

void RoutingView::advance() {
  setStep(step() + 1);
  if (step() >= steps() - 1) pause();  // the animation ends at the final centroids
}

void RoutingView::refreshControls() {
  const bool stepping = data_ && !data_->local() && steps() > 1;
  play_button_->setEnabled(stepping);
  play_button_->setText(playing() ? tr("Pause") : tr("Play"));
  step_slider_->setEnabled(stepping);
  {
    const QSignalBlocker block(step_slider_);
    step_slider_->setRange(0, std::max(0, steps() - 1));
    step_slider_->setValue(step());
  }
  step_label_->setText(data_ && !data_->local() ? tr("%1 / %2").arg(step()).arg(steps() - 1) : tr("–"));
  hover_label_->setText(hoverText());
}

QString RoutingView::hoverText() const {
  if (!data_) return QString();
  if (highlighted_ < 0 || highlighted_ >= data_->matrix->rows) {
    return data_->local() ? tr("Local head: a sliding window, no clusters.")
                          : tr("Point at a token (plane, matrix or member grid) to follow it in every view.");
  }
  const int i = highlighted_;
  const QString token = i < data_->tokens.size() ? data_->tokens[i] : QString();
  if (data_->local()) return tr("#%1 '%2' · local head").arg(i).arg(token);
  const RoutingHeadTrace& t = data_->trace();
  const RoutingSettings& s = data_->extras->settings();
  const int k = static_cast<int>(s.n_clusters);
  const auto q = clusters_of(t.query_members, s.query_window, k, data_->matrix->rows)[static_cast<std::size_t>(i)];
  const auto kk = clusters_of(t.key_members, s.key_window, k, data_->matrix->rows)[static_cast<std::size_t>(i)];
  QString text = tr("#%1 '%2' · nearest centroid at step %3: query %4, key %5 · query in clusters {%6}, key in {%7}")
                     .arg(i)
                     .arg(token)
                     .arg(step())
                     .arg(t.nearest_query_cluster(step(), i))
                     .arg(i < t.key_xy.rows() ? QString::number(t.nearest_key_cluster(step(), i)) : QStringLiteral("–"))
                     .arg(q.join(QStringLiteral(", ")), kk.join(QStringLiteral(", ")));
  const int m = t.query_averaged[static_cast<std::size_t>(i)];
  text += m == 0 ? tr(" · unrouted: output 0") : tr(" · output = mean over %1 cluster(s)").arg(m);
  return text;
}

}  // namespace attnlab
