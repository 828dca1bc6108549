#include "gateway/bridge/bridge.h"
#include "gateway/bridge/uplink.h"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wharf::gateway::bridge {
namespace {

namespace q = core::queue;
namespace json = boost::json;
using ::testing::ElementsAre;

config::bridge_config sample_config() {
  config::bridge_config c;
  c.mqtt_to_queue.push_back({"devices/+/telemetry", "telemetry", config::bridge_body_format::json, std::nullopt, "f:3:7"});
  c.mqtt_to_queue.push_back({"devices/#", "everything", config::bridge_body_format::raw, std::nullopt, "f:4:7"});
  c.mqtt_to_topic.push_back({"devices/+/telemetry", "fanout", config::bridge_body_format::raw, std::nullopt, "f:6:7"});
  c.topic_to_mqtt.push_back({"commands", "devices/{routingKey}/commands", 1, false, "f:8:7"});
  c.events_queue = "events";
  return c;
}

core::message telemetry(std::string payload) {
  core::message m;
  m.topic = "devices/lamp-1/telemetry";
  m.payload = std::move(payload);
  m.qos = 1;
  m.publisher_client_id = "lamp-1";
  m.publish_unix_ms = 1764000000123;
  return m;
}

TEST(bridge_templates, routing_key_words_become_levels) {
  EXPECT_EQ(expand_topic_template("devices/{routingKey}/commands", "lamp-1"), "devices/lamp-1/commands");
  EXPECT_EQ(expand_topic_template("devices/{routingKey}/commands", "kitchen.lamp"), "devices/kitchen/lamp/commands");
  EXPECT_EQ(expand_topic_template("a/{routingKey}/b/{routingKey}", "x"), "a/x/b/x");
  EXPECT_EQ(expand_topic_template("fixed/topic", "ignored"), "fixed/topic");
  EXPECT_EQ(expand_topic_template("{routingKey}", ""), "");
}

TEST(bridge_templates, topic_levels_become_routing_key_words) {
  EXPECT_EQ(routing_key_of("sensors/kitchen/temperature"), "sensors.kitchen.temperature");
  EXPECT_EQ(routing_key_of("single"), "single");
}

TEST(bridge_templates, subscription_name_follows_what_it_delivers) {
  config::bridge_mqtt_binding a{"t", "devices/{routingKey}/commands", 1, false, ""};
  auto b = a;
  b.topic = "other";  // the topic is not part of the name (one name per topic is enough)
  EXPECT_EQ(subscription_name(a), subscription_name(b));
  EXPECT_THAT(subscription_name(a), ::testing::MatchesRegex("mqtt-[0-9a-f]{16}"));
  auto c = a;
  c.qos = 2;
  EXPECT_NE(subscription_name(a), subscription_name(c));
  auto d = a;
  d.retain = true;
  EXPECT_NE(subscription_name(a), subscription_name(d));
}

// The errors the bridge's constructor reports for `c`, as "file:line:col: message" lines.
std::vector<std::string> errors_of(const config::bridge_config& c) {
  std::vector<std::string> lines;
  try {
    bridge b(c);
  } catch (const config::config_errors& e) {
    for (const auto& err : e.errors()) lines.push_back(err.to_string());
  }
  return lines;
}

TEST(bridge_rules, bad_filters_and_templates_are_config_errors_at_their_binding) {
  config::bridge_config c;
  c.mqtt_to_queue.push_back({"a/#/b", "q", config::bridge_body_format::raw, std::nullopt, "w.yaml:3:7"});
  c.mqtt_to_queue.push_back({"$share/g/a", "q", config::bridge_body_format::raw, std::nullopt, "w.yaml:4:7"});
  c.mqtt_to_topic.push_back({"x+", "t", config::bridge_body_format::raw, std::nullopt, "w.yaml:6:7"});
  c.topic_to_mqtt.push_back({"t", "a/#", 1, false, "w.yaml:8:7"});
  c.topic_to_mqtt.push_back({"t", "ok/{routingKey}", 1, false, "w.yaml:9:7"});
  c.topic_to_mqtt.push_back({"t", "ok/{routingKey}", 1, false, "w.yaml:10:7"});
  EXPECT_THAT(errors_of(c), ElementsAre(::testing::StartsWith("w.yaml:3:7: bridge.mqtt_to_queue: 'a/#/b' is not an MQTT topic filter"),
                                   ::testing::StartsWith("w.yaml:4:7: bridge.mqtt_to_queue: '$share/g/a' is not"),
                                   ::testing::StartsWith("w.yaml:6:7: bridge.mqtt_to_topic: 'x+' is not"),
                                   ::testing::StartsWith("w.yaml:8:7: bridge.topic_to_mqtt: 'a/#' is not an MQTT topic template"),
                                   ::testing::StartsWith("w.yaml:10:7: bridge.topic_to_mqtt: topic 't' is bound to "
                                                         "'ok/{routingKey}' with the same qos and retain more than once")));
}

TEST(bridge_rules, queue_and_topic_names_the_core_would_refuse_are_config_errors) {
  config::bridge_config c;
  c.mqtt_to_queue.push_back({"a/#", "1queue", config::bridge_body_format::raw, std::nullopt, "w.yaml:3:7"});
  c.mqtt_to_topic.push_back({"b/#", "topic.dots", config::bridge_body_format::raw, std::nullopt, "w.yaml:4:7"});
  c.topic_to_mqtt.push_back({"", "c/{routingKey}", 1, false, "w.yaml:5:7"});
  c.events_queue = std::string(65, 'e');
  c.events_source_location = "w.yaml:6:11";
  EXPECT_THAT(errors_of(c), ElementsAre("w.yaml:3:7: bridge.mqtt_to_queue.queue: '1queue' is not a queue or topic name "
                                   "(expected 1..64 characters: a letter, then letters, digits, '_' or '-')",
                                   ::testing::StartsWith("w.yaml:4:7: bridge.mqtt_to_topic.topic: 'topic.dots' is not"),
                                   ::testing::StartsWith("w.yaml:6:11: bridge.events.queue: 'eeee"),
                                   ::testing::StartsWith("w.yaml:5:7: bridge.topic_to_mqtt.topic: '' is not")));
}

TEST(bridge_rules, a_publish_becomes_one_command_per_matching_binding) {
  const bridge b(sample_config());
  std::vector<q::command_body> out;
  b.commands_for(telemetry("21.5"), out);
  ASSERT_EQ(out.size(), 3u);
  const auto& json_send = std::get<q::send_messages>(out[0]);
  EXPECT_EQ(json_send.queue, "telemetry");
  ASSERT_EQ(json_send.items.size(), 1u);
  const auto body = json::parse(json_send.items[0].body).as_object();
  EXPECT_EQ(body.at("topic"), "devices/lamp-1/telemetry");
  EXPECT_EQ(body.at("clientId"), "lamp-1");
  EXPECT_EQ(body.at("qos"), 1);
  EXPECT_EQ(body.at("retain"), false);
  EXPECT_EQ(body.at("publishTime"), 1764000000123);
  EXPECT_EQ(body.at("payload"), "21.5");
  EXPECT_EQ(body.at("payloadEncoding"), "utf8");
  EXPECT_FALSE(body.contains("contentType"));
  EXPECT_FALSE(body.contains("userProperties"));

  const auto& raw_send = std::get<q::send_messages>(out[1]);
  EXPECT_EQ(raw_send.queue, "everything");
  EXPECT_EQ(raw_send.items[0].body, "21.5");

  const auto& publish = std::get<q::publish_messages>(out[2]);
  EXPECT_EQ(publish.topic, "fanout");
  EXPECT_EQ(publish.items[0].body, "21.5");
  EXPECT_EQ(publish.items[0].routing_key, "devices.lamp-1.telemetry");

  out.clear();
  auto other = telemetry("x");
  other.topic = "devices/lamp-1/status";
  b.commands_for(other, out);
  ASSERT_EQ(out.size(), 1u);  // only devices/#
  out.clear();
  other.topic = "elsewhere";
  b.commands_for(other, out);
  EXPECT_TRUE(out.empty());
}

TEST(bridge_rules, group_level_names_the_message_group) {
  EXPECT_EQ(group_of("devices/lamp-1/telemetry", 2), "lamp-1");
  EXPECT_EQ(group_of("devices/lamp-1/telemetry", 1), "devices");
  EXPECT_EQ(group_of("devices/lamp-1/telemetry", 3), "telemetry");
  EXPECT_EQ(group_of("devices/lamp-1/telemetry", 4), std::nullopt);  // no such level
  EXPECT_EQ(group_of("devices//telemetry", 2), std::nullopt);        // empty: the default group
  EXPECT_EQ(group_of("/x", 1), std::nullopt);
  EXPECT_EQ(group_of("/x", 2), "x");
  EXPECT_EQ(group_of("a/" + std::string(200, 'd'), 2), std::string(q::max_group_id_bytes, 'd'));

  config::bridge_config c;
  c.mqtt_to_queue.push_back({"devices/+/telemetry", "ordered", config::bridge_body_format::raw, 2u, "f:3:7"});
  const bridge b(c);
  std::vector<q::command_body> out;
  b.commands_for(telemetry("21.5"), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<q::send_messages>(out[0]).items.at(0).group, "lamp-1");
}

TEST(bridge_rules, json_body_carries_properties_and_base64_for_binary) {
  const bridge b(sample_config());
  auto m = telemetry(std::string("\x00\xff\x10", 3));
  m.retain = true;
  m.content_type = "application/octet-stream";
  m.response_topic = "replies/1";
  m.correlation_data = "id";
  m.user_properties = {{"k", "1"}, {"k", "2"}};
  std::vector<q::command_body> out;
  b.commands_for(m, out);
  const auto body = json::parse(std::get<q::send_messages>(out[0]).items[0].body).as_object();
  EXPECT_EQ(body.at("payload"), "AP8Q");
  EXPECT_EQ(body.at("payloadEncoding"), "base64");
  EXPECT_EQ(body.at("retain"), true);
  EXPECT_EQ(body.at("contentType"), "application/octet-stream");
  EXPECT_EQ(body.at("responseTopic"), "replies/1");
  EXPECT_EQ(body.at("correlationData"), "aWQ=");
  EXPECT_EQ(body.at("userProperties"),
            json::parse(R"([{"name":"k","value":"1"},{"name":"k","value":"2"}])"));
}

json::object event_body(const bridge& b, const device_event& e) {
  auto command = b.event_command(e);
  EXPECT_TRUE(command.has_value());
  const auto& send = std::get<q::send_messages>(*command);
  EXPECT_EQ(send.queue, "events");
  return json::parse(send.items.at(0).body).as_object();
}

TEST(bridge_events, each_kind_with_its_fields) {
  const bridge b(sample_config());
  device_event e;
  e.client_id = "lamp-1";
  e.time_unix_ms = 1000;
  e.what = device_event::kind::connected;
  e.remote_address = "127.0.0.1";
  e.protocol_version = 5;
  e.clean_start = true;
  e.session_expiry_s = 60;
  e.keep_alive_s = 30;
  EXPECT_EQ(event_body(b, e), json::parse(R"({"event":"client.connected","clientId":"lamp-1","time":1000,
      "remoteAddress":"127.0.0.1","protocolVersion":5,"cleanStart":true,"sessionPresent":false,
      "sessionExpiryInterval":60,"keepAlive":30})"));

  device_event gone;
  gone.what = device_event::kind::disconnected;
  gone.client_id = "lamp-1";
  gone.time_unix_ms = 2000;
  gone.reason = "connection lost";
  EXPECT_EQ(event_body(b, gone),
            json::parse(R"({"event":"client.disconnected","clientId":"lamp-1","time":2000,"reason":"connection lost"})"));
  gone.reason_code = 0x8D;
  gone.reason = "keep alive timeout";
  EXPECT_EQ(event_body(b, gone).at("reasonCode"), 0x8D);

  device_event expired;
  expired.what = device_event::kind::session_expired;
  expired.client_id = "lamp-1";
  expired.time_unix_ms = 3000;
  EXPECT_EQ(event_body(b, expired),
            json::parse(R"({"event":"session.expired","clientId":"lamp-1","time":3000})"));

  core::message will;
  will.topic = "devices/lamp-1/status";
  will.payload = "offline";
  will.qos = 1;
  device_event will_event;
  will_event.what = device_event::kind::will_published;
  will_event.client_id = "lamp-1";
  will_event.time_unix_ms = 4000;
  will_event.will = &will;
  EXPECT_EQ(event_body(b, will_event),
            json::parse(R"({"event":"will.published","clientId":"lamp-1","time":4000,"topic":"devices/lamp-1/status",
                "qos":1,"retain":false,"payload":"offline","payloadEncoding":"utf8"})"));
}

TEST(bridge_events, none_without_an_events_queue) {
  auto c = sample_config();
  c.events_queue.clear();
  const bridge b(c);
  device_event e;
  e.client_id = "x";
  EXPECT_FALSE(b.event_command(e).has_value());
}

TEST(bridge_json, a_message_survives_the_json_format) {
  auto m = telemetry(std::string("\x00bin\xff", 5));
  m.retain = true;
  m.qos = 2;
  m.content_type = "application/octet-stream";
  m.response_topic = "r";
  m.correlation_data = std::string("\x01\x02", 2);
  m.user_properties = {{"a", "1"}, {"a", "2"}};
  const auto back = message_from_json(json_body(m));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, m);
}

TEST(bridge_json, what_is_not_such_a_document_is_refused) {
  EXPECT_FALSE(message_from_json("not json"));
  EXPECT_FALSE(message_from_json("[]"));
  EXPECT_FALSE(message_from_json(R"({"topic":"t"})"));
  EXPECT_FALSE(message_from_json(R"({"topic":"t","payload":"%%%","payloadEncoding":"base64"})"));
  EXPECT_TRUE(message_from_json(R"({"topic":"t","payload":"","payloadEncoding":"utf8"})"));
}

config::uplink_config uplink_sample() {
  config::uplink_config u;
  u.address = "tcp://127.0.0.1:1883";
  u.client_id = "gw";
  u.topics.push_back({"devices/#", config::uplink_direction::out, 1, "", "homes/42/", "u:1:1"});
  u.topics.push_back({"set/#", config::uplink_direction::in, 2, "local/", "homes/42/", "u:2:1"});
  u.topics.push_back({"both/+", config::uplink_direction::both, 0, "l/", "r/", "u:3:1"});
  return u;
}

TEST(uplink_topics, prefixes_are_rewritten_like_mosquittos_bridge) {
  const auto u = uplink_sample();
  EXPECT_EQ(remote_topic_for(u, "devices/lamp/state"), std::pair(std::string("homes/42/devices/lamp/state"), std::uint8_t{1}));
  EXPECT_EQ(remote_topic_for(u, "l/both/x"), std::pair(std::string("r/both/x"), std::uint8_t{0}));
  EXPECT_FALSE(remote_topic_for(u, "local/set/x"));  // in only
  EXPECT_FALSE(remote_topic_for(u, "other"));
  EXPECT_EQ(local_topic_for(u, "homes/42/set/lamp"), "local/set/lamp");
  EXPECT_EQ(local_topic_for(u, "r/both/y"), "l/both/y");
  EXPECT_FALSE(local_topic_for(u, "homes/42/devices/lamp"));  // out only
  EXPECT_FALSE(local_topic_for(u, "r/both/y/z"));
}

TEST(uplink_topics, out_topics_become_bindings_into_the_uplink_queue) {
  config::bridge_config c;
  c.uplink = uplink_sample();
  const bridge b(c);
  std::vector<q::command_body> out;
  b.commands_for(telemetry("x"), out);  // devices/lamp-1/telemetry: out
  ASSERT_EQ(out.size(), 1u);
  const auto& send = std::get<q::send_messages>(out[0]);
  EXPECT_EQ(send.queue, "uplink-outbox");
  EXPECT_EQ(message_from_json(send.items[0].body)->topic, "devices/lamp-1/telemetry");
  out.clear();
  auto in_only = telemetry("x");
  in_only.topic = "local/set/lamp";
  b.commands_for(in_only, out);
  EXPECT_TRUE(out.empty());
}

TEST(uplink_topics, wildcards_in_prefixes_are_config_errors) {
  config::bridge_config c;
  c.uplink = uplink_sample();
  c.uplink->topics[0].remote_prefix = "homes/+/";
  EXPECT_THROW(bridge{c}, config::config_errors);
  c.uplink->topics.clear();
  EXPECT_THROW(bridge{c}, config::config_errors);
}

}  // namespace
}  // namespace wharf::gateway::bridge
