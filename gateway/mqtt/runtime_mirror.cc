#include "gateway/mqtt/runtime_mirror.h"

#include <algorithm>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "core/log.h"

namespace wharf::gateway {
namespace {

namespace q = core::queue;

auth::runtime_users::account account_of(const q::engine& engine, const std::string& username, const q::mqtt_user& user) {
  auth::runtime_users::account a;
  a.password_hash = user.password_hash;
  if (!user.password_hash.empty()) {
    auto parsed = auth::parse_password_hash(user.password_hash);
    if (auto* stored = std::get_if<auth::stored_password>(&parsed)) {
      a.password = std::move(*stored);
    } else {
      // The admin API checks hashes before they are stored; one that fails here came from
      // elsewhere (a newer build's format): the user cannot log in with a password.
      log::mqtt().warn("runtime user '{}': password hash not usable: {}", username, std::get<std::string>(parsed));
    }
  }
  for (const auto& rule : user.rules) a.rules.push_back(acl_rule_of(rule, fmt::format("runtime user '{}'", username)));
  for (const auto& role_name : user.roles) {
    const auto role = engine.mqtt_roles().find(role_name);
    if (role == engine.mqtt_roles().end()) continue;  // the engine keeps references whole
    for (const auto& rule : role->second.rules)
      a.rules.push_back(acl_rule_of(rule, fmt::format("runtime role '{}'", role_name)));
  }
  return a;
}

}  // namespace

config::acl_rule acl_rule_of(const q::access_rule& rule, std::string source) {
  config::acl_rule out;
  out.permission = rule.allow ? config::acl_permission::allow : config::acl_permission::deny;
  out.action = rule.action == q::rule_action::publish     ? config::acl_action::publish
               : rule.action == q::rule_action::subscribe ? config::acl_action::subscribe
                                                          : config::acl_action::all;
  out.topic = rule.topic;
  out.source_location = std::move(source);
  return out;
}

void mirror_runtime_users(const q::engine& engine, const q::mqtt_auth_changes& changes, auth::runtime_users& users) {
  const auto& stored = engine.mqtt_users();
  if (changes.reloaded) {
    std::unordered_map<std::string, auth::runtime_users::account> all;
    all.reserve(stored.size());
    for (const auto& [name, user] : stored) all.emplace(name, account_of(engine, name, user));
    users.replace_all(std::move(all));
    return;
  }
  std::set<std::string> affected(changes.users.begin(), changes.users.end());
  if (!changes.roles.empty()) {
    for (const auto& [name, user] : stored) {
      const bool holds_changed_role = std::any_of(user.roles.begin(), user.roles.end(),
                                                  [&](const std::string& role) { return changes.roles.contains(role); });
      if (holds_changed_role) affected.insert(name);
    }
  }
  std::vector<std::pair<std::string, std::optional<auth::runtime_users::account>>> updates;
  updates.reserve(affected.size());
  for (const auto& name : affected) {
    const auto found = stored.find(name);
    if (found == stored.end()) {
      updates.emplace_back(name, std::nullopt);
    } else {
      updates.emplace_back(name, account_of(engine, name, found->second));
    }
  }
  users.update(std::move(updates));
}

}  // namespace wharf::gateway
