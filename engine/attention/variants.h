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
std::unique_ptr<Attention> make_linear_attention();                     // linear.cpp
std::unique_ptr<Attention> make_performer_attention();                  // performer.cpp
std::unique_ptr<Attention> make_rpe_fft_attention();                    // rpe_fft.cpp
std::unique_ptr<Attention> make_spectral_attention();                   // spectral.cpp
std::unique_ptr<Attention> make_luna_attention();                       // luna.cpp
std::unique_ptr<Attention> make_mgk_attention();                        // mgk.cpp
std::unique_ptr<Attention> make_delta_attention();                      // delta.cpp
std::unique_ptr<Attention> make_t2r_attention();                        // t2r.cpp

}  // namespace attnlab
