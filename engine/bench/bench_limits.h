// Checks the benchmarks share: an option's allowed range, and whether a run fits in memory
// before it starts (the app must never be killed by the OS for a size it was asked to measure).
#pragma once

#include <cstdint>
#include <string>

namespace attnlab {

// Throws ParamError "name=value is not allowed; name: a number in [lo, hi]".
void require_in_range(const char* name, double value, double lo, double hi);

// "" when `need` bytes fit under the engine's allocation limit and the memory the system has
// available now (MemAvailable); else "skipped: needs about X<how>, more than the Y available",
// where `how` says where the figure comes from (" (cost model)", or "").
std::string memory_refusal(std::int64_t need, const char* how = "");

}  // namespace attnlab
