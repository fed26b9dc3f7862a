// Writes a file so that a failure never destroys an earlier version: the bytes go to a
// temporary file beside the target, which is renamed over the target only when complete.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace attnlab {

// `write` fills the stream. Throws IoError naming the path if the file cannot be created,
// written or renamed; on any failure (including an exception from `write`) the temporary file
// is removed and the target is left as it was.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace attnlab
