#include "core/message.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace wharf::core {
namespace {

message full_message() {
  message m;
  m.topic = "sensors/42/temperature";
  m.payload = std::string("\x00\x01\xff binary", 10);
  m.qos = 2;
  m.retain = true;
  m.payload_format_indicator = 1;
  m.content_type = "application/json";
  m.response_topic = "replies/42";
  m.correlation_data = std::string("\x00\xfe", 2);
  m.user_properties = {{"k1", "v1"}, {"", ""}, {"k1", "dup"}};
  m.expiry_unix_ms = 1'800'000'000'123;
  m.publish_unix_ms = 1'700'000'000'456;
  m.publisher_client_id = "client-7";
  return m;
}

message round_trip(const message& m) {
  std::string bytes;
  encode_message(m, bytes);
  message out;
  EXPECT_TRUE(decode_message(bytes, out));
  return out;
}

TEST(message_codec, round_trips_every_field) {
  const message m = full_message();
  EXPECT_EQ(round_trip(m), m);
}

TEST(message_codec, round_trips_defaults) {
  const message m;
  EXPECT_EQ(round_trip(m), m);
}

TEST(message_codec, round_trips_present_but_empty_optionals) {
  message m;
  m.topic = "t";
  m.content_type = "";
  m.response_topic = "";
  m.correlation_data = "";
  m.payload_format_indicator = 0;
  EXPECT_EQ(round_trip(m), m);
}

TEST(message_codec, round_trips_extreme_integers) {
  for (std::int64_t v : {std::numeric_limits<std::int64_t>::min(), std::int64_t{-1},
                         std::int64_t{0}, std::int64_t{1},
                         std::numeric_limits<std::int64_t>::max()}) {
    message m;
    m.expiry_unix_ms = v;
    m.publish_unix_ms = ~v;  // -v - 1 without overflowing at INT64_MIN
    EXPECT_EQ(round_trip(m), m) << v;
  }
}

TEST(message_codec, round_trips_large_payload) {
  message m = full_message();
  m.payload.assign(1 << 20, 'p');
  EXPECT_EQ(round_trip(m), m);
}

TEST(message_codec, decode_overwrites_previous_contents) {
  message m;
  m.topic = "x";
  std::string bytes;
  encode_message(m, bytes);
  message out = full_message();
  ASSERT_TRUE(decode_message(bytes, out));
  EXPECT_EQ(out, m);
}

TEST(message_codec, first_byte_is_the_version) {
  std::string bytes;
  encode_message(full_message(), bytes);
  EXPECT_EQ(bytes[0], 1);
  bytes[0] = 2;
  message out;
  EXPECT_FALSE(decode_message(bytes, out));
}

TEST(message_codec, encode_appends) {
  std::string bytes = "prefix";
  encode_message(full_message(), bytes);
  message out;
  EXPECT_TRUE(decode_message(std::string_view(bytes).substr(6), out));
}

TEST(message_codec, rejects_empty_input) {
  message out;
  EXPECT_FALSE(decode_message("", out));
}

TEST(message_codec, rejects_every_truncation) {
  std::string bytes;
  encode_message(full_message(), bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    message out;
    EXPECT_FALSE(decode_message(std::string_view(bytes).substr(0, n), out)) << n;
  }
}

TEST(message_codec, rejects_trailing_bytes) {
  std::string bytes;
  encode_message(full_message(), bytes);
  bytes.push_back('\0');
  message out;
  EXPECT_FALSE(decode_message(bytes, out));
}

TEST(message_codec, rejects_qos_3_and_unknown_flags) {
  std::string bytes;
  encode_message(message{}, bytes);
  message out;
  std::string qos3 = bytes;
  qos3[1] = 0x03;
  EXPECT_FALSE(decode_message(qos3, out));
  std::string unknown = bytes;
  unknown[1] = static_cast<char>(0x80);
  EXPECT_FALSE(decode_message(unknown, out));
}

TEST(message_codec, rejects_huge_lengths_and_counts) {
  message out;
  // version, flags, topic length = 2^63 as a varint.
  const std::string huge_len("\x01\x00\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12);
  EXPECT_FALSE(decode_message(huge_len, out));
  // An over-long varint (11 bytes).
  const std::string long_varint("\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13);
  EXPECT_FALSE(decode_message(long_varint, out));
  // A 10th varint byte carrying more than the top bit.
  const std::string overflow("\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 12);
  EXPECT_FALSE(decode_message(overflow, out));
  // Empty topic and payload, then a user property count of 2^32.
  const std::string many_props("\x01\x00\x00\x00\x80\x80\x80\x80\x10", 9);
  EXPECT_FALSE(decode_message(many_props, out));
}

TEST(message_codec, random_bytes_never_crash) {
  std::mt19937_64 rng(12345);
  message out;
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    if (i % 2 == 0 && !bytes.empty()) bytes[0] = 1;  // get past the version check
    if (decode_message(bytes, out)) ++accepted;
  }
  SUCCEED() << accepted << " random inputs decoded";
}

TEST(message_codec, mutated_encodings_never_crash) {
  std::string good;
  encode_message(full_message(), good);
  std::mt19937_64 rng(777);
  message out;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (decode_message(bytes, out)) {
      // Whatever decodes must encode back to the same bytes (the format is canonical
      // except for non-minimal varints).
      std::string again;
      encode_message(out, again);
      message twice;
      EXPECT_TRUE(decode_message(again, twice));
      EXPECT_EQ(twice, out);
    }
  }
}

}  // namespace
}  // namespace wharf::core
