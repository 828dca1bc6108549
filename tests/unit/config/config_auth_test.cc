// The `auth:` section and the listeners' client-authentication keys: every field, its
// defaults, and the shape errors reported (with exact file:line:col). What the values mean
// (password hashes, topic patterns) is checked by auth::access_policy.
#include "config/config.h"

#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace wharf::config {
namespace {

using ::testing::ElementsAre;
using test::errors_of;

TEST(config_auth, defaults_when_absent) {
  const config cfg = parse_config("", "test.yaml");
  EXPECT_TRUE(cfg.auth.users.empty());
  EXPECT_TRUE(cfg.auth.acl.empty());
  EXPECT_EQ(cfg.auth.acl_no_match, acl_permission::allow);
  EXPECT_EQ(cfg.auth.subscribe_denied_reason, 0x87);
  EXPECT_FALSE(cfg.listeners.at(0).anonymous);
  EXPECT_EQ(cfg.listeners.at(0).username_from_cert, cert_identity::none);
}

TEST(config_auth, every_field_is_read_with_defaults_where_absent) {
  const config cfg = parse_config(R"(auth:
  users:
    - {username: alice, password_hash: "$pbkdf2-sha256$i=1000$c2FsdA==$aGFzaA=="}
    - {username: device-7}
  acl:
    - {permission: allow, action: publish, topic: "devices/%c/#"}
    - {permission: deny, username: alice, topic: "secret/#"}
  acl_no_match: deny
  subscribe_denied_reason: 0x80
)",
                                  "test.yaml");
  const auto& a = cfg.auth;
  ASSERT_EQ(a.users.size(), 2u);
  EXPECT_EQ(a.users[0].username, "alice");
  EXPECT_EQ(a.users[0].password_hash, "$pbkdf2-sha256$i=1000$c2FsdA==$aGFzaA==");
  EXPECT_EQ(a.users[0].source_location, "test.yaml:3:40");  // the hash: where a bad one is reported
  EXPECT_EQ(a.users[1].password_hash, "");
  EXPECT_EQ(a.users[1].source_location, "test.yaml:4:7");
  ASSERT_EQ(a.acl.size(), 2u);
  EXPECT_EQ(a.acl[0].permission, acl_permission::allow);
  EXPECT_EQ(a.acl[0].action, acl_action::publish);
  EXPECT_EQ(a.acl[0].topic, "devices/%c/#");
  EXPECT_EQ(a.acl[0].username, "");
  EXPECT_EQ(a.acl[0].source_location, "test.yaml:6:51");  // the topic
  EXPECT_EQ(a.acl[1].permission, acl_permission::deny);
  EXPECT_EQ(a.acl[1].action, acl_action::all);
  EXPECT_EQ(a.acl[1].username, "alice");
  EXPECT_EQ(a.acl_no_match, acl_permission::deny);
  EXPECT_EQ(a.subscribe_denied_reason, 0x80);
}

TEST(config_auth, shape_errors_all_at_once) {
  EXPECT_THAT(errors_of(R"(auth:
  users:
    - {password_hash: x}
    - {username: a}
    - {username: a}
  acl:
    - {permission: maybe, topic: "x"}
    - {topic: "x"}
    - {permission: deny, topic: "x", action: read}
    - deny
  acl_no_match: nope
  subscribe_denied_reason: 135
)"),
              ElementsAre("test.yaml:3:7: auth.users[0]: missing required field 'username'",
                          "test.yaml:5:18: auth.users[2].username: 'a' already used at line 4",
                          "test.yaml:7:20: auth.acl[0].permission: invalid value 'maybe', expected one of: allow, deny",
                          "test.yaml:8:7: auth.acl[1]: missing required field 'permission', expected allow or deny",
                          "test.yaml:9:46: auth.acl[2].action: invalid value 'read', expected one of: publish, "
                          "subscribe, all",
                          "test.yaml:10:7: auth.acl[3]: expected a map with permission and topic",
                          "test.yaml:11:17: auth.acl_no_match: invalid value 'nope', expected one of: allow, deny",
                          "test.yaml:12:28: auth.subscribe_denied_reason: invalid value '135', expected one of: "
                          "0x87, 0x80"));
}

TEST(config_auth, jwt_every_field_and_its_defaults) {
  const config full = parse_config(R"(auth:
  jwt:
    keys_file: /etc/hostname
    from: username
    username_claim: device_id
    clock_skew_s: 5
    require_expiry: false
    issuer: "https://id.example"
    audience: mqtt
    acl_claim: acl
)",
                                   "test.yaml");
  ASSERT_TRUE(full.auth.jwt);
  const auto& j = *full.auth.jwt;
  EXPECT_EQ(j.keys_file, "/etc/hostname");
  EXPECT_EQ(j.keys_location, "test.yaml:3:16");
  EXPECT_TRUE(j.from_username);
  EXPECT_EQ(j.username_claim, "device_id");
  EXPECT_EQ(j.clock_skew_s, 5u);
  EXPECT_FALSE(j.require_expiry);
  EXPECT_EQ(j.issuer, "https://id.example");
  EXPECT_EQ(j.audience, "mqtt");
  EXPECT_EQ(j.acl_claim, "acl");
  const config least = parse_config("auth:\n  jwt: {keys_file: /etc/hostname}\n", "test.yaml");
  ASSERT_TRUE(least.auth.jwt);
  EXPECT_EQ(least.auth.jwt->username_claim, "sub");
  EXPECT_EQ(least.auth.jwt->clock_skew_s, 30u);
  EXPECT_TRUE(least.auth.jwt->require_expiry);
  EXPECT_FALSE(least.auth.jwt->from_username);
  EXPECT_EQ(least.auth.jwt->acl_claim, "");
  EXPECT_FALSE(parse_config("", "test.yaml").auth.jwt);
}

TEST(config_auth, jwt_shape_errors) {
  EXPECT_THAT(errors_of(R"(auth:
  jwt:
    from: header
    clock_skew_s: 301
    username_claim: ""
    colour: blue
)"),
              ElementsAre("test.yaml:3:5: auth.jwt: missing required field 'keys_file', expected a file path",
                          "test.yaml:3:11: auth.jwt.from: invalid value 'header', expected one of: password, username",
                          "test.yaml:4:19: auth.jwt.clock_skew_s: 301 is out of range, expected 0..300",
                          "test.yaml:5:21: auth.jwt.username_claim: expected a non-empty string",
                          "test.yaml:6:5: unknown key 'colour' in auth.jwt, expected one of: keys_file, from, "
                          "username_claim, clock_skew_s, require_expiry, issuer, audience, acl_claim"));
  EXPECT_THAT(errors_of("auth:\n  jwt: {keys_file: /nonexistent/jwks.json}\n"),
              ElementsAre(::testing::StartsWith("test.yaml:2:9: auth.jwt.keys_file: cannot read file '/nonexistent/jwks.json'")));
  EXPECT_THAT(errors_of("auth:\n  jwt: on\n"), ElementsAre("test.yaml:2:8: auth.jwt: expected a map with keys_file"));
}

TEST(config_auth, http_every_field_and_its_defaults) {
  const config full = parse_config(R"(auth:
  http:
    url: "https://auth.example:8443/mqtt"
    timeout_ms: 750
    max_in_flight: 8
    max_queued: 100
    cache_ttl_ms: 1000
    deny_cache_ttl_ms: 0
    cache_entries: 50
    on_failure: allow
    ca_file: /etc/hostname
    authorize_publish: true
    authorize_subscribe: true
)",
                                   "test.yaml");
  ASSERT_TRUE(full.auth.http);
  const auto& h = *full.auth.http;
  EXPECT_EQ(h.url, "https://auth.example:8443/mqtt");
  EXPECT_EQ(h.url_location, "test.yaml:3:10");
  EXPECT_EQ(h.timeout_ms, 750u);
  EXPECT_EQ(h.max_in_flight, 8u);
  EXPECT_EQ(h.max_queued, 100u);
  EXPECT_EQ(h.cache_ttl_ms, 1000u);
  EXPECT_EQ(h.deny_cache_ttl_ms, 0u);
  EXPECT_EQ(h.cache_entries, 50u);
  EXPECT_TRUE(h.fail_open);
  EXPECT_EQ(h.ca_file, "/etc/hostname");
  EXPECT_TRUE(h.authorize_publish);
  EXPECT_TRUE(h.authorize_subscribe);
  const config least = parse_config("auth:\n  http: {url: \"http://127.0.0.1/auth\"}\n", "test.yaml");
  ASSERT_TRUE(least.auth.http);
  EXPECT_EQ(least.auth.http->timeout_ms, 2000u);
  EXPECT_EQ(least.auth.http->max_in_flight, 32u);
  EXPECT_EQ(least.auth.http->max_queued, 10000u);
  EXPECT_EQ(least.auth.http->cache_ttl_ms, 60000u);
  EXPECT_EQ(least.auth.http->deny_cache_ttl_ms, 5000u);
  EXPECT_FALSE(least.auth.http->fail_open);
  EXPECT_EQ(least.auth.http->ca_file, "");
  EXPECT_FALSE(least.auth.http->authorize_publish);
  EXPECT_FALSE(least.auth.http->authorize_subscribe);
  EXPECT_FALSE(parse_config("", "test.yaml").auth.http);
}

TEST(config_auth, http_shape_errors) {
  EXPECT_THAT(errors_of(R"(auth:
  http:
    timeout_ms: 5
    max_in_flight: 0
    on_failure: maybe
    retries: 3
)"),
              ElementsAre("test.yaml:3:5: auth.http: missing required field 'url'",
                          "test.yaml:3:17: auth.http.timeout_ms: 5 is out of range, expected 10..60000",
                          "test.yaml:4:20: auth.http.max_in_flight: 0 is out of range, expected 1..1024",
                          "test.yaml:5:17: auth.http.on_failure: invalid value 'maybe', expected one of: deny, allow",
                          "test.yaml:6:5: unknown key 'retries' in auth.http, expected one of: url, timeout_ms, "
                          "max_in_flight, max_queued, cache_ttl_ms, deny_cache_ttl_ms, cache_entries, on_failure, "
                          "ca_file, authorize_publish, authorize_subscribe"));
  EXPECT_THAT(errors_of("auth:\n  http: on\n"), ElementsAre("test.yaml:2:9: auth.http: expected a map with url"));
}

TEST(config_auth, order_defaults_to_the_configured_sources) {
  EXPECT_THAT(parse_config("", "test.yaml").auth.order, ElementsAre(auth_source::file, auth_source::runtime));
  const config both = parse_config(
      "auth:\n  http: {url: \"http://127.0.0.1/auth\"}\n  jwt: {keys_file: /etc/hostname}\n", "test.yaml");
  EXPECT_THAT(both.auth.order,
              ElementsAre(auth_source::file, auth_source::runtime, auth_source::jwt, auth_source::http));
  const config chosen = parse_config(
      "auth:\n  http: {url: \"http://127.0.0.1/auth\"}\n  jwt: {keys_file: /etc/hostname}\n  order: [http, jwt]\n",
      "test.yaml");
  EXPECT_THAT(chosen.auth.order, ElementsAre(auth_source::http, auth_source::jwt));
}

TEST(config_auth, runtime_bounds) {
  const config cfg = parse_config("auth:\n  runtime: {max_users: 50, max_roles: 5}\n", "test.yaml");
  EXPECT_EQ(cfg.auth.runtime.max_users, 50u);
  EXPECT_EQ(cfg.auth.runtime.max_roles, 5u);
  EXPECT_EQ(parse_config("", "test.yaml").auth.runtime.max_users, 1000000u);
  EXPECT_THAT(errors_of("auth:\n  runtime: {max_users: 100000001, colour: 1}\n"),
              ElementsAre("test.yaml:2:24: auth.runtime.max_users: 100000001 is out of range, expected 0..100000000",
                          "test.yaml:2:35: unknown key 'colour' in auth.runtime, expected one of: max_users, max_roles"));
  // Runtime users may be left out of the order: they cannot log in then.
  EXPECT_THAT(parse_config("auth:\n  order: [file]\n", "test.yaml").auth.order, ElementsAre(auth_source::file));
}

TEST(config_auth, order_names_each_configured_source_once) {
  EXPECT_THAT(errors_of(R"(auth:
  users:
    - {username: device-7}
  http: {url: "http://127.0.0.1/auth"}
  order: [http, http, jwt, ldap]
)"),
              ElementsAre("test.yaml:5:10: auth.order: auth.users ('file') is configured but not named, so it would "
                          "never be tried",
                          "test.yaml:5:17: auth.order: 'http' named twice",
                          "test.yaml:5:23: auth.order: 'jwt' names a source that is not configured (auth.jwt)",
                          "test.yaml:5:28: auth.order[3]: invalid value 'ldap', expected one of: file, runtime, jwt, http"));
  EXPECT_THAT(errors_of("auth:\n  order: file\n"),
              ElementsAre("test.yaml:2:10: auth.order: expected a list of file, runtime, jwt and http"));
}

// An empty value that looks harmless but is not: a rule whose username is empty applies to
// every client, and an empty hash means "no password". An ${ENV:NAME} set to "" gives one.
TEST(config_auth, empty_rule_username_or_password_hash_is_an_error) {
  ::setenv("WHARF_CT_EMPTY", "", 1);
  EXPECT_THAT(errors_of(R"(auth:
  users:
    - {username: alice, password_hash: "${ENV:WHARF_CT_EMPTY}"}
  acl:
    - {permission: allow, username: "${ENV:WHARF_CT_EMPTY}", topic: "#"}
)"),
              ElementsAre("test.yaml:3:40: auth.users[0].password_hash: expected a non-empty string",
                          "test.yaml:5:37: auth.acl[0].username: expected a non-empty string"));
}

TEST(config_auth, listener_client_authentication_keys) {
  const config cfg = parse_config(R"(listeners:
  - {type: mqtt, bind: "127.0.0.1:1883", anonymous: true}
  - {type: mqtt-ws, bind: "127.0.0.1:8083"}
)",
                                  "test.yaml");
  ASSERT_EQ(cfg.listeners.size(), 2u);
  EXPECT_TRUE(cfg.listeners[0].anonymous);
  EXPECT_FALSE(cfg.listeners[1].anonymous);
  EXPECT_THAT(errors_of(R"(listeners:
  - {type: mqtt, bind: "127.0.0.1:1883", anonymous: yes, username_from_cert: dn}
  - {type: mqtt, bind: "127.0.0.1:1884", username_from_cert: cn}
  - {type: queue-api, bind: "127.0.0.1:8080", anonymous: true}
queue_api:
  credentials: [{secret_id: a, secret_key: b}]
)"),
              ElementsAre("test.yaml:2:53: listeners[0].anonymous: expected true or false, got 'yes'",
                          "test.yaml:2:78: listeners[0].username_from_cert: invalid value 'dn', expected one of: none, "
                          "cn, san",
                          "test.yaml:3:62: listeners[1].username_from_cert: 'cn' requires tls with ca_file (the CA "
                          "bundle that signs client certificates)",
                          "test.yaml:4:47: listeners[2].anonymous: only valid for MQTT listeners (mqtt, mqtt-ws), "
                          "remove it"));
}

}  // namespace
}  // namespace wharf::config
