// The PROXY protocol header parser over byte arrays (proxy_protocol.h), and address sets.
#include "net/proxy_protocol.h"

#include <boost/asio/ip/address.hpp>
#include <gtest/gtest.h>

#include <string>

namespace wharf::net {
namespace {

using verdict = proxy_parse::verdict;
namespace ip = boost::asio::ip;

const std::string v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);

// A version 2 header: command (0 LOCAL, 1 PROXY), family byte, address block.
std::string v2(unsigned command, unsigned char family, const std::string& block) {
  std::string h = v2_signature;
  h.push_back(static_cast<char>(0x20 | command));
  h.push_back(static_cast<char>(family));
  h.push_back(static_cast<char>(block.size() >> 8));
  h.push_back(static_cast<char>(block.size() & 0xff));
  return h + block;
}

std::string ipv4_block() {
  // 203.0.113.7:51234 -> 192.0.2.1:1883, then a TLV (type 0x01 ALPN, "mqtt") to be skipped.
  return std::string("\xcb\x00\x71\x07\xc0\x00\x02\x01\xc8\x22\x07\x5b", 12) + std::string("\x01\x00\x04mqtt", 7);
}

TEST(proxy_protocol, version_1_tcp4_and_tcp6_name_the_client) {
  const std::string header = "PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\r\n";
  const auto p = parse_proxy_header(header + "\x10\x0c");  // an MQTT CONNECT follows
  ASSERT_EQ(p.result, verdict::complete) << p.error;
  EXPECT_EQ(p.length, header.size());
  ASSERT_TRUE(p.source);
  EXPECT_EQ(p.source->address, "203.0.113.7");
  EXPECT_EQ(p.source->port, 51234);
  const auto six = parse_proxy_header("PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n");
  ASSERT_EQ(six.result, verdict::complete) << six.error;
  EXPECT_EQ(six.source->address, "2001:db8::7");
  const auto unknown = parse_proxy_header("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
  ASSERT_EQ(unknown.result, verdict::complete);
  EXPECT_FALSE(unknown.source) << "UNKNOWN keeps the balancer's own address";
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN\r\n").result, verdict::complete);
}

TEST(proxy_protocol, version_1_errors) {
  for (const std::string bad : {"PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",        // a field short
                                "PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n",          // not IPv4
                                "PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n",        // not IPv6
                                "PROXY TCP4 203.0.113.7 192.0.2.1 65536 1883\r\n",   // port too big
                                "PROXY TCP4 203.0.113.7 192.0.2.1 0123 1883\r\n",    // leading zero
                                "PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n",          // not TCP
                                "PROXY TCP4  203.0.113.7 192.0.2.1 1 2\r\n"}) {      // two spaces
    EXPECT_EQ(parse_proxy_header(bad).result, verdict::invalid) << bad;
  }
  EXPECT_EQ(parse_proxy_header("PROXY " + std::string(101, 'x')).result, verdict::invalid) << "no CRLF in 107 bytes";
}

TEST(proxy_protocol, version_2_proxy_and_local) {
  const auto header = v2(1, 0x11, ipv4_block());
  const auto p = parse_proxy_header(header + "\x10");
  ASSERT_EQ(p.result, verdict::complete) << p.error;
  EXPECT_EQ(p.length, header.size()) << "the TLVs belong to the header";
  ASSERT_TRUE(p.source);
  EXPECT_EQ(p.source->address, "203.0.113.7");
  EXPECT_EQ(p.source->port, 51234);

  std::string block6(36, '\0');
  block6[0] = '\x20';
  block6[1] = '\x01';
  block6[2] = '\x0d';
  block6[3] = '\xb8';
  block6[15] = '\x07';
  block6[32] = '\x0f';
  block6[33] = '\xa0';
  const auto six = parse_proxy_header(v2(1, 0x21, block6));
  ASSERT_EQ(six.result, verdict::complete) << six.error;
  EXPECT_EQ(six.source->address, "2001:db8::7");
  EXPECT_EQ(six.source->port, 4000);

  const auto local = parse_proxy_header(v2(0, 0x00, ""));
  ASSERT_EQ(local.result, verdict::complete);
  EXPECT_FALSE(local.source);
  const auto unix_socket = parse_proxy_header(v2(1, 0x31, std::string(216, '\0')));
  ASSERT_EQ(unix_socket.result, verdict::complete);
  EXPECT_FALSE(unix_socket.source);
}

TEST(proxy_protocol, version_2_errors) {
  std::string other_version = v2(1, 0x11, ipv4_block());
  other_version[12] = '\x11';
  EXPECT_EQ(parse_proxy_header(other_version).result, verdict::invalid);
  EXPECT_EQ(parse_proxy_header(v2(2, 0x11, ipv4_block())).result, verdict::invalid) << "command 2";
  EXPECT_EQ(parse_proxy_header(v2(1, 0x11, "short")).result, verdict::invalid);
  EXPECT_EQ(parse_proxy_header(v2(1, 0x21, std::string(20, '\0'))).result, verdict::invalid);
  EXPECT_EQ(parse_proxy_header(v2(1, 0x11, std::string(600, '\0'))).result, verdict::invalid) << "too long";
}

TEST(proxy_protocol, pieces_and_other_protocols) {
  const std::string v1 = "PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\r\n";
  const std::string v2h = v2(1, 0x11, ipv4_block());
  for (std::size_t n = 1; n < v1.size(); ++n)
    EXPECT_EQ(parse_proxy_header(v1.substr(0, n)).result, verdict::incomplete) << n;
  for (std::size_t n = 1; n < v2h.size(); ++n)
    EXPECT_EQ(parse_proxy_header(v2h.substr(0, n)).result, verdict::incomplete) << n;
  EXPECT_EQ(parse_proxy_header("").result, verdict::incomplete);
  // What clients send first without a balancer: MQTT CONNECT, a TLS ClientHello, HTTP.
  EXPECT_EQ(parse_proxy_header(std::string("\x10\x0c\x00\x04MQTT", 8)).result, verdict::absent);
  EXPECT_EQ(parse_proxy_header(std::string("\x16\x03\x01\x02\x00", 5)).result, verdict::absent);
  EXPECT_EQ(parse_proxy_header("POST / HTTP/1.1\r\n").result, verdict::absent);
  EXPECT_EQ(parse_proxy_header("P").result, verdict::incomplete) << "POST and PROXY start alike";
  EXPECT_EQ(parse_proxy_header("\r\n\r\nX").result, verdict::absent);
}

TEST(address_set, networks_and_single_addresses) {
  address_set s;
  EXPECT_TRUE(s.add("10.0.0.0/8"));
  EXPECT_TRUE(s.add("192.0.2.10"));
  EXPECT_TRUE(s.add("2001:db8::/32"));
  EXPECT_TRUE(s.add("198.18.0.0/15"));
  EXPECT_FALSE(s.add("10.0.0.0/33"));
  EXPECT_FALSE(s.add("balancer.example"));
  EXPECT_FALSE(s.add("10.0.0.0/"));
  EXPECT_TRUE(s.contains(ip::make_address("10.200.3.4")));
  EXPECT_TRUE(s.contains(ip::make_address("192.0.2.10")));
  EXPECT_FALSE(s.contains(ip::make_address("192.0.2.11")));
  EXPECT_TRUE(s.contains(ip::make_address("198.19.255.1")));
  EXPECT_FALSE(s.contains(ip::make_address("198.20.0.1")));
  EXPECT_TRUE(s.contains(ip::make_address("2001:db8:ffff::1")));
  EXPECT_FALSE(s.contains(ip::make_address("2001:db9::1")));
  EXPECT_TRUE(s.contains(ip::make_address("::ffff:10.1.1.1"))) << "an IPv4-mapped address matches as IPv4";
  EXPECT_FALSE(s.contains(ip::make_address("11.0.0.1")));
  address_set all;
  EXPECT_TRUE(all.add("0.0.0.0/0"));
  EXPECT_TRUE(all.contains(ip::make_address("203.0.113.7")));
  EXPECT_FALSE(all.contains(ip::make_address("::1")));
}

}  // namespace
}  // namespace wharf::net
