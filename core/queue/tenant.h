// Tenants of the queue core (docs/ARCHITECTURE.md "Tenants"). A tenant owns queues and
// topics whose engine names are "<tenant>:<name>"; the default tenant's are the bare names
// (so a store from before tenants is the default tenant's). ':' is in no valid queue or
// topic name, so two tenants' names never meet, and the engine keeps every reference (a
// dead-letter queue, a subscription's queue, a redrive) inside one tenant.
//
// Callers that act for a tenant (the CMQ API, the bridge) never build engine names by hand:
// scope() turns the names of a command as the tenant gave them into engine names, refusing
// any that already holds the separator, and unscope() takes the tenant's prefix off what the
// engine answers. Pure functions: tested without a broker.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/queue/types.h"

namespace wharf::core::queue {

inline constexpr char tenant_separator = ':';
// The name the config and the admin API give the tenant of bare names.
inline constexpr std::string_view default_tenant_name = "default";

// Queue, topic and subscription names: 1..64 characters, ^[A-Za-z][A-Za-z0-9_-]*$.
// (Inline, with the tenant rule below: the config reader checks names without the core.)
[[nodiscard]] inline bool is_valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  const auto is_letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!is_letter(name.front())) return false;
  for (const char c : name) {
    if (!is_letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-') return false;
  }
  return true;
}

// Tenant names: 1..32 characters, a letter, then letters, digits, '_' or '-'; not "default".
[[nodiscard]] inline bool is_valid_tenant_name(std::string_view name) noexcept {
  return name.size() <= 32 && name != default_tenant_name && is_valid_name(name);
}

// The tenant of an engine name ("" for the default tenant) and the name within it.
[[nodiscard]] std::string_view tenant_of(std::string_view engine_name) noexcept;
[[nodiscard]] std::string_view local_name(std::string_view engine_name) noexcept;
// The engine name of `local` in `tenant` ("" the default tenant: `local` itself).
[[nodiscard]] std::string engine_name(std::string_view tenant, std::string_view local);
// A queue or topic name the engine accepts at creation: a valid name, or a valid tenant
// name, the separator and a valid name.
[[nodiscard]] bool is_valid_engine_name(std::string_view name) noexcept;

// Makes the queue and topic names in `body` (as `tenant` gave them) engine names of
// `tenant`: the command's own name, a dead-letter queue, a queue subscription's endpoint, a
// redrive's source. A name holding the separator is refused (code::invalid_parameter), as
// is a command no tenant gives (MQTT users and roles, push results, ticks: the operator's
// and the core's own), and `body` is then unchanged. The default tenant ("") gets the same
// check, so it cannot name another tenant's queue either.
[[nodiscard]] status scope(std::string_view tenant, command_body& body);
// What the engine answered, as `tenant` sees it: its prefix taken off the message (the
// engine names the queues of the command, all of this tenant).
void unscope(std::string_view tenant, result& r);
// `engine_name` as `tenant` sees it (its own names only: REQUIRES tenant_of(engine_name) == tenant).
[[nodiscard]] std::string_view unscoped(std::string_view tenant, std::string_view engine_name) noexcept;

// Where a tenant's MQTT topics live: its devices' topics are "$tenant/<tenant>/" + what
// they send (Mosquitto's mount_point, one per tenant); "" for the default tenant. The '$'
// keeps them out of every other client's '#' and '+' filters [MQTT-4.7.2-1].
inline constexpr std::string_view mqtt_mount_root = "$tenant/";
[[nodiscard]] std::string mqtt_mount(std::string_view tenant);
// The broker holds a tenant's client ids, topics and filters with its mount in front. The
// mount an id or topic held so starts with ("$tenant/<name>/"; "" for the default tenant's),
// and the tenant's name in it.
[[nodiscard]] std::string_view mqtt_mount_of(std::string_view held) noexcept;
[[nodiscard]] std::string_view mqtt_tenant_of(std::string_view held) noexcept;
// A topic filter a client of `mount` sent, as the broker holds it: a shared subscription's
// filter part is mounted ("$share/g/" + mount + filter), so its group stays its own.
[[nodiscard]] std::string mount_filter(std::string_view mount, std::string_view filter);
// Back: what the client of `mount` sent. REQUIRES: `held` was mounted by `mount`.
[[nodiscard]] std::string unmount_filter(std::string_view mount, std::string_view held);
// Whether a default-tenant client names the tenants' tree (a topic or filter, shared or not,
// under mqtt_mount_root): refused as the ACL refuses, so no client reaches another tenant.
[[nodiscard]] bool names_tenant_tree(std::string_view topic_or_filter) noexcept;

// A tenant's limits in the queue core (config `tenants[].quotas`); 0: no limit of its own
// (the core's limits still hold).
struct tenant_quota {
  std::size_t max_queues = 0;          // CreateQueue beyond → code::too_many (4450)
  std::size_t max_topics = 0;          // CreateTopic beyond → code::too_many (4450)
  std::uint64_t max_stored_bytes = 0;  // bodies of its messages not yet removed; beyond → code::queue_full (4410)
};

}  // namespace wharf::core::queue
