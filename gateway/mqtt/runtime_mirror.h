// The queue core keeps the runtime MQTT users and roles (durable, replicated); the MQTT side
// reads a copy (auth::runtime_users). This keeps the copy up to date.
#pragma once

#include "auth/runtime_users.h"
#include "core/queue/engine.h"

namespace wharf::gateway {

// Brings `users` up to date with `engine` for `changes` (service_options::mqtt_auth_changed):
// each changed user, and every user holding a changed role, resolved to its password and
// rules; everyone after a load. Runs on the queue core's thread.
void mirror_runtime_users(const core::queue::engine& engine, const core::queue::mqtt_auth_changes& changes,
                          auth::runtime_users& users);

// A stored rule as the ACL reads it; `source` names where it came from, for the log.
[[nodiscard]] config::acl_rule acl_rule_of(const core::queue::access_rule& rule, std::string source);

}  // namespace wharf::gateway
