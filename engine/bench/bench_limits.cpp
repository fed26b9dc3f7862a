#include "bench/bench_limits.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/memory_meter.h"

namespace attnlab {
namespace {

std::string number(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", x);
  return text;
}

}  // namespace

void require_in_range(const char* name, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) {
    throw ParamError(std::string(name) + "=" + number(value) + " is not allowed; " + name + ": a number in [" +
                     number(lo) + ", " + number(hi) + "]");
  }
}

std::string memory_refusal(std::int64_t need, const char* how) {
  std::int64_t have = memory::allocation_limit_bytes();
  const std::int64_t available = memory::available_bytes();
  if (available > 0) have = std::min(have, available);
  if (need <= have) return "";
  char need_text[32], have_text[32];
  memory::format_bytes(need, need_text, sizeof need_text);
  memory::format_bytes(have, have_text, sizeof have_text);
  return std::string("skipped: needs about ") + need_text + how + ", more than the " + have_text + " available";
}

}  // namespace attnlab
