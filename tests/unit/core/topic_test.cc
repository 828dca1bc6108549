#include "core/topic.h"

#include <gtest/gtest.h>

#include <string>

namespace wharf::core {
namespace {

TEST(topic_name, valid_names) {
  EXPECT_TRUE(is_valid_topic_name("a"));
  EXPECT_TRUE(is_valid_topic_name("a/b/c"));
  EXPECT_TRUE(is_valid_topic_name("/"));
  EXPECT_TRUE(is_valid_topic_name("//"));
  EXPECT_TRUE(is_valid_topic_name("$SYS/broker"));
  EXPECT_TRUE(is_valid_topic_name(" "));
  EXPECT_TRUE(is_valid_topic_name(std::string(65535, 'x')));
}

// [MQTT-4.7.3-1] topic names are at least one character long.
TEST(topic_name, empty_is_invalid) { EXPECT_FALSE(is_valid_topic_name("")); }

TEST(topic_name, longer_than_65535_is_invalid) {
  EXPECT_FALSE(is_valid_topic_name(std::string(65536, 'x')));
}

// [MQTT-4.7.1-1] wildcards are not allowed in topic names.
TEST(topic_name, wildcards_are_invalid) {
  EXPECT_FALSE(is_valid_topic_name("a/+"));
  EXPECT_FALSE(is_valid_topic_name("a/#"));
  EXPECT_FALSE(is_valid_topic_name("a+b"));
  EXPECT_FALSE(is_valid_topic_name("#"));
}

TEST(topic_filter, valid_filters) {
  for (const char* f : {"a", "a/b", "#", "+", "+/+", "a/#", "a/+/c", "+/#", "/", "/+", "+/",
                        "//", "$SYS/#", "a//#", "/#"}) {
    EXPECT_TRUE(is_valid_topic_filter(f)) << f;
  }
  EXPECT_TRUE(is_valid_topic_filter(std::string(65535, 'x')));
}

TEST(topic_filter, invalid_filters) {
  for (const char* f : {"", "a#", "#a", "a/#/b", "#/", "##", "a/b#", "a+", "+a", "a/+b",
                        "a/b+/c", "++", "+#", "#+"}) {
    EXPECT_FALSE(is_valid_topic_filter(f)) << f;
  }
  EXPECT_FALSE(is_valid_topic_filter(std::string(65536, 'x')));
}

// [MQTT-4.8.2-1], [MQTT-4.8.2-2]
TEST(topic_filter, shared_filters) {
  EXPECT_TRUE(is_valid_topic_filter("$share/g/a/b"));
  EXPECT_TRUE(is_valid_topic_filter("$share/g/#"));
  EXPECT_TRUE(is_valid_topic_filter("$share/g/+/x"));
  EXPECT_TRUE(is_valid_topic_filter("$share/g//"));
  EXPECT_FALSE(is_valid_topic_filter("$share/g"));
  EXPECT_FALSE(is_valid_topic_filter("$share/g/"));
  EXPECT_FALSE(is_valid_topic_filter("$share//a"));
  EXPECT_FALSE(is_valid_topic_filter("$share/g+/a"));
  EXPECT_FALSE(is_valid_topic_filter("$share/+/a"));
  EXPECT_FALSE(is_valid_topic_filter("$share/#/a"));
  EXPECT_FALSE(is_valid_topic_filter("$share/g/a#"));
  EXPECT_FALSE(is_valid_topic_filter("$share/"));
  // Not shared filters: ordinary filters starting with '$'.
  EXPECT_TRUE(is_valid_topic_filter("$share"));
  EXPECT_TRUE(is_valid_topic_filter("$shared/g/a"));
}

TEST(parse_shared_filter, splits_group_and_filter) {
  const auto p = parse_shared_filter("$share/grp/a/+/c");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->group, "grp");
  EXPECT_EQ(p->filter, "a/+/c");

  const auto hash = parse_shared_filter("$share/g/#");
  ASSERT_TRUE(hash);
  EXPECT_EQ(hash->group, "g");
  EXPECT_EQ(hash->filter, "#");
}

TEST(parse_shared_filter, non_shared_is_nullopt) {
  EXPECT_FALSE(parse_shared_filter("a/b"));
  EXPECT_FALSE(parse_shared_filter("$share"));
  EXPECT_FALSE(parse_shared_filter("$share/g"));
  EXPECT_FALSE(parse_shared_filter("$SHARE/g/a"));
  EXPECT_FALSE(parse_shared_filter("share/g/a"));
  EXPECT_FALSE(parse_shared_filter(""));
}

TEST(parse_shared_filter, does_not_validate) {
  const auto p = parse_shared_filter("$share//x");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->group, "");
  EXPECT_EQ(p->filter, "x");
}

struct match_case {
  const char* filter;
  const char* topic;
  bool matches;
};

TEST(topic_matches, table) {
  const match_case cases[] = {
      {"a", "a", true},
      {"a", "b", false},
      {"a/b", "a/b", true},
      {"a/b", "a", false},
      {"a", "a/b", false},
      {"a/b", "a/b/c", false},
      // '+' matches exactly one level, including an empty one.
      {"+", "a", true},
      {"+", "a/b", false},
      {"+", "/", false},
      {"+/+", "/", true},
      {"+/a", "/a", true},
      {"a/+", "a/", true},
      {"a/+", "a", false},
      {"a/+/c", "a/b/c", true},
      {"a/+/c", "a//c", true},
      {"a/+/c", "a/b/d", false},
      {"+/+/+", "a/b", false},
      // '#' matches the parent and any number of levels [MQTT-4.7.1-1].
      {"#", "a", true},
      {"#", "a/b/c", true},
      {"#", "/", true},
      {"#", "/a", true},
      {"a/#", "a", true},
      {"a/#", "a/", true},
      {"a/#", "a/b/c", true},
      {"a/#", "ab", false},
      {"a/#", "b/a", false},
      {"a/b/#", "a", false},
      {"+/#", "a", true},
      {"+/#", "a/b", true},
      {"/#", "/", true},
      {"/#", "/a", true},
      {"/#", "a", false},
      // Leading and repeated separators are empty levels.
      {"/", "/", true},
      {"/a", "/a", true},
      {"/a", "a", false},
      {"a", "/a", false},
      {"//", "//", true},
      {"/+", "//", false},
      {"/+/", "//", true},
      // [MQTT-4.7.2-1] '$' topics and first-level wildcards.
      {"#", "$SYS/a", false},
      {"+/a", "$SYS/a", false},
      {"+", "$", false},
      {"$SYS/#", "$SYS/a", true},
      {"$SYS/#", "$SYS", true},
      {"$SYS/+", "$SYS/a", true},
      {"a/#", "a/$b", true},
      {"a/+", "a/$b", true},
      {"$SYS", "$SYS", true},
      {"a/$", "a/$", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(topic_matches(c.filter, c.topic), c.matches)
        << "filter '" << c.filter << "' topic '" << c.topic << "'";
  }
}

}  // namespace
}  // namespace wharf::core
