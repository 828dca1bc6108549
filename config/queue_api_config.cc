// Reading of the `queue_api:` section: its bounds, and the credentials with their scopes.
#include "config/queue_api_config.h"

#include <fmt/format.h>

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::config::detail {
namespace {

constexpr std::array<std::string_view, 3> access_names = {"read", "write", "manage"};

// A required non-empty string of the map `m`: its value and position, or nullopt after
// reporting it missing or empty.
std::optional<std::pair<std::string, YAML::Mark>> read_required_string(map_reader& m, std::string_view key,
                                                                       diagnostics& diag) {
  auto field = m.find(key);
  if (!field) {
    diag.add(m.node().Mark(), fmt::format("{}: missing required field '{}'", m.path(), key));
    return std::nullopt;
  }
  auto value = read_non_empty_string(*field, diag);
  if (!value) return std::nullopt;
  return std::pair(std::move(*value), value_mark(*field));
}

// A credential's scopes: a list of {queue: PATTERN} / {topic: PATTERN} maps with an
// optional access list.
std::vector<queue_api_grant> read_scopes(const entry& e, diagnostics& diag) {
  std::vector<queue_api_grant> grants;
  read_map_list(e, "queue or topic, and access", diag, [&](map_reader& m, const std::string&) {
    queue_api_grant g;
    auto queue = m.find("queue");
    auto topic = m.find("topic");
    if (queue.has_value() == topic.has_value()) {
      diag.add(m.node().Mark(),
               fmt::format("{}: expected exactly one of 'queue' or 'topic' (a name, a prefix ending in '*', or '*')",
                           m.path()));
      return;
    }
    g.topics = topic.has_value();
    const entry& name = g.topics ? *topic : *queue;
    auto pattern = read_non_empty_string(name, diag);
    if (!pattern) return;
    if (const auto star = pattern->find('*'); star != std::string::npos && star + 1 != pattern->size()) {
      diag.add(value_mark(name), fmt::format("{}: '{}': '*' may only end the pattern", name.path, *pattern));
      return;
    }
    g.pattern = std::move(*pattern);
    if (auto a = m.find("access")) {
      if (!a->value.IsSequence() || a->value.size() == 0) {
        diag.add(value_mark(*a), fmt::format("{}: expected a list of read, write, manage", a->path));
        return;
      }
      g.access = 0;
      for (std::size_t i = 0; i < a->value.size(); ++i) {
        const entry item{a->value[i], a->value[i], fmt::format("{}[{}]", a->path, i)};
        if (auto v = read_enum(item, access_names, diag))
          g.access |= *v == "read" ? access_read : *v == "write" ? access_write : access_manage;
      }
    }
    grants.push_back(std::move(g));
  });
  return grants;
}

void read_credentials(const entry& e, std::vector<queue_api_credential>& out, credentials_seen& seen,
                      diagnostics& diag) {
  seen.mark = value_mark(e);
  if (!e.value.IsSequence()) {
    diag.add(value_mark(e), fmt::format("{}: expected a list of {{secret_id, secret_key}} maps, got {}", e.path,
                                        e.value.IsMap() ? "a map" : "a single value"));
    return;
  }
  std::map<std::string, int> first_line;  // secret_id -> line of first use
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    ++seen.entries;
    const YAML::Node node = e.value[i];
    const std::string path = fmt::format("{}[{}]", e.path, i);
    if (!node.IsMap()) {
      diag.add(node.Mark(), fmt::format("{}: expected a map with secret_id and secret_key", path));
      continue;
    }
    map_reader m(node, path, diag);
    auto id = read_required_string(m, "secret_id", diag);
    auto key = read_required_string(m, "secret_key", diag);
    std::optional<std::vector<queue_api_grant>> scopes;
    if (auto s = m.find("scopes")) scopes = read_scopes(*s, diag);
    std::string tenant, tenant_location;
    if (auto t = m.find("tenant")) {
      if (auto v = read_non_empty_string(*t, diag)) {
        tenant = std::move(*v);
        tenant_location = diag.location(value_mark(*t));
      }
    }
    m.finish();
    if (id) {
      auto [pos, inserted] = first_line.emplace(id->first, id->second.line + 1);
      if (!inserted) {
        diag.add(id->second,
                 fmt::format("{}.secret_id: '{}' already used at line {}", path, id->first, pos->second));
        continue;
      }
    }
    if (id && key) {
      out.push_back({std::move(id->first), std::move(key->first), std::move(scopes), std::move(tenant),
                     std::move(tenant_location)});
    }
  }
}

}  // namespace

void read_queue_api(const entry& e, queue_api_config& q, credentials_seen& seen, diagnostics& diag) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "queue_api: expected a map of queue API settings");
    return;
  }
  map_reader m(e.value, "queue_api", diag);
  if (auto c = m.find("credentials")) read_credentials(*c, q.credentials, seen, diag);
  read_uint_into(m, "signature_window_s", q.signature_window_s, 1, 86400, diag);
  read_uint_into(m, "nonce_cache_entries", q.nonce_cache_entries, 1000, 100000000, diag);
  read_uint_into(m, "max_body_bytes", q.max_body_bytes, 1024, std::uint64_t{1} << 30, diag);
  read_uint_into(m, "max_header_bytes", q.max_header_bytes, 1024, 1048576, diag);
  read_uint_into(m, "max_params", q.max_params, 16, 65536, diag);
  read_uint_into(m, "request_timeout_ms", q.request_timeout_ms, 100, 3600000, diag);
  read_uint_into(m, "idle_timeout_ms", q.idle_timeout_ms, 100, 86400000, diag);
  read_uint_into(m, "max_connections", q.max_connections, 1, 10000000, diag);
  read_uint_into(m, "max_long_polls", q.max_long_polls, 1, 10000000, diag);
  read_uint_into(m, "max_requests_per_second", q.max_requests_per_second, 0, 10000000, diag);
  m.finish();
}

}  // namespace wharf::config::detail
