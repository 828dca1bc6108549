// The PROXY protocol (HAProxy's, versions 1 and 2): the header a TCP load balancer puts in
// front of a connection to say whom it carries, so that ACLs, bans, logs and the queue API
// see the device's address instead of the balancer's. Sans-I/O: bytes in, a verdict out
// (proxy_accept.h reads them off a socket). Version 1 is one text line
// ("PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\r\n", at most 107 bytes); version 2 a
// 16-byte binary header (a 12-byte signature, version and command, family, length) and an
// address block with optional TLVs, which are skipped.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::net {

// Longest header accepted: v1's limit, and for v2 the address block of IPv6 with room for
// TLVs (ALPN, authority, ...). A longer v2 header is refused.
inline constexpr std::size_t max_proxy_header_bytes = 16 + 512;

struct proxy_source {
  std::string address;  // as address_text() writes it
  std::uint16_t port = 0;
};

struct proxy_parse {
  enum class verdict : std::uint8_t {
    absent,      // the bytes are not the start of a PROXY header
    incomplete,  // they may be: more bytes are needed
    complete,    // a header of `length` bytes
    invalid,     // a PROXY header, but malformed (`error` says how)
  };
  verdict result = verdict::absent;
  std::size_t length = 0;
  // The client's address; none for a header that carries none (v1 UNKNOWN, v2 LOCAL: the
  // balancer's own health check, or a protocol other than TCP over IPv4/IPv6).
  std::optional<proxy_source> source;
  std::string error;
};

// Looks at the first bytes of a connection.
[[nodiscard]] proxy_parse parse_proxy_header(std::string_view bytes);

// Addresses and networks ("10.0.0.0/8", "2001:db8::/32", "127.0.0.1" alone: one address).
// An IPv4-mapped IPv6 address (from a dual-stack socket) matches as its IPv4 address.
class address_set {
 public:
  // Adds one entry; false when it is neither an address nor address/prefix-length.
  bool add(std::string_view text);
  [[nodiscard]] bool contains(const boost::asio::ip::address& address) const;
  [[nodiscard]] bool empty() const noexcept { return networks_.empty(); }

 private:
  struct network {
    boost::asio::ip::address base;
    unsigned prefix = 0;
  };
  std::vector<network> networks_;
};

}  // namespace wharf::net
