#include "sweep_runner.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QThread>

#include "core/error.h"

namespace attnlab {
namespace {

void refit(SweepResult& r) {
  std::vector<double> x, err, kl;
  for (const SweepRow& row : r.rows) {
    x.push_back(row.numeric);
    err.push_back(row.rel_output_error.mean);
    kl.push_back(row.mean_row_kl.mean);
  }
  r.fits = {fit_log_log("rel_output_error", x, err), fit_log_log("mean_row_kl", x, kl)};
}

}  // namespace

SweepRunner::SweepRunner(QObject* parent) : QObject(parent) {}

SweepRunner::~SweepRunner() {
  if (token_) token_->cancel();
  join_all();
}

void SweepRunner::join_all() {
  for (std::thread& w : workers_)
    if (w.joinable()) w.join();
  workers_.clear();
}

void SweepRunner::cancel() {
  if (token_) token_->cancel();
  if (running_) {
    running_ = false;
    ++generation_;  // whatever the worker still posts is stale
    emit cancelled();
  }
}

bool SweepRunner::waitForFinished(int timeout_ms) {
  QElapsedTimer timer;
  timer.start();
  while (running_ && timer.elapsed() < timeout_ms) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    QThread::msleep(2);
  }
  return !running_;
}

void SweepRunner::start(std::vector<SweepSeries> series) {
  cancel();
  // An earlier worker was cancelled and ends within one comparison (milliseconds at the
  // default length).
  join_all();

  series_ = series;
  for (SweepSeries& s : series_) s.result = SweepResult{};
  token_ = std::make_shared<CancelToken>();
  const int generation = ++generation_;
  running_ = true;
  int total = 0;
  for (const SweepSeries& s : series) total += static_cast<int>(s.options.values.size());

  // Posts `f` to this object's thread, dropped when a newer sweep started meanwhile.
  const auto post = [this, generation](auto f) {
    QMetaObject::invokeMethod(
        this,
        [this, generation, f = std::move(f)]() mutable {
          if (generation == generation_) f();
        },
        Qt::QueuedConnection);
  };
  workers_.emplace_back([series = std::move(series), token = token_, post, total, this]() mutable {
    int done = 0;
    try {
      for (std::size_t s = 0; s < series.size(); ++s) {
        for (const std::string& value : series[s].options.values) {
          SweepOptions one = series[s].options;
          one.values = {value};
          one.cancel = token.get();
          one.progress = nullptr;
          SweepResult r = run_sweep(one);
          ++done;
          post([this, s, row = r.rows.front(), done, total] {
            SweepResult& into = series_[s].result;
            into.rows.push_back(row);
            refit(into);
            emit rowAdded(static_cast<int>(s));
            emit progress(done, total);
          });
        }
      }
      post([this] {
        running_ = false;
        emit finished();
      });
    } catch (const CancelledError&) {
      // cancel() already told the receivers.
    } catch (const std::exception& e) {
      post([this, message = QString::fromUtf8(e.what())] {
        running_ = false;
        emit failed(message);
      });
    }
  });
}

}  // namespace attnlab
