#include "core/queue/filters.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wharf::core::queue {
namespace {

struct binding_case {
  const char* binding_key;
  const char* routing_key;
  bool matches;
};

TEST(binding_key, table) {
  const binding_case cases[] = {
      // `#` alone matches everything, the empty routing key included.
      {"#", "", true},
      {"#", "a", true},
      {"#", "a.b.c", true},
      // `*` is exactly one word.
      {"*", "a", true},
      {"*", "", false},
      {"*", "a.b", false},
      {"*.*", "a.b", true},
      {"*.*", "a", false},
      {"a.*", "a.b", true},
      {"a.*", "a", false},
      {"a.*", "a.b.c", false},
      {"*.b", "a.b", true},
      {"*.b", "a.c", false},
      // `#` is zero or more words, wherever it stands.
      {"a.#", "a", true},
      {"a.#", "a.b", true},
      {"a.#", "a.b.c", true},
      {"a.#", "b.a", false},
      {"#.c", "c", true},
      {"#.c", "a.b.c", true},
      {"#.c", "a.b", false},
      {"a.#.c", "a.c", true},
      {"a.#.c", "a.x.y.c", true},
      {"a.#.c", "a.x.y", false},
      {"a.#.c", "a.c.x.c", true},
      {"#.#", "a", true},
      {"#.#", "", true},
      {"a.#.#.b", "a.b", true},
      {"#.*", "", false},
      {"#.*", "a", true},
      {"#.*", "a.b", true},
      {"*.#", "a", true},
      {"*.#", "", false},
      {"*.b.#", "a.b", true},
      {"*.b.#", "a.b.c.d", true},
      {"*.b.#", "b", false},
      {"#.b.#", "a.b.c", true},
      {"#.b.#", "a.c", false},
      // Literal words match whole words only.
      {"a.b", "a.b", true},
      {"a.b", "a.bc", false},
      {"a.b", "a.b.c", false},
      {"a", "", false},
      {"stock.usd.nyse", "stock.usd.nyse", true},
      {"stock.*.nyse", "stock.eur.nyse", true},
      {"stock.*.nyse", "stock.eur.lse", false},
      // Wildcards inside a word are literal characters.
      {"a*", "ab", false},
      {"a#", "ab", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(binding_key_matches(c.binding_key, c.routing_key), c.matches)
        << "binding key '" << c.binding_key << "', routing key '" << c.routing_key << "'";
  }
}

TEST(binding_key, fifteen_dots_with_many_hashes) {
  const std::string routing = "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p";
  EXPECT_TRUE(binding_key_matches("#.#.#.#.#.#.#.#.p", routing));
  EXPECT_FALSE(binding_key_matches("#.#.#.#.#.#.#.#.q", routing));
  EXPECT_TRUE(binding_key_matches("a.#.h.#.p", routing));
}

TEST(routing_key, subscription_without_binding_keys_gets_everything) {
  EXPECT_TRUE(routing_key_matches({}, ""));
  EXPECT_TRUE(routing_key_matches({}, "a.b"));
}

TEST(routing_key, any_binding_key_may_match) {
  const std::vector<std::string> keys = {"a.*", "b.#"};
  EXPECT_TRUE(routing_key_matches(keys, "a.x"));
  EXPECT_TRUE(routing_key_matches(keys, "b"));
  EXPECT_FALSE(routing_key_matches(keys, "c.x"));
  EXPECT_FALSE(routing_key_matches(keys, ""));
}

struct tag_case {
  std::vector<std::string> filter;
  std::vector<std::string> message;
  bool matches;
};

TEST(tag_filter, table) {
  const tag_case cases[] = {
      {{}, {}, true},  // no filter: everything, untagged messages too
      {{}, {"a"}, true},
      {{"a"}, {}, false},  // a filter: an untagged message does not match
      {{"a"}, {"a"}, true},
      {{"a"}, {"b"}, false},
      {{"a", "b"}, {"c", "b"}, true},  // one shared tag is enough
      {{"a", "b"}, {"c", "d"}, false},
      {{"A"}, {"a"}, false},  // tags are case-sensitive
  };
  for (const auto& c : cases) {
    EXPECT_EQ(tags_match(c.filter, c.message), c.matches)
        << ::testing::PrintToString(c.filter) << " vs " << ::testing::PrintToString(c.message);
  }
}

}  // namespace
}  // namespace wharf::core::queue
