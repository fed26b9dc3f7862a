// Runs the approximation lab's sweeps off the GUI thread. A sweep is one or two series (the
// orthogonal vs i.i.d. comparison) of run_sweep over the values of one parameter; the worker runs
// one value at a time so that every finished row reaches the chart at once (same inputs and seeds
// as one run_sweep over all values: the inputs depend only on the seed index).
//
// Threads. start() launches a std::thread; results are posted to the runner's thread (the GUI
// thread) with queued calls and emitted there, so receivers draw without locks. Each start()
// begins a new generation: posts of an earlier, cancelled sweep are dropped. cancel() sets the
// sweep's CancelToken and returns at once; the worker stops at the next seed (one comparison at
// most). start() and the destructor cancel and join the earlier worker, so neither a new sweep
// nor closing the window waits for a whole sweep.
#pragma once

#include <QObject>
#include <QString>
#include <memory>
#include <thread>
#include <vector>

#include "analysis/sweep.h"
#include "core/cancel.h"
#include "figures/compare_figure.h"

namespace attnlab {

class SweepRunner : public QObject {
  Q_OBJECT

 public:
  explicit SweepRunner(QObject* parent = nullptr);
  ~SweepRunner() override;

  // Starts `series` (their options' values, seeds, ...; cancel and progress are the runner's),
  // cancelling a running sweep first. Values must have been validated (the worker reports a
  // ParamError through failed() otherwise).
  void start(std::vector<SweepSeries> series);
  void cancel();
  bool isRunning() const { return running_; }
  // The series as far as they have run (rows arrive one by one).
  const std::vector<SweepSeries>& series() const { return series_; }
  // Blocks until the current worker has ended (tests); true when it has.
  bool waitForFinished(int timeout_ms);

 signals:
  // A new row of series `series`; series() already holds it (and the updated fits).
  void rowAdded(int series);
  void progress(int done, int total);
  void finished();
  void cancelled();
  void failed(const QString& message);

 private:
  void join_all();

  std::vector<SweepSeries> series_;
  std::vector<std::thread> workers_;
  std::shared_ptr<CancelToken> token_;
  int generation_ = 0;
  bool running_ = false;
};

}  // namespace attnlab
