// One MQTT client connection for wharf-bench, driven by Asio coroutines on one io_context
// (no locking: every member is touched only from that io_context's thread). Encoding and
// decoding go through the broker's own codec (gateway/mqtt/protocol).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/mqtt/protocol/framer.h"
#include "gateway/mqtt/protocol/packets.h"

namespace wharf::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A wake-up for one coroutine waiting on a condition. The waiter re-checks its condition
// in a loop around wait(); notify() never gets lost because checking and starting the wait
// happen in one step on the single thread.
class event {
 public:
  // The timer never expires; notify() cancels every pending wait, so several coroutines
  // may wait at once.
  explicit event(asio::any_io_executor ex) : timer_(std::move(ex)) {
    timer_.expires_at(std::chrono::steady_clock::time_point::max());
  }
  asio::awaitable<void> wait();
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

class client : public std::enable_shared_from_this<client> {
 public:
  // Receives every packet except CONNACK and PINGRESP, which the client handles itself.
  using packet_handler = std::function<void(mqtt::packet&)>;

  // `read_buffer_bytes`: per-connection read buffer; small for many idle connections.
  client(asio::io_context& io, mqtt::protocol_version version, std::size_t read_buffer_bytes);

  // Before open(): speak MQTT over TLS, verifying the broker's certificate against
  // `context` for `server_name` (a host name is also sent as SNI).
  void use_tls(std::shared_ptr<asio::ssl::context> context, std::string server_name) {
    tls_context_ = std::move(context);
    server_name_ = std::move(server_name);
  }

  void set_handler(packet_handler h) { handler_ = std::move(h); }
  // Called once when the connection closes, for whatever reason.
  void set_close_handler(std::function<void()> h) { on_close_ = std::move(h); }

  // TCP connect (bound to `source` first when given), the TLS handshake with use_tls(),
  // CONNECT, wait for CONNACK. Starts
  // the reader, the writer and keep-alive pings (every 3/4 of connect.keep_alive_s).
  // Returns success, a socket error, timed_out, or the CONNACK reason code as an error.
  asio::awaitable<std::error_code> open(tcp::endpoint broker, std::optional<asio::ip::address> source,
                                        mqtt::connect_packet connect, std::chrono::steady_clock::duration timeout);

  // Encodes `p` into the output queue; the writer sends everything queued in one write.
  void send(const mqtt::packet& p);
  // Backpressure for unpaced senders: returns once fewer than `bytes` are queued.
  asio::awaitable<void> wait_queue_below(std::size_t bytes);
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return out_.size(); }

  // Sends DISCONNECT (when open) and closes once it is written, or after 200 ms.
  asio::awaitable<void> disconnect();
  void close(std::error_code reason = {});

  [[nodiscard]] bool is_open() const noexcept { return open_; }
  [[nodiscard]] bool session_present() const noexcept { return session_present_; }
  // v5 CONNACK Receive Maximum: QoS 1/2 PUBLISHes the broker accepts unacknowledged.
  // Default: 65535 (also for 3.1.1, which has no such limit).
  [[nodiscard]] std::uint16_t server_receive_maximum() const noexcept { return server_receive_maximum_; }
  // Why the connection closed; empty while open or after a local close().
  [[nodiscard]] std::error_code close_reason() const noexcept { return close_reason_; }
  [[nodiscard]] mqtt::protocol_version version() const noexcept { return version_; }
  [[nodiscard]] asio::any_io_executor socket_executor() { return socket_.get_executor(); }

 private:
  asio::awaitable<void> read_loop(std::size_t buffer_bytes);
  asio::awaitable<void> write_loop();
  asio::awaitable<void> ping_loop(std::chrono::seconds interval);
  void dispatch(mqtt::packet& p);

  tcp::socket socket_;
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::string server_name_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;  // over socket_, with use_tls()
  mqtt::protocol_version version_;
  std::size_t read_buffer_bytes_;
  mqtt::framer framer_{256 * 1024 * 1024};
  packet_handler handler_;
  std::function<void()> on_close_;
  std::vector<std::uint8_t> out_;
  std::vector<std::uint8_t> writing_;
  event write_ready_;  // out_ became non-empty, or closing
  event drained_;      // a write finished, or closing
  event connack_;      // CONNACK arrived, or closing
  asio::steady_timer ping_timer_;
  bool open_ = false;
  bool writing_now_ = false;
  bool connacked_ = false;
  bool session_present_ = false;
  std::uint16_t server_receive_maximum_ = 65535;
  std::error_code connack_error_;
  std::error_code close_reason_;
};

}  // namespace wharf::bench
