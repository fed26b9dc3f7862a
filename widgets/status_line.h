// A one-line status label for tool docks: the text elided to the label's width (the full text in
// the tooltip), so that a long message never widens the dock.
#pragma once

#include <QLabel>
#include <QPainter>
#include <QString>

namespace attnlab {

class StatusLine final : public QLabel {
 public:
  StatusLine() { setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Fixed); }
  QSize minimumSizeHint() const override { return QSize(0, fontMetrics().height() + 4); }
  QSize sizeHint() const override { return QSize(200, fontMetrics().height() + 4); }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter painter(this);
    painter.setPen(palette().color(QPalette::WindowText));
    const QRect r = contentsRect();
    painter.drawText(r, Qt::AlignLeft | Qt::AlignVCenter, fontMetrics().elidedText(text(), Qt::ElideRight, r.width()));
  }
};

// The first line of a (possibly multi-line) message.
inline QString first_line(const QString& text) { return text.section(QLatin1Char('\n'), 0, 0); }

}  // namespace attnlab
