#include "bench/client.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "gateway/mqtt/protocol/codec.h"
#include "tls/tls_context.h"

namespace wharf::bench {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

asio::awaitable<void> event::wait() {
  boost::system::error_code ec;
  co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

client::client(asio::io_context& io, mqtt::protocol_version version, std::size_t read_buffer_bytes)
    : socket_(io),
      version_(version),
      read_buffer_bytes_(read_buffer_bytes),
      write_ready_(io.get_executor()),
      drained_(io.get_executor()),
      connack_(io.get_executor()),
      ping_timer_(io) {}

asio::awaitable<std::error_code> client::open(tcp::endpoint broker, std::optional<asio::ip::address> source,
                                              mqtt::connect_packet connect,
                                              std::chrono::steady_clock::duration timeout) {
  auto self = shared_from_this();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  boost::system::error_code ec;
  socket_.open(broker.protocol(), ec);
  if (ec) co_return ec;
  if (source) {
#ifdef IP_BIND_ADDRESS_NO_PORT
    // Let connect() pick the port per (source, destination) pair: more than 64k
    // connections over several source addresses.
    const int one = 1;
    ::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    socket_.bind(tcp::endpoint(*source, 0), ec);
    if (ec) co_return ec;
  }
  // The deadline covers TCP connect and CONNACK: closing the socket ends both waits.
  asio::steady_timer watchdog(socket_.get_executor());
  watchdog.expires_at(deadline);
  watchdog.async_wait([self](boost::system::error_code wec) {
    if (!wec && !self->connacked_) self->close(std::make_error_code(std::errc::timed_out));
  });
  auto [cec] = co_await socket_.async_connect(broker, use_tuple);
  if (cec) {
    watchdog.cancel();
    co_return close_reason_ ? close_reason_ : std::error_code(cec);
  }
  socket_.set_option(tcp::no_delay(true), ec);
  if (tls_context_) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *tls_context_);
    tls::set_server_name(tls_->native_handle(), server_name_);
    tls_->set_verify_callback(asio::ssl::host_name_verification(server_name_));
    auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (hec) {
      watchdog.cancel();
      co_return close_reason_ ? close_reason_ : std::error_code(hec);
    }
  }
  open_ = true;
  asio::co_spawn(socket_.get_executor(), read_loop(read_buffer_bytes_), asio::detached);
  asio::co_spawn(socket_.get_executor(), write_loop(), asio::detached);
  const auto keep_alive = std::chrono::seconds(connect.keep_alive_s);
  send(connect);
  while (open_ && !connacked_) co_await connack_.wait();
  watchdog.cancel();
  if (!connacked_) co_return close_reason_ ? close_reason_ : std::make_error_code(std::errc::connection_aborted);
  if (connack_error_) {
    close(connack_error_);
    co_return connack_error_;
  }
  if (keep_alive.count() > 0) asio::co_spawn(socket_.get_executor(), ping_loop(keep_alive * 3 / 4), asio::detached);
  co_return std::error_code{};
}

void client::send(const mqtt::packet& p) {
  if (!open_) return;
  const bool was_empty = out_.empty();
  mqtt::encode(p, version_, out_);
  if (was_empty && !writing_now_) write_ready_.notify();
}

asio::awaitable<void> client::wait_queue_below(std::size_t bytes) {
  while (open_ && out_.size() >= bytes) co_await drained_.wait();
}

asio::awaitable<void> client::disconnect() {
  if (!open_) co_return;
  auto self = shared_from_this();
  send(mqtt::disconnect_packet{});
  asio::steady_timer poll(socket_.get_executor());
  for (int i = 0; i < 20 && open_ && (writing_now_ || !out_.empty()); ++i) {
    poll.expires_after(std::chrono::milliseconds(10));
    co_await poll.async_wait(use_tuple);
  }
  close();
}

void client::close(std::error_code reason) {
  if (reason && !close_reason_) close_reason_ = reason;
  const bool was_open = open_;
  open_ = false;
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  ping_timer_.cancel();
  write_ready_.notify();
  drained_.notify();
  connack_.notify();
  if (was_open && on_close_) on_close_();
}

asio::awaitable<void> client::read_loop(std::size_t buffer_bytes) {
  auto self = shared_from_this();
  std::vector<std::uint8_t> buffer(buffer_bytes);
  while (open_) {
    // if/else, not ?: inside co_await: GCC 12 mishandles the temporaries of a conditional
    // operand of co_await.
    std::tuple<boost::system::error_code, std::size_t> result;
    if (tls_)
      result = co_await tls_->async_read_some(asio::buffer(buffer), use_tuple);
    else
      result = co_await socket_.async_read_some(asio::buffer(buffer), use_tuple);
    auto [ec, n] = result;
    if (ec) {
      if (open_) close(ec);
      co_return;
    }
    const auto status = framer_.feed(std::span<const std::uint8_t>(buffer.data(), n),
                                     [this](const mqtt::fixed_header& h, std::span<const std::uint8_t> body) {
                                       auto r = mqtt::decode(h, body, version_);
                                       if (!r.ok()) {
                                         close(mqtt::make_error_code(r.error));
                                         return false;
                                       }
                                       dispatch(r.value);
                                       return open_;
                                     });
    if (status != mqtt::framer::status::ok) close(mqtt::make_error_code(mqtt::reason_code::malformed_packet));
  }
}

void client::dispatch(mqtt::packet& p) {
  if (auto* ack = std::get_if<mqtt::connack_packet>(&p)) {
    connacked_ = true;
    session_present_ = ack->session_present;
    if (ack->props.receive_maximum) server_receive_maximum_ = *ack->props.receive_maximum;
    if (mqtt::is_error(ack->reason)) connack_error_ = mqtt::make_error_code(ack->reason);
    connack_.notify();
    return;
  }
  if (std::holds_alternative<mqtt::pingresp_packet>(p)) return;
  if (auto* d = std::get_if<mqtt::disconnect_packet>(&p)) {
    close(mqtt::make_error_code(d->reason == mqtt::reason_code::success ? mqtt::reason_code::unspecified_error
                                                                        : d->reason));
    return;
  }
  if (handler_) handler_(p);
}

asio::awaitable<void> client::write_loop() {
  auto self = shared_from_this();
  while (open_) {
    if (out_.empty()) {
      co_await write_ready_.wait();
      continue;
    }
    writing_.swap(out_);
    writing_now_ = true;
    std::tuple<boost::system::error_code, std::size_t> result;  // if/else: see read_loop
    if (tls_)
      result = co_await asio::async_write(*tls_, asio::buffer(writing_), use_tuple);
    else
      result = co_await asio::async_write(socket_, asio::buffer(writing_), use_tuple);
    auto [ec, n] = result;
    writing_now_ = false;
    writing_.clear();
    if (ec) {
      if (open_) close(ec);
      co_return;
    }
    drained_.notify();
  }
}

asio::awaitable<void> client::ping_loop(std::chrono::seconds interval) {
  auto self = shared_from_this();
  while (open_) {
    ping_timer_.expires_after(interval);
    auto [ec] = co_await ping_timer_.async_wait(use_tuple);
    if (ec || !open_) co_return;
    send(mqtt::pingreq_packet{});
  }
}

}  // namespace wharf::bench
