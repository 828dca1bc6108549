#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

namespace wharf::bench {
namespace {

void expect_within_1pct(std::uint64_t actual, double expected) {
  EXPECT_NEAR(static_cast<double>(actual), expected, expected * 0.01) << "expected ~" << expected;
}

TEST(histogram, empty_reports_zero) {
  histogram h;
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.percentile(50), 0U);
  EXPECT_EQ(h.percentile(99.9), 0U);
  EXPECT_EQ(h.max(), 0U);
  EXPECT_EQ(h.min(), 0U);
}

TEST(histogram, uniform_1us_to_100ms_percentiles_within_1pct) {
  histogram h;
  // 1 µs .. 100 ms in steps of 1 µs: p-th percentile is p% of 100 ms.
  for (std::uint64_t us = 1; us <= 100'000; ++us) h.record(us * 1000);
  EXPECT_EQ(h.count(), 100'000U);
  expect_within_1pct(h.percentile(50), 50e6);
  expect_within_1pct(h.percentile(90), 90e6);
  expect_within_1pct(h.percentile(99), 99e6);
  expect_within_1pct(h.percentile(99.9), 99.9e6);
  EXPECT_EQ(h.max(), 100'000'000U);
  EXPECT_EQ(h.min(), 1000U);
}

TEST(histogram, exponential_distribution_matches_sorted_sample) {
  std::mt19937_64 rng(42);
  std::exponential_distribution<double> dist(1.0 / 200'000.0);  // mean 200 µs
  std::vector<std::uint64_t> values;
  histogram h;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng)) + 1000;
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
    expect_within_1pct(h.percentile(p), static_cast<double>(values[rank - 1]));
  }
}

TEST(histogram, single_value_every_percentile_is_that_value) {
  histogram h;
  h.record(123'456);
  for (double p : {1.0, 50.0, 99.9, 100.0}) EXPECT_EQ(h.percentile(p), 123'456U);
}

TEST(histogram, max_is_exact_and_values_clamp_at_60s) {
  histogram h;
  h.record(5'000);
  h.record(7'777'777);
  EXPECT_EQ(h.max(), 7'777'777U);
  EXPECT_EQ(h.percentile(100), 7'777'777U);
  h.record(3'600'000'000'000ULL);  // one hour
  EXPECT_EQ(h.max(), histogram::max_trackable_ns);
  expect_within_1pct(h.percentile(100), 60e9);
}

TEST(histogram, merge_equals_recording_everything_in_one) {
  histogram a, b, all;
  for (std::uint64_t v = 1000; v < 2'000'000; v += 997) {
    ((v / 997) % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double p : {50.0, 90.0, 99.0, 99.9}) EXPECT_EQ(a.percentile(p), all.percentile(p));
}

TEST(histogram, merge_with_empty_changes_nothing) {
  histogram a, empty;
  a.record(42'000);
  a.merge(empty);
  EXPECT_EQ(a.count(), 1U);
  EXPECT_EQ(a.min(), 42'000U);
  EXPECT_EQ(a.percentile(50), 42'000U);
}

}  // namespace
}  // namespace wharf::bench
