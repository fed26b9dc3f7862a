#include "engine_worker.h"

#include "core/error.h"

namespace attnlab {

EngineWorker::EngineWorker(QObject* parent) : QThread(parent) {
  qRegisterMetaType<attnlab::PlaygroundResultPtr>("attnlab::PlaygroundResultPtr");
}

EngineWorker::~EngineWorker() {
  {
    QMutexLocker lock(&mutex_);
    quit_ = true;
    if (running_cancel_) running_cancel_->cancel();
    wake_.wakeOne();
  }
  wait();
}

quint64 EngineWorker::submit(const PlaygroundRequest& request) {
  QMutexLocker lock(&mutex_);
  pending_ = request;
  pending_generation_ = next_generation_++;
  if (running_cancel_) running_cancel_->cancel();
  if (!isRunning()) start(QThread::LowPriority);
  wake_.wakeOne();
  return pending_generation_;
}

void EngineWorker::cancel() {
  QMutexLocker lock(&mutex_);
  pending_.reset();
  if (running_cancel_) running_cancel_->cancel();
}

void EngineWorker::run() {
  for (;;) {
    PlaygroundRequest request;
    quint64 generation = 0;
    std::shared_ptr<CancelToken> cancel;
    {
      QMutexLocker lock(&mutex_);
      while (!pending_ && !quit_) wake_.wait(&mutex_);
      if (quit_) return;
      request = std::move(*pending_);
      pending_.reset();
      generation = pending_generation_;
      cancel = std::make_shared<CancelToken>();
      running_cancel_ = cancel;
    }
    emit computing(generation);
    try {
      PlaygroundResultPtr result = playground_.run(request, cancel.get());
      emit finished(generation, std::move(result));
    } catch (const CancelledError&) {
      // A newer request replaced this one; nothing to report.
    } catch (const std::bad_alloc&) {
      emit failed(generation, QStringLiteral("out of memory: the input is too long for this machine"));
    } catch (const std::exception& e) {
      emit failed(generation, QString::fromStdString(e.what()));
    }
    QMutexLocker lock(&mutex_);
    running_cancel_.reset();
  }
}

}  // namespace attnlab
