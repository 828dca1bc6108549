// The engine's MQTT users and roles (the runtime store): plain records under their own key
// prefixes, replaced whole by each command. The engine keeps them whole: a user names only
// roles that exist, and a role held by a user is not deleted.
#include <fmt/format.h>

#include "core/queue/engine_impl.h"

namespace wharf::core::queue::detail {
namespace {

constexpr std::size_t max_name_bytes = 256;
constexpr std::size_t max_rules = 256;
constexpr std::size_t max_roles_per_user = 64;
constexpr std::size_t max_topic_bytes = 65535;
constexpr std::size_t max_hash_bytes = 1024;

status check_name(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > max_name_bytes)
    return {code::invalid_parameter, fmt::format("{} must be 1..{} bytes", what, max_name_bytes)};
  if (name.find('\0') != std::string_view::npos) return {code::invalid_parameter, fmt::format("{} holds NUL", what)};
  return {};
}

status check_rules(const std::vector<access_rule>& rules) {
  if (rules.size() > max_rules) return {code::invalid_parameter, fmt::format("at most {} rules", max_rules)};
  for (const auto& rule : rules) {
    if (rule.topic.empty() || rule.topic.size() > max_topic_bytes)
      return {code::invalid_parameter, fmt::format("a rule's topic must be 1..{} bytes", max_topic_bytes)};
  }
  return {};
}

}  // namespace

result engine_impl::on(const put_mqtt_user& c) {
  if (auto s = check_name("username", c.username); !s.ok()) return failure(s.value, std::move(s.message));
  if (c.user.password_hash.size() > max_hash_bytes)
    return failure(code::invalid_parameter, fmt::format("password_hash must be at most {} bytes", max_hash_bytes));
  if (c.user.roles.size() > max_roles_per_user)
    return failure(code::invalid_parameter, fmt::format("at most {} roles", max_roles_per_user));
  for (const auto& role : c.user.roles) {
    if (!mqtt_roles_.contains(role)) return failure(code::not_found, fmt::format("no role '{}'", role));
  }
  if (auto s = check_rules(c.user.rules); !s.ok()) return failure(s.value, std::move(s.message));
  auto found = mqtt_users_.find(c.username);
  if (found == mqtt_users_.end() && mqtt_users_.size() >= limits_.max_mqtt_users)
    return failure(code::too_many, fmt::format("the runtime store holds {} users already (auth.runtime.max_users)",
                                               limits_.max_mqtt_users));
  put(std::string(keys::mqtt_user_prefix) + c.username, encode_mqtt_user(c.user));
  if (found == mqtt_users_.end()) {
    mqtt_users_.emplace(c.username, c.user);
  } else {
    found->second = c.user;
  }
  mqtt_auth_changes_.users.insert(c.username);
  return result{};
}

result engine_impl::on(const delete_mqtt_user& c) {
  auto found = mqtt_users_.find(c.username);
  if (found == mqtt_users_.end()) return failure(code::not_found, fmt::format("no user '{}'", c.username));
  erase(std::string(keys::mqtt_user_prefix) + c.username);
  mqtt_users_.erase(found);
  mqtt_auth_changes_.users.insert(c.username);
  return result{};
}

result engine_impl::on(const put_mqtt_role& c) {
  if (auto s = check_name("role name", c.name); !s.ok()) return failure(s.value, std::move(s.message));
  if (auto s = check_rules(c.role.rules); !s.ok()) return failure(s.value, std::move(s.message));
  auto found = mqtt_roles_.find(c.name);
  if (found == mqtt_roles_.end() && mqtt_roles_.size() >= limits_.max_mqtt_roles)
    return failure(code::too_many, fmt::format("the runtime store holds {} roles already (auth.runtime.max_roles)",
                                               limits_.max_mqtt_roles));
  put(std::string(keys::mqtt_role_prefix) + c.name, encode_mqtt_role(c.role));
  if (found == mqtt_roles_.end()) {
    mqtt_roles_.emplace(c.name, c.role);
  } else {
    found->second = c.role;
  }
  mqtt_auth_changes_.roles.insert(c.name);
  return result{};
}

result engine_impl::on(const delete_mqtt_role& c) {
  auto found = mqtt_roles_.find(c.name);
  if (found == mqtt_roles_.end()) return failure(code::not_found, fmt::format("no role '{}'", c.name));
  for (const auto& [username, user] : mqtt_users_) {
    if (std::find(user.roles.begin(), user.roles.end(), c.name) != user.roles.end())
      return failure(code::invalid_parameter, fmt::format("role '{}' is held by user '{}'", c.name, username));
  }
  erase(std::string(keys::mqtt_role_prefix) + c.name);
  mqtt_roles_.erase(found);
  mqtt_auth_changes_.roles.insert(c.name);
  return result{};
}

}  // namespace wharf::core::queue::detail
