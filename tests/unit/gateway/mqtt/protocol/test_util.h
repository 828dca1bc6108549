// Helpers shared by the codec tests: hex byte strings in, decode results out.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gateway/mqtt/protocol/codec.h"

namespace wharf::mqtt::test {

// "36 05 00 01" -> {0x36, 0x05, 0x00, 0x01}. Spaces are ignored.
inline std::vector<std::uint8_t> bytes(std::string_view hex) {
  std::vector<std::uint8_t> out;
  int high = -1;
  for (const char c : hex) {
    int nibble = -1;
    if (c >= '0' && c <= '9') nibble = c - '0';
    if (c >= 'a' && c <= 'f') nibble = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') nibble = c - 'A' + 10;
    if (nibble < 0) continue;
    if (high < 0) {
      high = nibble;
    } else {
      out.push_back(static_cast<std::uint8_t>(high << 4 | nibble));
      high = -1;
    }
  }
  EXPECT_EQ(high, -1) << "odd number of hex digits in " << hex;
  return out;
}

inline std::string hex(const std::vector<std::uint8_t>& data) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (const std::uint8_t b : data) {
    if (!out.empty()) out += ' ';
    out += digits[b >> 4];
    out += digits[b & 0x0F];
  }
  return out;
}

// Parses the fixed header and decodes one whole packet. A header that is incomplete or
// malformed comes back as malformed_packet.
inline decode_result decode(const std::vector<std::uint8_t>& data, protocol_version version) {
  fixed_header header;
  decode_result result;
  if (parse_fixed_header(data, header) != header_status::complete ||
      data.size() < header.size) {
    result.error = reason_code::malformed_packet;
    result.detail = "bad fixed header";
    return result;
  }
  // Catches a miscounted Remaining Length in a test's hex string: decode() would call it
  // malformed, and the test would pass for the wrong reason.
  EXPECT_EQ(header.remaining_length, data.size() - header.size)
      << "remaining length of test bytes " << hex(data);
  return mqtt::decode(header, std::span(data).subspan(header.size), version);
}

inline decode_result decode(std::string_view hex_bytes, protocol_version version) {
  return test::decode(bytes(hex_bytes), version);
}

// Encodes and checks that encoded_size() agrees with what encode() produced.
inline std::vector<std::uint8_t> encode(const packet& p, protocol_version version) {
  std::vector<std::uint8_t> out;
  mqtt::encode(p, version, out);
  EXPECT_EQ(out.size(), encoded_size(p, version));
  return out;
}

// Decodes `hex_bytes`, expecting success and a `Packet`.
template <typename Packet>
Packet decode_as(std::string_view hex_bytes, protocol_version version) {
  const decode_result r = test::decode(hex_bytes, version);
  EXPECT_TRUE(r.ok()) << to_string(r.error) << ": " << r.detail;
  EXPECT_TRUE(std::holds_alternative<Packet>(r.value));
  if (!r.ok() || !std::holds_alternative<Packet>(r.value)) return Packet{};
  return std::get<Packet>(r.value);
}

// encode -> decode; returns what came back (expected equal to the input in most tests).
template <typename Packet>
Packet round_trip(const Packet& p, protocol_version version) {
  const std::vector<std::uint8_t> wire = test::encode(packet{p}, version);
  const decode_result r = test::decode(wire, version);
  EXPECT_TRUE(r.ok()) << to_string(r.error) << ": " << r.detail << " for " << hex(wire);
  EXPECT_TRUE(std::holds_alternative<Packet>(r.value));
  if (!r.ok() || !std::holds_alternative<Packet>(r.value)) return Packet{};
  return std::get<Packet>(r.value);
}

inline constexpr protocol_version all_versions[] = {protocol_version::v3_1,
                                                   protocol_version::v3_1_1,
                                                   protocol_version::v5};

}  // namespace wharf::mqtt::test
