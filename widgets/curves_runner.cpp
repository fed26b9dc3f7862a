#include "curves_runner.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QThread>
#include <algorithm>

#include "core/error.h"

namespace attnlab {
namespace {

// Options as kept for display and export: without the callbacks of the run.
template <typename Options>
Options without_callbacks(Options o) {
  o.cancel = nullptr;
  o.progress = nullptr;
  if constexpr (requires { o.on_row; }) o.on_row = nullptr;
  if constexpr (requires { o.on_point; }) o.on_point = nullptr;
  return o;
}

}  // namespace

CurvesRunner::CurvesRunner(QObject* parent) : QObject(parent) {}

CurvesRunner::~CurvesRunner() {
  if (token_) token_->cancel();
  // The current run joins the one before it: one join ends them all.
  if (worker_.joinable()) worker_.join();
}

void CurvesRunner::cancel() {
  if (token_) token_->cancel();
  if (running_) {
    running_ = false;
    ++generation_;  // whatever the worker still posts is stale
    emit cancelled(mode_);
  }
}

bool CurvesRunner::waitForFinished(int timeout_ms) {
  QElapsedTimer timer;
  timer.start();
  while (running_ && timer.elapsed() < timeout_ms) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    QThread::msleep(2);
  }
  return !running_;
}

int CurvesRunner::expectedRows(CurvesMode mode) const {
  switch (mode) {
    case CurvesMode::Length: return static_cast<int>(length_options_.variants.size() * length_options_.lengths.size());
    case CurvesMode::Decoding: return static_cast<int>(decoding_options_.methods.size() * decoding_options_.tokens.size());
    case CurvesMode::Depth: return depth_options_.max_layers;
  }
  return 0;
}

void CurvesRunner::launch(CurvesMode mode, std::function<void(const CancelToken&, const Post&)> job) {
  cancel();
  previous_has_run_[static_cast<int>(mode)] = has_run_[static_cast<int>(mode)];
  has_run_[static_cast<int>(mode)] = true;
  token_ = std::make_shared<CancelToken>();
  const int generation = ++generation_;
  running_ = true;
  mode_ = mode;
  Post post = [this, generation](std::function<void()> f) {
    QMetaObject::invokeMethod(
        this,
        [this, generation, f = std::move(f)] {
          if (generation == generation_) f();
        },
        Qt::QueuedConnection);
  };
  std::thread previous = std::move(worker_);
  worker_ = std::thread([previous = std::move(previous), token = token_, post = std::move(post), job = std::move(job), mode,
                         this]() mutable {
    // A cancelled run ends at its next check; this one measures only after it.
    if (previous.joinable()) previous.join();
    try {
      check_cancelled(token.get());
      job(*token, post);
      post([this, mode] {
        running_ = false;
        emit finished(mode);
      });
    } catch (const CancelledError&) {
      // cancel() already told the receivers.
    } catch (const std::exception& e) {
      post([this, mode, message = QString::fromUtf8(e.what())] { fail(mode, message); });
    }
  });
}

void CurvesRunner::fail(CurvesMode mode, const QString& message) {
  running_ = false;
  const int m = static_cast<int>(mode);
  // Nothing measured: the mode keeps the run before (its chart stays on screen).
  switch (mode) {
    case CurvesMode::Length:
      if (length_rows_.empty()) {
        has_run_[m] = previous_has_run_[m];
        length_options_ = previous_length_options_;
        length_rows_ = previous_length_rows_;
      }
      break;
    case CurvesMode::Decoding:
      if (decoding_rows_.empty()) {
        has_run_[m] = previous_has_run_[m];
        decoding_options_ = previous_decoding_options_;
        decoding_rows_ = previous_decoding_rows_;
      }
      break;
    case CurvesMode::Depth:
      if (depth_points_.empty()) {
        has_run_[m] = previous_has_run_[m];
        depth_options_ = previous_depth_options_;
        depth_points_ = previous_depth_points_;
      }
      break;
  }
  emit failed(mode, message);
}

void CurvesRunner::startLength(ComplexityOptions options) {
  cancel();
  // Run order (run_complexity sorts the lengths too): the expected rows and the x ticks follow it.
  std::sort(options.lengths.begin(), options.lengths.end());
  previous_length_options_ = length_options_;
  previous_length_rows_ = std::move(length_rows_);
  length_options_ = without_callbacks(options);
  length_rows_.clear();
  const int total = expectedRows(CurvesMode::Length);
  launch(CurvesMode::Length, [this, options = std::move(options), total](const CancelToken& token, const Post& post) mutable {
    std::size_t streamed = 0;
    const auto add = [this, &post, total](const ComplexityRow& row) {
      post([this, row, total] {
        length_rows_.push_back(row);
        emit rowsAdded(CurvesMode::Length);
        emit progress(static_cast<int>(length_rows_.size()), total);
      });
    };
    options.cancel = &token;
    options.progress = nullptr;
    options.on_row = [&](const ComplexityRow& row) {
      ++streamed;
      add(row);
    };
    const ComplexityResult result = run_complexity(options);
    for (std::size_t i = streamed; i < result.rows.size(); ++i) add(result.rows[i]);
  });
}

void CurvesRunner::startDecoding(DecodingOptions options) {
  cancel();
  std::sort(options.tokens.begin(), options.tokens.end());
  previous_decoding_options_ = decoding_options_;
  previous_decoding_rows_ = std::move(decoding_rows_);
  decoding_options_ = without_callbacks(options);
  decoding_rows_.clear();
  const int total = expectedRows(CurvesMode::Decoding);
  launch(CurvesMode::Decoding, [this, options = std::move(options), total](const CancelToken& token, const Post& post) mutable {
    std::size_t streamed = 0;
    const auto add = [this, &post, total](const DecodingRow& row) {
      post([this, row, total] {
        decoding_rows_.push_back(row);
        emit rowsAdded(CurvesMode::Decoding);
        emit progress(static_cast<int>(decoding_rows_.size()), total);
      });
    };
    options.cancel = &token;
    options.progress = nullptr;
    options.on_row = [&](const DecodingRow& row) {
      ++streamed;
      add(row);
    };
    const std::vector<DecodingRow> rows = run_decoding(options);
    for (std::size_t i = streamed; i < rows.size(); ++i) add(rows[i]);
  });
}

void CurvesRunner::startDepth(DepthMemoryOptions options) {
  cancel();
  previous_depth_options_ = depth_options_;
  previous_depth_points_ = std::move(depth_points_);
  options.params = nullptr;
  depth_options_ = without_callbacks(options);
  depth_points_.clear();
  launch(CurvesMode::Depth, [this, options = std::move(options)](const CancelToken& token, const Post& post) mutable {
    options.cancel = &token;
    options.progress = [this, &post](int done, int total) { post([this, done, total] { emit progress(done, total); }); };
    options.on_point = [this, &post](const DepthMemoryPoint& point) {
      post([this, point] {
        depth_points_.push_back(point);
        emit rowsAdded(CurvesMode::Depth);
      });
    };
    (void)measure_activation_memory(options);  // every point was posted as it was measured
  });
}

}  // namespace attnlab
