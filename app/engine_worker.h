// Runs playground requests on a worker thread so the GUI thread never computes.
//
// The latest request wins: submitting while a computation runs cancels it (at its next check
// point) and the worker moves on to the newest request; older pending requests are dropped.
// Results are immutable and shared; each carries the generation number of its request, so the
// window can ignore anything older than what it already shows.
#pragma once

#include <QMutex>
#include <QThread>
#include <QWaitCondition>
#include <memory>
#include <optional>

#include "models/playground.h"

namespace attnlab {

class EngineWorker : public QThread {
  Q_OBJECT

 public:
  explicit EngineWorker(QObject* parent = nullptr);
  ~EngineWorker() override;

  // Returns the generation number of this request.
  quint64 submit(const PlaygroundRequest& request);
  // Cancels the running computation (if any) and drops pending requests.
  void cancel();

 signals:
  void computing(quint64 generation);
  void finished(quint64 generation, attnlab::PlaygroundResultPtr result);
  void failed(quint64 generation, QString message);

 protected:
  void run() override;

 private:
  QMutex mutex_;
  QWaitCondition wake_;
  std::optional<PlaygroundRequest> pending_;
  quint64 pending_generation_ = 0;
  quint64 next_generation_ = 1;
  std::shared_ptr<CancelToken> running_cancel_;
  bool quit_ = false;
  Playground playground_;  // used only on the worker thread
};

}  // namespace attnlab

Q_DECLARE_METATYPE(attnlab::PlaygroundResultPtr)
