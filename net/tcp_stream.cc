// Plain TCP stream. Holds no read buffer while idle: it waits for readability, then reads
// non-blocking into the thread's scratch buffer until the socket would block, handing each
// chunk to the handler. Writes go out with non-blocking sendmsg (gathered, up to 64
// buffers per call); only when the socket is full does it wait for writability.
//
// Asio registers sockets edge-triggered (EPOLLET), and async_wait never reads
// speculatively, so a wait is only armed after a read saw EWOULDBLOCK; whenever reading
// starts or resumes without that (set_handler, set_reading(true)), a read is tried first.
#include "net/detail.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <cerrno>

#include <sys/socket.h>

namespace wharf::net::detail {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Reads per readiness before yielding to other connections of the thread (64 KiB each).
constexpr int reads_per_turn = 16;
// Buffers per sendmsg (Linux IOV_MAX is 1024); the vector lives on the stack during flush.
constexpr std::size_t iov_max = 512;

// Drains that close_drain cut short, all listeners together (tcp_drains_cut()).
std::atomic<std::uint64_t> drains_cut{0};

class tcp_stream final : public stream, public std::enable_shared_from_this<tcp_stream> {
 public:
  tcp_stream(tcp::socket socket, peer_info peer, std::chrono::milliseconds close_timeout,
             std::chrono::milliseconds close_drain)
      : socket_(std::move(socket)),
        peer_(std::move(peer)),
        close_timeout_ms_(static_cast<std::uint32_t>(close_timeout.count())),
        close_drain_ms_(static_cast<std::uint32_t>(close_drain.count())) {}

  void init() {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) closed_ = true;  // cannot happen on a fresh socket; if it does, the stream is dead
  }

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
    // A peer that stops reading must not keep the stream: the flush gets close_timeout.
    close_timer_ = std::make_shared<asio::steady_timer>(socket_.get_executor());
    arm_close_timer(std::chrono::milliseconds(close_timeout_ms_));
    // Always through a posted flush (or the pending writability wait): on_closed never
    // runs inside a call the handler made.
    schedule_flush();
  }

  void set_reading(bool enabled) override {
    reading_ = enabled;
    if (enabled && !read_waiting_) schedule_read();
  }

  [[nodiscard]] std::size_t queued_output_bytes() const noexcept override { return out_.size_bytes(); }
  [[nodiscard]] const peer_info& peer() const noexcept override { return peer_; }

  void set_handler(std::unique_ptr<stream_handler> handler) override {
    handler_ = std::move(handler);
    if (closed_) {
      // Died before the handler arrived: it still gets its one on_closed.
      asio::post(socket_.get_executor(), [self = shared_from_this()] {
        if (auto h = std::move(self->handler_)) h->on_closed(std::make_error_code(std::errc::not_connected));
      });
      return;
    }
    schedule_read();
  }

 private:
  [[nodiscard]] bool can_read() const noexcept { return handler_ && reading_ && !closing_ && !closed_; }

  void schedule_read() {
    if (read_posted_ || read_waiting_ || !can_read()) return;
    read_posted_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->read_posted_ = false;
      // A wait armed since (the read that was under way when reading resumed went on to
      // EWOULDBLOCK) reads when data comes: a second one would be a second handler held
      // by every idle connection.
      if (self->read_waiting_) return;
      self->read_available();
    });
  }

  // Reads what the kernel has, until it would block (then arms a wait) or the turn's
  // budget is used (then posts itself again, letting other connections run).
  void read_available() {
    if (!can_read()) return;
    auto buffer = thread_read_buffer();
    for (int i = 0; i < reads_per_turn; ++i) {
      boost::system::error_code ec;
      std::size_t n = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        wait_readable();
        return;
      }
      if (ec) {
        finish(to_std(ec));
        return;
      }
      handler_->on_data(std::span<const std::uint8_t>(buffer.data(), n));
      if (!can_read()) return;
    }
    schedule_read();
  }

  void wait_readable() {
    read_waiting_ = true;
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
      self->read_waiting_ = false;
      if (self->closed_) return;
      if (ec) {
        self->finish(to_std(ec));
        return;
      }
      self->read_available();
    });
  }

  void schedule_flush() {
    if (flush_posted_ || write_waiting_ || closed_) return;
    flush_posted_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->flush();
    });
  }

  void flush() {
    if (closed_ || write_waiting_) return;
    // Asio's gathered send stops at 64 buffers; a turn may queue hundreds of small packets
    // (PUBACKs, fan-out), so call sendmsg directly with a larger vector.
    std::array<::iovec, iov_max> iov;
    while (!out_.empty()) {
      ::msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = out_.gather(std::span<::iovec>(iov));
      ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL);
      if (n < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) {
          wait_writable();
          return;
        }
        finish(std::error_code(err, std::system_category()));
        return;
      }
      out_.consume(static_cast<std::size_t>(n));
    }
    if (closing_) graceful_close();
  }

  void wait_writable() {
    write_waiting_ = true;
    socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](const boost::system::error_code& ec) {
      self->write_waiting_ = false;
      if (self->closed_) return;
      if (ec) {
        self->finish(to_std(ec));
        return;
      }
      self->flush();
    });
  }

  // Ends the stream with errc::timed_out `after` from now, unless it ends before.
  void arm_close_timer(std::chrono::milliseconds after) {
    close_timer_->expires_after(after);  // a wait armed before completes as cancelled
    close_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (self->draining_) drains_cut.fetch_add(1, std::memory_order_relaxed);
      self->finish(std::make_error_code(std::errc::timed_out));
    });
  }

  // Everything queued is sent. Closing now, with input unread, would send a RST, which can
  // destroy what we just sent (a DISCONNECT and its reason) before the peer reads it, and
  // makes the peer's next write fail. So the peer gets a FIN instead, and what it still
  // sends (a client pipelining publishes behind the one that ended it) is read and dropped
  // until it closes too, or close_drain passes.
  //
  // The handler's part is over once the FIN is out: it gets on_closed now, and the stream
  // drains on its own, kept alive only by its waits, so that a drain still under way when
  // the I/O threads stop holds nothing of theirs (the handler holds the stream: the two
  // would keep each other alive).
  void graceful_close() {
    if (draining_) return;
    draining_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    if (auto h = std::move(handler_)) h->on_closed({});
    arm_close_timer(std::chrono::milliseconds(close_drain_ms_));
    drain();
  }

  void drain() {
    if (closed_) return;
    auto buffer = thread_read_buffer();
    for (int i = 0; i < reads_per_turn; ++i) {
      boost::system::error_code ec;
      socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const boost::system::error_code& e) {
          if (self->closed_) return;
          if (e) return self->finish({});
          self->drain();
        });
        return;
      }
      if (ec) return finish({});  // end of file: the peer has closed too
    }
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->drain(); });
  }

  // The end: closes the socket, calls on_closed once, destroys the handler. Only ever
  // called from a completion handler, never from inside a call the handler made.
  void finish(std::error_code ec) {
    if (closed_) return;
    closed_ = true;
    closing_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (close_timer_) {
      close_timer_->cancel();
      close_timer_.reset();
    }
    out_.clear();
    if (auto h = std::move(handler_)) h->on_closed(ec);
  }

  tcp::socket socket_;
  peer_info peer_;
  std::unique_ptr<stream_handler> handler_;
  output_queue out_;
  std::shared_ptr<asio::steady_timer> close_timer_;  // only while closing
  std::uint32_t close_timeout_ms_;  // listener_options (milliseconds, kept small: one per connection)
  std::uint32_t close_drain_ms_;
  bool reading_ = true;
  bool read_posted_ = false;
  bool read_waiting_ = false;
  bool flush_posted_ = false;
  bool write_waiting_ = false;
  bool closing_ = false;
  bool draining_ = false;  // graceful_close has begun
  bool closed_ = false;
};

}  // namespace

void start_tcp(tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state) {
  auto s = std::make_shared<tcp_stream>(std::move(socket), std::move(peer), state->options.close_timeout,
                                        state->options.close_drain);
  s->init();
  state->on_accept(std::move(s));
}

std::size_t sizeof_tcp_stream() noexcept { return sizeof(tcp_stream); }

}  // namespace wharf::net::detail

namespace wharf::net {

std::uint64_t tcp_drains_cut() noexcept { return detail::drains_cut.load(std::memory_order_relaxed); }

}  // namespace wharf::net
