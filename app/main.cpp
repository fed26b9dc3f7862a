// attnlab: the GUI. Optional argument: a session file to open.
#include <QApplication>
#include <QCommandLineParser>

#include "core/allocator.h"
#include "heatmap_view.h"
#include "main_window.h"

int main(int argc, char** argv) {
  attnlab::keep_freed_memory_for_reuse();  // no page faults on every keystroke
  attnlab::HeatmapView::useAsDefaultFormat();  // OpenGL 3.3 core for every GL view

  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("AttnLab"));
  QApplication::setApplicationName(QStringLiteral("AttnLab"));
  QApplication::setApplicationVersion(QStringLiteral(ATTNLAB_VERSION));
  QApplication::setDesktopFileName(QStringLiteral("attnlab"));

  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral("AttnLab: attention variants computed live, drawn as they work."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(QStringLiteral("session"), QStringLiteral("A session file (.json) to open."), QStringLiteral("[session]"));
  parser.process(app);

  attnlab::MainWindow window;
  if (!parser.positionalArguments().isEmpty()) window.openSessionFile(parser.positionalArguments().first());
  window.show();
  return QApplication::exec();
}
