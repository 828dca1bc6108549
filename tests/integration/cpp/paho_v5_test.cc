// MQTT 5.0 through the Paho C++ async client: QoS 0/1/2 round trips, message
// properties that must reach the subscriber unaltered, clean start with
// session expiry, and the session-present flag.
#include <chrono>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "broker_process.h"

namespace wharf::itest {
namespace {

using namespace std::chrono_literals;

constexpr auto k_wait = 10s;
constexpr int k_session_expiry_s = 300;

class paho_v5 : public broker_test {
 protected:
  std::unique_ptr<mqtt::async_client> connect(const std::string& client_id, bool clean_start,
                                              int session_expiry_s,
                                              bool* session_present = nullptr) {
    auto cli = std::make_unique<mqtt::async_client>(broker().uri(), client_id,
                                                    mqtt::create_options(MQTTVERSION_5));
    cli->start_consuming();
    auto tok = cli->connect(v5_connect_options(clean_start, session_expiry_s));
    EXPECT_TRUE(tok->wait_for(k_wait)) << "CONNECT of " << client_id << " timed out";
    EXPECT_EQ(tok->get_connect_response().get_mqtt_version(), MQTTVERSION_5);
    if (session_present != nullptr) {
      *session_present = tok->get_connect_response().is_session_present();
    }
    return cli;
  }

  static void publish(mqtt::async_client& cli, const std::string& topic, const std::string& payload,
                      int qos, mqtt::properties props = {}) {
    auto msg = mqtt::message_ptr_builder()
                   .topic(topic)
                   .payload(payload)
                   .qos(qos)
                   .properties(std::move(props))
                   .finalize();
    ASSERT_TRUE(cli.publish(msg)->wait_for(k_wait)) << "publish to " << topic << " timed out";
  }
};

TEST_F(paho_v5, publish_subscribe_qos_0_1_2) {
  auto sub = connect("v5-sub", true, 0);
  ASSERT_TRUE(sub->subscribe("v5/qos/+", 2)->wait_for(k_wait));
  auto pub = connect("v5-pub", true, 0);

  for (int qos = 0; qos <= 2; ++qos) {
    const std::string topic = "v5/qos/" + std::to_string(qos);
    const std::string payload = "v5 payload at qos " + std::to_string(qos);
    publish(*pub, topic, payload, qos);

    auto msg = sub->try_consume_message_for(k_wait);
    ASSERT_NE(msg, nullptr) << "no message for QoS " << qos;
    EXPECT_EQ(msg->get_topic(), topic);
    EXPECT_EQ(msg->get_payload_str(), payload);
    EXPECT_EQ(msg->get_qos(), qos);
  }
  pub->disconnect()->wait();
  sub->disconnect()->wait();
}

// [MQTT-3.3.2-17] [MQTT-3.3.2-18] User properties are forwarded unaltered and
// in order (names may repeat); [MQTT-3.3.2-20] the content type likewise, and
// so are payload format, response topic and correlation data.
TEST_F(paho_v5, user_properties_and_content_type_survive) {
  auto sub = connect("v5-props-sub", true, 0);
  ASSERT_TRUE(sub->subscribe("v5/props", 1)->wait_for(k_wait));
  auto pub = connect("v5-props-pub", true, 0);

  const std::vector<std::tuple<std::string, std::string>> user_props{
      {"device", "thermostat-7"}, {"unit", "celsius"}, {"device", "second value, same name"},
      {"empty", ""}};
  mqtt::properties props;
  for (const auto& [name, value] : user_props) {
    props.add({mqtt::property::USER_PROPERTY, name, value});
  }
  props.add({mqtt::property::CONTENT_TYPE, std::string("application/json")});
  props.add({mqtt::property::PAYLOAD_FORMAT_INDICATOR, 1});
  props.add({mqtt::property::RESPONSE_TOPIC, std::string("v5/props/reply")});
  props.add({mqtt::property::CORRELATION_DATA, std::string("corr\0id", 7)});
  publish(*pub, "v5/props", R"({"t":21.5})", 1, std::move(props));

  auto msg = sub->try_consume_message_for(k_wait);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(msg->get_payload_str(), R"({"t":21.5})");
  const mqtt::properties& got = msg->get_properties();

  ASSERT_EQ(got.count(mqtt::property::USER_PROPERTY), user_props.size());
  for (std::size_t i = 0; i < user_props.size(); ++i) {
    auto [name, value] = mqtt::get<mqtt::string_pair>(got, mqtt::property::USER_PROPERTY, i);
    EXPECT_EQ(name, std::get<0>(user_props[i])) << "user property " << i;
    EXPECT_EQ(value, std::get<1>(user_props[i])) << "user property " << i;
  }
  ASSERT_EQ(got.count(mqtt::property::CONTENT_TYPE), 1u);
  EXPECT_EQ(mqtt::get<std::string>(got, mqtt::property::CONTENT_TYPE), "application/json");
  ASSERT_EQ(got.count(mqtt::property::PAYLOAD_FORMAT_INDICATOR), 1u);
  EXPECT_EQ(mqtt::get<int>(got, mqtt::property::PAYLOAD_FORMAT_INDICATOR), 1);
  ASSERT_EQ(got.count(mqtt::property::RESPONSE_TOPIC), 1u);
  EXPECT_EQ(mqtt::get<std::string>(got, mqtt::property::RESPONSE_TOPIC), "v5/props/reply");
  ASSERT_EQ(got.count(mqtt::property::CORRELATION_DATA), 1u);
  EXPECT_EQ(mqtt::get<std::string>(got, mqtt::property::CORRELATION_DATA),
            std::string("corr\0id", 7));
  pub->disconnect()->wait();
  sub->disconnect()->wait();
}

// Clean Start 0 with a Session Expiry Interval keeps the session across a
// disconnect ([MQTT-3.1.2-5], [MQTT-3.1.2-23]); messages that arrive meanwhile
// are delivered on reconnect with their properties, and CONNACK says the
// session was present ([MQTT-3.2.2-3]).
TEST_F(paho_v5, persistent_session_receives_messages_queued_while_offline) {
  bool present = true;
  auto sub = connect("v5-persist", false, k_session_expiry_s, &present);
  EXPECT_FALSE(present) << "a new client id has no session";
  ASSERT_TRUE(sub->subscribe("v5/persist", 2)->wait_for(k_wait));
  ASSERT_TRUE(sub->disconnect()->wait_for(k_wait));
  sub.reset();

  auto pub = connect("v5-persist-pub", true, 0);
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back("offline v5 " + std::to_string(i));
    mqtt::properties props;
    props.add({mqtt::property::USER_PROPERTY, std::string("seq"), std::to_string(i)});
    publish(*pub, "v5/persist", sent.back(), 1 + i % 2, std::move(props));
  }
  pub->disconnect()->wait();

  sub = connect("v5-persist", false, k_session_expiry_s, &present);
  EXPECT_TRUE(present) << "session should have survived the disconnect [MQTT-3.2.2-3]";
  // Order is guaranteed per topic and QoS [MQTT-4.6.0-6], not across QoS levels.
  std::vector<std::string> got_by_qos[3], sent_by_qos[3];
  for (std::size_t i = 0; i < sent.size(); ++i) sent_by_qos[1 + i % 2].push_back(sent[i]);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    auto msg = sub->try_consume_message_for(k_wait);
    ASSERT_NE(msg, nullptr) << "message " << i << " of " << sent.size() << " missing";
    ASSERT_TRUE(msg->get_qos() == 1 || msg->get_qos() == 2) << msg->get_qos();
    got_by_qos[msg->get_qos()].push_back(msg->get_payload_str());
    // The user property carries the payload's sequence number.
    const auto& props = msg->get_properties();
    ASSERT_EQ(props.count(mqtt::property::USER_PROPERTY), 1u);
    EXPECT_EQ("offline v5 " +
                  std::get<1>(mqtt::get<mqtt::string_pair>(props, mqtt::property::USER_PROPERTY)),
              msg->get_payload_str());
  }
  EXPECT_EQ(got_by_qos[1], sent_by_qos[1]);
  EXPECT_EQ(got_by_qos[2], sent_by_qos[2]);
  EXPECT_EQ(sub->try_consume_message_for(500ms), nullptr) << "unexpected extra message";
  sub->disconnect()->wait();
}

// With no Session Expiry Interval (0) the session ends when the connection
// closes [MQTT-3.1.2-23], so a reconnect with Clean Start 0 finds none.
TEST_F(paho_v5, session_without_expiry_ends_at_disconnect) {
  bool present = true;
  auto cli = connect("v5-noexpiry", false, 0, &present);
  EXPECT_FALSE(present);
  ASSERT_TRUE(cli->subscribe("v5/noexpiry", 1)->wait_for(k_wait));
  cli->disconnect()->wait();
  cli.reset();

  cli = connect("v5-noexpiry", false, 0, &present);
  EXPECT_FALSE(present) << "session expiry 0 must not keep the session";
  cli->disconnect()->wait();
}

// Clean Start 1 discards an existing session [MQTT-3.1.2-4] and CONNACK says
// none is present [MQTT-3.2.2-2].
TEST_F(paho_v5, clean_start_discards_the_stored_session) {
  bool present = true;
  auto cli = connect("v5-clean", false, k_session_expiry_s, &present);
  EXPECT_FALSE(present);
  ASSERT_TRUE(cli->subscribe("v5/clean", 1)->wait_for(k_wait));
  cli->disconnect()->wait();
  cli.reset();

  cli = connect("v5-clean", false, k_session_expiry_s, &present);
  EXPECT_TRUE(present);
  cli->disconnect()->wait();
  cli.reset();

  cli = connect("v5-clean", true, k_session_expiry_s, &present);
  EXPECT_FALSE(present) << "Clean Start 1 must report session present 0";
  cli->disconnect()->wait();
  cli.reset();

  // The new session kept no subscription: nothing is queued for it.
  auto pub = connect("v5-clean-pub", true, 0);
  publish(*pub, "v5/clean", "not for you", 1);
  pub->disconnect()->wait();
  cli = connect("v5-clean", false, k_session_expiry_s, &present);
  EXPECT_TRUE(present);
  EXPECT_EQ(cli->try_consume_message_for(1s), nullptr);
  cli->disconnect()->wait();
}

}  // namespace
}  // namespace wharf::itest
