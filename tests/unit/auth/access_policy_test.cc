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

bool granted(const access_policy& policy, const client_identity& who, std::string_view filter) {
  return policy.check_subscription(who, filter).granted;
}

// Whether a subscription to `filter`, granted, is sent `topic`.
bool sent(const access_policy& policy, const client_identity& who, std::string_view filter, std::string_view topic) {
  const auto verdict = policy.check_subscription(who, filter);
  EXPECT_TRUE(verdict.granted) << filter;
  return !verdict.withheld || !verdict.withheld->withholds(topic);
}

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
  EXPECT_FALSE(granted(policy, alice, "devices/sensor-1/temp"));     // publish rules only
  EXPECT_TRUE(granted(policy, alice, "commands/alice/+"));
  EXPECT_TRUE(granted(policy, alice, "$share/g/commands/alice/#"));  // checked as its filter
  EXPECT_FALSE(granted(policy, alice, "commands/#"));                // wider than the rule
  EXPECT_FALSE(granted(policy, anonymous, "commands/alice/x"));      // %u has no value
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
  // "#" is granted; secret/... is withheld from it at delivery.
  EXPECT_TRUE(sent(policy, alice, "#", "a/b"));
  EXPECT_FALSE(sent(policy, alice, "#", "secret/x"));
  EXPECT_FALSE(granted(policy, alice, "secret/+"));  // inside the deny rule
  EXPECT_FALSE(granted(policy, anonymous, "#"));     // no allow rule covers it
  EXPECT_TRUE(granted(policy, alice, "public/#"));
  EXPECT_EQ(policy.check_subscription(alice, "public/#").withheld, nullptr);  // nothing to check
}

TEST(access_policy, no_rules_follow_acl_no_match) {
  config::auth_config cfg;
  EXPECT_TRUE(access_policy(cfg).may_publish(anonymous, "x"));
  cfg.acl_no_match = acl_permission::deny;
  EXPECT_FALSE(granted(access_policy(cfg), anonymous, "x"));
}

TEST(access_policy, a_subscribe_deny_leaves_publishing_to_the_same_topics_alone) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::deny, acl_action::subscribe, "telemetry/#")};
  const access_policy policy(cfg);  // acl_no_match: allow (the default)
  EXPECT_FALSE(granted(policy, alice, "telemetry/room-1"));
  EXPECT_FALSE(granted(policy, alice, "telemetry/+/temp"));
  EXPECT_FALSE(sent(policy, alice, "#", "telemetry/room-1"));
  EXPECT_FALSE(sent(policy, alice, "#", "telemetry"));  // "telemetry/#" matches "telemetry" too
  EXPECT_TRUE(sent(policy, alice, "#", "telemetryx/1"));
  EXPECT_TRUE(policy.may_publish(alice, "telemetry/room-1"));
  EXPECT_TRUE(granted(policy, alice, "commands/#"));
}

TEST(access_policy, a_deny_naming_a_user_denies_that_user_only) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::deny, acl_action::publish, "billing/#", "alice")};
  const access_policy policy(cfg);
  const client_identity bob{.client_id = "sensor-2", .username = "bob"};
  EXPECT_FALSE(policy.may_publish(alice, "billing/invoice"));
  EXPECT_TRUE(policy.may_publish(bob, "billing/invoice"));
  EXPECT_TRUE(policy.may_publish(anonymous, "billing/invoice"));
  EXPECT_TRUE(granted(policy, alice, "billing/#"));  // a publish rule only
}

TEST(access_policy, acl_no_match_allow_lets_through_what_no_rule_matches) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::deny, acl_action::all, "secret/#"),
             rule(acl_permission::allow, acl_action::publish, "secret/%c/status")};
  cfg.acl_no_match = acl_permission::allow;
  const access_policy policy(cfg);
  EXPECT_TRUE(policy.may_publish(alice, "public/news"));
  EXPECT_TRUE(granted(policy, alice, "public/#"));
  EXPECT_FALSE(policy.may_publish(alice, "secret/plans"));
  EXPECT_FALSE(policy.may_publish(alice, "secret/sensor-1/status"));  // the first rule decides
}

TEST(access_policy, withheld_topics_follow_the_first_rule_per_topic) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::allow, acl_action::subscribe, "home/hall/door"),
             rule(acl_permission::deny, acl_action::subscribe, "home/+/door"),
             rule(acl_permission::deny, acl_action::all, "home/%c/#"),
             rule(acl_permission::deny, acl_action::publish, "home/kitchen/#"),  // not for subscriptions
             rule(acl_permission::allow, acl_action::all, "home/#")};
  cfg.acl_no_match = acl_permission::deny;
  const access_policy policy(cfg);
  // Mixed permissions before the covering allow: the first that matches decides.
  EXPECT_TRUE(sent(policy, alice, "home/#", "home/hall/door"));
  EXPECT_FALSE(sent(policy, alice, "home/#", "home/garage/door"));
  EXPECT_FALSE(sent(policy, alice, "home/#", "home/sensor-1/temp"));  // %c
  EXPECT_TRUE(sent(policy, alice, "home/#", "home/kitchen/temp"));
  EXPECT_TRUE(sent(policy, anonymous, "home/#", "home/sensor-1/temp"));  // another client's %c
  // A subscription the rules before the covering one do not touch has nothing withheld.
  EXPECT_EQ(policy.check_subscription(alice, "home/kitchen/temp").withheld, nullptr);
  // Wider than the allow rule: refused, and everything is withheld from it.
  const auto wider = policy.check_subscription(alice, "#");
  EXPECT_FALSE(wider.granted);
  ASSERT_NE(wider.withheld, nullptr);
  EXPECT_TRUE(wider.withheld->withholds("home/kitchen/temp"));
  EXPECT_FALSE(granted(policy, alice, "home/+/door"));  // the allow before covers only one topic of it
}

TEST(access_policy, a_clients_own_rules_come_before_the_configs) {
  config::auth_config cfg;
  cfg.acl = {rule(acl_permission::allow, acl_action::all, "fleet/#")};
  cfg.acl_no_match = acl_permission::deny;
  const access_policy policy(cfg);
  const std::vector<config::acl_rule> own = {rule(acl_permission::deny, acl_action::publish, "fleet/%c/firmware"),
                                             rule(acl_permission::deny, acl_action::subscribe, "fleet/billing"),
                                             rule(acl_permission::allow, acl_action::all, "own/%c/#")};
  const client_identity token_holder{.client_id = "sensor-1", .username = "alice", .own_rules = own};
  EXPECT_FALSE(policy.may_publish(token_holder, "fleet/sensor-1/firmware"));
  EXPECT_TRUE(policy.may_publish(alice, "fleet/sensor-1/firmware"));  // the same client without them
  EXPECT_TRUE(policy.may_publish(token_holder, "fleet/sensor-1/temp"));
  EXPECT_TRUE(policy.may_publish(token_holder, "own/sensor-1/x"));
  EXPECT_FALSE(policy.may_publish(alice, "own/sensor-1/x"));
  EXPECT_FALSE(sent(policy, token_holder, "fleet/#", "fleet/billing"));
  EXPECT_TRUE(sent(policy, token_holder, "fleet/#", "fleet/news"));
  EXPECT_FALSE(granted(policy, token_holder, "fleet/billing"));
}

TEST(access_policy, many_deny_rules_in_a_wildcard_subscription) {
  config::auth_config cfg;
  for (int i = 0; i < 100; ++i) cfg.acl.push_back(rule(acl_permission::deny, acl_action::subscribe, "plant/line-" + std::to_string(i) + "/secret"));
  cfg.acl.push_back(rule(acl_permission::deny, acl_action::subscribe, "plant/+/keys/#"));
  const access_policy policy(cfg);  // acl_no_match: allow
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(sent(policy, alice, "plant/#", "plant/line-" + std::to_string(i) + "/secret"));
    EXPECT_TRUE(sent(policy, alice, "plant/#", "plant/line-" + std::to_string(i) + "/speed"));
  }
  EXPECT_FALSE(sent(policy, alice, "plant/#", "plant/line-7/keys/a/b"));
  EXPECT_TRUE(sent(policy, alice, "$share/g/plant/#", "plant/line-7/keyring"));
  EXPECT_FALSE(sent(policy, alice, "$share/g/plant/#", "plant/line-7/secret"));
  // A '$' topic is not received through a filter starting with a wildcard, nor denied by one.
  EXPECT_EQ(policy.check_subscription(alice, "$SYS/#").withheld, nullptr);
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
