// AUTH (3.15): 5.0 only.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v5 = protocol_version::v5;

// Packet type 15 is reserved before 5.0 (3.1.1 table 2.1).
TEST(auth_decode, before_5_is_malformed) {
  EXPECT_EQ(decode("F0 00", protocol_version::v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("F0 00", protocol_version::v3_1).error, reason_code::malformed_packet);
}

// 3.15.2.1: Remaining Length 0 means Success without properties.
TEST(auth_decode, v5_short_form) {
  const auto p = test::decode_as<auth_packet>("F0 00", v5);
  EXPECT_EQ(p.reason, reason_code::success);
  EXPECT_EQ(p.props, properties{});
}

TEST(auth_decode, v5_continue_with_method_and_data) {
  const auto p = test::decode_as<auth_packet>(
      "F0 0E 18 0C 15 00 05 53 43 52 41 4D 16 00 01 01", v5);
  EXPECT_EQ(p.reason, reason_code::continue_authentication);
  EXPECT_EQ(p.props.authentication_method, "SCRAM");
  EXPECT_EQ(p.props.authentication_data, std::string("\x01", 1));
}

// [MQTT-2.1.3-1] reserved flags; 3.15.2.1 allows only 0x00, 0x18, 0x19.
TEST(auth_decode, v5_flags_and_reason_codes) {
  EXPECT_EQ(decode("F1 00", v5).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("F0 02 80 00", v5).error, reason_code::protocol_error);
  EXPECT_EQ(test::decode_as<auth_packet>("F0 02 19 00", v5).reason, reason_code::reauthenticate);
}

// 3.15.2.2.3: Authentication Data without an Authentication Method.
TEST(auth_decode, v5_data_without_method_is_protocol_error) {
  EXPECT_EQ(decode("F0 06 18 04 16 00 01 78", v5).error, reason_code::protocol_error);
}

// Section 2.2.2.2: Session Expiry Interval (0x11) is not valid in AUTH.
TEST(auth_decode, v5_property_not_allowed_is_malformed) {
  EXPECT_EQ(decode("F0 07 18 05 11 00 00 00 01", v5).error, reason_code::malformed_packet);
}

TEST(auth_encode, wire_exact) {
  auth_packet p;
  EXPECT_EQ(test::hex(test::encode(p, v5)), "F0 00");
  p.reason = reason_code::reauthenticate;
  EXPECT_EQ(test::hex(test::encode(p, v5)), "F0 02 19 00");
}

TEST(auth_round_trip, v5) {
  auth_packet p;
  p.reason = reason_code::continue_authentication;
  p.props.authentication_method = "SCRAM-SHA-256";
  p.props.authentication_data = std::string("\x00\x01\x02", 3);
  p.props.reason_string = "more";
  p.props.user_properties = {{"u", "v"}};
  EXPECT_EQ(test::round_trip(p, v5), p);
  EXPECT_EQ(test::round_trip(auth_packet{}, v5), auth_packet{});
}

}  // namespace
}  // namespace wharf::mqtt
