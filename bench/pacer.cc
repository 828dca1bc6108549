#include "bench/pacer.h"

#include <cassert>
#include <cmath>

namespace wharf::bench {

pacer::pacer(clock::time_point start, double rate_per_s, std::uint32_t senders, std::uint32_t index) noexcept
    : start_(start), rate_per_s_(rate_per_s), senders_(senders), index_(index) {
  assert(rate_per_s > 0 && senders > 0 && index < senders);
}

pacer::clock::time_point pacer::at(std::uint64_t i) const noexcept {
  // long double keeps whole nanoseconds exact far beyond any bench run (64-bit mantissa).
  const long double slot = static_cast<long double>(i) * senders_ + index_;
  const auto offset_ns = static_cast<std::int64_t>(std::llroundl(slot * 1e9L / rate_per_s_));
  return start_ + std::chrono::nanoseconds(offset_ns);
}

pacer::clock::time_point pacer::next() noexcept { return at(next_index_++); }

}  // namespace wharf::bench
