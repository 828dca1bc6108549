// The framer: packets split and merged arbitrarily across reads come out whole and in order;
// nothing is buffered between packets; the maximum packet size is enforced from the header.
#include "gateway/mqtt/protocol/framer.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::bytes;

struct collected {
  std::vector<std::uint8_t> first_bytes;
  std::vector<std::vector<std::uint8_t>> bodies;
};

framer::status feed(framer& f, std::span<const std::uint8_t> in, collected& out) {
  return f.feed(in, [&](const fixed_header& h, std::span<const std::uint8_t> body) {
    out.first_bytes.push_back(h.first_byte);
    out.bodies.emplace_back(body.begin(), body.end());
    return true;
  });
}

TEST(framer, whole_packets_in_one_read) {
  framer f(1024);
  collected out;
  const auto in = bytes("C0 00  30 03 00 01 61  D0 00");  // PINGREQ, PUBLISH "a", PINGRESP
  EXPECT_EQ(feed(f, in, out), framer::status::ok);
  ASSERT_EQ(out.first_bytes.size(), 3u);
  EXPECT_EQ(out.first_bytes[1], 0x30);
  EXPECT_EQ(out.bodies[1], bytes("00 01 61"));
  EXPECT_EQ(f.buffered_bytes(), 0u) << "no buffer held between packets";
}

TEST(framer, every_split_point_yields_the_same_packets) {
  const auto in = bytes("C0 00  30 03 00 01 61  32 06 00 01 62 00 07 ff  E0 00");
  for (std::size_t cut = 0; cut <= in.size(); ++cut) {
    framer f(1024);
    collected out;
    ASSERT_EQ(feed(f, std::span(in).first(cut), out), framer::status::ok);
    ASSERT_EQ(feed(f, std::span(in).subspan(cut), out), framer::status::ok);
    ASSERT_EQ(out.first_bytes, (std::vector<std::uint8_t>{0xC0, 0x30, 0x32, 0xE0})) << "cut at " << cut;
    EXPECT_EQ(out.bodies[2], bytes("00 01 62 00 07 ff"));
    EXPECT_EQ(f.buffered_bytes(), 0u);
  }
}

TEST(framer, byte_by_byte) {
  const auto in = bytes("30 81 01") ;  // remaining length 129, body follows
  std::vector<std::uint8_t> packet = in;
  packet.resize(3 + 129, 0x41);
  packet[3] = 0x00;
  packet[4] = 0x01;
  framer f(1024);
  collected out;
  for (auto b : packet) ASSERT_EQ(feed(f, std::span(&b, 1), out), framer::status::ok);
  ASSERT_EQ(out.bodies.size(), 1u);
  EXPECT_EQ(out.bodies[0].size(), 129u);
}

TEST(framer, remaining_length_over_four_bytes_is_malformed) {
  framer f(1u << 30);
  collected out;
  EXPECT_EQ(feed(f, bytes("30 ff ff ff ff 01"), out), framer::status::malformed);  // [MQTT-1.5.5-1]
}

TEST(framer, packet_above_maximum_is_refused_from_its_header) {
  framer f(100);
  collected out;
  EXPECT_EQ(feed(f, bytes("30 7f"), out), framer::status::too_large) << "129 bytes total > 100, before the body arrives";
  framer g(129);
  EXPECT_EQ(feed(g, bytes("30 7f"), out), framer::status::ok);
}

TEST(framer, stops_when_the_handler_says_so) {
  framer f(1024);
  int calls = 0;
  const auto in = bytes("C0 00 C0 00 C0 00");
  f.feed(in, [&](const fixed_header&, std::span<const std::uint8_t>) { return ++calls < 2; });
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace wharf::mqtt
