// Latency histogram for wharf-bench: HDR-style log-linear buckets. Values below 128 ns
// are kept exactly; above, each power of two is split into 128 sub-buckets, so a reported
// value is within 1/256 (0.4%) of the recorded one. Values are clamped to 60 s.
// Not thread-safe: one histogram per thread, merged at report time.
#pragma once

#include <array>
#include <cstdint>

namespace wharf::bench {

class histogram {
 public:
  static constexpr std::uint64_t max_trackable_ns = 60'000'000'000ULL;

  void record(std::uint64_t value_ns) noexcept;
  void merge(const histogram& other) noexcept;
  void reset() noexcept;

  // The value at percentile `p` (0 < p <= 100): the smallest recorded value v such that
  // at least p% of the recorded values are <= v, within the bucket precision, never above
  // max(). 0 when empty.
  [[nodiscard]] std::uint64_t percentile(double p) const noexcept;
  [[nodiscard]] std::uint64_t max() const noexcept { return max_ns_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_ns_; }
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] double mean() const noexcept { return count_ == 0 ? 0.0 : static_cast<double>(sum_ns_) / static_cast<double>(count_); }

 private:
  static constexpr unsigned sub_bits = 7;
  static constexpr std::uint64_t sub_count = 1ULL << sub_bits;  // 128
  // 2^36 ns > 60 s: exponents 0..29 above the linear range.
  static constexpr std::size_t bucket_count = sub_count * 31;

  [[nodiscard]] static std::size_t index_of(std::uint64_t v) noexcept;
  [[nodiscard]] static std::uint64_t midpoint_of(std::size_t index) noexcept;

  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ns_ = 0;
  std::uint64_t max_ns_ = 0;
  std::uint64_t min_ns_ = ~0ULL;
};

}  // namespace wharf::bench
