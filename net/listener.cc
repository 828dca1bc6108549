#include "net/listener.h"

#include "core/log.h"
#include "net/detail.h"

#include <fmt/format.h>

#include <string>
#include <system_error>

namespace wharf::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Turns an accepted socket into the listener's kind of stream, on the accepting thread.
// `proxied`: the client as a PROXY header named it (else the socket's peer).
void start_stream(tcp::socket socket, std::optional<proxy_source> proxied,
                  const std::shared_ptr<detail::listener_state>& state) {
  boost::system::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  peer_info peer;
  peer.remote_address = proxied ? proxied->address : address_text(remote.address());
  peer.remote_port = proxied ? proxied->port : remote.port();
  peer.listener_index = state->listener_index;
  const bool tls = state->tls;
  if (state->config.type == config::listener_type::mqtt_ws) {
    tls ? detail::start_wss(std::move(socket), std::move(peer), state)
        : detail::start_ws(std::move(socket), std::move(peer), state);
  } else {
    tls ? detail::start_tls(std::move(socket), std::move(peer), state)
        : detail::start_tcp(std::move(socket), std::move(peer), state);
  }
}

}  // namespace

listener_stats listener_handle::stats() const noexcept {
  listener_stats s;
  if (!state_) return s;
  const acceptor_stats a = acceptors_.stats();
  s.accepted = a.accepted;
  s.accept_pauses = a.accept_pauses;
  s.accept_errors = a.accept_errors;
  s.handshake_failures = state_->handshake_failures.load(std::memory_order_relaxed);
  s.upgrade_refused = state_->upgrade_refused.load(std::memory_order_relaxed);
  s.proxy_headers = state_->proxy_counts->headers.load(std::memory_order_relaxed);
  s.proxy_refused = state_->proxy_counts->refused.load(std::memory_order_relaxed);
  return s;
}

void listener_handle::stop() { acceptors_.stop(); }

void listener_handle::replace_tls_context(std::shared_ptr<asio::ssl::context> context) const {
  if (state_ && state_->tls && context) state_->tls_context.replace(std::move(context));
}

listener_handle start_listener(io_pool& pool, std::size_t listener_index, const config::listener_config& cfg,
                               std::shared_ptr<asio::ssl::context> tls_or_null, accept_callback on_accept,
                               listener_options options) {
  auto state = std::make_shared<detail::listener_state>();
  state->listener_index = listener_index;
  state->config = cfg;
  state->tls = tls_or_null != nullptr;
  state->tls_context.replace(std::move(tls_or_null));
  state->on_accept = std::move(on_accept);
  state->options = options;
  state->proxy = proxy_options_from(cfg.proxy_protocol);
  if (cfg.tls && !state->tls) {
    throw std::system_error(boost::system::error_code(asio::error::invalid_argument),
                            fmt::format("listener bind \"{}\": TLS configured but no TLS context given", cfg.bind));
  }

  listener_handle handle;
  handle.acceptors_ = start_acceptors(pool, cfg.bind, options.acceptor, [state](tcp::socket socket) {
    if (!state->proxy) return start_stream(std::move(socket), std::nullopt, state);
    accept_proxied(std::move(socket), state->proxy, state->proxy_counts,
                   [state](tcp::socket s, std::optional<proxy_source> client) {
                     start_stream(std::move(s), std::move(client), state);
                   });
  });
  handle.state_ = std::move(state);
  log::mqtt().info("listener {} ({}{}) on port {} with {} acceptors", cfg.bind,
               cfg.type == config::listener_type::mqtt_ws ? "mqtt-ws" : "mqtt", handle.state_->tls ? "+tls" : "",
               handle.port(), pool.size());
  return handle;
}

}  // namespace wharf::net
