// CMQ's notify strategies as a schedule table (docs/API.md, "HTTP push").
#include "core/queue/push_retry.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <set>

namespace wharf::core::queue {
namespace {

constexpr std::int64_t second_ms = 1000;

TEST(push_retry, nothing_failed_means_no_wait) {
  EXPECT_EQ(next_retry_delay_ms(notify_strategy::backoff_retry, 0, 12345), 0);
  EXPECT_EQ(next_retry_delay_ms(notify_strategy::exponential_decay_retry, 0, 12345), 0);
}

TEST(push_retry, backoff_retries_three_times_then_gives_up) {
  for (std::uint32_t failed = 1; failed <= 3; ++failed) {
    auto wait = next_retry_delay_ms(notify_strategy::backoff_retry, failed, 0);
    ASSERT_TRUE(wait) << "retry " << failed;
  }
  EXPECT_FALSE(next_retry_delay_ms(notify_strategy::backoff_retry, 4, 0));
  EXPECT_FALSE(next_retry_delay_ms(notify_strategy::backoff_retry, 1000, 0));
  EXPECT_FALSE(next_retry_delay_ms(notify_strategy::backoff_retry, std::numeric_limits<std::uint32_t>::max(), 0));
}

TEST(push_retry, backoff_waits_10_to_20_seconds_chosen_by_the_random_value) {
  EXPECT_EQ(next_retry_delay_ms(notify_strategy::backoff_retry, 1, 0), 10 * second_ms);
  EXPECT_EQ(next_retry_delay_ms(notify_strategy::backoff_retry, 1, 1), 10 * second_ms + 1);
  EXPECT_EQ(next_retry_delay_ms(notify_strategy::backoff_retry, 2, 10'000), 20 * second_ms);
  EXPECT_EQ(next_retry_delay_ms(notify_strategy::backoff_retry, 3, 10'001), 10 * second_ms);
  // Every random value lands inside the range, the largest ones too.
  for (std::uint64_t random_value : {std::uint64_t{7}, std::uint64_t{123'456'789}, std::uint64_t{1} << 63,
                                     std::numeric_limits<std::uint64_t>::max()}) {
    auto wait = next_retry_delay_ms(notify_strategy::backoff_retry, 2, random_value);
    ASSERT_TRUE(wait);
    EXPECT_GE(*wait, 10 * second_ms);
    EXPECT_LE(*wait, 20 * second_ms);
  }
}

TEST(push_retry, backoff_spreads_over_the_whole_range) {
  std::set<std::int64_t> seen;
  for (std::uint64_t random_value = 0; random_value < 10'001; ++random_value) {
    seen.insert(*next_retry_delay_ms(notify_strategy::backoff_retry, 1, random_value));
  }
  EXPECT_EQ(seen.size(), 10'001u);
  EXPECT_EQ(*seen.begin(), 10 * second_ms);
  EXPECT_EQ(*seen.rbegin(), 20 * second_ms);
}

TEST(push_retry, exponential_decay_doubles_from_one_second_up_to_512) {
  const std::int64_t expected_s[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512};
  for (std::uint32_t failed = 1; failed <= std::size(expected_s); ++failed) {
    EXPECT_EQ(next_retry_delay_ms(notify_strategy::exponential_decay_retry, failed, 0),
              expected_s[failed - 1] * second_ms)
        << "retry " << failed;
  }
}

TEST(push_retry, exponential_decay_ignores_the_random_value) {
  for (std::uint32_t failed : {1u, 5u, 100u}) {
    EXPECT_EQ(next_retry_delay_ms(notify_strategy::exponential_decay_retry, failed, 0),
              next_retry_delay_ms(notify_strategy::exponential_decay_retry, failed,
                                  std::numeric_limits<std::uint64_t>::max()));
  }
}

TEST(push_retry, exponential_decay_retries_176_times_over_about_a_day) {
  std::int64_t total_ms = 0;
  for (std::uint32_t failed = 1; failed <= 176; ++failed) {
    auto wait = next_retry_delay_ms(notify_strategy::exponential_decay_retry, failed, 0);
    ASSERT_TRUE(wait) << "retry " << failed;
    total_ms += *wait;
  }
  EXPECT_EQ(next_retry_delay_ms(notify_strategy::exponential_decay_retry, 176, 0), 512 * second_ms);
  EXPECT_FALSE(next_retry_delay_ms(notify_strategy::exponential_decay_retry, 177, 0));
  EXPECT_FALSE(next_retry_delay_ms(notify_strategy::exponential_decay_retry,
                                   std::numeric_limits<std::uint32_t>::max(), 0));
  // 1 + 2 + … + 512 = 1023 s, then 166 × 512 s: 86 015 s, 23.9 hours.
  EXPECT_EQ(total_ms, 86'015 * second_ms);
}

}  // namespace
}  // namespace wharf::core::queue
