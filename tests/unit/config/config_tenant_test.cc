// The `tenants:` section: names, MQTT username patterns, quotas and their defaults; the
// errors (with file:line:col) of bad names, names or patterns given twice, and tenants named
// by credentials and bridge bindings but never declared.
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config_test_util.h"

namespace wharf::config {
namespace {

using ::testing::ElementsAre;
using test::errors_of;

TEST(config_tenants, absent_means_the_default_tenant_only) {
  const config cfg = parse_config("", "test.yaml");
  EXPECT_TRUE(cfg.tenants.empty());
  EXPECT_EQ(tenant_of_mqtt_user(cfg.tenants, "alice"), "");
}

TEST(config_tenants, names_users_quotas_and_who_names_them) {
  const config cfg = parse_config("tenants:\n"
                                  "  - {name: acme, mqtt_users: [alice, 'acme-*'],\n"
                                  "     quotas: {queues: 5, topics: 6, requests_per_second: 7, stored_bytes: 8}}\n"
                                  "  - {name: globex}\n"
                                  "queue_api:\n"
                                  "  credentials:\n"
                                  "    - {secret_id: a, secret_key: k, tenant: acme}\n"
                                  "    - {secret_id: d, secret_key: k}\n"
                                  "bridge:\n"
                                  "  mqtt_to_queue:\n"
                                  "    - {filter: 'fleet/#', queue: telemetry, tenant: globex}\n",
                                  "test.yaml");
  ASSERT_EQ(cfg.tenants.size(), 2u);
  const auto& acme = cfg.tenants[0];
  EXPECT_EQ(acme.name, "acme");
  EXPECT_THAT(acme.mqtt_users, ElementsAre("alice", "acme-*"));
  EXPECT_EQ(acme.max_queues, 5u);
  EXPECT_EQ(acme.max_topics, 6u);
  EXPECT_EQ(acme.max_requests_per_second, 7u);
  EXPECT_EQ(acme.max_stored_bytes, 8u);
  const auto& globex = cfg.tenants[1];
  EXPECT_EQ(globex.max_queues, 1000u);  // the defaults
  EXPECT_EQ(globex.max_topics, 1000u);
  EXPECT_EQ(globex.max_requests_per_second, 0u);
  EXPECT_EQ(globex.max_stored_bytes, 0u);
  EXPECT_EQ(cfg.queue_api.credentials[0].tenant, "acme");
  EXPECT_EQ(cfg.queue_api.credentials[1].tenant, "");
  EXPECT_EQ(cfg.bridge.mqtt_to_queue[0].tenant, "globex");
  EXPECT_EQ(tenant_of_mqtt_user(cfg.tenants, "alice"), "acme");
  EXPECT_EQ(tenant_of_mqtt_user(cfg.tenants, "acme-sensor-9"), "acme");
  EXPECT_EQ(tenant_of_mqtt_user(cfg.tenants, "alicia"), "");
}

TEST(config_tenants, errors_at_their_position) {
  EXPECT_THAT(errors_of("tenants:\n"
                        "  - {name: default}\n"
                        "  - {name: 'ac:me'}\n"
                        "  - {name: acme, mqtt_users: ['dev-*', 'a*b']}\n"
                        "  - {name: acme}\n"
                        "  - {name: globex, mqtt_users: ['dev-9'], quotas: {queues: -1, bytes: 3}}\n"
                        "  - {mqtt_users: [x]}\n"),
              ElementsAre("test.yaml:2:12: tenants[0].name: 'default' is not a tenant name: 1..32 characters, a "
                          "letter, then letters, digits, '_' or '-' (and not 'default', the name of the tenant "
                          "without one)",
                          "test.yaml:3:12: tenants[1].name: 'ac:me' is not a tenant name: 1..32 characters, a "
                          "letter, then letters, digits, '_' or '-' (and not 'default', the name of the tenant "
                          "without one)",
                          "test.yaml:4:40: tenants[2].mqtt_users[1]: 'a*b': '*' may only end the pattern",
                          "test.yaml:5:12: tenants[3].name: tenant 'acme' already declared at line 4",
                          "test.yaml:6:33: tenants[4].mqtt_users[0]: 'dev-9' matches usernames that 'dev-*' "
                          "(tenant 'acme', line 4) matches too: a client belongs to one tenant",
                          "test.yaml:6:60: tenants[4].quotas.queues: -1 is out of range, expected 0..1000000",
                          "test.yaml:6:64: unknown key 'bytes' in tenants[4].quotas, expected one of: queues, topics, "
                          "requests_per_second, stored_bytes",
                          "test.yaml:7:5: tenants[5]: missing required field 'name'"));
}

TEST(config_tenants, undeclared_tenants_are_errors_where_they_are_named) {
  EXPECT_THAT(errors_of("tenants:\n"
                        "  - {name: acme}\n"
                        "queue_api:\n"
                        "  credentials:\n"
                        "    - {secret_id: a, secret_key: k, tenant: acem}\n"
                        "bridge:\n"
                        "  topic_to_mqtt:\n"
                        "    - {topic: t, mqtt_topic: x, tenant: globex}\n"),
              ElementsAre("test.yaml:5:45: queue_api.credentials tenant: tenant 'acem' is not declared under tenants",
                          "test.yaml:8:7: bridge.topic_to_mqtt tenant: tenant 'globex' is not declared under tenants"));
}

}  // namespace
}  // namespace wharf::config
