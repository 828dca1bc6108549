// When a failed HTTP push is tried again: CMQ's two notify strategies as a pure function,
// so the engine stays deterministic (the caller draws the random value and records the
// chosen delay in the push_result command).
#pragma once

#include <cstdint>
#include <optional>

#include "core/queue/types.h"

namespace wharf::core::queue {

// The wait before the next attempt of a delivery whose attempts failed `failed_attempts`
// times, or std::nullopt when the delivery is to be dropped.
//   BACKOFF_RETRY: 3 retries, each after a wait drawn uniformly from 10 000..20 000 ms by
//     `random_value`; gives up when the 3rd retry (the 4th attempt) fails.
//   EXPONENTIAL_DECAY_RETRY: 176 retries (about a day in all): waits 1, 2, 4 … 512 s, then
//     512 s each time; gives up when the 176th retry fails. `random_value` is not used.
// With failed_attempts == 0 nothing has failed yet and the wait is 0.
[[nodiscard]] std::optional<std::int64_t> next_retry_delay_ms(notify_strategy strategy,
                                                              std::uint32_t failed_attempts,
                                                              std::uint64_t random_value);

}  // namespace wharf::core::queue
