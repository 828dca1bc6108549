// The `bridge:` section: every field, its defaults, and the shape errors it reports (with
// exact file:line:col). What the values mean (filters, templates) is checked by the bridge
// (tests/unit/gateway/bridge).
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace wharf::config {
namespace {

using ::testing::ElementsAre;
using test::errors_of;

TEST(config_bridge, empty_when_absent) {
  const config cfg = parse_config("", "test.yaml");
  EXPECT_TRUE(cfg.bridge.mqtt_to_queue.empty());
  EXPECT_TRUE(cfg.bridge.mqtt_to_topic.empty());
  EXPECT_TRUE(cfg.bridge.topic_to_mqtt.empty());
  EXPECT_EQ(cfg.bridge.events_queue, "");
}

TEST(config_bridge, every_field_is_read_with_defaults_where_absent) {
  const config cfg = parse_config(R"(bridge:
  mqtt_to_queue:
    - {filter: "devices/+/telemetry", queue: telemetry, format: json}
    - {filter: "raw/#", queue: rawq, group_level: 2}
  mqtt_to_topic:
    - {filter: "sensors/#", topic: sensor-fanout, format: json}
  topic_to_mqtt:
    - {topic: commands, mqtt_topic: "devices/{routingKey}/commands", qos: 2, retain: true}
    - {topic: alerts, mqtt_topic: "alerts"}
  events: {queue: device-events}
)",
                                  "test.yaml");
  const auto& b = cfg.bridge;
  ASSERT_EQ(b.mqtt_to_queue.size(), 2u);
  EXPECT_EQ(b.mqtt_to_queue[0].filter, "devices/+/telemetry");
  EXPECT_EQ(b.mqtt_to_queue[0].destination, "telemetry");
  EXPECT_EQ(b.mqtt_to_queue[0].format, bridge_body_format::json);
  EXPECT_EQ(b.mqtt_to_queue[0].source_location, "test.yaml:3:7");
  EXPECT_EQ(b.mqtt_to_queue[1].format, bridge_body_format::raw);
  EXPECT_EQ(b.mqtt_to_queue[0].group_level, std::nullopt);
  EXPECT_EQ(b.mqtt_to_queue[1].group_level, 2u);
  ASSERT_EQ(b.mqtt_to_topic.size(), 1u);
  EXPECT_EQ(b.mqtt_to_topic[0].filter, "sensors/#");
  EXPECT_EQ(b.mqtt_to_topic[0].destination, "sensor-fanout");
  EXPECT_EQ(b.mqtt_to_topic[0].format, bridge_body_format::json);
  ASSERT_EQ(b.topic_to_mqtt.size(), 2u);
  EXPECT_EQ(b.topic_to_mqtt[0].topic, "commands");
  EXPECT_EQ(b.topic_to_mqtt[0].mqtt_topic, "devices/{routingKey}/commands");
  EXPECT_EQ(b.topic_to_mqtt[0].qos, 2);
  EXPECT_TRUE(b.topic_to_mqtt[0].retain);
  EXPECT_EQ(b.topic_to_mqtt[1].qos, 1);
  EXPECT_FALSE(b.topic_to_mqtt[1].retain);
  EXPECT_EQ(b.events_queue, "device-events");
}

TEST(config_bridge, shape_errors_all_at_once) {
  EXPECT_THAT(errors_of(R"(bridge:
  mqtt_to_queue:
    - {filter: "a/b", format: xml}
    - just-a-string
    - {filter: "c/+", queue: c, group_level: 0}
  topic_to_mqtt: {topic: t}
  mqtt_to_topic:
    - {filter: "", topic: t, qos: 1}
    - {filter: "d/+", topic: d, group_level: 2}
  events: {queue: ""}
  queues: {}
)"),
              ElementsAre("test.yaml:3:7: bridge.mqtt_to_queue[0]: missing required field 'queue'",
                          "test.yaml:3:31: bridge.mqtt_to_queue[0].format: invalid value 'xml', expected one of: raw, json",
                          "test.yaml:4:7: bridge.mqtt_to_queue[1]: expected a map with filter and queue",
                          "test.yaml:5:46: bridge.mqtt_to_queue[2].group_level: 0 is out of range, expected 1..1000",
                          "test.yaml:6:18: bridge.topic_to_mqtt: expected a list of topic and mqtt_topic maps",
                          "test.yaml:8:16: bridge.mqtt_to_topic[0].filter: expected a non-empty string",
                          "test.yaml:8:30: unknown key 'qos' in bridge.mqtt_to_topic[0], expected one of: filter, topic, format, tenant",
                          "test.yaml:9:33: unknown key 'group_level' in bridge.mqtt_to_topic[1], expected one of: filter, "
                          "topic, format, tenant",
                          "test.yaml:10:19: bridge.events.queue: expected a non-empty string",
                          "test.yaml:11:3: unknown key 'queues' in bridge, expected one of: mqtt_to_queue, mqtt_to_topic, "
                          "topic_to_mqtt, events, uplink"));
}

TEST(config_bridge, uplink_every_field) {
  const auto dir = ::testing::TempDir();
  std::FILE* f = std::fopen((dir + "ca.pem").c_str(), "w");
  std::fputs("x", f);
  std::fclose(f);
  const config cfg = parse_config(R"(bridge:
  uplink:
    address: "ssl://cloud.example:8883"
    client_id: gw-1
    mqtt_version: "5"
    username: u
    password: p
    ca_file: ca.pem
    keep_alive_s: 30
    clean_session: true
    reconnect_min_ms: 500
    reconnect_max_ms: 5000
    queue: up
    max_queued_messages: 2000000
    topics:
      - {filter: "a/#", direction: both, qos: 2, local_prefix: "l/", remote_prefix: "r/"}
      - {filter: "b"}
)",
                                  dir + "wharf.yaml");
  ASSERT_TRUE(cfg.bridge.uplink.has_value());
  const auto& u = *cfg.bridge.uplink;
  EXPECT_EQ(u.address, "ssl://cloud.example:8883");
  EXPECT_EQ(u.client_id, "gw-1");
  EXPECT_EQ(u.mqtt_version, 5);
  EXPECT_EQ(u.username, "u");
  EXPECT_EQ(u.password, "p");
  EXPECT_EQ(u.ca_file, dir + "ca.pem");
  EXPECT_EQ(u.keep_alive_s, 30);
  EXPECT_TRUE(u.clean_session);
  EXPECT_EQ(u.reconnect_min_ms, 500u);
  EXPECT_EQ(u.reconnect_max_ms, 5000u);
  EXPECT_EQ(u.queue, "up");
  EXPECT_EQ(u.max_queued_messages, 2000000u);
  ASSERT_EQ(u.topics.size(), 2u);
  EXPECT_EQ(u.topics[0].direction, uplink_direction::both);
  EXPECT_EQ(u.topics[0].qos, 2);
  EXPECT_EQ(u.topics[0].local_prefix, "l/");
  EXPECT_EQ(u.topics[0].remote_prefix, "r/");
  EXPECT_EQ(u.topics[1].direction, uplink_direction::out);
  EXPECT_EQ(u.topics[1].qos, 1);
}

TEST(config_bridge, uplink_errors) {
  EXPECT_THAT(errors_of(R"(bridge:
  uplink:
    address: "http://x"
    mqtt_version: "4"
    max_queued_messages: 10
    ca_file: /nonexistent/ca.pem
)"),
              ElementsAre("test.yaml:3:5: bridge.uplink: missing required field 'client_id'",
                          "test.yaml:3:5: bridge.uplink: missing required field 'topics', expected a list of {filter, direction}",
                          "test.yaml:3:14: bridge.uplink.address: 'http://x' is not a broker address, expected "
                          "tcp://host:port or ssl://host:port",
                          "test.yaml:4:19: bridge.uplink.mqtt_version: invalid value '4', expected one of: 3.1.1, 5",
                          "test.yaml:5:26: bridge.uplink.max_queued_messages: 10 is out of range, expected 1000000..1000000000",
                          "test.yaml:6:5: bridge.uplink.ca_file: cannot read file '/nonexistent/ca.pem': No such file or directory"));
}

TEST(config_bridge, qos_out_of_range) {
  EXPECT_THAT(errors_of("bridge:\n  topic_to_mqtt:\n    - {topic: t, mqtt_topic: m, qos: 3}\n"),
              ElementsAre("test.yaml:3:38: bridge.topic_to_mqtt[0].qos: 3 is out of range, expected 0..2"));
}

}  // namespace
}  // namespace wharf::config
