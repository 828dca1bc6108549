// The seam between the network transports (TCP, TLS, WebSocket, WSS) and the MQTT
// connection logic. A transport turns an accepted socket into a `stream`; the connection
// logic implements `stream_handler`. Both live on one I/O thread for their whole life:
// every method here is called on, and must be called on, that thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace wharf::net {

struct peer_info {
  std::string remote_address;   // "127.0.0.1", "::1"
  std::uint16_t remote_port = 0;
  std::size_t listener_index = 0;  // the listener's index (broker::listener_settings)
  bool tls = false;
  bool websocket = false;
  // Verified client certificate (mutual TLS): subject CN and subjectAltName DNS/email/URI entries.
  std::optional<std::string> cert_common_name;
  std::vector<std::string> cert_subject_alt_names;
};

class stream_handler {
 public:
  virtual ~stream_handler() = default;
  // Bytes arrived. `bytes` points into a per-thread buffer and is valid only during the call;
  // a handler that needs them later copies them.
  virtual void on_data(std::span<const std::uint8_t> bytes) = 0;
  // The stream has closed (peer, error, or after close()); the last call the handler gets.
  virtual void on_closed(std::error_code ec) = 0;
};

class stream {
 public:
  virtual ~stream() = default;
  // Queues bytes for sending. Everything queued in one turn of the event loop goes out
  // in one gathered write (writev / one TLS record run / one WebSocket binary message per flush;
  // [MQTT-6.0.0-2] lets packets span or share WebSocket messages).
  virtual void write(std::vector<std::uint8_t> bytes) = 0;
  // Queues bytes shared with other streams (a PUBLISH encoded once for many subscribers).
  virtual void write_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes) = 0;
  // Sends what is queued, then closes. on_closed follows.
  virtual void close() = 0;
  // Stops / resumes reading (backpressure while output is large or storage is behind).
  virtual void set_reading(bool enabled) = 0;
  [[nodiscard]] virtual std::size_t queued_output_bytes() const noexcept = 0;
  [[nodiscard]] virtual const peer_info& peer() const noexcept = 0;
  // Attaches the handler; the stream owns it and calls it until on_closed.
  virtual void set_handler(std::unique_ptr<stream_handler> handler) = 0;
};

}  // namespace wharf::net
