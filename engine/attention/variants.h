// Factories of the built-in variants, one per variant file.
#pragma once

#include <memory>

#include "attention/attention.h"

namespace attnlab {

std::unique_ptr<Attention> make_softmax_attention();

}  // namespace attnlab
