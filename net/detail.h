// Internals shared by the stream implementations. Not part of the transport's API.
#pragma once

#include "net/listener.h"
#include "net/proxy_accept.h"
#include "net/stream.h"
#include "tls/tls_context.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace wharf::net::detail {

// What every stream of one listener shares: options, TLS context, callback, counters.
// Lives as long as the longest-living acceptor or handshake of the listener.
struct listener_state {
  std::size_t listener_index = 0;
  config::listener_config config;
  bool tls = false;  // TLS (mqtt) or WSS (mqtt-ws)
  accept_callback on_accept;
  listener_options options;

  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> upgrade_refused{0};
  tls::context_slot tls_context;  // empty: plain
  std::shared_ptr<const proxy_options> proxy;  // null: no PROXY header taken
  std::shared_ptr<proxy_counters> proxy_counts = std::make_shared<proxy_counters>();
};

// The queue of bytes waiting to be sent on one connection. Entries keep their storage
// (owned vector or shared encoding) until fully sent; an empty queue holds no heap memory.
class output_queue {
 public:
  void push(std::vector<std::uint8_t> bytes);
  void push(std::shared_ptr<const std::vector<std::uint8_t>> bytes);
  [[nodiscard]] bool empty() const noexcept { return bytes_ == 0; }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return bytes_; }
  // Fills `out` with the unsent bytes, oldest first; returns how many buffers it used.
  // The buffers stay valid until consume() drops them, even if more is pushed meanwhile.
  std::size_t gather(std::span<boost::asio::const_buffer> out) const noexcept;
  std::size_t gather(std::span<::iovec> out) const noexcept;
  // Copies up to `max_bytes` unsent bytes into `out` (replacing its content).
  void copy_front(std::vector<std::uint8_t>& out, std::size_t max_bytes) const;
  // Drops `n` sent bytes from the front. Releases the entry storage when empty.
  void consume(std::size_t n) noexcept;
  void clear() noexcept;

 private:
  struct entry {
    std::vector<std::uint8_t> owned;
    std::shared_ptr<const std::vector<std::uint8_t>> shared;
    [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept {
      return shared ? std::span<const std::uint8_t>(*shared) : std::span<const std::uint8_t>(owned);
    }
  };
  std::vector<entry> entries_;
  std::size_t head_ = 0;         // first unsent entry
  std::size_t head_offset_ = 0;  // bytes of entries_[head_] already sent
  std::size_t bytes_ = 0;        // unsent bytes
};

// The per-thread scratch buffer plain TCP reads go into (64 KiB, allocated on first use).
[[nodiscard]] std::span<std::uint8_t> thread_read_buffer();

// boost → std error code, keeping the category (asio / ssl / beast).
[[nodiscard]] inline std::error_code to_std(const boost::system::error_code& ec) { return ec; }

// Start the transport on a freshly accepted socket (on the socket's own thread).
void start_tcp(boost::asio::ip::tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state);
void start_tls(boost::asio::ip::tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state);
void start_ws(boost::asio::ip::tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state);
void start_wss(boost::asio::ip::tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state);

// sizeof the stream objects (for memory reports and tests).
[[nodiscard]] std::size_t sizeof_tcp_stream() noexcept;
[[nodiscard]] std::size_t sizeof_tls_stream() noexcept;
[[nodiscard]] std::size_t sizeof_ws_stream() noexcept;
[[nodiscard]] std::size_t sizeof_wss_stream() noexcept;

}  // namespace wharf::net::detail
