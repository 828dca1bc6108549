// MQTT over TLS: OpenSSL on the socket itself, driven by readiness waits.
//
// boost::asio::ssl::stream keeps, per connection and for its whole life, two 17 KiB transfer
// vectors and a BIO pair whose two 17 KiB buffers are allocated on first use: ~68 KiB before
// OpenSSL's own state. Here OpenSSL reads and writes the non-blocking socket directly
// (SSL_set_fd); an operation that cannot go on (SSL_ERROR_WANT_READ / WANT_WRITE) waits for
// the socket with async_wait and is called again with the same arguments, as OpenSSL asks.
// With SSL_MODE_RELEASE_BUFFERS (tls module) an idle connection then holds no record buffer:
// what remains is the SSL object and the 512-byte read buffer of async_stream.
//
// WebSocket over TLS keeps asio::ssl::stream (Beast needs an asio stream below it).
#include "core/log.h"
#include "net/async_stream.h"
#include "tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/error.hpp>

#include <cerrno>

namespace wharf::net::detail {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct ssl_deleter {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};

// What a failed SSL call means for the stream, as asio::ssl::stream reports it.
boost::system::error_code failure_of(int ssl_error) {
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      return asio::error::eof;
    case SSL_ERROR_SYSCALL: {
      const unsigned long queued = ERR_get_error();
      if (queued != 0) return {static_cast<int>(queued), asio::error::get_ssl_category()};
      // No OpenSSL error and no errno: the peer closed the TCP connection without close_notify.
      if (errno == 0) return asio::ssl::error::stream_truncated;
      return {errno, boost::system::system_category()};
    }
    default: {
      const unsigned long queued = ERR_get_error();
      if (queued == 0) return asio::ssl::error::unexpected_result;
      return {static_cast<int>(queued), asio::error::get_ssl_category()};
    }
  }
}

class tls_stream final : public async_stream<tls_stream>, public std::enable_shared_from_this<tls_stream> {
 public:
  using executor_type = tcp::socket::executor_type;

  tls_stream(tcp::socket socket, SSL_CTX* ctx, peer_info peer, std::chrono::milliseconds close_timeout)
      : async_stream(std::move(peer), close_timeout), socket_(std::move(socket)), ssl_(SSL_new(ctx)) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    if (!ssl_ || ec || SSL_set_fd(ssl_.get(), socket_.native_handle()) != 1) {
      ERR_clear_error();
      ssl_.reset();  // handshake() reports it
      return;
    }
    SSL_set_accept_state(ssl_.get());
  }

  // TLS handshake bounded by the listener's handshake timeout, then the accept callback.
  void handshake(const std::shared_ptr<listener_state>& state) {
    if (!ssl_) {
      state->handshake_failures.fetch_add(1, std::memory_order_relaxed);
      log::mqtt().warn("tls: cannot set up a TLS session for {}:{}", peer().remote_address, peer().remote_port);
      close_socket();
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(get_executor(), state->options.handshake_timeout);
    timer->async_wait([s = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) s->close_socket();  // the pending wait ends with operation_aborted
    });
    drive([this] { return SSL_do_handshake(ssl_.get()); },
          [s = shared_from_this(), timer, state](const boost::system::error_code& ec, std::size_t) {
            timer->cancel();
            if (ec) {
              state->handshake_failures.fetch_add(1, std::memory_order_relaxed);
              log::mqtt().debug("tls handshake from {}:{} failed: {}", s->peer().remote_address, s->peer().remote_port,
                            ec.message());
              s->close_socket();
              return;
            }
            s->record_identity();
            state->on_accept(s);
          });
  }

  template <class H>
  void async_read_some_impl(asio::mutable_buffer buf, H&& handler) {
    drive(
        [this, buf] {
          std::size_t n = 0;
          return SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &n) == 1 ? static_cast<int>(n) : 0;
        },
        std::forward<H>(handler));
  }
  // SSL_write_ex without SSL_MODE_ENABLE_PARTIAL_WRITE: done means all of `buf` is written.
  template <class H>
  void async_write_impl(asio::const_buffer buf, H&& handler) {
    drive(
        [this, buf] {
          std::size_t n = 0;
          return SSL_write_ex(ssl_.get(), buf.data(), buf.size(), &n) == 1 ? static_cast<int>(n) : 0;
        },
        std::forward<H>(handler));
  }
  // Sends close_notify and waits (within async_stream's close timeout) for the peer's.
  template <class H>
  void async_shutdown_impl(H&& handler) {
    drive([this] { return shutdown_step(); },
          [handler = std::forward<H>(handler)](const boost::system::error_code& ec, std::size_t) mutable { handler(ec); });
  }
  void close_socket() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  [[nodiscard]] std::error_code validate_read() const noexcept { return {}; }
  executor_type get_executor() { return socket_.get_executor(); }

 private:
  // Calls `attempt` (an SSL call's result: > 0 done with that many bytes, else failed) until
  // it is done or fails for good, waiting for the socket in between. The first call runs at
  // once; its completion is posted, so a handler never runs inside the call that started it.
  template <class Attempt, class H>
  void drive(Attempt attempt, H&& handler, bool first = true) {
    ERR_clear_error();
    errno = 0;
    const int r = attempt();
    boost::system::error_code ec;
    if (r <= 0) {
      const int e = SSL_get_error(ssl_.get(), r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        socket_.async_wait(e == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write,
                           [s = shared_from_this(), attempt = std::move(attempt),
                            handler = std::forward<H>(handler)](const boost::system::error_code& wait_ec) mutable {
                             if (wait_ec) {
                               handler(wait_ec, 0);
                               return;
                             }
                             s->drive(std::move(attempt), std::move(handler), false);
                           });
        return;
      }
      ec = failure_of(e);
    }
    const std::size_t n = r > 0 ? static_cast<std::size_t>(r) : 0;
    if (first) {
      asio::post(get_executor(), [ec, n, handler = std::forward<H>(handler)]() mutable { handler(ec, n); });
    } else {
      handler(ec, n);
    }
  }

  // One step of the close: our close_notify out (SSL_shutdown returns 0 once it is, or 1 if
  // the peer's came first), then the peer's awaited by reading; its data, if any, is dropped.
  int shutdown_step() {
    if (!close_notify_sent_) {
      const int r = SSL_shutdown(ssl_.get());
      if (r != 0) return r;
      close_notify_sent_ = true;
    }
    char discard[256];
    std::size_t n = 0;
    while (SSL_read_ex(ssl_.get(), discard, sizeof discard, &n) == 1) {
    }
    return (SSL_get_shutdown(ssl_.get()) & SSL_RECEIVED_SHUTDOWN) != 0 ? 1 : 0;
  }

  void record_identity() {
    auto id = tls::identity_of(ssl_.get());
    mutable_peer().cert_common_name = std::move(id.common_name);
    mutable_peer().cert_subject_alt_names = std::move(id.subject_alt_names);
  }

  tcp::socket socket_;
  std::unique_ptr<SSL, ssl_deleter> ssl_;  // reads and writes socket_'s descriptor, never closes it
  bool close_notify_sent_ = false;
};

}  // namespace

void start_tls(tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state) {
  peer.tls = true;
  auto s = std::make_shared<tls_stream>(std::move(socket), state->tls_context.get()->native_handle(), std::move(peer),
                                        state->options.close_timeout);
  s->handshake(state);
}

std::size_t sizeof_tls_stream() noexcept { return sizeof(tls_stream); }

}  // namespace wharf::net::detail
