// WebSocket (over TCP) and WSS (over TLS) streams, Boost.Beast. The HTTP upgrade is read
// by a short-lived `upgrade` object (request buffer + parser + handshake timer) that is
// gone once the stream is handed to the accept callback.
//
// [MQTT-6.0.0-1] MQTT Control Packets MUST be sent in WebSocket binary data frames; any
// other data frame → close. [MQTT-6.0.0-2] packets may span frames and a frame may hold
// several packets: bytes are passed to on_data as they come, frame boundaries ignored.
// [MQTT-6.0.0-4] the server selects "mqtt" when offered ("mqttv3.1" for old clients).
#include "core/log.h"
#include "net/async_stream.h"
#include "tls/tls_context.h"

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <string_view>
#include <type_traits>

namespace wharf::net::detail {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using ssl_socket = asio::ssl::stream<tcp::socket>;

template <class Next>
class ws_stream final : public async_stream<ws_stream<Next>>, public std::enable_shared_from_this<ws_stream<Next>> {
  using base = async_stream<ws_stream<Next>>;

 public:
  using executor_type = tcp::socket::executor_type;
  static constexpr bool is_tls = std::is_same_v<Next, ssl_socket>;

  template <class... NextArgs>
  ws_stream(peer_info peer, std::chrono::milliseconds close_timeout, NextArgs&&... next_args)
      : base(std::move(peer), close_timeout), ws_(std::forward<NextArgs>(next_args)...) {}

  websocket::stream<Next>& ws() noexcept { return ws_; }

  template <class H>
  void async_read_some_impl(asio::mutable_buffer buf, H&& handler) {
    ws_.async_read_some(buf, std::forward<H>(handler));
  }
  // One binary message per flush (all that was queued, coalesced).
  template <class H>
  void async_write_impl(asio::const_buffer buf, H&& handler) {
    ws_.async_write(buf, std::forward<H>(handler));
  }
  template <class H>
  void async_shutdown_impl(H&& handler) {
    ws_.async_close(websocket::close_code::normal, std::forward<H>(handler));
  }
  void close_socket() noexcept {
    boost::system::error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
  }
  [[nodiscard]] std::error_code validate_read() const noexcept {
    if (!ws_.got_binary()) return std::make_error_code(std::errc::protocol_error);  // [MQTT-6.0.0-1]
    return {};
  }
  executor_type get_executor() { return ws_.get_executor(); }

  void record_identity() {
    if constexpr (is_tls) {
      auto id = tls::identity_of(ws_.next_layer().native_handle());
      this->mutable_peer().cert_common_name = std::move(id.common_name);
      this->mutable_peer().cert_subject_alt_names = std::move(id.subject_alt_names);
    }
  }

 private:
  websocket::stream<Next> ws_;
};

// "mqtt" if offered, else "mqttv3.1" if offered, else empty (no subprotocol in the answer).
std::string_view choose_subprotocol(std::string_view offered) {
  bool v31 = false;
  while (!offered.empty()) {
    auto comma = offered.find(',');
    auto token = offered.substr(0, comma);
    offered = comma == std::string_view::npos ? std::string_view{} : offered.substr(comma + 1);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (token == "mqtt") return "mqtt";
    if (token == "mqttv3.1") v31 = true;
  }
  return v31 ? "mqttv3.1" : "";
}

template <class Next>
class upgrade : public std::enable_shared_from_this<upgrade<Next>> {
 public:
  upgrade(std::shared_ptr<ws_stream<Next>> stream, std::shared_ptr<listener_state> state)
      : stream_(std::move(stream)),
        state_(std::move(state)),
        timer_(stream_->get_executor()),
        buffer_(state_->options.max_upgrade_request_bytes) {
    parser_.header_limit(static_cast<std::uint32_t>(state_->options.max_upgrade_request_bytes));
  }

  void start() {
    timer_.expires_after(state_->options.handshake_timeout);
    timer_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->stream_->close_socket();  // whatever is pending fails
    });
    if constexpr (ws_stream<Next>::is_tls) {
      stream_->ws().next_layer().async_handshake(
          asio::ssl::stream_base::server, [self = this->shared_from_this()](const boost::system::error_code& ec) {
            if (ec) return self->fail("tls handshake", ec);
            self->stream_->record_identity();
            self->read_request();
          });
    } else {
      read_request();
    }
  }

 private:
  void read_request() {
    http::async_read(stream_->ws().next_layer(), buffer_, parser_,
                     [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                       if (ec) return self->fail("http upgrade request", ec);
                       self->on_request();
                     });
  }

  void on_request() {
    const auto& req = parser_.get();
    std::string_view target = req.target();
    auto path = target.substr(0, target.find('?'));
    if (path != state_->config.path) return refuse(http::status::not_found, "no WebSocket endpoint here\n");
    if (!websocket::is_upgrade(req)) return refuse(http::status::upgrade_required, "WebSocket upgrade required\n");

    auto& ws = stream_->ws();
    ws.set_option(websocket::stream_base::timeout{state_->options.handshake_timeout, websocket::stream_base::none(),
                                                  false});
    ws.read_message_max(state_->options.max_ws_message_bytes);
    ws.auto_fragment(false);
    ws.binary(true);
    auto proto = choose_subprotocol(req[http::field::sec_websocket_protocol]);
    if (proto == "mqtt") {
      ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
        res.set(http::field::server, "wharf");
        res.set(http::field::sec_websocket_protocol, "mqtt");
      }));
    } else if (proto == "mqttv3.1") {
      ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
        res.set(http::field::server, "wharf");
        res.set(http::field::sec_websocket_protocol, "mqttv3.1");
      }));
    } else {
      ws.set_option(websocket::stream_base::decorator(
          [](websocket::response_type& res) { res.set(http::field::server, "wharf"); }));
    }
    ws.async_accept(req, [self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return self->fail("websocket accept", ec);
      self->timer_.cancel();
      self->state_->on_accept(self->stream_);
    });
  }

  void refuse(http::status status, std::string_view body) {
    state_->upgrade_refused.fetch_add(1, std::memory_order_relaxed);
    response_.version(parser_.get().version());
    response_.result(status);
    response_.set(http::field::server, "wharf");
    response_.set(http::field::content_type, "text/plain");
    if (status == http::status::upgrade_required) response_.set(http::field::upgrade, "websocket");
    response_.keep_alive(false);
    response_.body() = body;
    response_.prepare_payload();
    http::async_write(stream_->ws().next_layer(), response_,
                      [self = this->shared_from_this()](const boost::system::error_code&, std::size_t) {
                        self->timer_.cancel();
                        self->stream_->close_socket();
                      });
  }

  void fail(std::string_view step, const boost::system::error_code& ec) {
    timer_.cancel();
    state_->handshake_failures.fetch_add(1, std::memory_order_relaxed);
    log::mqtt().debug("{} from {}:{} failed: {}", step, stream_->peer().remote_address, stream_->peer().remote_port,
                  ec.message());
    stream_->close_socket();
  }

  std::shared_ptr<ws_stream<Next>> stream_;
  std::shared_ptr<listener_state> state_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> response_;
};

}  // namespace

void start_ws(tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state) {
  peer.websocket = true;
  auto s = std::make_shared<ws_stream<tcp::socket>>(std::move(peer), state->options.close_timeout,
                                                    std::move(socket));
  std::make_shared<upgrade<tcp::socket>>(std::move(s), state)->start();
}

void start_wss(tcp::socket socket, peer_info peer, const std::shared_ptr<listener_state>& state) {
  peer.websocket = true;
  peer.tls = true;
  auto s = std::make_shared<ws_stream<ssl_socket>>(std::move(peer), state->options.close_timeout,
                                                   std::move(socket), *state->tls_context.get());
  std::make_shared<upgrade<ssl_socket>>(std::move(s), state)->start();
}

std::size_t sizeof_ws_stream() noexcept { return sizeof(ws_stream<tcp::socket>); }
std::size_t sizeof_wss_stream() noexcept { return sizeof(ws_stream<ssl_socket>); }

}  // namespace wharf::net::detail
