// PINGREQ (3.12) and PINGRESP (3.13): a fixed header and nothing else.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

TEST(ping_decode, pingreq_and_pingresp) {
  for (const auto version : test::all_versions) {
    EXPECT_TRUE(std::holds_alternative<pingreq_packet>(decode("C0 00", version).value));
    EXPECT_TRUE(decode("C0 00", version).ok());
    EXPECT_TRUE(std::holds_alternative<pingresp_packet>(decode("D0 00", version).value));
    EXPECT_TRUE(decode("D0 00", version).ok());
  }
}

// Remaining Length 0 (3.12.1, 3.13.1); any byte after the fixed header is malformed.
TEST(ping_decode, body_is_malformed) {
  for (const auto version : test::all_versions) {
    EXPECT_EQ(decode("C0 01 00", version).error, reason_code::malformed_packet);
    EXPECT_EQ(decode("D0 02 00 00", version).error, reason_code::malformed_packet);
  }
}

// [MQTT-2.2.2-1] (3.1.1) / [MQTT-2.1.3-1] (5.0): reserved flags 0000.
TEST(ping_decode, reserved_flags_are_malformed) {
  for (const auto version : test::all_versions) {
    EXPECT_EQ(decode("C2 00", version).error, reason_code::malformed_packet);
    EXPECT_EQ(decode("D1 00", version).error, reason_code::malformed_packet);
  }
}

TEST(ping_encode, wire_exact) {
  for (const auto version : test::all_versions) {
    EXPECT_EQ(test::hex(test::encode(pingreq_packet{}, version)), "C0 00");
    EXPECT_EQ(test::hex(test::encode(pingresp_packet{}, version)), "D0 00");
    EXPECT_EQ(test::round_trip(pingreq_packet{}, version), pingreq_packet{});
    EXPECT_EQ(test::round_trip(pingresp_packet{}, version), pingresp_packet{});
  }
}

}  // namespace
}  // namespace wharf::mqtt
