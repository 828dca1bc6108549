#include "bench/pacer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace wharf::bench {
namespace {

using namespace std::chrono_literals;
using clock = pacer::clock;

TEST(pacer, no_drift_over_a_million_sends) {
  const clock::time_point start{};
  pacer p(start, 3.0, 1, 0);  // 3/s: 333333333.33 ns per send, not a whole number
  clock::time_point last{};
  for (int i = 0; i < 1'000'000; ++i) last = p.next();
  // Send 999,999 is due at exactly 999999 / 3 s = 333333 s; rounding never accumulates.
  EXPECT_EQ(last - start, std::chrono::nanoseconds(333'333'000'000'000LL));
  EXPECT_EQ(p.scheduled(), 1'000'000U);
}

TEST(pacer, intervals_are_one_over_rate) {
  const clock::time_point start = clock::now();
  pacer p(start, 1000.0, 1, 0);
  EXPECT_EQ(p.next(), start);
  EXPECT_EQ(p.next(), start + 1ms);
  EXPECT_EQ(p.next(), start + 2ms);
}

TEST(pacer, total_rate_is_split_evenly_across_senders) {
  const clock::time_point start{};
  const std::uint32_t senders = 4;
  std::vector<pacer> pacers;
  for (std::uint32_t k = 0; k < senders; ++k) pacers.emplace_back(start, 1000.0, senders, k);
  // Together the senders fill every 1 ms slot exactly once.
  std::vector<clock::time_point> all;
  for (int i = 0; i < 250; ++i)
    for (auto& p : pacers) all.push_back(p.next());
  for (std::size_t n = 0; n < all.size(); ++n) EXPECT_EQ(all[n], start + std::chrono::milliseconds(n));
  // Each sender alone runs at rate / senders.
  EXPECT_EQ(pacers[2].at(1) - pacers[2].at(0), 4ms);
}

TEST(pacer, schedule_does_not_depend_on_when_next_is_called) {
  const clock::time_point start{};
  pacer a(start, 250'000.0, 3, 1);
  pacer b(start, 250'000.0, 3, 1);
  for (int i = 0; i < 1000; ++i) (void)a.next();
  EXPECT_EQ(a.next(), b.at(1000));
}

}  // namespace
}  // namespace wharf::bench
