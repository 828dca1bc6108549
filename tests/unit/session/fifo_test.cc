#include "session/fifo.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wharf::session {
namespace {

std::vector<int> contents(fifo<int>& q) { return {q.begin(), q.end()}; }

TEST(fifo, pops_in_push_order_across_compactions) {
  fifo<int> q;
  EXPECT_TRUE(q.empty());
  int next_in = 0, next_out = 0;
  // Interleave pushes and pops so the head passes the compaction threshold many times.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 40; ++i) q.push_back(next_in++);
    for (int i = 0; i < 30; ++i) {
      ASSERT_EQ(q.front(), next_out++);
      q.pop_front();
    }
    ASSERT_EQ(q.size(), static_cast<std::size_t>(next_in - next_out));
  }
  while (!q.empty()) {
    ASSERT_EQ(q.front(), next_out++);
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
}

TEST(fifo, prepend_goes_in_front_in_order_even_after_pops) {
  fifo<int> q;
  for (int i = 10; i < 15; ++i) q.push_back(i);
  q.pop_front();
  q.pop_front();
  q.prepend({1, 2, 3});
  EXPECT_EQ(contents(q), (std::vector<int>{1, 2, 3, 12, 13, 14}));
  q.prepend({});
  EXPECT_EQ(q.size(), 6u);
}

TEST(fifo, drained_queue_is_reusable_and_clear_empties_it) {
  fifo<std::string> q;
  for (int i = 0; i < 100; ++i) q.push_back(std::to_string(i));
  while (!q.empty()) q.pop_front();
  q.push_back("after");
  EXPECT_EQ(q.front(), "after");
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.begin(), q.end());
}

}  // namespace
}  // namespace wharf::session
