#include "routing_view.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QPushButton>
#include <QSlider>
#include <QTimer>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace attnlab {

// The drawing surface: the figure at the view's step, hover to highlight.
class RoutingCanvas final : public QWidget {
 public:
  explicit RoutingCanvas(RoutingView* view) : QWidget(view), view_(view) {
    setMouseTracking(true);
    setMinimumSize(320, 240);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  }
  QSize sizeHint() const override { return QSize(1000, 560); }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter painter(this);
    const FigureStyle style = view_->figureStyle();
    painter.fillRect(rect(), style.background);
    if (!view_->data_) {
      painter.setPen(palette().color(QPalette::PlaceholderText));
      painter.drawText(rect().adjusted(8, 8, -8, -8), Qt::AlignCenter | Qt::TextWordWrap, view_->message_);
      return;
    }
    RoutingFigureOptions options;
    options.step = view_->step_;
    options.highlighted = view_->highlighted_;
    draw_routing_figure(painter, QRectF(rect()), *view_->data_, style, options);
  }
  void mouseMoveEvent(QMouseEvent* event) override { view_->hoverAt(event->position()); }
  void leaveEvent(QEvent*) override { view_->hoverAt(QPointF(-1, -1)); }

 private:
  RoutingView* view_;
};

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
  nlohmann::json j;
  j["view"] = "clusters";
  j["title"] = data.variant_title.toStdString();
  j["layer"] = data.layer;
  j["head"] = data.head;
  nlohmann::json tokens = nlohmann::json::array();
  for (const QString& token : data.tokens) tokens.push_back(token.toStdString());
  j["tokens"] = std::move(tokens);
  j["routing"] = data.extras->head_to_json(data.head);
  return QByteArray::fromStdString(j.dump(1));
}

ViewSpec routing_view_spec() {
  ViewSpec v;
  v.name = "clusters";
  v.title = QStringLiteral("Routing clusters");
  v.requirement = QStringLiteral("needs the routing variant");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json")};
  v.accepts = [](const PlaygroundResult& r) {
    return r.variant == "routing" && !r.layers.empty() &&
           dynamic_cast<const RoutingExtras*>(r.layers.front().extras.get()) != nullptr;
  };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    RoutingFigureOptions options;  // the last k-means step
    options.highlighted = c.highlighted_token;
    return routing_painted_figure(routing_figure_data(*c.result, c.layer, c.head, c.colormap), style, options);
  };
  v.export_data = [](const ViewContext& c, const QString& path) {
    const RoutingFigureData data = routing_figure_data(*c.result, c.layer, c.head, c.colormap);
    const QString suffix = QFileInfo(path).suffix().toLower();
    write_bytes_atomically(path, suffix == QLatin1String("json") ? routing_json(data) : routing_csv(data));
  };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new RoutingView(parent); };
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
  canvas_ = new RoutingCanvas(this);
  canvas_->setObjectName(QStringLiteral("routingCanvas"));
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
}

FigureStyle RoutingView::figureStyle() const {
  FigureStyle style;
  style.background = palette().color(QPalette::Base);
  style.foreground = palette().color(QPalette::Text);
  return style;
}

bool RoutingView::playing() const { return timer_->isActive(); }

void RoutingView::setContext(const ViewContext& context) {
  const int previous_steps = steps();
  data_.reset();
  if (!context.result || !routing_view_spec().accepts(*context.result)) {
    message_ = tr("This view needs the routing variant.");
  } else {
    try {
      data_ = routing_figure_data(*context.result, context.layer, context.head, context.colormap);
    } catch (const Error& e) {
      message_ = QString::fromStdString(e.what());
    }
  }
  // Keep the step the user chose for another head or an edited text with the same number of
  // steps (an animation goes on); otherwise start at the final centroids.
  if (steps() != previous_steps || !data_ || data_->local()) {
    timer_->stop();
    step_ = std::max(0, steps() - 1);
  }
  highlighted_ = context.highlighted_token;
  refreshControls();
  canvas_->update();
}

void RoutingView::setHighlightedToken(int token) {
  if (token == highlighted_) return;
  highlighted_ = token;
  hover_label_->setText(hoverText());
  canvas_->update();
}

void RoutingView::setStep(int step) {
  step = std::clamp(step, 0, std::max(0, steps() - 1));
  if (step == step_) return;
  step_ = step;
  refreshControls();
  canvas_->update();
}

void RoutingView::play() {
  if (!data_ || data_->local() || steps() < 2) return;
  if (step_ >= steps() - 1) setStep(0);  // from the start again
  timer_->start();
  refreshControls();
}

void RoutingView::pause() {
  timer_->stop();
  refreshControls();
}

void RoutingView::advance() {
  setStep(step_ + 1);
  if (step_ >= steps() - 1) pause();  // the animation ends at the final centroids
}

void RoutingView::refreshControls() {
  const bool stepping = data_ && !data_->local() && steps() > 1;
  play_button_->setEnabled(stepping);
  play_button_->setText(playing() ? tr("Pause") : tr("Play"));
  step_slider_->setEnabled(stepping);
  {
    const QSignalBlocker block(step_slider_);
    step_slider_->setRange(0, std::max(0, steps() - 1));
    step_slider_->setValue(step_);
  }
  step_label_->setText(data_ && !data_->local() ? tr("%1 / %2").arg(step_).arg(steps() - 1) : tr("–"));
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
                     .arg(step_)
                     .arg(t.nearest_query_cluster(step_, i))
                     .arg(i < t.key_xy.rows() ? QString::number(t.nearest_key_cluster(step_, i)) : QStringLiteral("–"))
                     .arg(q.join(QStringLiteral(", ")), kk.join(QStringLiteral(", ")));
  const int m = t.query_averaged[static_cast<std::size_t>(i)];
  text += m == 0 ? tr(" · unrouted: output 0") : tr(" · output = mean over %1 cluster(s)").arg(m);
  return text;
}

void RoutingView::hoverAt(QPointF pos) {
  int token = -1;
  if (data_ && pos.x() >= 0) {
    const RoutingFigureLayout layout = compute_routing_layout(*data_, figureStyle(), QRectF(canvas_->rect()), canvas_);
    token = routing_token_at(layout, *data_, pos);
  }
  if (token == highlighted_) return;
  setHighlightedToken(token);
  emit tokenHovered(token);
}

}  // namespace attnlab
