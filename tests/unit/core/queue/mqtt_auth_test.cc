// The queue core's MQTT users and roles (the runtime store): put and delete, references kept
// whole, bounds, what changed reported for the MQTT side's copy, and a reload from storage
// giving the same state.
#include "harness.h"

namespace wharf::core::queue::testing {
namespace {

mqtt_user user_with(std::vector<std::string> roles, std::vector<access_rule> rules = {}) {
  return mqtt_user{"$pbkdf2-sha256$i=1000$c2FsdA==$aGFzaA==", std::move(roles), std::move(rules)};
}

TEST(mqtt_auth, users_and_roles_are_put_replaced_and_deleted) {
  harness h;
  ASSERT_OK(h.run(put_mqtt_role{"meters", {{access_rule{true, rule_action::publish, "meters/%u/#"}}}}));
  ASSERT_OK(h.run(put_mqtt_user{"m-1", user_with({"meters"}, {access_rule{false, rule_action::all, "x"}})}));
  ASSERT_EQ(h.eng().mqtt_users().size(), 1u);
  EXPECT_EQ(h.eng().mqtt_users().at("m-1").roles, std::vector<std::string>{"meters"});
  // Replaced whole.
  ASSERT_OK(h.run(put_mqtt_user{"m-1", user_with({})}));
  EXPECT_TRUE(h.eng().mqtt_users().at("m-1").rules.empty());
  ASSERT_OK(h.run(delete_mqtt_user{"m-1"}));
  EXPECT_TRUE(h.eng().mqtt_users().empty());
  ASSERT_OK(h.run(delete_mqtt_role{"meters"}));
  EXPECT_TRUE(h.eng().mqtt_roles().empty());
  EXPECT_CODE(h.run(delete_mqtt_user{"m-1"}), code::not_found);
  EXPECT_CODE(h.run(delete_mqtt_role{"meters"}), code::not_found);
}

TEST(mqtt_auth, references_stay_whole) {
  harness h;
  EXPECT_CODE(h.run(put_mqtt_user{"m-1", user_with({"nope"})}), code::not_found);
  EXPECT_TRUE(h.eng().mqtt_users().empty());
  ASSERT_OK(h.run(put_mqtt_role{"meters", {}}));
  ASSERT_OK(h.run(put_mqtt_user{"m-1", user_with({"meters"})}));
  const auto held = h.run(delete_mqtt_role{"meters"});
  EXPECT_EQ(held.outcome.value, code::invalid_parameter);
  EXPECT_EQ(held.outcome.message, "role 'meters' is held by user 'm-1'");
  EXPECT_EQ(h.eng().mqtt_roles().size(), 1u);
}

TEST(mqtt_auth, sizes_and_counts_are_bounded) {
  engine_limits limits = harness::test_limits();
  limits.max_mqtt_users = 2;
  limits.max_mqtt_roles = 1;
  harness h(limits);
  ASSERT_OK(h.run(put_mqtt_user{"a", user_with({})}));
  ASSERT_OK(h.run(put_mqtt_user{"b", user_with({})}));
  EXPECT_CODE(h.run(put_mqtt_user{"c", user_with({})}), code::too_many);
  ASSERT_OK(h.run(put_mqtt_user{"a", user_with({})}));  // replacing is not adding
  ASSERT_OK(h.run(put_mqtt_role{"r", {}}));
  EXPECT_CODE(h.run(put_mqtt_role{"s", {}}), code::too_many);
  EXPECT_CODE(h.run(put_mqtt_user{"", user_with({})}), code::invalid_parameter);
  EXPECT_CODE(h.run(put_mqtt_user{std::string(257, 'u'), user_with({})}), code::invalid_parameter);
  EXPECT_CODE(h.run(put_mqtt_user{"a", user_with({}, std::vector<access_rule>(257, {true, rule_action::all, "x"}))}),
              code::invalid_parameter);
  EXPECT_CODE(h.run(put_mqtt_role{"r", {{access_rule{true, rule_action::all, ""}}}}), code::invalid_parameter);
}

TEST(mqtt_auth, changes_are_reported_for_the_mqtt_sides_copy) {
  harness h;
  EXPECT_TRUE(h.eng().take_mqtt_auth_changes().reloaded);  // everything, after the load
  EXPECT_TRUE(h.eng().take_mqtt_auth_changes().empty());
  ASSERT_OK(h.run(put_mqtt_role{"r", {}}));
  ASSERT_OK(h.run(put_mqtt_user{"u", user_with({"r"})}));
  EXPECT_CODE(h.run(put_mqtt_user{"v", user_with({"missing"})}), code::not_found);
  const auto changes = h.eng().take_mqtt_auth_changes();
  EXPECT_FALSE(changes.reloaded);
  EXPECT_EQ(changes.users, std::set<std::string>{"u"});  // a refused command changed nothing
  EXPECT_EQ(changes.roles, std::set<std::string>{"r"});
}

TEST(mqtt_auth, a_reload_from_storage_gives_the_same_state) {
  harness h;
  ASSERT_OK(h.run(put_mqtt_role{"meters", {{access_rule{true, rule_action::subscribe, "fleet/+"}}}}));
  ASSERT_OK(h.run(put_mqtt_user{"m-1", user_with({"meters"}, {access_rule{false, rule_action::publish, "a/#"}})}));
  ASSERT_OK(h.run(put_mqtt_user{"m-2", user_with({})}));
  ASSERT_OK(h.run(delete_mqtt_user{"m-2"}));
  const auto before = h.eng().dump();
  EXPECT_NE(before.find("mqtt user 'm-1'"), std::string::npos);
  h.reopen();
  EXPECT_EQ(h.eng().dump(), before);
  EXPECT_EQ(h.eng().mqtt_users().size(), 1u);
  EXPECT_EQ(h.eng().mqtt_users().at("m-1").rules.front().topic, "a/#");
}

}  // namespace
}  // namespace wharf::core::queue::testing
