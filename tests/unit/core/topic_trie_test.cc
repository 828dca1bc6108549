#include "core/topic_trie.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/topic.h"

namespace wharf::core {
namespace {

using trie = topic_trie<std::string, int>;
using hit = std::pair<std::string, std::string>;  // (filter, key)

std::vector<hit> matches(trie& t, std::string_view topic) {
  std::vector<hit> out;
  t.match(topic, [&](std::string_view filter, const std::string& key, int&) {
    out.emplace_back(std::string(filter), key);
  });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(topic_trie, insert_find_replace) {
  trie t;
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(t.insert("a/b", "c1", 1));
  EXPECT_TRUE(t.insert("a/b", "c2", 2));
  EXPECT_FALSE(t.insert("a/b", "c1", 10));  // replace
  EXPECT_EQ(t.size(), 2U);
  ASSERT_NE(t.find("a/b", "c1"), nullptr);
  EXPECT_EQ(*t.find("a/b", "c1"), 10);
  EXPECT_EQ(*t.find("a/b", "c2"), 2);
  EXPECT_EQ(t.find("a/b", "c3"), nullptr);
  EXPECT_EQ(t.find("a", "c1"), nullptr);
  EXPECT_EQ(t.find("a/b/c", "c1"), nullptr);
  EXPECT_EQ(t.find("a/+", "c1"), nullptr);
  *t.find("a/b", "c2") = 20;
  int seen = 0;
  t.match("a/b", [&](std::string_view, const std::string& key, int& v) {
    if (key == "c2") seen = v;
  });
  EXPECT_EQ(seen, 20);
}

TEST(topic_trie, for_each_visits_every_entry_once) {
  trie t;
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"a/b", "c1"}, {"a/b", "c2"}, {"a/+", "c1"}, {"#", "c3"}, {"a/#", "c4"}, {"x/y/z", "c5"}, {"", "c6"}};
  for (int i = 0; i < static_cast<int>(entries.size()); ++i) t.insert(entries[i].first, entries[i].second, i);
  // Enough literal children under one node for its hash table.
  for (int i = 0; i < 20; ++i) t.insert("many/" + std::to_string(i), "m", 100 + i);
  std::multiset<int> seen;
  t.for_each([&](const std::string&, int& v) {
    seen.insert(v);
    v = -v;  // values may be changed in place
  });
  std::multiset<int> expected;
  for (int i = 0; i < static_cast<int>(entries.size()); ++i) expected.insert(i);
  for (int i = 0; i < 20; ++i) expected.insert(100 + i);
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(*t.find("many/7", "m"), -107);
}

TEST(topic_trie, wildcards_are_distinct_from_literals) {
  trie t;
  t.insert("+", "plus", 1);
  t.insert("#", "hash", 2);
  EXPECT_EQ(t.find("+", "plus") != nullptr, true);
  EXPECT_EQ(t.find("#", "plus"), nullptr);
  EXPECT_EQ(t.find("#", "hash") != nullptr, true);
  EXPECT_EQ(t.size(), 2U);
}

TEST(topic_trie, match_with_wildcards) {
  trie t;
  t.insert("a/b/c", "exact", 0);
  t.insert("a/+/c", "plus", 0);
  t.insert("a/#", "hash", 0);
  t.insert("#", "all", 0);
  t.insert("+/+/+", "three", 0);
  t.insert("a/b", "ab", 0);
  t.insert("+/b/#", "pbh", 0);

  EXPECT_EQ(matches(t, "a/b/c"), (std::vector<hit>{{"#", "all"},
                                                  {"+/+/+", "three"},
                                                  {"+/b/#", "pbh"},
                                                  {"a/#", "hash"},
                                                  {"a/+/c", "plus"},
                                                  {"a/b/c", "exact"}}));
  // '#' matches its parent level.
  EXPECT_EQ(matches(t, "a"), (std::vector<hit>{{"#", "all"}, {"a/#", "hash"}}));
  EXPECT_EQ(matches(t, "a/b"),
            (std::vector<hit>{{"#", "all"}, {"+/b/#", "pbh"}, {"a/#", "hash"}, {"a/b", "ab"}}));
  EXPECT_EQ(matches(t, "x/y"), (std::vector<hit>{{"#", "all"}}));
  EXPECT_EQ(matches(t, "a/b/c/d"),
            (std::vector<hit>{{"#", "all"}, {"+/b/#", "pbh"}, {"a/#", "hash"}}));
}

TEST(topic_trie, empty_levels) {
  trie t;
  t.insert("/", "slash", 0);
  t.insert("+/+", "pp", 0);
  t.insert("/a", "slash_a", 0);
  t.insert("+/a", "plus_a", 0);
  t.insert("a/+", "a_plus", 0);
  t.insert("/#", "slash_hash", 0);
  EXPECT_EQ(matches(t, "/"), (std::vector<hit>{{"+/+", "pp"}, {"/", "slash"}, {"/#", "slash_hash"}}));
  EXPECT_EQ(matches(t, "/a"), (std::vector<hit>{{"+/+", "pp"},
                                               {"+/a", "plus_a"},
                                               {"/#", "slash_hash"},
                                               {"/a", "slash_a"}}));
  EXPECT_EQ(matches(t, "a/"), (std::vector<hit>{{"+/+", "pp"}, {"a/+", "a_plus"}}));
  EXPECT_EQ(matches(t, "a"), (std::vector<hit>{}));
}

// [MQTT-4.7.2-1]
TEST(topic_trie, dollar_topics_skip_first_level_wildcards) {
  trie t;
  t.insert("#", "all", 0);
  t.insert("+/info", "plus", 0);
  t.insert("$SYS/#", "sys", 0);
  t.insert("$SYS/+", "sys_plus", 0);
  t.insert("a/#", "a", 0);
  EXPECT_EQ(matches(t, "$SYS/info"), (std::vector<hit>{{"$SYS/#", "sys"}, {"$SYS/+", "sys_plus"}}));
  EXPECT_EQ(matches(t, "$SYS"), (std::vector<hit>{{"$SYS/#", "sys"}}));
  EXPECT_EQ(matches(t, "x/info"), (std::vector<hit>{{"#", "all"}, {"+/info", "plus"}}));
  // '$' below the first level is an ordinary character.
  EXPECT_EQ(matches(t, "a/$x"), (std::vector<hit>{{"#", "all"}, {"a/#", "a"}}));
}

TEST(topic_trie, erase_prunes_empty_nodes) {
  trie t;
  EXPECT_EQ(t.node_count(), 1U);
  t.insert("a/b/c", "k", 0);
  t.insert("a/+/#", "k", 0);
  t.insert("a", "k", 0);
  const std::size_t full = t.node_count();
  EXPECT_EQ(full, 1U + 3 + 2);

  EXPECT_FALSE(t.erase("a/b/c", "other"));
  EXPECT_FALSE(t.erase("a/b", "k"));
  EXPECT_FALSE(t.erase("x/y", "k"));
  EXPECT_EQ(t.node_count(), full);

  EXPECT_TRUE(t.erase("a/b/c", "k"));
  EXPECT_FALSE(t.erase("a/b/c", "k"));
  EXPECT_EQ(t.node_count(), 1U + 1 + 2);  // "a" holds an entry and the '+' subtree
  EXPECT_TRUE(t.erase("a/+/#", "k"));
  EXPECT_EQ(t.node_count(), 2U);
  EXPECT_TRUE(t.erase("a", "k"));
  EXPECT_EQ(t.node_count(), 1U);
  EXPECT_EQ(t.size(), 0U);
  EXPECT_TRUE(matches(t, "a/b/c").empty());
}

TEST(topic_trie, many_children_grow_and_shrink) {
  trie t;
  constexpr int n = 2000;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(t.insert("root/" + std::to_string(i) + "/x", "k", i));
  EXPECT_EQ(t.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto m = matches(t, "root/" + std::to_string(i) + "/x");
    ASSERT_EQ(m.size(), 1U) << i;
    EXPECT_EQ(m[0].first, "root/" + std::to_string(i) + "/x");
  }
  EXPECT_TRUE(matches(t, "root/" + std::to_string(n) + "/x").empty());

  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  std::set<int> left(order.begin(), order.end());
  for (int k = 0; k < n; ++k) {
    const int i = order[k];
    ASSERT_TRUE(t.erase("root/" + std::to_string(i) + "/x", "k"));
    left.erase(i);
    // Spot-check that every remaining child is still reachable after each table change.
    if (k % 97 == 0 || left.size() < 12) {
      for (int j : left) {
        ASSERT_NE(t.find("root/" + std::to_string(j) + "/x", "k"), nullptr) << j;
      }
    }
  }
  EXPECT_EQ(t.node_count(), 1U);
}

TEST(topic_trie, many_entries_under_one_filter) {
  trie t;
  constexpr int n = 1000;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(t.insert("news/#", "c" + std::to_string(i), i));
  EXPECT_FALSE(t.insert("news/#", "c500", -1));
  EXPECT_EQ(*t.find("news/#", "c500"), -1);
  for (int i = 0; i < n; i += 2) ASSERT_TRUE(t.erase("news/#", "c" + std::to_string(i)));
  EXPECT_EQ(t.size(), static_cast<std::size_t>(n / 2));
  const auto m = matches(t, "news/today");
  ASSERT_EQ(m.size(), static_cast<std::size_t>(n / 2));
  for (int i = 1; i < n; i += 2) {
    ASSERT_NE(t.find("news/#", "c" + std::to_string(i)), nullptr) << i;
    EXPECT_EQ(t.find("news/#", "c" + std::to_string(i - 1)), nullptr) << i;
  }
  for (int i = 1; i < n; i += 2) ASSERT_TRUE(t.erase("news/#", "c" + std::to_string(i)));
  EXPECT_EQ(t.node_count(), 1U);
}

TEST(topic_trie, long_and_deep_filters) {
  trie t;
  const std::string long_level(1000, 'L');
  const std::string long_filter = "a/" + long_level + "/+/#";
  t.insert(long_filter, "long", 0);
  EXPECT_EQ(matches(t, "a/" + long_level + "/x/y"), (std::vector<hit>{{long_filter, "long"}}));

  // 20,000 levels: nothing may recurse per level.
  std::string deep;
  std::string deep_topic;
  for (int i = 0; i < 20000; ++i) {
    deep += i == 0 ? "+" : "/+";
    deep_topic += i == 0 ? "x" : "/x";
  }
  t.insert(deep, "deep", 0);
  const auto m = matches(t, deep_topic);
  ASSERT_EQ(m.size(), 1U);
  EXPECT_EQ(m[0].first, deep);
  EXPECT_TRUE(t.erase(deep, "deep"));
  t.insert(deep, "deep", 0);  // destroyed with the trie, iteratively
}

TEST(topic_trie, move_leaves_an_empty_usable_trie) {
  trie a;
  a.insert("x/y", "k", 1);
  trie b(std::move(a));
  EXPECT_EQ(b.size(), 1U);
  EXPECT_EQ(a.size(), 0U);  // NOLINT(bugprone-use-after-move): documented state
  a.insert("z", "k", 2);
  EXPECT_EQ(matches(a, "z").size(), 1U);
  EXPECT_EQ(matches(b, "x/y").size(), 1U);
}

// The trie agrees with topic_matches on random filters and topics.
TEST(topic_trie, agrees_with_topic_matches) {
  std::mt19937 rng(2024);
  const std::vector<std::string> levels = {"a", "b", "", "$x", "ab"};
  const auto random_topic = [&] {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      if (i) s += '/';
      s += levels[rng() % levels.size()];
    }
    return s;
  };
  const auto random_filter = [&] {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      if (i) s += '/';
      const unsigned r = rng() % 8;
      if (r == 0) {
        s += '+';
      } else if (r == 1 && i == n - 1) {
        s += '#';
      } else {
        s += levels[rng() % levels.size()];
      }
    }
    return s;
  };

  topic_trie<int, int> t;
  std::vector<std::string> filters;
  for (int i = 0; i < 300; ++i) {
    std::string f = random_filter();
    while (!is_valid_topic_filter(f)) f = random_filter();  // "" is the only invalid one
    filters.push_back(f);
    t.insert(filters.back(), i, i);
  }
  for (int round = 0; round < 2; ++round) {
    for (int q = 0; q < 2000; ++q) {
      const std::string topic = random_topic();
      std::set<int> expected;
      for (int i = 0; i < static_cast<int>(filters.size()); ++i) {
        if (!filters[i].empty() && topic_matches(filters[i], topic)) expected.insert(i);
      }
      std::set<int> got;
      t.match(topic, [&](std::string_view filter, const int& key, int& value) {
        EXPECT_EQ(key, value);
        EXPECT_EQ(filter, filters[key]);
        EXPECT_TRUE(got.insert(key).second) << "visited twice: " << key;
      });
      ASSERT_EQ(got, expected) << "topic '" << topic << "'";
    }
    // Erase every other entry and check again.
    for (int i = 0; i < static_cast<int>(filters.size()); i += 2) {
      if (!filters[i].empty()) {
        ASSERT_TRUE(t.erase(filters[i], i));
      }
      filters[i].clear();
    }
  }
}

// Not an assertion: reports the memory one single-subscription entry costs.
struct sub_value {
  std::uint32_t subscription_id;
  std::uint8_t options;
};

std::size_t heap_in_use() { return mallinfo2().uordblks; }

void report_bytes_per_entry(const char* shape, const std::function<std::string(int)>& filter,
                            int n) {
  const std::size_t before = heap_in_use();
  std::chrono::nanoseconds match_time{0};
  {
    topic_trie<std::uint64_t, sub_value> t;
    for (int i = 0; i < n; ++i) {
      t.insert(filter(i), static_cast<std::uint64_t>(i), sub_value{static_cast<std::uint32_t>(i), 1});
    }
    const std::size_t after = heap_in_use();
    std::uint64_t hits = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; i += 7) {
      t.match(filter(i), [&](std::string_view, const std::uint64_t&, sub_value&) { ++hits; });
    }
    match_time = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(hits, static_cast<std::uint64_t>((n + 6) / 7));
    std::cout << "[          ] topic_trie " << shape << ": " << n << " entries, "
              << t.node_count() << " nodes, "
              << static_cast<double>(after - before) / n << " bytes/entry, "
              << static_cast<double>(match_time.count()) / ((n + 6) / 7) << " ns/match\n";
  }
}

TEST(topic_trie, memory_per_entry_report) {
  constexpr int n = 1'000'000;
  report_bytes_per_entry("'clients/{id}/inbox'",
                         [](int i) { return "clients/client-" + std::to_string(i) + "/inbox"; }, n);
  report_bytes_per_entry("'devices/{id}'",
                         [](int i) { return "devices/dev-" + std::to_string(i); }, n);
}

}  // namespace
}  // namespace wharf::core
