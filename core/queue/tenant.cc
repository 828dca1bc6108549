#include "core/queue/tenant.h"

#include <algorithm>
#include <type_traits>
#include <variant>

#include <fmt/format.h>

#include "core/queue/engine.h"
#include "core/topic.h"

namespace wharf::core::queue {

std::string_view tenant_of(std::string_view engine_name) noexcept {
  const auto at = engine_name.find(tenant_separator);
  return at == std::string_view::npos ? std::string_view{} : engine_name.substr(0, at);
}

std::string_view local_name(std::string_view engine_name) noexcept {
  const auto at = engine_name.find(tenant_separator);
  return at == std::string_view::npos ? engine_name : engine_name.substr(at + 1);
}

std::string engine_name(std::string_view tenant, std::string_view local) {
  if (tenant.empty()) return std::string(local);
  std::string out;
  out.reserve(tenant.size() + 1 + local.size());
  out.append(tenant).push_back(tenant_separator);
  out.append(local);
  return out;
}

bool is_valid_engine_name(std::string_view name) noexcept {
  const auto tenant = tenant_of(name);
  if (!tenant.empty() || name.starts_with(tenant_separator)) {
    if (!is_valid_tenant_name(tenant)) return false;
  }
  return is_valid_name(local_name(name));
}

std::string mqtt_mount(std::string_view tenant) {
  if (tenant.empty()) return {};
  return fmt::format("{}{}/", mqtt_mount_root, tenant);
}

std::string_view mqtt_mount_of(std::string_view held) noexcept {
  if (!held.starts_with(mqtt_mount_root)) return {};
  const auto end = held.find('/', mqtt_mount_root.size());
  return end == std::string_view::npos ? std::string_view{} : held.substr(0, end + 1);
}

std::string_view mqtt_tenant_of(std::string_view held) noexcept {
  const auto mount = mqtt_mount_of(held);
  return mount.empty() ? mount : mount.substr(mqtt_mount_root.size(), mount.size() - mqtt_mount_root.size() - 1);
}

std::string mount_filter(std::string_view mount, std::string_view filter) {
  if (mount.empty()) return std::string(filter);
  if (const auto shared = core::parse_shared_filter(filter))
    return fmt::format("$share/{}/{}{}", shared->group, mount, shared->filter);
  return fmt::format("{}{}", mount, filter);
}

std::string unmount_filter(std::string_view mount, std::string_view held) {
  if (mount.empty()) return std::string(held);
  if (const auto shared = core::parse_shared_filter(held))
    return fmt::format("$share/{}/{}", shared->group,
                       shared->filter.substr(std::min(mount.size(), shared->filter.size())));
  return std::string(held.substr(std::min(mount.size(), held.size())));
}

bool names_tenant_tree(std::string_view topic_or_filter) noexcept {
  const auto shared = core::parse_shared_filter(topic_or_filter);
  return (shared ? shared->filter : topic_or_filter).starts_with(mqtt_mount_root);
}

std::string_view unscoped(std::string_view tenant, std::string_view engine_name) noexcept {
  if (tenant.empty()) return engine_name;
  return engine_name.substr(std::min(engine_name.size(), tenant.size() + 1));
}

namespace {

// Calls `visit(name, field)` for each queue or topic name `body` carries (the MQTT endpoint
// of a subscription too, as field "mqttEndpoint"); false for a command no tenant sends.
template <class Body, class Visit>
bool for_each_name(Body& body, Visit visit) {
  return std::visit(
      [&visit](auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, create_queue> || std::is_same_v<T, set_queue_attributes>) {
          visit(c.name, "queueName");
          if (c.attributes.dead_letter_queue) visit(*c.attributes.dead_letter_queue, "deadLetterQueueName");
        } else if constexpr (std::is_same_v<T, delete_queue> || std::is_same_v<T, rewind_queue> ||
                             std::is_same_v<T, purge_queue>) {
          visit(c.name, "queueName");
        } else if constexpr (std::is_same_v<T, send_messages> || std::is_same_v<T, receive_messages> ||
                             std::is_same_v<T, delete_messages>) {
          visit(c.queue, "queueName");
        } else if constexpr (std::is_same_v<T, redrive_dead_letters>) {
          visit(c.dead_letter_queue, "deadLetterQueueName");
          visit(c.source_queue, "queueName");
        } else if constexpr (std::is_same_v<T, create_topic> || std::is_same_v<T, set_topic_attributes> ||
                             std::is_same_v<T, delete_topic>) {
          visit(c.name, "topicName");
        } else if constexpr (std::is_same_v<T, publish_messages> || std::is_same_v<T, set_subscription_attributes> ||
                             std::is_same_v<T, clear_subscription_filter_tags> || std::is_same_v<T, unsubscribe>) {
          visit(c.topic, "topicName");
        } else if constexpr (std::is_same_v<T, subscribe>) {
          visit(c.topic, "topicName");
          if (c.attributes.protocol == sub_protocol::queue) visit(c.attributes.endpoint, "endpoint");
          if (c.attributes.protocol == sub_protocol::mqtt) visit(c.attributes.endpoint, "mqttEndpoint");
        } else {
          return false;  // push_result, tick, MQTT users and roles: the core's and the operator's own
        }
        return true;
      },
      body);
}

constexpr std::string_view mqtt_endpoint_field = "mqttEndpoint";

}  // namespace

status scope(std::string_view tenant, command_body& body) {
  // Checked first, changed after: a refused command is left as it was, and nothing is copied
  // (a send carries its bodies).
  status refusal;
  const bool a_tenants_command = for_each_name(body, [&](const std::string& name, std::string_view field) {
    if (!refusal.ok() || field == mqtt_endpoint_field || name.find(tenant_separator) == std::string::npos) return;
    refusal = status{code::invalid_parameter,
                     fmt::format("{} must be 1..64 characters: a letter, then letters, digits, '_' or '-'", field)};
  });
  if (!a_tenants_command) return status{code::invalid_parameter, "this command is not a request of a tenant"};
  if (!refusal.ok() || tenant.empty()) return refusal;
  for_each_name(body, [&](std::string& name, std::string_view field) {
    // An MQTT endpoint is a topic template: the tenant's deliveries stay under its mount.
    if (field == mqtt_endpoint_field) name.insert(0, mqtt_mount(tenant));
    else if (!name.empty()) name = engine_name(tenant, name);  // "" (every source) stays
  });
  return {};
}

namespace {

void strip_prefix(std::string& text, std::string_view prefix) {
  for (auto at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at)) text.erase(at, prefix.size());
}

}  // namespace

void unscope(std::string_view tenant, result& r) {
  if (tenant.empty()) return;
  const std::string prefix = engine_name(tenant, "");
  strip_prefix(r.outcome.message, prefix);
  for (auto& e : r.errors) strip_prefix(e.message, prefix);
}

}  // namespace wharf::core::queue
