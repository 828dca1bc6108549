// TLS over TCP with boost::asio::ssl::stream. The tls module sets SSL_MODE_RELEASE_BUFFERS,
// so OpenSSL's own record buffers are freed while idle, but asio's ssl::stream keeps, per
// connection and for its whole life, two 17 KiB transfer vectors (stream_core) and a BIO
// pair with two 17 KiB buffers: ~68 KiB before OpenSSL's SSL object. Measured idle cost
// (process_test.cc): ~86 KB per connection. Getting to a few KB needs a TLS engine driven
// by us (SSL over the socket or small memory BIOs, in tls/), not asio::ssl::stream.
#include "gateway/mqtt/transport/async_stream.h"
#include "tls/tls_context.h"

#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace wharf::gateway::detail {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class tls_stream final : public async_stream<tls_stream>, public std::enable_shared_from_this<tls_stream> {
 public:
  using executor_type = tcp::socket::executor_type;

  tls_stream(tcp::socket socket, asio::ssl::context& ctx, peer_info peer, std::chrono::milliseconds close_timeout)
      : async_stream(std::move(peer), close_timeout), ssl_(std::move(socket), ctx) {}

  // TLS handshake bounded by the listener's handshake timeout, then the accept callback.
  void handshake(const std::shared_ptr<listener_state>& state) {
    auto timer = std::make_shared<asio::steady_timer>(get_executor(), state->options.handshake_timeout);
    timer->async_wait([s = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) s->close_socket();  // the handshake fails with operation_aborted
    });
    ssl_.async_handshake(asio::ssl::stream_base::server,
                         [s = shared_from_this(), timer, state](const boost::system::error_code& ec) {
                           timer->cancel();
                           if (ec) {
                             state->handshake_failures.fetch_add(1, std::memory_order_relaxed);
                             spdlog::debug("tls handshake from {}:{} failed: {}", s->peer().remote_address,
                                           s->peer().remote_port, ec.message());
                             s->close_socket();
                             return;
                           }
                           s->record_identity();
                           state->on_accept(s);
                         });
  }

  template <class H>
  void async_read_some_impl(asio::mutable_buffer buf, H&& handler) {
    ssl_.async_read_some(buf, std::forward<H>(handler));
  }
  template <class H>
  void async_write_impl(asio::const_buffer buf, H&& handler) {
    asio::async_write(ssl_, buf, std::forward<H>(handler));
  }
  template <class H>
  void async_shutdown_impl(H&& handler) {
    ssl_.async_shutdown(std::forward<H>(handler));
  }
  void close_socket() noexcept {
    boost::system::error_code ignored;
    ssl_.lowest_layer().close(ignored);
  }
  [[nodiscard]] std::error_code validate_read() const noexcept { return {}; }
  executor_type get_executor() { return ssl_.get_executor(); }

 private:
  void record_identity() {
    auto id = tls::identity_of(ssl_.native_handle());
    mutable_peer().cert_common_name = std::move(id.common_name);
    mutable_peer().cert_subject_alt_names = std::move(id.subject_alt_names);
  }

  asio::ssl::stream<tcp::socket> ssl_;
};

}  // namespace

void start_tls(tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state) {
  peer.tls = true;
  auto s = std::make_shared<tls_stream>(std::move(socket), *state->tls, std::move(peer),
                                        state->options.close_timeout);
  s->handshake(state);
}

std::size_t sizeof_tls_stream() noexcept { return sizeof(tls_stream); }

}  // namespace wharf::gateway::detail
