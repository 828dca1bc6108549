// Offered-load pacing for wharf-bench. A total rate is split across N senders; sender k
// sends its i-th message at start + (i * N + k) / rate. Every send time is computed from
// the start time, never from "now", so late sends do not push later ones back (no drift,
// the offered load stays what was asked for even when the broker pushes back for a while).
#pragma once

#include <chrono>
#include <cstdint>

namespace wharf::bench {

class pacer {
 public:
  using clock = std::chrono::steady_clock;

  // REQUIRES: rate_per_s > 0, senders > 0, index < senders.
  pacer(clock::time_point start, double rate_per_s, std::uint32_t senders, std::uint32_t index) noexcept;

  // The scheduled time of the next send; advances the schedule by one message.
  [[nodiscard]] clock::time_point next() noexcept;
  // The scheduled time of send number `i` (0-based) of this sender, without advancing.
  [[nodiscard]] clock::time_point at(std::uint64_t i) const noexcept;
  [[nodiscard]] std::uint64_t scheduled() const noexcept { return next_index_; }

 private:
  clock::time_point start_;
  double rate_per_s_;
  std::uint32_t senders_;
  std::uint32_t index_;
  std::uint64_t next_index_ = 0;
};

}  // namespace wharf::bench
