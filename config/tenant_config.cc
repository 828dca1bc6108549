// Reading of the `tenants:` section.
#include "config/tenant_config.h"

#include <fmt/format.h>

#include <map>
#include <string>
#include <utility>

#include "core/queue/tenant.h"

namespace wharf::config {

bool name_pattern_matches(std::string_view pattern, std::string_view name) noexcept {
  if (!pattern.empty() && pattern.back() == '*') return name.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == name;
}

std::string_view tenant_of_mqtt_user(const std::vector<tenant_config>& tenants, std::string_view username) noexcept {
  for (const auto& t : tenants) {
    for (const auto& pattern : t.mqtt_users) {
      if (name_pattern_matches(pattern, username)) return t.name;
    }
  }
  return {};
}

namespace detail {
namespace {

// Whether some username matches both patterns.
bool patterns_overlap(std::string_view a, std::string_view b) {
  const bool a_prefix = a.ends_with('*');
  const bool b_prefix = b.ends_with('*');
  if (a_prefix && b_prefix) {
    a.remove_suffix(1);
    b.remove_suffix(1);
    return a.starts_with(b) || b.starts_with(a);
  }
  if (a_prefix) return name_pattern_matches(a, b);
  if (b_prefix) return name_pattern_matches(b, a);
  return a == b;
}

struct pattern_seen {
  std::string pattern;
  std::string tenant;
  int line = 0;
};

}  // namespace

void read_tenants(const entry& e, std::vector<tenant_config>& out, diagnostics& diag) {
  std::map<std::string, int> first_line;  // name -> line of first use
  std::vector<pattern_seen> patterns;
  read_map_list(e, "name, mqtt_users and quotas", diag, [&](map_reader& m, std::string location) {
    tenant_config t;
    t.source_location = std::move(location);
    auto name_entry = m.find("name");
    auto name = required_string(m, "name", diag);
    if (name && !core::queue::is_valid_tenant_name(*name)) {
      diag.add(value_mark(*name_entry),
               fmt::format("{}.name: '{}' is not a tenant name: 1..32 characters, a letter, then letters, digits, "
                           "'_' or '-' (and not 'default', the name of the tenant without one)",
                           m.path(), *name));
      name.reset();
    }
    if (name) {
      const auto [pos, inserted] = first_line.emplace(*name, value_mark(*name_entry).line + 1);
      if (!inserted) {
        diag.add(value_mark(*name_entry),
                 fmt::format("{}.name: tenant '{}' already declared at line {}", m.path(), *name, pos->second));
        name.reset();
      }
    }
    if (auto users = m.find("mqtt_users")) {
      if (!users->value.IsSequence()) {
        diag.add(value_mark(*users), fmt::format("{}: expected a list of usernames (a trailing '*' makes a prefix)",
                                                 users->path));
      } else {
        for (std::size_t i = 0; i < users->value.size(); ++i) {
          const entry item{users->value[i], users->value[i], fmt::format("{}[{}]", users->path, i)};
          auto pattern = read_non_empty_string(item, diag);
          if (!pattern) continue;
          if (const auto star = pattern->find('*'); star != std::string::npos && star + 1 != pattern->size()) {
            diag.add(value_mark(item), fmt::format("{}: '{}': '*' may only end the pattern", item.path, *pattern));
            continue;
          }
          const int line = value_mark(item).line + 1;
          bool clash = false;
          for (const auto& seen : patterns) {
            if (!patterns_overlap(seen.pattern, *pattern)) continue;
            diag.add(value_mark(item),
                     fmt::format("{}: '{}' matches usernames that '{}' (tenant '{}', line {}) matches too: a client "
                                 "belongs to one tenant",
                                 item.path, *pattern, seen.pattern, seen.tenant, seen.line));
            clash = true;
            break;
          }
          if (clash) continue;
          patterns.push_back({*pattern, name.value_or("?"), line});
          t.mqtt_users.push_back(std::move(*pattern));
        }
      }
    }
    if (auto quotas = m.find("quotas")) {
      if (!quotas->value.IsMap()) {
        diag.add(value_mark(*quotas),
                 fmt::format("{}: expected a map of queues, topics, requests_per_second, stored_bytes", quotas->path));
      } else {
        map_reader q(quotas->value, quotas->path, diag);
        read_uint_into(q, "queues", t.max_queues, 0, 1000000, diag);
        read_uint_into(q, "topics", t.max_topics, 0, 1000000, diag);
        read_uint_into(q, "requests_per_second", t.max_requests_per_second, 0, 10000000, diag);
        read_uint_into(q, "stored_bytes", t.max_stored_bytes, 0, std::uint64_t{1} << 50, diag);
        q.finish();
      }
    }
    if (!name) return;
    t.name = std::move(*name);
    out.push_back(std::move(t));
  });
}

void check_tenant_references(const config& cfg, diagnostics& diag) {
  const auto declared = [&](const std::string& tenant) {
    if (tenant.empty()) return true;
    for (const auto& t : cfg.tenants) {
      if (t.name == tenant) return true;
    }
    return false;
  };
  const auto check = [&](const std::string& tenant, const std::string& location, std::string_view what) {
    if (declared(tenant)) return;
    diag.add_at(location, fmt::format("{}: tenant '{}' is not declared under tenants", what, tenant));
  };
  for (const auto& c : cfg.queue_api.credentials) check(c.tenant, c.tenant_location, "queue_api.credentials tenant");
  for (const auto& b : cfg.bridge.mqtt_to_queue) check(b.tenant, b.source_location, "bridge.mqtt_to_queue tenant");
  for (const auto& b : cfg.bridge.mqtt_to_topic) check(b.tenant, b.source_location, "bridge.mqtt_to_topic tenant");
  for (const auto& b : cfg.bridge.topic_to_mqtt) check(b.tenant, b.source_location, "bridge.topic_to_mqtt tenant");
}

}  // namespace detail
}  // namespace wharf::config
