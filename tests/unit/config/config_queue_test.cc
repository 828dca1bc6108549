// The queue API and queue core settings: queue-api listeners, credentials, bounds, and the
// errors each can produce (with exact file:line:col).
#include "config/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace wharf::config {
namespace {

using ::testing::ElementsAre;
using test::errors_of;

constexpr const char* queue_api_listener = "listeners:\n  - {type: queue-api, bind: \"127.0.0.1:8080\"}\n";

TEST(config_queue, defaults_when_absent) {
  const config cfg = parse_config("", "test.yaml");
  EXPECT_TRUE(cfg.queue_api.credentials.empty());
  EXPECT_EQ(cfg.queue_api.signature_window_s, 300u);
  EXPECT_EQ(cfg.queue_api.nonce_cache_entries, 1000000u);
  EXPECT_EQ(cfg.queue_api.max_body_bytes, 4194304u);
  EXPECT_EQ(cfg.queue_api.max_header_bytes, 8192u);
  EXPECT_EQ(cfg.queue_api.max_params, 256u);
  EXPECT_EQ(cfg.queue_api.request_timeout_ms, 30000u);
  EXPECT_EQ(cfg.queue_api.idle_timeout_ms, 60000u);
  EXPECT_EQ(cfg.queue_api.max_connections, 10000u);
  EXPECT_EQ(cfg.queue_api.max_long_polls, 100000u);
  EXPECT_EQ(cfg.queue_api.max_requests_per_second, 0u);
  EXPECT_EQ(cfg.queue.max_queues, 10000u);
  EXPECT_EQ(cfg.queue.max_topics, 10000u);
  EXPECT_EQ(cfg.queue.max_subscriptions_per_topic, 100u);
  EXPECT_EQ(cfg.queue.log_retain_entries, 100000u);
  EXPECT_EQ(cfg.queue.tick_interval_ms, 1000u);
  EXPECT_EQ(cfg.queue.push.timeout_ms, 5000u);
  EXPECT_EQ(cfg.queue.push.max_in_flight, 256u);
  EXPECT_EQ(cfg.queue.push.ca_file, "");
}

TEST(config_queue, every_field_is_read) {
  const auto dir = std::filesystem::temp_directory_path() / ("wharf-config-queue-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "push-ca.pem") << "x";
  const std::string file = (dir / "wharf.yaml").string();
  const config cfg = parse_config(R"(listeners:
  - {type: queue-api, bind: "127.0.0.1:8080"}
queue_api:
  credentials:
    - {secret_id: AKIDone, secret_key: key-one}
    - secret_id: AKIDtwo
      secret_key: key-two
  signature_window_s: 60
  nonce_cache_entries: 5000
  max_body_bytes: 65536
  max_header_bytes: 4096
  max_params: 64
  request_timeout_ms: 1000
  idle_timeout_ms: 2000
  max_connections: 10
  max_long_polls: 20
  max_requests_per_second: 500
queue:
  max_queues: 1
  max_topics: 2
  max_subscriptions_per_topic: 3
  log_retain_entries: 0
  tick_interval_ms: 500
  push: {timeout_ms: 700, max_in_flight: 8, ca_file: push-ca.pem}
)",
                                  file);
  std::filesystem::remove_all(dir);

  ASSERT_EQ(cfg.listeners.size(), 1u);
  EXPECT_EQ(cfg.listeners[0].type, listener_type::queue_api);
  EXPECT_EQ(cfg.listeners[0].port, 8080);
  ASSERT_EQ(cfg.queue_api.credentials.size(), 2u);
  EXPECT_EQ(cfg.queue_api.credentials[0].secret_id, "AKIDone");
  EXPECT_EQ(cfg.queue_api.credentials[0].secret_key, "key-one");
  EXPECT_EQ(cfg.queue_api.credentials[1].secret_id, "AKIDtwo");
  EXPECT_EQ(cfg.queue_api.credentials[1].secret_key, "key-two");
  EXPECT_EQ(cfg.queue_api.signature_window_s, 60u);
  EXPECT_EQ(cfg.queue_api.nonce_cache_entries, 5000u);
  EXPECT_EQ(cfg.queue_api.max_body_bytes, 65536u);
  EXPECT_EQ(cfg.queue_api.max_header_bytes, 4096u);
  EXPECT_EQ(cfg.queue_api.max_params, 64u);
  EXPECT_EQ(cfg.queue_api.request_timeout_ms, 1000u);
  EXPECT_EQ(cfg.queue_api.idle_timeout_ms, 2000u);
  EXPECT_EQ(cfg.queue_api.max_connections, 10u);
  EXPECT_EQ(cfg.queue_api.max_long_polls, 20u);
  EXPECT_EQ(cfg.queue_api.max_requests_per_second, 500u);
  EXPECT_EQ(cfg.queue.max_queues, 1u);
  EXPECT_EQ(cfg.queue.max_topics, 2u);
  EXPECT_EQ(cfg.queue.max_subscriptions_per_topic, 3u);
  EXPECT_EQ(cfg.queue.log_retain_entries, 0u);
  EXPECT_EQ(cfg.queue.tick_interval_ms, 500u);
  EXPECT_EQ(cfg.queue.push.timeout_ms, 700u);
  EXPECT_EQ(cfg.queue.push.max_in_flight, 8u);
  EXPECT_EQ(cfg.queue.push.ca_file, (dir / "push-ca.pem").string());
}

TEST(config_queue, secret_key_can_come_from_the_environment) {
  ::setenv("WHARF_CT_SECRET", "from-env", 1);
  const config cfg = parse_config(std::string(queue_api_listener) +
                                      "queue_api:\n  credentials:\n    - {secret_id: a, secret_key: "
                                      "\"${ENV:WHARF_CT_SECRET}\"}\n",
                                  "test.yaml");
  EXPECT_EQ(cfg.queue_api.credentials.at(0).secret_key, "from-env");
}

TEST(config_queue_errors, queue_api_listener_needs_a_credential) {
  // Reported at the first queue-api listener when queue_api.credentials is absent...
  EXPECT_THAT(errors_of(queue_api_listener),
              ElementsAre("test.yaml:2:5: queue_api.credentials: at least one credential is required "
                          "when a queue-api listener is configured"));
  // ...and at the list when it is empty.
  EXPECT_THAT(errors_of(std::string(queue_api_listener) + "queue_api:\n  credentials: []\n"),
              ElementsAre("test.yaml:4:16: queue_api.credentials: at least one credential is required "
                          "when a queue-api listener is configured"));
  // Without a queue-api listener no credential is needed.
  EXPECT_TRUE(errors_of("listeners:\n  - {type: mqtt, bind: \"127.0.0.1:1883\"}\n").empty());
}

TEST(config_queue_errors, empty_secret_id_or_key) {
  EXPECT_THAT(errors_of(std::string(queue_api_listener) +
                        "queue_api:\n  credentials:\n    - {secret_id: \"\", secret_key: k}\n"
                        "    - {secret_id: b, secret_key: \"\"}\n"),
              ElementsAre("test.yaml:5:19: queue_api.credentials[0].secret_id: expected a non-empty string",
                          "test.yaml:6:34: queue_api.credentials[1].secret_key: expected a non-empty string"));
}

TEST(config_queue_errors, missing_secret_id_or_key) {
  EXPECT_THAT(errors_of(std::string(queue_api_listener) +
                        "queue_api:\n  credentials:\n    - {secret_id: a}\n    - secret_key: k\n"),
              ElementsAre("test.yaml:5:7: queue_api.credentials[0]: missing required field 'secret_key'",
                          "test.yaml:6:7: queue_api.credentials[1]: missing required field 'secret_id'"));
}

TEST(config_queue_errors, duplicate_secret_id) {
  EXPECT_THAT(errors_of(std::string(queue_api_listener) +
                        "queue_api:\n  credentials:\n"
                        "    - {secret_id: AKID, secret_key: one}\n"
                        "    - {secret_id: AKID, secret_key: two}\n"),
              ElementsAre("test.yaml:6:19: queue_api.credentials[1].secret_id: 'AKID' already used at line 5"));
}

TEST(config_queue_errors, credentials_of_the_wrong_shape) {
  EXPECT_THAT(errors_of("queue_api:\n  credentials: {secret_id: a, secret_key: b}\n"),
              ElementsAre("test.yaml:2:16: queue_api.credentials: expected a list of {secret_id, "
                          "secret_key} maps, got a map"));
  EXPECT_THAT(errors_of("queue_api:\n  credentials:\n    - AKID\n"),
              ElementsAre("test.yaml:3:7: queue_api.credentials[0]: expected a map with secret_id and "
                          "secret_key"));
  EXPECT_THAT(errors_of("queue_api:\n  credentials:\n    - {secret_id: a, secret_key: b, secrt_key: c}\n"),
              ElementsAre("test.yaml:3:37: unknown key 'secrt_key' in queue_api.credentials[0], did you "
                          "mean 'secret_key'?"));
  EXPECT_THAT(errors_of("queue_api: 5\n"),
              ElementsAre("test.yaml:1:12: queue_api: expected a map of queue API settings"));
  EXPECT_THAT(errors_of("queue: [1]\n"), ElementsAre("test.yaml:1:8: queue: expected a map of queue settings"));
}

TEST(config_queue_errors, out_of_range) {
  EXPECT_THAT(errors_of("queue_api:\n  signature_window_s: 0\n  max_body_bytes: 100\n  max_params: 70000\n"
                        "queue:\n  tick_interval_ms: 1\n  push:\n    max_in_flight: 0\n"),
              ElementsAre("test.yaml:2:23: queue_api.signature_window_s: 0 is out of range, expected 1..86400",
                          "test.yaml:3:19: queue_api.max_body_bytes: 100 is out of range, expected "
                          "1024..1073741824",
                          "test.yaml:4:15: queue_api.max_params: 70000 is out of range, expected 16..65536",
                          "test.yaml:6:21: queue.tick_interval_ms: 1 is out of range, expected 10..60000",
                          "test.yaml:8:20: queue.push.max_in_flight: 0 is out of range, expected 1..100000"));
}

TEST(config_queue_errors, unknown_keys_suggest_the_closest) {
  EXPECT_THAT(errors_of("queue_api:\n  max_body_byte: 1\nqueue:\n  push:\n    timeout_m: 5\n"),
              ElementsAre("test.yaml:2:3: unknown key 'max_body_byte' in queue_api, did you mean "
                          "'max_body_bytes'?",
                          "test.yaml:5:5: unknown key 'timeout_m' in queue.push, did you mean 'timeout_ms'?"));
}

TEST(config_queue_errors, path_is_not_allowed_on_a_queue_api_listener) {
  EXPECT_THAT(errors_of("listeners:\n  - {type: queue-api, bind: \"0.0.0.0:8080\", path: /v2}\n"
                        "queue_api:\n  credentials: [{secret_id: a, secret_key: b}]\n"),
              ElementsAre("test.yaml:2:51: listeners[0].path: only valid for type mqtt-ws, remove it"));
}

TEST(config_queue_errors, push_ca_file_must_be_readable) {
  EXPECT_THAT(errors_of("queue:\n  push:\n    ca_file: /nonexistent/wharf-ca.pem\n"),
              ElementsAre("test.yaml:3:5: queue.push.ca_file: cannot read file '/nonexistent/wharf-ca.pem': "
                          "No such file or directory"));
  EXPECT_TRUE(errors_of("queue:\n  push:\n    ca_file: \"\"\n").empty());
}

}  // namespace
}  // namespace wharf::config

namespace wharf::config {
namespace {

TEST(config_queue, credential_scopes) {
  const config cfg = parse_config(R"(queue_api:
  credentials:
    - {secret_id: all, secret_key: k}
    - secret_id: scoped
      secret_key: k
      scopes:
        - {queue: "orders-*", access: [read, write]}
        - {topic: alerts}
        - {queue: "*", access: [manage]}
)",
                                  "test.yaml");
  ASSERT_EQ(cfg.queue_api.credentials.size(), 2u);
  EXPECT_FALSE(cfg.queue_api.credentials[0].scopes.has_value());
  const auto& scopes = cfg.queue_api.credentials[1].scopes.value();
  ASSERT_EQ(scopes.size(), 3u);
  EXPECT_FALSE(scopes[0].topics);
  EXPECT_EQ(scopes[0].pattern, "orders-*");
  EXPECT_EQ(scopes[0].access, access_read | access_write);
  EXPECT_TRUE(scopes[1].topics);
  EXPECT_EQ(scopes[1].access, access_read | access_write);  // the default
  EXPECT_EQ(scopes[2].access, access_manage);
}

TEST(config_queue_errors, bad_credential_scopes) {
  EXPECT_THAT(errors_of(R"(queue_api:
  credentials:
    - secret_id: s
      secret_key: k
      scopes:
        - {queue: a, topic: b}
        - {queue: "or*ders"}
        - {queue: a, access: [read, delete]}
        - {queue: a, access: []}
)"),
              ElementsAre("test.yaml:6:11: queue_api.credentials[0].scopes[0]: expected exactly one of 'queue' or "
                          "'topic' (a name, a prefix ending in '*', or '*')",
                          "test.yaml:7:19: queue_api.credentials[0].scopes[1].queue: 'or*ders': '*' may only end the "
                          "pattern",
                          "test.yaml:8:37: queue_api.credentials[0].scopes[2].access[1]: invalid value 'delete', "
                          "expected one of: read, write, manage",
                          "test.yaml:9:30: queue_api.credentials[0].scopes[3].access: expected a list of read, write, "
                          "manage"));
}

}  // namespace
}  // namespace wharf::config
