#include "net/proxy_protocol.h"

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>

#include <array>
#include <charconv>
#include <cstring>

#include "net/acceptor.h"

namespace wharf::net {
namespace {

namespace ip = boost::asio::ip;
using verdict = proxy_parse::verdict;

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::size_t v1_max_bytes = 107;  // the specification's bound, CRLF included
constexpr std::string_view v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr std::size_t v2_fixed_bytes = 16;

proxy_parse invalid(std::string error) {
  proxy_parse p;
  p.result = verdict::invalid;
  p.error = std::move(error);
  return p;
}

// Whether `bytes` could still grow into `prefix` (or already start with it).
bool could_be(std::string_view bytes, std::string_view prefix) {
  const std::size_t n = std::min(bytes.size(), prefix.size());
  return bytes.substr(0, n) == prefix.substr(0, n);
}

std::optional<std::uint16_t> port_of(std::string_view text) {
  unsigned value = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  // No sign, no leading zero (the specification's form), 0..65535.
  if (text.empty() || err != std::errc{} || end != text.data() + text.size() || value > 65535 ||
      (text.size() > 1 && text[0] == '0'))
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// "PROXY TCP4 src dst sport dport\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN ...\r\n".
proxy_parse parse_v1(std::string_view bytes) {
  const auto end = bytes.find("\r\n");
  if (end == std::string_view::npos) {
    if (bytes.size() >= v1_max_bytes) return invalid("a version 1 header without CRLF in 107 bytes");
    proxy_parse p;
    p.result = verdict::incomplete;
    return p;
  }
  if (end + 2 > v1_max_bytes) return invalid("a version 1 header longer than 107 bytes");
  proxy_parse p;
  p.result = verdict::complete;
  p.length = end + 2;
  std::vector<std::string_view> fields;
  std::string_view line = bytes.substr(v1_prefix.size(), end - v1_prefix.size());
  while (!line.empty()) {
    const auto space = line.find(' ');
    fields.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  if (!fields.empty() && fields[0] == "UNKNOWN") return p;  // the rest is to be ignored
  if (fields.size() != 5 || (fields[0] != "TCP4" && fields[0] != "TCP6"))
    return invalid("a version 1 header is neither TCP4, TCP6 nor UNKNOWN with four fields");
  boost::system::error_code ec;
  const auto source = ip::make_address(std::string(fields[1]), ec);
  const bool v4 = fields[0] == "TCP4";
  if (ec || source.is_v4() != v4) return invalid("a version 1 header with a bad source address");
  const auto destination = ip::make_address(std::string(fields[2]), ec);
  if (ec || destination.is_v4() != v4) return invalid("a version 1 header with a bad destination address");
  const auto source_port = port_of(fields[3]);
  if (!source_port || !port_of(fields[4])) return invalid("a version 1 header with a bad port");
  p.source = proxy_source{address_text(source), *source_port};
  return p;
}

std::uint16_t be16(std::string_view bytes) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(bytes[0]) << 8) | static_cast<unsigned char>(bytes[1]));
}

proxy_parse parse_v2(std::string_view bytes) {
  if (bytes.size() < v2_fixed_bytes) {
    proxy_parse p;
    p.result = verdict::incomplete;
    return p;
  }
  const auto version_command = static_cast<unsigned char>(bytes[12]);
  if ((version_command >> 4) != 2) return invalid("a version 2 header of another version");
  const unsigned command = version_command & 0x0f;
  if (command > 1) return invalid("a version 2 header with a command that is neither LOCAL nor PROXY");
  const auto family = static_cast<unsigned char>(bytes[13]);
  const std::size_t length = be16(bytes.substr(14));
  if (v2_fixed_bytes + length > max_proxy_header_bytes) return invalid("a version 2 header longer than wharf takes");
  if (bytes.size() < v2_fixed_bytes + length) {
    proxy_parse p;
    p.result = verdict::incomplete;
    return p;
  }
  proxy_parse p;
  p.result = verdict::complete;
  p.length = v2_fixed_bytes + length;
  if (command == 0) return p;  // LOCAL: the balancer itself; the address block is ignored
  const std::string_view block = bytes.substr(v2_fixed_bytes, length);
  if (family == 0x11) {  // TCP over IPv4: source, destination, source port, destination port
    if (block.size() < 12) return invalid("a version 2 IPv4 address block shorter than 12 bytes");
    ip::address_v4::bytes_type a;
    std::memcpy(a.data(), block.data(), 4);
    p.source = proxy_source{address_text(ip::address_v4(a)), be16(block.substr(8))};
  } else if (family == 0x21) {  // TCP over IPv6
    if (block.size() < 36) return invalid("a version 2 IPv6 address block shorter than 36 bytes");
    ip::address_v6::bytes_type a;
    std::memcpy(a.data(), block.data(), 16);
    p.source = proxy_source{address_text(ip::address_v6(a)), be16(block.substr(32))};
  }
  // Other families and protocols (UDP, UNIX sockets, UNSPEC) carry no address we use.
  return p;
}

}  // namespace

proxy_parse parse_proxy_header(std::string_view bytes) {
  if (bytes.empty()) {
    proxy_parse p;
    p.result = verdict::incomplete;
    return p;
  }
  if (could_be(bytes, v1_prefix)) {
    if (bytes.size() < v1_prefix.size()) {
      proxy_parse p;
      p.result = verdict::incomplete;
      return p;
    }
    return parse_v1(bytes);
  }
  if (could_be(bytes, v2_signature)) {
    if (bytes.size() < v2_signature.size()) {
      proxy_parse p;
      p.result = verdict::incomplete;
      return p;
    }
    return parse_v2(bytes);
  }
  return {};
}

bool address_set::add(std::string_view text) {
  const auto slash = text.find('/');
  boost::system::error_code ec;
  auto base = ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return false;
  if (base.is_v6() && base.to_v6().is_v4_mapped()) base = ip::make_address_v4(ip::v4_mapped, base.to_v6());
  const unsigned bits = base.is_v4() ? 32 : 128;
  unsigned prefix = bits;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || err != std::errc{} || end != digits.data() + digits.size() || prefix > bits) return false;
  }
  networks_.push_back({base, prefix});
  return true;
}

bool address_set::contains(const ip::address& address_in) const {
  ip::address address = address_in;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) address = ip::make_address_v4(ip::v4_mapped, address.to_v6());
  for (const auto& n : networks_) {
    if (n.base.is_v4() != address.is_v4()) continue;
    std::array<unsigned char, 16> a{};
    std::array<unsigned char, 16> b{};
    std::size_t size = 4;
    if (address.is_v4()) {
      const auto x = address.to_v4().to_bytes();
      const auto y = n.base.to_v4().to_bytes();
      std::memcpy(a.data(), x.data(), 4);
      std::memcpy(b.data(), y.data(), 4);
    } else {
      size = 16;
      const auto x = address.to_v6().to_bytes();
      const auto y = n.base.to_v6().to_bytes();
      std::memcpy(a.data(), x.data(), 16);
      std::memcpy(b.data(), y.data(), 16);
    }
    bool match = true;
    for (std::size_t i = 0; i < size && match; ++i) {
      const unsigned bits_here = n.prefix > i * 8 ? std::min(8u, n.prefix - static_cast<unsigned>(i * 8)) : 0u;
      const auto mask = static_cast<unsigned char>(bits_here == 0 ? 0 : 0xff << (8 - bits_here));
      match = (a[i] & mask) == (b[i] & mask);
    }
    if (match) return true;
  }
  return false;
}

}  // namespace wharf::net
