// Fixed header (2.1 / 2.2 in 3.1.1): packet type, flags, Remaining Length.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::bytes;

header_status parse(std::string_view hex, fixed_header& out) {
  const auto data = bytes(hex);
  return parse_fixed_header(data, out);
}

TEST(fixed_header, remaining_length_boundaries) {
  // Table 2.4 (3.1.1) / 1.5.5 (5.0): the edges of 1, 2, 3 and 4 byte encodings.
  const std::tuple<const char*, std::uint32_t, std::uint8_t> cases[] = {
      {"30 00", 0, 2},
      {"30 7F", 127, 2},
      {"30 80 01", 128, 3},
      {"30 FF 7F", 16'383, 3},
      {"30 80 80 01", 16'384, 4},
      {"30 FF FF 7F", 2'097'151, 4},
      {"30 80 80 80 01", 2'097'152, 5},
      {"30 FF FF FF 7F", 268'435'455, 5},
  };
  for (const auto& [hex, length, size] : cases) {
    fixed_header h;
    ASSERT_EQ(parse(hex, h), header_status::complete) << hex;
    EXPECT_EQ(h.remaining_length, length) << hex;
    EXPECT_EQ(h.size, size) << hex;
    EXPECT_EQ(h.type(), packet_type::publish);
    EXPECT_EQ(h.flags(), 0);
  }
}

TEST(fixed_header, need_more_until_the_length_is_complete) {
  fixed_header h;
  EXPECT_EQ(parse("", h), header_status::need_more);
  EXPECT_EQ(parse("30", h), header_status::need_more);
  EXPECT_EQ(parse("30 80", h), header_status::need_more);
  EXPECT_EQ(parse("30 FF FF FF", h), header_status::need_more);
  // The body is not needed to parse the header.
  EXPECT_EQ(parse("32 0A", h), header_status::complete);
  EXPECT_EQ(h.flags(), 0x02);
}

// [MQTT-1.5.5-1]: at most four bytes, and the minimum number of bytes.
TEST(fixed_header, overlong_remaining_length_is_malformed) {
  fixed_header h;
  EXPECT_EQ(parse("30 FF FF FF FF 01", h), header_status::malformed);
  EXPECT_EQ(parse("30 80 80 80 80", h), header_status::malformed);
  EXPECT_EQ(parse("30 80 00", h), header_status::malformed);
  EXPECT_EQ(parse("30 FF 80 00", h), header_status::malformed);
}

// Packet type 0 is reserved (table 2.1).
TEST(fixed_header, type_zero_is_malformed) {
  fixed_header h;
  EXPECT_EQ(parse("00 00", h), header_status::malformed);
  EXPECT_EQ(parse("0F", h), header_status::malformed);
}

TEST(fixed_header, body_must_match_remaining_length) {
  fixed_header h;
  ASSERT_EQ(parse("C0 01", h), header_status::complete);
  const std::vector<std::uint8_t> none;
  EXPECT_EQ(decode(h, none, protocol_version::v5).error, reason_code::malformed_packet);
}

// [MQTT-2.2.2-1] (3.1.1) / [MQTT-2.1.3-1] (5.0): every flag value other than the one
// table 2.2 lists is malformed. Each valid packet below is tried with all 16 flag values.
TEST(fixed_header, reserved_flags_for_every_type) {
  const char* valid[] = {
      "10 0E 00 04 4D 51 54 54 05 02 00 3C 00 00 01 61",  // CONNECT
      "20 03 00 00 00",                                   // CONNACK
      "40 02 00 01", "50 02 00 01", "62 02 00 01", "70 02 00 01",
      "82 07 00 01 00 00 01 61 00",  // SUBSCRIBE
      "90 04 00 01 00 00",           // SUBACK
      "A2 06 00 01 00 00 01 61",     // UNSUBSCRIBE
      "B0 04 00 01 00 00",           // UNSUBACK
      "C0 00", "D0 00", "E0 00", "F0 00",
  };
  for (const char* hex : valid) {
    auto data = bytes(hex);
    const std::uint8_t good = data[0] & 0x0F;
    for (std::uint8_t flags = 0; flags < 16; ++flags) {
      data[0] = static_cast<std::uint8_t>((data[0] & 0xF0) | flags);
      const auto r = test::decode(data, protocol_version::v5);
      if (flags == good) {
        EXPECT_TRUE(r.ok()) << hex << ": " << r.detail;
      } else {
        EXPECT_EQ(r.error, reason_code::malformed_packet) << hex << " flags " << int{flags};
      }
    }
  }
}

TEST(fixed_header, encoded_header_sizes) {
  for (const auto& [payload_bytes, header_bytes] :
       {std::pair<std::size_t, std::size_t>{0, 2}, {122, 2}, {123, 3}, {16'378, 3}, {16'379, 4}}) {
    publish_packet p;
    p.topic = "abc";  // body = 5 + payload
    p.payload.assign(payload_bytes, 'x');
    const auto wire = test::encode(p, protocol_version::v3_1_1);
    fixed_header h;
    ASSERT_EQ(parse_fixed_header(wire, h), header_status::complete);
    EXPECT_EQ(h.size, header_bytes) << payload_bytes;
    EXPECT_EQ(h.remaining_length + h.size, wire.size());
  }
}

TEST(reason_codes, error_category) {
  const std::error_code ec = reason_code::topic_name_invalid;
  EXPECT_EQ(ec.category().name(), std::string("mqtt"));
  EXPECT_EQ(ec.value(), 0x90);
  EXPECT_EQ(ec.message(), "topic name invalid");
  EXPECT_EQ(to_string(reason_code::success), "success");
  EXPECT_TRUE(is_error(reason_code::unspecified_error));
  EXPECT_FALSE(is_error(reason_code::granted_qos_2));
  EXPECT_EQ(to_string(static_cast<reason_code>(0x7F)), "unknown reason code");
}

}  // namespace
}  // namespace wharf::mqtt
