// DISCONNECT (3.14): empty before 5.0; reason code and properties in 5.0.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(disconnect_decode, empty_before_5) {
  for (const auto version : {protocol_version::v3_1, v3_1_1}) {
    EXPECT_TRUE(std::holds_alternative<disconnect_packet>(decode("E0 00", version).value));
    EXPECT_TRUE(decode("E0 00", version).ok());
    // 3.14.1 (3.1.1): Remaining Length 0; [MQTT-2.2.2-1] reserved flags.
    EXPECT_EQ(decode("E0 01 00", version).error, reason_code::malformed_packet);
    EXPECT_EQ(decode("E1 00", version).error, reason_code::malformed_packet);
  }
}

// 3.14.2.1: Remaining Length 0 means Normal disconnection; 3.14.2.2.1: without a Property
// Length there are no properties.
TEST(disconnect_decode, v5_short_forms) {
  auto p = test::decode_as<disconnect_packet>("E0 00", v5);
  EXPECT_EQ(p.reason, reason_code::success);
  p = test::decode_as<disconnect_packet>("E0 01 04", v5);
  EXPECT_EQ(p.reason, reason_code::disconnect_with_will);
  p = test::decode_as<disconnect_packet>("E0 02 8E 00", v5);
  EXPECT_EQ(p.reason, reason_code::session_taken_over);
}

TEST(disconnect_decode, v5_properties) {
  const auto p = test::decode_as<disconnect_packet>(
      "E0 0F 00 0D 11 00 00 00 0A 1C 00 05 68 3A 31 38 38", v5);
  EXPECT_EQ(p.props.session_expiry_interval, 10u);
  EXPECT_EQ(p.props.server_reference, "h:188");
  // Section 2.2.2.2: Assigned Client Identifier (0x12) is not valid in DISCONNECT.
  EXPECT_EQ(decode("E0 06 00 04 12 00 01 61", v5).error, reason_code::malformed_packet);
}

// 3.14.2.1: 0x01 and 0x18 are not DISCONNECT reason codes.
TEST(disconnect_decode, v5_reason_code_not_allowed_is_protocol_error) {
  EXPECT_EQ(decode("E0 01 01", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("E0 01 18", v5).error, reason_code::protocol_error);
}

TEST(disconnect_decode, v5_truncated_properties_are_malformed) {
  EXPECT_EQ(decode("E0 03 00 05 11", v5).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("E0 04 00 02 11 00", v5).error, reason_code::malformed_packet);
}

TEST(disconnect_encode, v5_short_forms) {
  disconnect_packet p;
  EXPECT_EQ(test::hex(test::encode(p, v5)), "E0 00");
  p.reason = reason_code::server_shutting_down;
  EXPECT_EQ(test::hex(test::encode(p, v5)), "E0 01 8B");
  p.props.reason_string = "bye";
  EXPECT_EQ(test::hex(test::encode(p, v5)), "E0 08 8B 06 1F 00 03 62 79 65");
  // Nothing of it fits a 3.1.1 DISCONNECT.
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "E0 00");
}

TEST(disconnect_round_trip, every_version) {
  for (const auto version : test::all_versions) {
    EXPECT_EQ(test::round_trip(disconnect_packet{}, version), disconnect_packet{});
  }
  disconnect_packet p;
  p.reason = reason_code::use_another_server;
  p.props.session_expiry_interval = 0;
  p.props.server_reference = "b:1883";
  p.props.reason_string = "moving";
  p.props.user_properties = {{"a", "b"}, {"a", "c"}};
  EXPECT_EQ(test::round_trip(p, v5), p);
}

}  // namespace
}  // namespace wharf::mqtt
