#include "config/auth_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>

namespace wharf::config::detail {
namespace {

constexpr std::array<std::string_view, 2> permissions = {"allow", "deny"};
constexpr std::array<std::string_view, 3> actions = {"publish", "subscribe", "all"};
constexpr std::array<std::string_view, 2> subscribe_denied_reasons = {"0x87", "0x80"};
constexpr std::array<std::string_view, 2> token_fields = {"password", "username"};
constexpr std::array<std::string_view, 4> source_names = {"file", "runtime", "jwt", "http"};
constexpr std::array<std::string_view, 2> failure_answers = {"deny", "allow"};

acl_permission permission_of(std::string_view text) {
  return text == "deny" ? acl_permission::deny : acl_permission::allow;
}

void read_users(const entry& list, std::vector<user_config>& out, diagnostics& diag) {
  std::map<std::string, int, std::less<>> first_line;  // username -> line
  read_map_list(list, "username and password_hash", diag, [&](map_reader& m, std::string location) {
    user_config user;
    const auto name_entry = m.find("username");
    auto username = required_string(m, "username", diag);
    if (auto e = m.find("password_hash")) {
      // Empty (say, from an empty ${ENV:NAME}) would quietly mean "no password".
      if (auto v = read_non_empty_string(*e, diag)) user.password_hash = std::move(*v);
      location = diag.location(value_mark(*e));  // where a bad hash is reported
    }
    if (!username) return;
    const YAML::Mark mark = value_mark(*name_entry);
    auto [pos, inserted] = first_line.emplace(*username, mark.line + 1);
    if (!inserted) {
      diag.add(mark, fmt::format("{}.username: '{}' already used at line {}", m.path(), *username, pos->second));
      return;
    }
    user.username = std::move(*username);
    user.source_location = std::move(location);
    out.push_back(std::move(user));
  });
}

void read_rules(const entry& list, std::vector<acl_rule>& out, diagnostics& diag) {
  read_map_list(list, "permission and topic", diag, [&](map_reader& m, std::string location) {
    acl_rule rule;
    bool complete = true;
    if (auto e = m.find("permission")) {
      if (auto v = read_enum(*e, permissions, diag)) rule.permission = permission_of(*v);
      else complete = false;
    } else {
      diag.add(m.node().Mark(), fmt::format("{}: missing required field 'permission', expected allow or deny", m.path()));
      complete = false;
    }
    if (auto e = m.find("action")) {
      if (auto v = read_enum(*e, actions, diag)) {
        rule.action = *v == "publish" ? acl_action::publish : *v == "subscribe" ? acl_action::subscribe : acl_action::all;
      }
    }
    auto topic = required_string(m, "topic", diag);
    if (topic) location = diag.location(value_mark(*m.find("topic")));  // where a bad pattern is reported
    if (auto e = m.find("username")) {
      // Empty would make the rule apply to every client: only leaving the key out may.
      if (auto v = read_non_empty_string(*e, diag)) rule.username = std::move(*v);
      else complete = false;
    }
    if (!topic || !complete) return;
    rule.topic = std::move(*topic);
    rule.source_location = std::move(location);
    out.push_back(std::move(rule));
  });
}

void read_jwt(const entry& e, jwt_config& out, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "auth.jwt: expected a map with keys_file");
    return;
  }
  map_reader m(e.value, "auth.jwt", diag);
  if (auto file = m.find("keys_file")) out.keys_location = diag.location(value_mark(*file));
  if (auto path = read_file(m, "keys_file", true)) out.keys_file = std::move(*path);
  if (auto from = m.find("from")) {
    if (auto v = read_enum(*from, token_fields, diag)) out.from_username = *v == "username";
  }
  if (auto claim = m.find("username_claim")) {
    if (auto v = read_non_empty_string(*claim, diag)) out.username_claim = std::move(*v);
  }
  read_uint_into(m, "clock_skew_s", out.clock_skew_s, 0, 300, diag);
  if (auto required = m.find("require_expiry")) {
    if (auto v = read_bool(*required, diag)) out.require_expiry = *v;
  }
  if (auto issuer = m.find("issuer")) {
    if (auto v = read_non_empty_string(*issuer, diag)) out.issuer = std::move(*v);
  }
  if (auto audience = m.find("audience")) {
    if (auto v = read_non_empty_string(*audience, diag)) out.audience = std::move(*v);
  }
  if (auto claim = m.find("acl_claim")) {
    if (auto v = read_non_empty_string(*claim, diag)) out.acl_claim = std::move(*v);
  }
  m.finish();
}

void read_http(const entry& e, http_auth_config& out, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "auth.http: expected a map with url");
    return;
  }
  map_reader m(e.value, "auth.http", diag);
  if (auto url = m.find("url")) out.url_location = diag.location(value_mark(*url));
  if (auto url = required_string(m, "url", diag)) out.url = std::move(*url);
  read_uint_into(m, "timeout_ms", out.timeout_ms, 10, 60'000, diag);
  read_uint_into(m, "max_in_flight", out.max_in_flight, 1, 1024, diag);
  read_uint_into(m, "max_queued", out.max_queued, 0, 1'000'000, diag);
  read_uint_into(m, "cache_ttl_ms", out.cache_ttl_ms, 0, 86'400'000, diag);
  read_uint_into(m, "deny_cache_ttl_ms", out.deny_cache_ttl_ms, 0, 86'400'000, diag);
  read_uint_into(m, "cache_entries", out.cache_entries, 0, 10'000'000, diag);
  if (auto on_failure = m.find("on_failure")) {
    if (auto v = read_enum(*on_failure, failure_answers, diag)) out.fail_open = *v == "allow";
  }
  if (m.find("ca_file")) {
    if (auto path = read_file(m, "ca_file", true)) out.ca_file = std::move(*path);
  }
  for (auto [key, flag] : {std::pair{"authorize_publish", &out.authorize_publish},
                           std::pair{"authorize_subscribe", &out.authorize_subscribe}}) {
    if (auto e = m.find(key)) {
      if (auto v = read_bool(*e, diag)) *flag = *v;
    }
  }
  m.finish();
}

// auth.order: each source once, every configured one named.
void read_order(const entry* e, auth_config& out, diagnostics& diag) {
  const bool file_configured = !out.users.empty();
  if (e == nullptr) {  // file and runtime (the default's), then the others configured
    if (out.jwt) out.order.push_back(auth_source::jwt);
    if (out.http) out.order.push_back(auth_source::http);
    return;
  }
  if (!e->value.IsSequence()) {
    diag.add(value_mark(*e), "auth.order: expected a list of file, runtime, jwt and http");
    return;
  }
  out.order.clear();
  for (std::size_t i = 0; i < e->value.size(); ++i) {
    const auto item = e->value[i];
    const entry named{e->key, item, fmt::format("{}[{}]", e->path, i)};
    auto v = read_enum(named, source_names, diag);
    if (!v) continue;
    const auto source = *v == "file"      ? auth_source::file
                        : *v == "runtime" ? auth_source::runtime
                        : *v == "jwt"     ? auth_source::jwt
                                          : auth_source::http;
    if (std::find(out.order.begin(), out.order.end(), source) != out.order.end()) {
      diag.add(item.Mark(), fmt::format("auth.order: '{}' named twice", *v));
      continue;
    }
    if ((source == auth_source::jwt && !out.jwt) || (source == auth_source::http && !out.http)) {
      diag.add(item.Mark(), fmt::format("auth.order: '{}' names a source that is not configured (auth.{})", *v, *v));
      continue;
    }
    out.order.push_back(source);
  }
  auto must_be_named = [&](bool configured, auth_source source, std::string_view what) {
    if (configured && std::find(out.order.begin(), out.order.end(), source) == out.order.end())
      diag.add(value_mark(*e), fmt::format("auth.order: {} is configured but not named, so it would never be tried", what));
  };
  must_be_named(file_configured, auth_source::file, "auth.users ('file')");
  must_be_named(out.jwt.has_value(), auth_source::jwt, "auth.jwt ('jwt')");
  must_be_named(out.http.has_value(), auth_source::http, "auth.http ('http')");
}

}  // namespace

void read_auth(const entry& e, auth_config& out, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "auth: expected a map with users and acl");
    return;
  }
  map_reader m(e.value, "auth", diag);
  if (auto users = m.find("users")) read_users(*users, out.users, diag);
  if (auto rules = m.find("acl")) read_rules(*rules, out.acl, diag);
  if (auto jwt = m.find("jwt")) read_jwt(*jwt, out.jwt.emplace(), diag, read_file);
  if (auto http = m.find("http")) read_http(*http, out.http.emplace(), diag, read_file);
  if (auto runtime = m.find("runtime")) {
    if (!runtime->value.IsMap()) {
      diag.add(value_mark(*runtime), "auth.runtime: expected a map with max_users and max_roles");
    } else {
      map_reader r(runtime->value, "auth.runtime", diag);
      read_uint_into(r, "max_users", out.runtime.max_users, 0, 100'000'000, diag);
      read_uint_into(r, "max_roles", out.runtime.max_roles, 0, 1'000'000, diag);
      r.finish();
    }
  }
  auto order = m.find("order");
  read_order(order ? &*order : nullptr, out, diag);
  if (auto no_match = m.find("acl_no_match")) {
    if (auto v = read_enum(*no_match, permissions, diag)) out.acl_no_match = permission_of(*v);
  }
  if (auto reason = m.find("subscribe_denied_reason")) {
    if (auto v = read_enum(*reason, subscribe_denied_reasons, diag))
      out.subscribe_denied_reason = *v == "0x80" ? 0x80 : 0x87;
  }
  m.finish();
}

}  // namespace wharf::config::detail
