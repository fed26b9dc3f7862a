#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace attnlab {

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.filename().empty()) throw IoError("cannot write '" + path + "': not a file name");
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw IoError("cannot write '" + path + "': folder '" + dir.string() + "' does not exist");
  }
  const fs::path temp = dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()));
  try {
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      if (!out) throw IoError("cannot write '" + path + "': " + std::strerror(errno));
      write(out);
      out.flush();
      if (!out) throw IoError("cannot write '" + path + "': write failed (disk full?)");
    }
    fs::rename(temp, target, ec);
    if (ec) throw IoError("cannot write '" + path + "': " + ec.message());
  } catch (...) {
    fs::remove(temp, ec);
    throw;
  }
}

}  // namespace attnlab
