// Listeners: one acceptor per I/O thread on the same port (SO_REUSEPORT), so the kernel
// spreads new connections over the threads and no accepted socket is handed between
// threads (acceptor.h). Each accepted socket becomes a `stream` (TCP, TLS, WebSocket or WSS) on the
// thread that accepted it.
#pragma once

#include "config/config.h"
#include "net/acceptor.h"
#include "net/io_pool.h"
#include "net/stream.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

namespace wharf::net {

// Called on the stream's own I/O thread once the transport handshake (TLS handshake,
// WebSocket upgrade) has completed. The callee attaches a handler with set_handler();
// reading starts then. A stream dropped without a handler is closed and freed.
using accept_callback = std::function<void(std::shared_ptr<stream>)>;

struct listener_options {
  // Time from accept to a completed TLS handshake and WebSocket upgrade. Default: 10 s.
  std::chrono::milliseconds handshake_timeout{10000};
  // Time from stream::close() to the socket being closed: sending what is queued, then the
  // TLS close_notify / WebSocket close exchange. A peer that does not read gets cut off
  // (on_closed with errc::timed_out). Default: 10 s.
  std::chrono::milliseconds close_timeout{10000};
  // Plain TCP: once what is queued is sent, the peer gets a FIN and what it still sends is
  // read and dropped until it closes too, for at most this long (then on_closed with
  // errc::timed_out). Default: 2 s.
  std::chrono::milliseconds close_drain{2000};
  // Largest WebSocket message accepted; bigger → the connection is closed
  // (websocket::error::message_too_big). A message normally carries one MQTT packet, so this
  // is config.mqtt.max_packet_size plus room for the fixed header. Default: 1 MiB + 4 KiB.
  std::size_t max_ws_message_bytes = (std::size_t{1} << 20) + 4096;
  // Largest HTTP upgrade request (request line + headers). Default: 8 KiB.
  std::size_t max_upgrade_request_bytes = 8192;
  // Accept pause on EMFILE and listen backlog (acceptor.h).
  acceptor_options acceptor;
};

// Plain TCP closes whose peer did not close within close_drain of the broker's FIN, all
// listeners together. Read from any thread.
[[nodiscard]] std::uint64_t tcp_drains_cut() noexcept;

// Counters of one listener, summed over its acceptors. Read from any thread.
struct listener_stats {
  std::uint64_t accepted = 0;            // sockets accepted
  std::uint64_t accept_pauses = 0;       // times accept paused on EMFILE/ENFILE/ENOBUFS/ENOMEM
  std::uint64_t accept_errors = 0;       // other accept errors (ECONNABORTED, ...)
  std::uint64_t handshake_failures = 0;  // TLS/WebSocket handshakes that failed or timed out
  std::uint64_t upgrade_refused = 0;     // HTTP requests refused (wrong path, not an upgrade)
  std::uint64_t proxy_headers = 0;       // PROXY protocol headers taken (proxy_accept.h)
  std::uint64_t proxy_refused = 0;       // connections closed for their PROXY header, or its lack
};

namespace detail {
struct listener_state;
}

// The running listener. Copyable handle; the acceptors keep running until stop() (or the
// pool stops). REQUIRES: the io_pool outlives every call on this handle.
class listener_handle {
 public:
  listener_handle() = default;
  // The bound port (the kernel's choice when the bind said port 0).
  [[nodiscard]] std::uint16_t port() const noexcept { return acceptors_.port(); }
  [[nodiscard]] listener_stats stats() const noexcept;
  // Closes the acceptors (each on its own thread, asynchronously: a connection may still be
  // accepted until that thread gets to it). Connections already accepted are unaffected.
  // Thread-safe; idempotent.
  void stop();
  // New connections use `context` from now on (a reload rotating the certificate); those
  // already accepted keep theirs. Ignored for a plain listener. Thread-safe.
  void replace_tls_context(std::shared_ptr<boost::asio::ssl::context> context) const;

 private:
  friend listener_handle start_listener(io_pool&, std::size_t, const config::listener_config&,
                                        std::shared_ptr<boost::asio::ssl::context>, accept_callback,
                                        listener_options);
  std::shared_ptr<detail::listener_state> state_;
  acceptor_group acceptors_;
};

// Opens one acceptor per pool thread on `cfg.bind` and starts accepting. `tls_or_null`
// makes it TLS (mqtt) or WSS (mqtt_ws). Throws std::system_error (with the bind in the
// message) when the address cannot be parsed or bound: listeners start at startup only.
[[nodiscard]] listener_handle start_listener(io_pool& pool, std::size_t listener_index,
                                             const config::listener_config& cfg,
                                             std::shared_ptr<boost::asio::ssl::context> tls_or_null,
                                             accept_callback on_accept, listener_options options = {});

}  // namespace wharf::net
