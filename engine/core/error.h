// Typed errors of the engine. The engine never calls exit() or abort(): every problem the user
// can cause (a wrong shape, a bad file, a parameter out of range, a size too big for memory)
// is thrown as one of these, with a one-line message naming the concrete problem. The GUI
// shows the message in place and keeps its last good result; the CLI prints it and exits 1.
#pragma once

#include <stdexcept>
#include <string>

namespace attnlab {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Tensor shapes that do not fit together ("q has shape [2, 5, 8] but k has [2, 6, 4]").
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A hyperparameter, option or name outside what is allowed ("n_hashes=40: allowed 1..16").
class ParamError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be opened, read or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// A file whose content is malformed (truncated, wrong dtype, impossible header).
class FormatError : public Error {
 public:
  using Error::Error;
};

// Work that would not fit in this machine's memory; refused before allocating.
class ResourceError : public Error {
 public:
  using Error::Error;
};

// The GPU was asked for where there is none, or a CUDA call failed (the message names it).
class DeviceError : public Error {
 public:
  using Error::Error;
};

// The caller asked the computation to stop (newer request, user pressed cancel).
class CancelledError : public Error {
 public:
  CancelledError() : Error("cancelled") {}
};

}  // namespace attnlab
