// MQTT 3.1.1 through the Paho C++ clients (async and sync): QoS 0/1/2 round
// trips, QoS downgrade, binary payloads, persistent sessions and the
// session-present flag.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <mqtt/client.h>

#include "broker_process.h"

namespace wharf::itest {
namespace {

using namespace std::chrono_literals;

constexpr auto k_wait = 10s;

class paho_v311 : public broker_test {
 protected:
  // A connected async client with its consumer queue started before CONNECT,
  // so nothing the broker sends right after CONNACK is missed.
  std::unique_ptr<mqtt::async_client> connect(const std::string& client_id, bool clean_session,
                                              bool* session_present = nullptr) {
    auto cli = std::make_unique<mqtt::async_client>(broker().uri(), client_id);
    cli->start_consuming();
    auto tok = cli->connect(v311_connect_options(clean_session));
    EXPECT_TRUE(tok->wait_for(k_wait)) << "CONNECT of " << client_id << " timed out";
    if (session_present != nullptr) {
      *session_present = tok->get_connect_response().is_session_present();
    }
    return cli;
  }

  static mqtt::const_message_ptr next_message(mqtt::async_client& cli) {
    return cli.try_consume_message_for(k_wait);
  }
};

TEST_F(paho_v311, publish_subscribe_qos_0_1_2) {
  auto sub = connect("v311-sub", true);
  ASSERT_TRUE(sub->subscribe("v311/qos/#", 2)->wait_for(k_wait));
  auto pub = connect("v311-pub", true);

  for (int qos = 0; qos <= 2; ++qos) {
    const std::string topic = "v311/qos/" + std::to_string(qos);
    const std::string payload = "payload at qos " + std::to_string(qos);
    ASSERT_TRUE(pub->publish(topic, payload.data(), payload.size(), qos, false)->wait_for(k_wait));

    auto msg = next_message(*sub);
    ASSERT_NE(msg, nullptr) << "no message for QoS " << qos;
    EXPECT_EQ(msg->get_topic(), topic);
    EXPECT_EQ(msg->get_payload_str(), payload);
    EXPECT_EQ(msg->get_qos(), qos);
    EXPECT_FALSE(msg->is_retained());
  }
  pub->disconnect()->wait();
  sub->disconnect()->wait();
}

// The delivered QoS is the minimum of the published QoS and the granted QoS.
TEST_F(paho_v311, delivery_qos_is_downgraded_to_subscription_qos) {
  auto sub = connect("v311-sub-q1", true);
  ASSERT_TRUE(sub->subscribe("v311/down", 1)->wait_for(k_wait));
  auto pub = connect("v311-pub-q2", true);
  ASSERT_TRUE(pub->publish("v311/down", "x", 1, 2, false)->wait_for(k_wait));

  auto msg = next_message(*sub);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(msg->get_qos(), 1);
  pub->disconnect()->wait();
  sub->disconnect()->wait();
}

TEST_F(paho_v311, binary_payload_with_zero_bytes_round_trips) {
  auto sub = connect("v311-bin-sub", true);
  ASSERT_TRUE(sub->subscribe("v311/bin", 1)->wait_for(k_wait));
  auto pub = connect("v311-bin-pub", true);

  std::string payload;
  for (int i = 0; i < 4096; ++i) payload.push_back(static_cast<char>(i % 256));
  ASSERT_TRUE(pub->publish("v311/bin", payload.data(), payload.size(), 1, false)->wait_for(k_wait));

  auto msg = next_message(*sub);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(msg->get_payload_str(), payload);
  pub->disconnect()->wait();
  sub->disconnect()->wait();
}

TEST_F(paho_v311, sync_client_round_trip) {
  mqtt::client sub(broker().uri(), "v311-sync-sub");
  sub.start_consuming();
  sub.connect(v311_connect_options(true));
  sub.subscribe("v311/sync", 1);

  mqtt::client pub(broker().uri(), "v311-sync-pub");
  pub.connect(v311_connect_options(true));
  pub.publish(mqtt::make_message("v311/sync", "hello sync", 1, false));

  mqtt::const_message_ptr msg;
  ASSERT_TRUE(sub.try_consume_message_for(&msg, k_wait));
  EXPECT_EQ(msg->get_topic(), "v311/sync");
  EXPECT_EQ(msg->get_payload_str(), "hello sync");
  EXPECT_EQ(msg->get_qos(), 1);
  pub.disconnect();
  sub.disconnect();
}

// [MQTT-3.1.2-4] A session with CleanSession=0 outlives the connection; QoS 1
// and 2 messages for it are stored while it is offline and delivered on
// reconnect.
TEST_F(paho_v311, persistent_session_receives_messages_queued_while_offline) {
  bool present = true;
  auto sub = connect("v311-persist", false, &present);
  EXPECT_FALSE(present) << "a new client id has no session [MQTT-3.2.2-2]";
  ASSERT_TRUE(sub->subscribe("v311/persist", 2)->wait_for(k_wait));
  ASSERT_TRUE(sub->disconnect()->wait_for(k_wait));
  sub.reset();

  auto pub = connect("v311-persist-pub", true);
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back("offline " + std::to_string(i));
    const int qos = 1 + i % 2;
    ASSERT_TRUE(pub->publish("v311/persist", sent.back().data(), sent.back().size(), qos, false)
                    ->wait_for(k_wait));
  }
  pub->disconnect()->wait();

  sub = connect("v311-persist", false, &present);
  EXPECT_TRUE(present) << "session should have survived the disconnect [MQTT-3.2.2-2]";
  // Order is guaranteed per topic and QoS [MQTT-4.6.0-7], not across QoS levels.
  std::vector<std::string> got_by_qos[3], sent_by_qos[3];
  for (std::size_t i = 0; i < sent.size(); ++i) sent_by_qos[1 + i % 2].push_back(sent[i]);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    auto msg = next_message(*sub);
    ASSERT_NE(msg, nullptr) << "message " << i << " of " << sent.size() << " missing";
    EXPECT_EQ(msg->get_topic(), "v311/persist");
    ASSERT_TRUE(msg->get_qos() == 1 || msg->get_qos() == 2) << msg->get_qos();
    got_by_qos[msg->get_qos()].push_back(msg->get_payload_str());
  }
  EXPECT_EQ(got_by_qos[1], sent_by_qos[1]);
  EXPECT_EQ(got_by_qos[2], sent_by_qos[2]);
  EXPECT_EQ(sub->try_consume_message_for(500ms), nullptr) << "unexpected extra message";
  sub->disconnect()->wait();
}

// [MQTT-3.2.2-1] CleanSession=1 discards any session and reports none;
// [MQTT-3.1.2-6] and the session it had ends with the connection.
TEST_F(paho_v311, clean_session_discards_the_stored_session) {
  bool present = true;
  auto cli = connect("v311-clean", false, &present);
  EXPECT_FALSE(present);
  ASSERT_TRUE(cli->subscribe("v311/clean", 1)->wait_for(k_wait));
  cli->disconnect()->wait();
  cli.reset();

  cli = connect("v311-clean", true, &present);
  EXPECT_FALSE(present) << "CleanSession=1 must report session present 0 [MQTT-3.2.2-1]";
  cli->disconnect()->wait();
  cli.reset();

  // The old subscription is gone: a message published now is not queued.
  auto pub = connect("v311-clean-pub", true);
  ASSERT_TRUE(pub->publish("v311/clean", "gone", 4, 1, false)->wait_for(k_wait));
  pub->disconnect()->wait();

  cli = connect("v311-clean", false, &present);
  EXPECT_FALSE(present) << "the clean session must not have been stored";
  EXPECT_EQ(cli->try_consume_message_for(1s), nullptr);
  cli->disconnect()->wait();
}

}  // namespace
}  // namespace wharf::itest
