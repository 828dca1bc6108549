// libFuzzer target over the PROXY protocol header parser (proxy_protocol.h), what a load
// balancer, or anyone reaching a listener with proxy_protocol, sends first. It must refuse or
// accept arbitrary bytes without crashing; a header it accepts must be accepted the same
// from its own bytes alone, and never be longer than the input or the bound. The input as
// text also goes to address_set::add (the config's trusted networks).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "net/proxy_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wharf::net;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto p = parse_proxy_header(bytes);
  if (p.result == proxy_parse::verdict::complete) {
    const auto again = parse_proxy_header(bytes.substr(0, p.length));
    const bool same_source = again.source.has_value() == p.source.has_value() &&
                             (!p.source || (again.source->address == p.source->address &&
                                            again.source->port == p.source->port));
    if (p.length > size || p.length > max_proxy_header_bytes || again.result != p.result ||
        again.length != p.length || !same_source) {
      std::fprintf(stderr, "fuzz_proxy_header: a header read differently from its own bytes\n");
      std::abort();
    }
    if (p.source) {
      boost::system::error_code ec;
      (void)boost::asio::ip::make_address(p.source->address, ec);
      if (ec) std::abort();
    }
  }
  address_set set;
  if (set.add(bytes)) (void)set.contains(boost::asio::ip::make_address("192.0.2.1"));
  return 0;
}
