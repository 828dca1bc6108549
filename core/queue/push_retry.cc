#include "core/queue/push_retry.h"

#include <algorithm>

namespace wharf::core::queue {
namespace {

// CMQ's published retry schedules (docs/API.md, "HTTP push").
constexpr std::uint32_t backoff_retries = 3;
constexpr std::int64_t backoff_min_wait_ms = 10'000;
constexpr std::int64_t backoff_max_wait_ms = 20'000;

constexpr std::uint32_t decay_retries = 176;
constexpr std::int64_t decay_first_wait_ms = 1'000;
// The wait doubles nine times, to 512 s, and stays there from the 10th retry on.
constexpr std::uint32_t decay_doublings = 9;

}  // namespace

std::optional<std::int64_t> next_retry_delay_ms(notify_strategy strategy, std::uint32_t failed_attempts,
                                                std::uint64_t random_value) {
  if (failed_attempts == 0) return 0;
  // The first failure is that of the first attempt; retry n follows failure n.
  const std::uint32_t retry = failed_attempts;
  if (strategy == notify_strategy::backoff_retry) {
    if (retry > backoff_retries) return std::nullopt;
    // 10 001 possible waits, both ends included; the modulo bias over 2^64 values is
    // below 1e-15.
    constexpr auto choices = static_cast<std::uint64_t>(backoff_max_wait_ms - backoff_min_wait_ms + 1);
    return backoff_min_wait_ms + static_cast<std::int64_t>(random_value % choices);
  }
  // notify_strategy::exponential_decay_retry
  if (retry > decay_retries) return std::nullopt;
  return decay_first_wait_ms << std::min(retry - 1, decay_doublings);
}

}  // namespace wharf::core::queue
