// The per-SecretId request rate limit (CMQ code 4420), with the time passed in.
#include "gateway/http/rate_limiter.h"

#include <gtest/gtest.h>

namespace wharf::gateway::http {
namespace {

using namespace std::chrono_literals;
using clock = request_rate_limiter::clock;

TEST(request_rate_limiter, zero_is_no_limit) {
  request_rate_limiter limiter(0);
  const auto t = clock::now();
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(limiter.admit("AKID", t));
  EXPECT_EQ(limiter.refused(), 0u);
}

TEST(request_rate_limiter, a_burst_of_rate_then_rate_per_second) {
  request_rate_limiter limiter(10);
  const auto t = clock::now();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.admit("AKID", t)) << i;
  EXPECT_FALSE(limiter.admit("AKID", t));
  EXPECT_FALSE(limiter.admit("AKID", t + 50ms));  // half a token
  EXPECT_TRUE(limiter.admit("AKID", t + 100ms));  // one token back
  EXPECT_FALSE(limiter.admit("AKID", t + 100ms));
  EXPECT_EQ(limiter.refused(), 3u);
  // A long pause refills to the burst, never beyond.
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.admit("AKID", t + 1h)) << i;
  EXPECT_FALSE(limiter.admit("AKID", t + 1h));
}

TEST(request_rate_limiter, callers_have_their_own_buckets) {
  request_rate_limiter limiter(2);
  const auto t = clock::now();
  EXPECT_TRUE(limiter.admit("busy", t));
  EXPECT_TRUE(limiter.admit("busy", t));
  EXPECT_FALSE(limiter.admit("busy", t));
  EXPECT_TRUE(limiter.admit("quiet", t));
  EXPECT_TRUE(limiter.admit("quiet", t));
}

TEST(request_rate_limiter, each_caller_at_its_own_rate) {
  // The tenants' limiter: one bucket per tenant, each at its quota's rate.
  request_rate_limiter limiter(0);
  const auto t = clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.admit("acme", 3, t)) << i;
  EXPECT_FALSE(limiter.admit("acme", 3, t));
  EXPECT_TRUE(limiter.admit("acme", 3, t + 334ms));
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.admit("globex", 0, t));  // no quota
  EXPECT_TRUE(limiter.admit("initech", 1, t));
  EXPECT_FALSE(limiter.admit("initech", 1, t));
  EXPECT_EQ(limiter.refused(), 2u);
}

TEST(request_rate_limiter, a_new_rate_applies_to_the_next_request) {
  request_rate_limiter limiter(10);
  const auto t = clock::now();
  EXPECT_TRUE(limiter.admit("AKID", t));
  // Lowered: the 9 tokens left are cut to the new burst of 2.
  limiter.set_rate_per_s(2);
  EXPECT_TRUE(limiter.admit("AKID", t));
  EXPECT_TRUE(limiter.admit("AKID", t));
  EXPECT_FALSE(limiter.admit("AKID", t));
  EXPECT_FALSE(limiter.admit("AKID", t + 400ms));  // 0.8 of a token at 2/s
  EXPECT_TRUE(limiter.admit("AKID", t + 500ms));
  // No limit, then a limit again.
  limiter.set_rate_per_s(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.admit("AKID", t + 500ms));
  limiter.set_rate_per_s(1);
  EXPECT_EQ(limiter.rate_per_s(), 1u);
  EXPECT_FALSE(limiter.admit("AKID", t + 500ms));  // the bucket was empty when the limit went
  EXPECT_TRUE(limiter.admit("AKID", t + 1500ms));
}

TEST(request_rate_limiter, time_going_backwards_adds_nothing) {
  request_rate_limiter limiter(1);
  const auto t = clock::now();
  EXPECT_TRUE(limiter.admit("AKID", t));
  EXPECT_FALSE(limiter.admit("AKID", t - 10s));
  EXPECT_FALSE(limiter.admit("AKID", t + 500ms));
  EXPECT_TRUE(limiter.admit("AKID", t + 1s));
}

}  // namespace
}  // namespace wharf::gateway::http
