// SUBACK (3.9): one return / reason code per requested filter.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(suback_decode, return_codes_3_1_1) {
  for (const auto version : {protocol_version::v3_1, v3_1_1}) {
    const auto p = test::decode_as<suback_packet>("90 06 00 01 00 01 02 80", version);
    EXPECT_EQ(p.packet_id, 1);
    EXPECT_EQ(p.reasons, (std::vector<reason_code>{reason_code::success, reason_code::granted_qos_1,
                                                   reason_code::granted_qos_2,
                                                   reason_code::unspecified_error}));
  }
}

// [MQTT-3.9.3-2] (3.1.1): return codes other than 0x00, 0x01, 0x02 and 0x80 are reserved.
TEST(suback_decode, reserved_return_code_is_malformed) {
  EXPECT_EQ(decode("90 03 00 01 03", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("90 03 00 01 87", v3_1_1).error, reason_code::malformed_packet);
}

// A SUBACK answers a SUBSCRIBE, which has at least one filter ([MQTT-3.8.4-6]).
TEST(suback_decode, no_return_codes_is_protocol_error) {
  EXPECT_EQ(decode("90 02 00 01", v3_1_1).error, reason_code::protocol_error);
  EXPECT_EQ(decode("90 03 00 01 00", v5).error, reason_code::protocol_error);
}

TEST(suback_decode, flags_and_packet_id) {
  EXPECT_EQ(decode("92 03 00 01 00", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("90 03 00 00 00", v3_1_1).error, reason_code::protocol_error);
}

TEST(suback_decode, v5_reason_codes) {
  const auto p = test::decode_as<suback_packet>("90 06 00 01 00 02 8F A2", v5);
  EXPECT_EQ(p.reasons, (std::vector<reason_code>{reason_code::granted_qos_2,
                                                 reason_code::topic_filter_invalid,
                                                 reason_code::wildcard_subscriptions_not_supported}));
  // 3.9.3: 0x04 is not a SUBACK reason code.
  EXPECT_EQ(decode("90 04 00 01 00 04", v5).error, reason_code::protocol_error);
}

TEST(suback_decode, v5_properties) {
  const auto p = test::decode_as<suback_packet>("90 08 00 01 04 1F 00 01 78 00", v5);
  EXPECT_EQ(p.props.reason_string, "x");
  // Section 2.2.2.2: Subscription Identifier (0x0B) is not valid in SUBACK.
  EXPECT_EQ(decode("90 06 00 01 02 0B 01 00", v5).error, reason_code::malformed_packet);
}

// 3.1.1 has one failure code, 0x80: every 5.0 error maps onto it.
TEST(suback_encode, errors_become_0x80_before_5) {
  suback_packet p;
  p.packet_id = 1;
  p.reasons = {reason_code::granted_qos_1, reason_code::topic_filter_invalid,
               reason_code::not_authorized, reason_code::granted_qos_2, reason_code::success};
  p.props.reason_string = "dropped";
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "90 07 00 01 01 80 80 02 00");
  EXPECT_EQ(test::hex(test::encode(p, protocol_version::v3_1)), "90 07 00 01 01 80 80 02 00");
}

TEST(suback_encode, wire_exact_v5) {
  suback_packet p;
  p.packet_id = 0x0A0B;
  p.reasons = {reason_code::granted_qos_1, reason_code::quota_exceeded};
  EXPECT_EQ(test::hex(test::encode(p, v5)), "90 05 0A 0B 00 01 97");
}

TEST(suback_round_trip, every_version) {
  for (const auto version : test::all_versions) {
    suback_packet p;
    p.packet_id = 9;
    p.reasons = {reason_code::success, reason_code::granted_qos_2, reason_code::unspecified_error};
    EXPECT_EQ(test::round_trip(p, version), p);
  }
  suback_packet p;
  p.packet_id = 9;
  p.reasons = {reason_code::shared_subscriptions_not_supported, reason_code::granted_qos_1};
  p.props.reason_string = "partly";
  p.props.user_properties = {{"a", "b"}};
  EXPECT_EQ(test::round_trip(p, v5), p);
}

}  // namespace
}  // namespace wharf::mqtt
