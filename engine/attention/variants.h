// Factories of the built-in variants, one per variant file.
#pragma once

#include <memory>

#include "attention/attention.h"

namespace attnlab {

std::unique_ptr<Attention> make_softmax_attention();       // softmax.cpp
std::unique_ptr<Attention> make_reformer_lsh_attention();  // reformer_lsh.cpp
std::unique_ptr<Attention> make_routing_attention();       // routing.cpp
std::unique_ptr<Attention> make_bigbird_attention();       // bigbird.cpp
std::unique_ptr<Attention> make_yoso_attention();          // yoso.cpp

}  // namespace attnlab
