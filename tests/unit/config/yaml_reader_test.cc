#include "config/yaml_reader.h"

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wharf::config::detail {
namespace {

TEST(edit_distance, counts_insertions_deletions_substitutions) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("listner", "listeners"), 2u);
  EXPECT_EQ(edit_distance("bind", "bnid"), 2u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(closest_match, suggests_only_plausible_typos) {
  const std::vector<std::string> keys = {"type", "bind", "path", "tls"};
  EXPECT_EQ(closest_match("bnd", keys), "bind");
  EXPECT_EQ(closest_match("tpye", keys), "type");
  EXPECT_EQ(closest_match("colour", keys), std::nullopt);
  EXPECT_EQ(closest_match("x", keys), std::nullopt);
}

TEST(substitute_env, replaces_every_reference) {
  ::setenv("WHARF_RT_A", "alpha", 1);
  ::setenv("WHARF_RT_B", "", 1);
  auto r = substitute_env("x${ENV:WHARF_RT_A}-${ENV:WHARF_RT_B}-${ENV:WHARF_RT_A}");
  EXPECT_EQ(r.error, std::nullopt);
  EXPECT_EQ(r.text, "xalpha--alpha");
  EXPECT_EQ(substitute_env("no references, $HOME stays").text, "no references, $HOME stays");
}

TEST(substitute_env, reports_unset_and_malformed_references) {
  ::unsetenv("WHARF_RT_UNSET");
  EXPECT_EQ(substitute_env("${ENV:WHARF_RT_UNSET}").error,
            "environment variable 'WHARF_RT_UNSET' is not set");
  EXPECT_EQ(substitute_env("a${ENV:OPEN").error,
            "unterminated '${ENV:' reference, expected '${ENV:NAME}'");
  EXPECT_EQ(substitute_env("${ENV:}").error,
            "invalid environment variable name '', expected letters, digits and '_'");
  EXPECT_EQ(substitute_env("${ENV:A B}").error,
            "invalid environment variable name 'A B', expected letters, digits and '_'");
}

}  // namespace
}  // namespace wharf::config::detail
