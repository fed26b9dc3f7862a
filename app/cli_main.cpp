// attnlab-cli entry point. The CLI never opens a window; figure rendering uses QtGui on the
// offscreen platform, so it runs without a display.
#include <QGuiApplication>
#include <cstdio>

#include "cli_commands.h"
#include "core/allocator.h"

namespace {

// Errors reach the user as one line from the CLI itself; Qt's own chatter (for example
// "XDG_RUNTIME_DIR not set") would add lines, so it is dropped unless ATTNLAB_QT_DEBUG is set.
void quiet_qt_messages(QtMsgType type, const QMessageLogContext&, const QString& message) {
  if (type == QtCriticalMsg || type == QtFatalMsg || qEnvironmentVariableIsSet("ATTNLAB_QT_DEBUG")) {
    std::fprintf(stderr, "attnlab-cli: Qt: %s\n", qPrintable(message));
  }
}

}  // namespace

int main(int argc, char** argv) {
  attnlab::keep_freed_memory_for_reuse();
  qInstallMessageHandler(quiet_qt_messages);
  qputenv("QT_QPA_PLATFORM", "offscreen");
  // Qt would consume some of our arguments (X11 session management takes "--session"), so it
  // sees only the program name; the CLI parses the untouched argv.
  int qt_argc = 1;
  char* qt_argv[] = {argv[0], nullptr};
  QGuiApplication app(qt_argc, qt_argv);
  QGuiApplication::setApplicationName(QStringLiteral("attnlab-cli"));
  return attnlab::cli::run(argc, argv);
}
