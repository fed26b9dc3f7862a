// Runs the Curves panel's measurements off the GUI thread: length scaling (run_complexity),
// decoding (run_decoding) and depth memory (measure_activation_memory), one run at a time.
//
// Threads. A run is a std::thread; every row it measures is posted to the runner's thread (the
// GUI thread) with a queued call and emitted there, so receivers draw without locks. Each start
// begins a new generation: what an earlier, cancelled run still posts is dropped. cancel() sets
// the run's CancelToken and returns at once; the engine stops at its next check (between
// repeats, lengths, layers). A new run's thread first joins the one before it, so two runs
// never measure at the same time (they would time each other and share the memory meter), and
// the GUI never waits for a cancelled run; the destructor cancels and joins.
//
// Rows are kept per mode, so the panel shows each mode's last run while another runs. A run that
// fails before its first row gives the mode back its previous rows (the last good chart stays).
//
// Streaming. Length scaling and decoding rows arrive through the engine's on_row callbacks (the
// rows a result holds beyond those streamed are posted when the run returns), depth points
// through measure_activation_memory's on_point, each as soon as it is measured.
#pragma once

#include <QObject>
#include <QString>
#include <memory>
#include <thread>
#include <vector>

#include "bench/activation_memory.h"
#include "bench/complexity.h"
#include "bench/decoding.h"
#include "core/cancel.h"
#include "curves_settings.h"

namespace attnlab {

class CurvesRunner : public QObject {
  Q_OBJECT

 public:
  explicit CurvesRunner(QObject* parent = nullptr);
  ~CurvesRunner() override;

  // Start a run of one mode, cancelling a running one first. The options' cancel, progress and
  // row callbacks are the runner's; depth options' params must be null (the variant's defaults).
  // Options the engine refuses are reported through failed().
  void startLength(ComplexityOptions options);
  void startDecoding(DecodingOptions options);
  void startDepth(DepthMemoryOptions options);
  void cancel();

  bool isRunning() const { return running_; }
  CurvesMode runningMode() const { return mode_; }
  // Blocks (processing events) until the current run has ended; true when it has (tests).
  bool waitForFinished(int timeout_ms);

  // The last run of each mode as far as it has come (options without callbacks).
  const ComplexityOptions& lengthOptions() const { return length_options_; }
  const std::vector<ComplexityRow>& lengthRows() const { return length_rows_; }
  const DecodingOptions& decodingOptions() const { return decoding_options_; }
  const std::vector<DecodingRow>& decodingRows() const { return decoding_rows_; }
  const DepthMemoryOptions& depthOptions() const { return depth_options_; }
  const std::vector<DepthMemoryPoint>& depthPoints() const { return depth_points_; }
  // Whether `mode` has a run to show (started, and not failed before its first row).
  bool hasRun(CurvesMode mode) const { return has_run_[static_cast<int>(mode)]; }
  // How many rows the current (or last) run of `mode` will have.
  int expectedRows(CurvesMode mode) const;

 signals:
  // New rows of `mode` are in the runner (one signal per row; depth: once, for all points).
  void rowsAdded(attnlab::CurvesMode mode);
  void progress(int done, int total);
  void finished(attnlab::CurvesMode mode);
  void cancelled(attnlab::CurvesMode mode);
  void failed(attnlab::CurvesMode mode, const QString& message);

 private:
  // Runs `job` on a new thread after the previous one has ended; `job` gets the run's token and
  // a function that posts to this object's thread (dropped once the generation is stale).
  using Post = std::function<void(std::function<void()>)>;
  void launch(CurvesMode mode, std::function<void(const CancelToken&, const Post&)> job);
  void fail(CurvesMode mode, const QString& message);

  std::thread worker_;
  std::shared_ptr<CancelToken> token_;
  int generation_ = 0;
  bool running_ = false;
  CurvesMode mode_ = CurvesMode::Length;

  ComplexityOptions length_options_;
  std::vector<ComplexityRow> length_rows_;
  DecodingOptions decoding_options_;
  std::vector<DecodingRow> decoding_rows_;
  DepthMemoryOptions depth_options_;
  std::vector<DepthMemoryPoint> depth_points_;

  bool has_run_[3] = {false, false, false};
  bool previous_has_run_[3] = {false, false, false};
  // What the mode showed before the current run (restored when the run fails without a row).
  ComplexityOptions previous_length_options_;
  std::vector<ComplexityRow> previous_length_rows_;
  DecodingOptions previous_decoding_options_;
  std::vector<DecodingRow> previous_decoding_rows_;
  DepthMemoryOptions previous_depth_options_;
  std::vector<DepthMemoryPoint> previous_depth_points_;
};

}  // namespace attnlab
