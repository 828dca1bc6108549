#include "session/registry.h"

#include <gtest/gtest.h>

#include <thread>

namespace wharf::session {
namespace {

TEST(registry, get_or_create_returns_the_same_entry) {
  registry r;
  auto a = r.get_or_create("dev");
  auto b = r.get_or_create("dev");
  EXPECT_EQ(a, b);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.find("dev"), a);
  EXPECT_EQ(r.find("other"), nullptr);
}

TEST(registry, erase_removes_only_the_registered_entry) {
  registry r;
  auto a = r.get_or_create("dev");
  r.erase(a);
  EXPECT_EQ(r.find("dev"), nullptr);
  auto b = r.get_or_create("dev");
  EXPECT_NE(a, b);
  r.erase(a);  // stale entry: must not remove the new one
  EXPECT_EQ(r.find("dev"), b);
}

TEST(registry, concurrent_creation_yields_one_entry_per_id) {
  registry r;
  std::vector<std::thread> threads;
  std::vector<std::shared_ptr<session_entry>> got(8);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) (void)r.get_or_create("id-" + std::to_string(i));
      got[t] = r.get_or_create("shared");
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.size(), 1001u);
  for (auto& g : got) EXPECT_EQ(g, got[0]);
  std::size_t visited = 0;
  r.for_each([&](const auto&) { ++visited; });
  EXPECT_EQ(visited, 1001u);
}

}  // namespace
}  // namespace wharf::session
