// Accepting on one port from every I/O thread: one acceptor per pool thread, all bound to
// the same address with SO_REUSEPORT, so the kernel spreads new connections over the
// threads and each socket is handled by the thread that accepted it (no hand-off). When
// accept fails for lack of descriptors or memory, that acceptor pauses instead of spinning
// on the listen queue. Shared by the MQTT listeners and the HTTP queue API.
#pragma once

#include "net/io_pool.h"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace wharf::net {

struct acceptor_options {
  // After accept fails with EMFILE/ENFILE/ENOBUFS/ENOMEM the acceptor waits this long before
  // trying again (instead of spinning on the listen queue). Default: 100 ms.
  std::chrono::milliseconds accept_pause{100};
  // listen() backlog per acceptor. Default: 1024.
  int backlog = 1024;
  // Set when this process already listens on the address and the new group takes over from
  // that listener (a reload that changes a listener's kind or TLS starts the new one before
  // it stops the old). Otherwise the group first makes sure that no socket listens there:
  // SO_REUSEPORT alone would let a second broker of the same user join the port and take
  // half of its new connections.
  bool takes_over_own_listener = false;
};

// Counters of one acceptor group, summed over its acceptors.
struct acceptor_stats {
  std::uint64_t accepted = 0;       // sockets accepted
  std::uint64_t accept_pauses = 0;  // times accept paused on EMFILE/ENFILE/ENOBUFS/ENOMEM
  std::uint64_t accept_errors = 0;  // other accept errors (ECONNABORTED, ...)
};

// Takes one accepted socket, on the thread that accepted it (TCP_NODELAY already set).
// Called concurrently from every pool thread.
using socket_callback = std::function<void(boost::asio::ip::tcp::socket)>;

namespace detail {
struct acceptor_group_state;
}

// The acceptors of one bind address. Copyable handle; the acceptors run until stop() (or
// the pool stops). REQUIRES: the io_pool outlives every call on this handle.
class acceptor_group {
 public:
  acceptor_group() = default;
  // The bound port (the kernel's choice when the bind said port 0).
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // Read from any thread.
  [[nodiscard]] acceptor_stats stats() const noexcept;
  // Closes the acceptors, each on its own thread, asynchronously: a connection may still
  // be accepted until that thread gets to it. Accepted sockets are unaffected.
  // Thread-safe; idempotent.
  void stop();

 private:
  friend acceptor_group start_acceptors(io_pool&, std::string_view, acceptor_options, socket_callback);
  std::shared_ptr<detail::acceptor_group_state> state_;
  std::uint16_t port_ = 0;
};

// Opens one acceptor per pool thread on `bind` (see parse_bind) and starts accepting.
// Throws std::system_error (with the bind in the message) when the address cannot be
// parsed or bound, or when another socket already listens on it (unless
// options.takes_over_own_listener).
[[nodiscard]] acceptor_group start_acceptors(io_pool& pool, std::string_view bind,
                                             acceptor_options options, socket_callback on_socket);

// A peer's address as text ("127.0.0.1", "::1"); an IPv4-mapped IPv6 address (from a
// dual-stack socket) as the plain IPv4 address.
[[nodiscard]] std::string address_text(const boost::asio::ip::address& address);

// Parses "host:port", "[v6]:port", ":port" / "*:port" (any IPv4 address). Host names are
// resolved (first result). Throws std::system_error on a malformed bind.
[[nodiscard]] boost::asio::ip::tcp::endpoint parse_bind(std::string_view bind);

}  // namespace wharf::net
