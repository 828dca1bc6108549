// The ACL's decisions and the checks made when a policy is built from the config.
#include "auth/access_policy.h"

#include <gtest/gtest.h>

namespace wharf::auth {
namespace {

using config::acl_action;
using config::acl_permission;

config::acl_rule rule(acl_permission permission, acl_action action, std::string topic, std::string username = "") {
  config::acl_rule r;
  r.permission = permission;
  r.action = action;
  r.topic = std::move(topic);
  r.username = std::move(username);
  r.source_location = "wharf.yaml:7:14";
  return r;
}

const client_identity alice{.client_id = "sensor-1", .username = "alice"};
const client_identity anonymous{.client_id = "anon-1", .username = std::nullopt};

TEST(filter_covers, wildcards_cover_what_they_match) {
  EXPECT_TRUE(filter_covers("a/#", "a/b/c"));
  EXPECT_TRUE(filter_covers("a/#", "a/+/#"));
  EXPECT_TRUE(filter_covers("a/#", "a"));
  EXPECT_TRUE(filter_covers("a/+", "a/+"));
  EXPECT_TRUE(filter_covers("#", "a/#"));
  EXPECT_FALSE(filter_covers("a/+", "a/#"));
  EXPECT_FALSE(filter_covers("a/b", "a/+"));
  EXPECT_FALSE(filter_covers("a/+", "a"));
  EXPECT_FALSE(filter_covers("a/b", "a/b/c"));
  EXPECT_FALSE(filter_covers("#", "$SYS/#"));  // [MQTT-4.7.2-1]
  EXPECT_TRUE(filter_covers("$SYS/#", "$SYS/broker/+"));
}

TEST(filters_intersect, when_one_topic_matches_both) {
  EXPECT_TRUE(filters_intersect("secret/#", "#"));
  EXPECT_TRUE(filters_intersect("+/x", "a/+"));
  EXPECT_TRUE(filters_intersect("a/#", "a"));
  EXPECT_TRUE(filters_intersect("a", "a/#"));
  EXPECT_FALSE(filters_intersect("a/b", "a/c"));
  EXPECT_FALSE(filters_intersect("a/b", "a/b/c"));
  EXPECT_FALSE(filters_intersect("a/+", "a"));
  EXPECT_FALSE(filters_intersect("#", "$SYS/x"));
}

TEST(expand_pattern, substitutes_client_id_and_username_or_declines) {
  EXPECT_EQ(expand_pattern("devices/%c/%u/#", alice), "devices/sensor-1/alice/#");
  EXPECT_EQ(expand_pattern("100%/x", alice), "100%/x");
  EXPECT_EQ(expand_pattern("users/%u", anonymous), std::nullopt);
  // A value that would widen the rule makes it not apply.
  EXPECT_EQ(expand_pattern("devices/%c", {.client_id = "#", .username = std::nullopt}), std::nullopt);
  EXPECT_EQ(expand_pattern("devices/%c", {.client_id = "a/b", .username = std::nullopt}), std::nullopt);
}

TEST(access_policy, the_first_rule_that_applies_decides) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::deny, acl_action::publish, "devices/%c/firmware"),
             rule(acl_permission::allow, acl_action::publish, "devices/%c/#"),
             rule(acl_permission::allow, acl_action::subscribe, "commands/%u/#")};
  cfg.acl_no_match = acl_permission::deny;
  const access_policy policy(cfg);
  EXPECT_TRUE(policy.may_publish(alice, "devices/sensor-1/temp"));
  EXPECT_FALSE(policy.may_publish(alice, "devices/sensor-1/firmware"));
  EXPECT_FALSE(policy.may_publish(alice, "devices/sensor-2/temp"));       // another client's
  EXPECT_FALSE(policy.may_subscribe(alice, "devices/sensor-1/temp"));     // publish rules only
  EXPECT_TRUE(policy.may_subscribe(alice, "commands/alice/+"));
  EXPECT_TRUE(policy.may_subscribe(alice, "$share/g/commands/alice/#"));  // checked as its filter
  EXPECT_FALSE(policy.may_subscribe(alice, "commands/#"));                // wider than the rule
  EXPECT_FALSE(policy.may_subscribe(anonymous, "commands/alice/x"));      // %u has no value
}

TEST(access_policy, user_rules_apply_to_their_user_only_and_deny_wins_over_overlap) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::deny, acl_action::all, "secret/#"),
             rule(acl_permission::allow, acl_action::all, "#", "alice")};
  cfg.acl_no_match = acl_permission::deny;
  const access_policy policy(cfg);
  EXPECT_TRUE(policy.may_publish(alice, "a/b"));
  EXPECT_FALSE(policy.may_publish(anonymous, "a/b"));
  EXPECT_FALSE(policy.may_publish(alice, "secret/x"));
  // "#" could deliver secret/x: the deny rule applies to the whole subscription.
  EXPECT_FALSE(policy.may_subscribe(alice, "#"));
  EXPECT_TRUE(policy.may_subscribe(alice, "public/#"));
}

TEST(access_policy, no_rules_follow_acl_no_match) {
  config::auth_config cfg;
  EXPECT_TRUE(access_policy(cfg).may_publish(anonymous, "x"));
  cfg.acl_no_match = acl_permission::deny;
  EXPECT_FALSE(access_policy(cfg).may_subscribe(anonymous, "x"));
}

TEST(access_policy, a_subscribe_deny_leaves_publishing_to_the_same_topics_alone) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::deny, acl_action::subscribe, "telemetry/#")};
  const access_policy policy(cfg);  // acl_no_match: allow (the default)
  EXPECT_FALSE(policy.may_subscribe(alice, "telemetry/room-1"));
  EXPECT_FALSE(policy.may_subscribe(alice, "#"));  // could deliver telemetry/...
  EXPECT_TRUE(policy.may_publish(alice, "telemetry/room-1"));
  EXPECT_TRUE(policy.may_subscribe(alice, "commands/#"));
}

TEST(access_policy, a_deny_naming_a_user_denies_that_user_only) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::deny, acl_action::publish, "billing/#", "alice")};
  const access_policy policy(cfg);
  const client_identity bob{.client_id = "sensor-2", .username = "bob"};
  EXPECT_FALSE(policy.may_publish(alice, "billing/invoice"));
  EXPECT_TRUE(policy.may_publish(bob, "billing/invoice"));
  EXPECT_TRUE(policy.may_publish(anonymous, "billing/invoice"));
  EXPECT_TRUE(policy.may_subscribe(alice, "billing/#"));  // a publish rule only
}

TEST(access_policy, acl_no_match_allow_lets_through_what_no_rule_matches) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::deny, acl_action::all, "secret/#"),
             rule(acl_permission::allow, acl_action::publish, "secret/%c/status")};
  cfg.acl_no_match = acl_permission::allow;
  const access_policy policy(cfg);
  EXPECT_TRUE(policy.may_publish(alice, "public/news"));
  EXPECT_TRUE(policy.may_subscribe(alice, "public/#"));
  EXPECT_FALSE(policy.may_publish(alice, "secret/plans"));
  EXPECT_FALSE(policy.may_publish(alice, "secret/sensor-1/status"));  // the first rule decides
}

TEST(access_policy, bad_hashes_and_patterns_are_config_errors_at_their_place) {
  config::auth_config cfg;
  config::user_config user;
  user.username = "bob";
  user.password_hash = "plaintext";
  user.source_location = "/etc/wharf.yaml:3:20";
  cfg.users.push_back(user);
  cfg.acl = {rule(acl_permission::allow, acl_action::all, "a/#/b"), rule(acl_permission::allow, acl_action::all, "$share/g/x")};
  try {
    const access_policy policy(cfg);
    FAIL() << "accepted";
  } catch (const config::config_errors& e) {
    ASSERT_EQ(e.errors().size(), 3u);
    EXPECT_EQ(e.errors()[0].to_string().substr(0, 47), "/etc/wharf.yaml:3:20: auth.users: password_hash");
    EXPECT_EQ(e.errors()[1].to_string().substr(0, 52), "wharf.yaml:7:14: auth.acl: topic 'a/#/b' is not a to");
    EXPECT_EQ(e.errors()[2].line, 7);
  }
}

TEST(access_policy, remembers_checked_passwords_per_user) {
  config::auth_config cfg;
  const access_policy policy(cfg);
  EXPECT_FALSE(policy.was_verified("alice", "pw"));
  policy.remember("alice", "pw");
  EXPECT_TRUE(policy.was_verified("alice", "pw"));
  EXPECT_FALSE(policy.was_verified("alice", "pw2"));
  EXPECT_FALSE(policy.was_verified("alic", "epw"));
}

}  // namespace
}  // namespace wharf::auth
