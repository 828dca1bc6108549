// PUBLISH ⇄ core::message (publish_conversion.h): what a message keeps of a PUBLISH or a
// will, and the PUBLISH each subscriber is sent, for MQTT 5 and 3.1.1.
#include "gateway/mqtt/publish_conversion.h"

#include <gtest/gtest.h>

#include <memory>

namespace wharf::gateway {
namespace {

mqtt::properties full_properties() {
  mqtt::properties props;
  props.payload_format_indicator = 1;
  props.content_type = "text/plain";
  props.response_topic = "replies/1";
  props.correlation_data = "corr";
  props.user_properties = {{"k", "v"}, {"k", "v2"}};
  props.message_expiry_interval = 60;
  props.topic_alias = 3;  // the connection's, not the message's
  return props;
}

TEST(publish_conversion, a_message_keeps_what_a_publish_carries_for_its_subscribers) {
  auto props = full_properties();
  const core::message m =
      message_from_publish("a/b", "payload", mqtt::qos::at_least_once, true, props, 1'000'000);
  EXPECT_EQ(m.topic, "a/b");
  EXPECT_EQ(m.payload, "payload");
  EXPECT_EQ(m.qos, 1);
  EXPECT_TRUE(m.retain);
  EXPECT_EQ(m.payload_format_indicator, std::uint8_t{1});
  EXPECT_EQ(m.content_type, "text/plain");
  EXPECT_EQ(m.response_topic, "replies/1");
  EXPECT_EQ(m.correlation_data, "corr");
  ASSERT_EQ(m.user_properties.size(), 2u);  // in order, a name twice
  EXPECT_EQ(m.user_properties[1], (std::pair<std::string, std::string>{"k", "v2"}));
  EXPECT_EQ(m.expiry_unix_ms, 1'060'000);  // from the publish time
  EXPECT_EQ(m.publish_unix_ms, 0);         // the caller's
  // A will's interval counts from its publication: relative until then.
  auto will_props = full_properties();
  EXPECT_EQ(message_from_publish("w", "", mqtt::qos::at_most_once, false, will_props, 0).expiry_unix_ms, 60'000);
  mqtt::properties none;
  EXPECT_EQ(message_from_publish("t", "", mqtt::qos::at_most_once, false, none, 5).expiry_unix_ms, 0);
}

TEST(publish_conversion, each_subscriber_gets_its_delivery_and_its_version) {
  auto props = full_properties();
  session::delivery d;
  d.msg = std::make_shared<const core::message>(
      message_from_publish("$tenant/acme/a/b", "p", mqtt::qos::exactly_once, true, props, 1'000'000));
  d.qos = 1;  // granted
  d.retain = false;
  d.packet_id = 42;
  d.subscription_ids = {7, 9};

  const auto v5 = publish_of_delivery(d, true, "a/b", mqtt::protocol_version::v5, 1'000'500);
  EXPECT_EQ(v5.topic, "a/b");
  EXPECT_EQ(v5.qos, mqtt::qos::at_least_once);
  EXPECT_TRUE(v5.dup);
  EXPECT_FALSE(v5.retain);
  EXPECT_EQ(v5.packet_id, 42);
  EXPECT_EQ(v5.props.message_expiry_interval, 60u);  // 59.5 s left, rounded up [MQTT-3.3.2-6]
  EXPECT_EQ(v5.props.subscription_identifiers, (std::vector<std::uint32_t>{7, 9}));
  EXPECT_EQ(v5.props.content_type, "text/plain");
  EXPECT_EQ(v5.props.user_properties.size(), 2u);
  EXPECT_FALSE(v5.props.topic_alias);

  const auto v3 = publish_of_delivery(d, false, "a/b", mqtt::protocol_version::v3_1_1, 1'030'000);
  EXPECT_EQ(v3.packet_id, 42);
  EXPECT_EQ(v3.props, mqtt::properties{});  // 3.1.1 has none

  d.qos = 0;
  EXPECT_EQ(publish_of_delivery(d, false, "a/b", mqtt::protocol_version::v5, 1'000'500).packet_id, 0);
}

}  // namespace
}  // namespace wharf::gateway
