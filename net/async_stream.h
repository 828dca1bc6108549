// The common half of the TLS, WebSocket and WSS streams: output queue, flush, read loop,
// close and the one on_closed. These transports buffer inside themselves (OpenSSL records,
// WebSocket frames), so the thread-scratch-buffer trick of the TCP stream does not apply:
// a read must stay pending with its own buffer. Each such stream therefore owns a read
// buffer while a read is pending (i.e. while reading is enabled): read_min_bytes when idle.
//
// Derived provides (all on the stream's thread):
//   template <class H> void async_read_some_impl(boost::asio::mutable_buffer, H&&);
//   template <class H> void async_write_impl(boost::asio::const_buffer, H&&);  // all of it
//   template <class H> void async_shutdown_impl(H&&);  // TLS close_notify / WS close frame
//   void close_socket() noexcept;
//   std::error_code validate_read() const;  // after each read: WS rejects text frames
//   executor_type get_executor();
#pragma once

#include "net/detail.h"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

namespace wharf::net::detail {

// Per-connection read buffer of TLS / WebSocket streams, held while a read is pending.
// It adapts: a read that fills it makes the next one 4x larger (bulk transfer), one that
// does not drops back to the minimum (an idle connection waits with the small buffer).
inline constexpr std::size_t read_min_bytes = 512;
inline constexpr std::size_t read_max_bytes = 16 * 1024;
// Several small queued writes are copied into one buffer of at most this many bytes, so
// they become one TLS record run / one WebSocket message instead of one per write().
inline constexpr std::size_t coalesce_max_bytes = 64 * 1024;

template <class Derived>
class async_stream : public stream {
 public:
  async_stream(peer_info peer, std::chrono::milliseconds close_timeout)
      : peer_(std::move(peer)), close_timeout_(close_timeout) {}

  void write(std::vector<std::uint8_t> bytes) override {
    if (closing_ || closed_) return;
    out_.push(std::move(bytes));
    schedule_flush();
  }

  void write_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes) override {
    if (closing_ || closed_) return;
    out_.push(std::move(bytes));
    schedule_flush();
  }

  void close() override {
    if (closing_ || closed_) return;
    closing_ = true;
    // A peer that stops reading (or never answers the close) must not keep the stream:
    // flush + TLS close_notify / WebSocket close exchange get close_timeout in all.
    close_timer_ = std::make_shared<boost::asio::steady_timer>(self().get_executor(), close_timeout_);
    close_timer_->async_wait([s = self().shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) s->finish(std::make_error_code(std::errc::timed_out));
    });
    schedule_flush();  // the flush starts the shutdown once the queue is empty
  }

  void set_reading(bool enabled) override {
    reading_ = enabled;
    if (!enabled) return;
    if (held_bytes_ > 0) {
      // Bytes a read brought in while reading was off: delivered from a fresh turn, never
      // inside the handler's own call.
      boost::asio::post(self().get_executor(), [s = self().shared_from_this()] { s->deliver(); });
    } else {
      start_read();
    }
  }

  [[nodiscard]] std::size_t queued_output_bytes() const noexcept override { return out_.size_bytes(); }
  [[nodiscard]] const peer_info& peer() const noexcept override { return peer_; }

  void set_handler(std::unique_ptr<stream_handler> handler) override {
    handler_ = std::move(handler);
    if (closed_) {
      boost::asio::post(self().get_executor(), [s = self().shared_from_this()] {
        if (auto h = std::move(s->handler_)) h->on_closed(std::make_error_code(std::errc::not_connected));
      });
      return;
    }
    start_read();
  }

 protected:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
  peer_info& mutable_peer() noexcept { return peer_; }

  // The end: closes the socket, calls on_closed once, destroys the handler. Buffers that a
  // pending operation still points at are released by that operation's completion.
  void finish(std::error_code ec) {
    if (closed_) return;
    closed_ = true;
    closing_ = true;
    self().close_socket();
    if (close_timer_) {
      close_timer_->cancel();
      close_timer_.reset();
    }
    if (!write_pending_) {
      out_.clear();
      std::vector<std::uint8_t>().swap(flat_);
    }
    if (auto h = std::move(handler_)) h->on_closed(ec);
  }

 private:
  [[nodiscard]] bool can_read() const noexcept { return handler_ && reading_ && !closing_ && !closed_; }

  void start_read() {
    if (read_pending_ || held_bytes_ > 0 || !can_read()) return;
    if (!rbuf_) rbuf_ = std::make_unique_for_overwrite<std::uint8_t[]>(rbuf_size_);
    read_pending_ = true;
    self().async_read_some_impl(
        boost::asio::mutable_buffer(rbuf_.get(), rbuf_size_),
        [s = self().shared_from_this()](const boost::system::error_code& ec, std::size_t n) { s->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    read_pending_ = false;
    if (closed_) {
      rbuf_.reset();
      return;
    }
    if (ec) {
      rbuf_.reset();
      // While we close, the peer answering our close (close_notify, close frame, FIN) is
      // the expected end; the shutdown operation reports it, unless it never started.
      if (closing_ && shutdown_started_) return;
      finish(closing_ ? std::error_code{} : to_std(ec));
      return;
    }
    if (auto bad = self().validate_read()) {
      rbuf_.reset();
      finish(bad);
      return;
    }
    // The read cannot be withdrawn when reading is switched off, so what it brought is
    // held in rbuf_ until set_reading(true).
    held_bytes_ = static_cast<std::uint32_t>(n);
    deliver();
  }

  void deliver() {
    if (closing_ || closed_) {
      held_bytes_ = 0;
      if (!read_pending_) rbuf_.reset();
      return;
    }
    if (!can_read()) return;  // reading is off: keep the bytes
    std::uint32_t n = held_bytes_;
    held_bytes_ = 0;
    if (n > 0) handler_->on_data(std::span<const std::uint8_t>(rbuf_.get(), n));
    if (read_pending_) return;  // the handler switched reading off and on inside on_data
    std::uint32_t next_size = n == rbuf_size_ ? std::min<std::uint32_t>(rbuf_size_ * 4, read_max_bytes)
                                              : static_cast<std::uint32_t>(read_min_bytes);
    if (next_size != rbuf_size_) {
      rbuf_.reset();
      rbuf_size_ = next_size;
    }
    if (can_read()) {
      start_read();
    } else {
      rbuf_.reset();
    }
  }

  void schedule_flush() {
    if (flush_posted_ || write_pending_ || closed_) return;
    flush_posted_ = true;
    boost::asio::post(self().get_executor(), [s = self().shared_from_this()] {
      s->flush_posted_ = false;
      s->flush();
    });
  }

  void flush() {
    if (closed_ || write_pending_) return;
    if (out_.empty()) {
      if (closing_) start_shutdown();
      return;
    }
    std::array<boost::asio::const_buffer, 2> front;
    std::size_t count = out_.gather(front);
    boost::asio::const_buffer buf = front[0];
    if (count > 1 && buf.size() < coalesce_max_bytes / 4) {
      out_.copy_front(flat_, coalesce_max_bytes);
      buf = boost::asio::const_buffer(flat_.data(), flat_.size());
    }
    write_pending_ = true;
    self().async_write_impl(buf, [s = self().shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
      s->on_written(ec, n);
    });
  }

  void on_written(const boost::system::error_code& ec, std::size_t n) {
    write_pending_ = false;
    std::vector<std::uint8_t>().swap(flat_);
    if (closed_) {
      out_.clear();
      return;
    }
    if (ec) {
      finish(to_std(ec));
      return;
    }
    out_.consume(n);
    flush();  // what was queued while this write was in flight
  }

  void start_shutdown() {
    if (shutdown_started_) return;
    shutdown_started_ = true;
    self().async_shutdown_impl([s = self().shared_from_this()](const boost::system::error_code&) { s->finish({}); });
  }

  peer_info peer_;
  std::unique_ptr<stream_handler> handler_;
  output_queue out_;
  std::vector<std::uint8_t> flat_;          // coalesced write, only while a write is in flight
  std::unique_ptr<std::uint8_t[]> rbuf_;    // rbuf_size_ bytes, only while a read is pending
  std::shared_ptr<boost::asio::steady_timer> close_timer_;  // only while closing
  std::chrono::milliseconds close_timeout_;
  std::uint32_t rbuf_size_ = read_min_bytes;
  std::uint32_t held_bytes_ = 0;  // read while reading was off, waiting in rbuf_
  bool reading_ = true;
  bool read_pending_ = false;
  bool flush_posted_ = false;
  bool write_pending_ = false;
  bool closing_ = false;
  bool shutdown_started_ = false;
  bool closed_ = false;
};

}  // namespace wharf::net::detail
