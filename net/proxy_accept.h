// Taking the PROXY header (proxy_protocol.h) off an accepted socket, before its stream
// starts: shared by the MQTT, WebSocket and queue-API listeners that have
// `proxy_protocol` configured.
//
// A connection from a trusted source must start with a header (a balancer that forgot to
// send one would make every device look like the balancer); one from any other source must
// not (a client could claim any address). The header's bytes are peeked, then exactly those
// are consumed, so what follows stays in the socket for TLS, WebSocket, MQTT or HTTP.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "config/config.h"
#include "net/proxy_protocol.h"

namespace wharf::net {

struct proxy_options {
  address_set trusted;  // the balancers
  // A connection that has not sent a whole header (or, from another source, its first
  // bytes) by then is closed. Default: 3 s.
  std::chrono::milliseconds header_timeout{3000};
};

// Per listener, read from any thread.
struct proxy_counters {
  std::atomic<std::uint64_t> headers{0};  // headers taken from trusted sources
  std::atomic<std::uint64_t> refused{0};  // connections closed: a header from an untrusted
                                          // source, none or a bad one from a trusted source, or
                                          // none in time
};

// The options of a listener's `proxy_protocol` section; null without one.
[[nodiscard]] std::shared_ptr<const proxy_options> proxy_options_from(
    const std::optional<config::proxy_protocol_config>& cfg);

// `then` gets the socket, positioned after the header, and the client's address from it
// (nullopt: use the socket's own peer; a direct client, or a header without an address). A
// connection that breaks the rules is closed and counted; `then` is not called for it.
// Runs on the socket's executor.
void accept_proxied(boost::asio::ip::tcp::socket socket, std::shared_ptr<const proxy_options> options,
                    std::shared_ptr<proxy_counters> counters,
                    std::function<void(boost::asio::ip::tcp::socket, std::optional<proxy_source>)> then);

}  // namespace wharf::net
