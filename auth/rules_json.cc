#include "auth/rules_json.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "auth/access_policy.h"

namespace wharf::auth {

const boost::json::string* string_member(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v != nullptr ? v->if_string() : nullptr;
}

namespace {

constexpr std::array<std::string_view, 3> rule_keys = {"permission", "action", "topic"};

}  // namespace

std::variant<std::vector<config::acl_rule>, std::string> rules_from_json(const boost::json::value& given,
                                                                         std::string_view source) {
  const auto* list = given.if_array();
  if (list == nullptr) return std::string("expected an array of rules");
  if (list->size() > max_client_rules)
    return fmt::format("{} rules, at most {}", list->size(), max_client_rules);
  std::vector<config::acl_rule> rules;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto* o = (*list)[i].if_object();
    if (o == nullptr) return fmt::format("rule {}: expected an object with permission and topic", i);
    for (const auto& member : *o) {
      if (std::find(rule_keys.begin(), rule_keys.end(), std::string_view(member.key())) == rule_keys.end())
        return fmt::format("rule {}: unknown key '{}'", i, std::string_view(member.key()));
    }
    config::acl_rule rule;
    rule.source_location = source;
    const auto* permission = string_member(*o, "permission");
    if (permission == nullptr || (*permission != "allow" && *permission != "deny"))
      return fmt::format("rule {}: permission must be allow or deny", i);
    rule.permission = *permission == "allow" ? config::acl_permission::allow : config::acl_permission::deny;
    if (o->contains("action")) {
      const auto* action = string_member(*o, "action");
      if (action == nullptr || (*action != "publish" && *action != "subscribe" && *action != "all"))
        return fmt::format("rule {}: action must be publish, subscribe or all", i);
      rule.action = *action == "publish"     ? config::acl_action::publish
                    : *action == "subscribe" ? config::acl_action::subscribe
                                             : config::acl_action::all;
    }
    const auto* topic = string_member(*o, "topic");
    if (topic == nullptr || !is_valid_rule_topic(*topic))
      return fmt::format("rule {}: topic must be a topic filter ('+' and '#' as whole levels, '#' last)", i);
    rule.topic = std::string(*topic);
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace wharf::auth
