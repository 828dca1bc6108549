#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace wharf::bench {

std::size_t histogram::index_of(std::uint64_t v) noexcept {
  if (v < sub_count) return static_cast<std::size_t>(v);
  const unsigned msb = 63U - static_cast<unsigned>(std::countl_zero(v));
  const unsigned e = msb - sub_bits;  // 0 for 128..255
  return static_cast<std::size_t>(sub_count * (e + 1) + ((v >> e) - sub_count));
}

std::uint64_t histogram::midpoint_of(std::size_t index) noexcept {
  if (index < sub_count) return index;
  const unsigned e = static_cast<unsigned>(index / sub_count) - 1;
  const std::uint64_t low = (sub_count + index % sub_count) << e;
  return low + ((1ULL << e) >> 1);
}

void histogram::record(std::uint64_t value_ns) noexcept {
  const std::uint64_t v = std::min(value_ns, max_trackable_ns);
  ++counts_[index_of(v)];
  ++count_;
  sum_ns_ += v;
  max_ns_ = std::max(max_ns_, v);
  min_ns_ = std::min(min_ns_, v);
}

void histogram::merge(const histogram& other) noexcept {
  for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  max_ns_ = std::max(max_ns_, other.max_ns_);
  min_ns_ = std::min(min_ns_, other.min_ns_);
}

void histogram::reset() noexcept { *this = histogram{}; }

std::uint64_t histogram::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(midpoint_of(i), min(), max_ns_);
  }
  return max_ns_;
}

}  // namespace wharf::bench
