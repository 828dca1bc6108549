#include "gateway/http/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "core/log.h"
#include "net/proxy_accept.h"
#include "tls/tls_context.h"

namespace wharf::gateway::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace detail {

// What the connections of one listener share: options, handler, TLS context, counters.
struct http_server_state {
  http_server_options options;
  request_handler handler;
  bool tls = false;                // HTTPS
  tls::context_slot tls_context;   // HTTPS: the context new connections use (reload replaces it)
  std::shared_ptr<const net::proxy_options> proxy;  // null: no PROXY header taken
  std::shared_ptr<net::proxy_counters> proxy_counts = std::make_shared<net::proxy_counters>();

  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> body_too_large{0};
  std::atomic<std::uint64_t> header_too_large{0};
  std::atomic<std::uint64_t> malformed{0};
  std::atomic<std::uint64_t> request_timeouts{0};
  std::atomic<std::uint64_t> idle_timeouts{0};
  std::atomic<std::uint64_t> late_responses{0};
};

}  // namespace detail

namespace {

using server_state = detail::http_server_state;

// Bytes of the first read of a TLS connection's request (the rest is read by Beast).
constexpr std::size_t tls_first_read_bytes = 1024;
constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

void count(std::atomic<std::uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

std::string default_error_body(int code, const std::string& message) {
  // The server's own messages contain nothing that JSON needs escaped.
  return fmt::format(R"({{"code":{},"message":"{}","requestId":""}})", code, message);
}

std::string endpoint_text(const std::string& address, std::uint16_t port) {
  return address.find(':') != std::string::npos ? fmt::format("[{}]:{}", address, port)
                                                : fmt::format("{}:{}", address, port);
}

std::string remote_text(const tcp::socket& socket) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return "?";
  return endpoint_text(net::address_text(remote.address()), remote.port());
}

// Where bytes discarded during a lingering close go. Shared by all connections of a
// thread: the contents are never looked at.
asio::mutable_buffer discard_buffer() {
  thread_local std::array<char, 4096> buffer;
  return asio::buffer(buffer);
}

// The part of a connection that answers use, independent of the stream type.
class answerable {
 public:
  virtual ~answerable() = default;
  virtual void on_answer(http_response response) = 0;
  virtual void on_abandoned() = 0;  // the respond_fn was dropped without being called
};

// Shared by the copies of one respond_fn. Holds the connection until the answer is posted
// to it, so a request waiting for its answer keeps its connection.
class responder {
 public:
  responder(std::shared_ptr<answerable> connection, asio::any_io_executor executor)
      : connection_(std::move(connection)), executor_(std::move(executor)) {}
  responder(const responder&) = delete;
  responder& operator=(const responder&) = delete;
  ~responder() {
    if (!connection_) return;
    asio::post(executor_, [c = std::move(connection_)] { c->on_abandoned(); });
  }

  // Any thread. Only the first call gets through.
  void answer(http_response response) {
    if (answered_.exchange(true, std::memory_order_acq_rel)) return;
    asio::post(executor_, [c = std::move(connection_), response = std::move(response)]() mutable {
      c->on_answer(std::move(response));
    });
  }

 private:
  std::shared_ptr<answerable> connection_;
  asio::any_io_executor executor_;
  std::atomic<bool> answered_{false};
};

// What the deadline timer currently guards.
enum class phase { handshake, idle, reading, awaiting_answer, writing, lingering };

// One HTTP connection over `Stream` (tcp::socket or ssl::stream<tcp::socket>). Lives on the
// thread that accepted it; owned by its pending operations and, while a request waits
// for its answer, by that request's responder.
template <class Stream>
class connection final : public answerable, public std::enable_shared_from_this<connection<Stream>> {
 public:
  static constexpr bool is_tls = !std::is_same_v<Stream, tcp::socket>;

  // `proxied`: the client as a PROXY header named it (else the socket's peer).
  connection(tcp::socket socket, const std::optional<net::proxy_source>& proxied, std::shared_ptr<server_state> state)
      : stream_(make_stream(std::move(socket), *state)), timer_(stream_.get_executor()), state_(std::move(state)) {
    remote_ = proxied ? endpoint_text(proxied->address, proxied->port) : remote_text(lowest_layer());
  }

  ~connection() override { mark_closed(); }

  void start() {
    if constexpr (is_tls) {
      set_deadline(phase::handshake, state_->options.handshake_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](auto ec) {
        if (ec) {
          count(self->state_->handshake_failures);
          log::http().debug("http {}: tls handshake failed: {}", self->remote_, ec.message());
          self->close();
          return;
        }
        self->wait_for_request();
      });
    } else {
      wait_for_request();
    }
  }

  void on_answer(http_response response) override {
    if (closed_) {
      count(state_->late_responses);
      return;
    }
    stop_watching_peer();
    write_response(static_cast<bhttp::status>(response.status), std::move(response.body), response.content_type,
                   response.www_authenticate);
  }

  void on_abandoned() override {
    if (closed_) return;
    log::http().warn("http {}: request dropped without an answer; closing the connection", remote_);
    close();
  }

 private:
  static Stream make_stream(tcp::socket socket, server_state& state) {
    if constexpr (is_tls) {
      return Stream(std::move(socket), *state.tls_context.get());
    } else {
      return socket;
    }
  }

  tcp::socket& lowest_layer() {
    if constexpr (is_tls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  // Keep-alive: waits for the first byte of the next request without holding a buffer
  // (plain TCP). TLS reads a first chunk instead: OpenSSL may already hold bytes that the
  // socket no longer shows as readable.
  void wait_for_request() {
    if (buffer_.size() > 0) {  // the client sent the next request before this answer
      begin_request();
      return;
    }
    set_deadline(phase::idle, state_->options.idle_timeout);
    auto self = this->shared_from_this();
    if constexpr (is_tls) {
      stream_.async_read_some(buffer_.prepare(tls_first_read_bytes), [self](auto ec, std::size_t n) {
        self->buffer_.commit(n);
        ec ? self->close() : self->begin_request();
      });
    } else {
      stream_.async_wait(tcp::socket::wait_read, [self](auto ec) { ec ? self->close() : self->begin_request(); });
    }
  }

  void begin_request() {
    set_deadline(phase::reading, state_->options.request_timeout);
    parser_ = std::make_unique<bhttp::request_parser<bhttp::string_body>>();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(state_->options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(state_->options.max_body_bytes);
    bhttp::async_read_header(stream_, buffer_, *parser_, [self = this->shared_from_this()](auto ec, std::size_t) {
      self->on_header(ec);
    });
  }

  void on_header(const boost::system::error_code& ec) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    version_ = parser_->get().version();
    if (parser_->is_done()) {
      on_request();
      return;
    }
    auto self = this->shared_from_this();
    if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      asio::async_write(stream_, asio::buffer(continue_response), [self](auto write_ec, std::size_t) {
        write_ec ? self->close() : self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](auto ec, std::size_t) {
      ec ? self->on_read_error(ec) : self->on_request();
    });
  }

  void on_read_error(const boost::system::error_code& ec) {
    const auto& http_errors = bhttp::make_error_code(bhttp::error::end_of_stream).category();
    if (closed_ || ec.category() != http_errors || ec == bhttp::error::end_of_stream ||
        ec == bhttp::error::partial_message) {
      close();  // the peer left, an I/O error, or our own timeout (counted by the timer)
      return;
    }
    keep_alive_ = false;
    if (ec == bhttp::error::body_limit) {
      count(state_->body_too_large);
      const auto message = fmt::format("request body exceeds {} bytes", state_->options.max_body_bytes);
      write_response(bhttp::status::ok, state_->options.error_body(4000, message), "application/json");
    } else if (ec == bhttp::error::header_limit) {
      count(state_->header_too_large);
      write_response(bhttp::status::request_header_fields_too_large,
                     fmt::format("request header exceeds {} bytes\n", state_->options.max_header_bytes),
                     "text/plain");
    } else {
      count(state_->malformed);
      write_response(bhttp::status::bad_request, fmt::format("malformed HTTP request: {}\n", ec.message()),
                     "text/plain");
    }
  }

  void on_request() {
    count(state_->requests);
    auto& message = parser_->get();
    keep_alive_ = message.keep_alive();
    http_request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.host = std::string(message[bhttp::field::host]);
    request.authorization = std::string(message[bhttp::field::authorization]);
    if (auto it = message.find(bhttp::field::content_type); it != message.end()) {
      request.content_type = std::string(it->value());
    }
    request.body = std::move(message.body());
    request.tls = is_tls;
    request.remote = remote_;
    awaiting_answer_abandoned_ = std::make_shared<std::atomic<bool>>(false);
    request.abandoned = awaiting_answer_abandoned_;
    // Nothing of the request stays while it waits for its answer (a long poll can be long).
    parser_.reset();
    if (buffer_.size() == 0) buffer_.shrink_to_fit();
    clear_deadline(phase::awaiting_answer);
    watch_peer();
    auto answer = std::make_shared<responder>(this->shared_from_this(), stream_.get_executor());
    state_->handler(std::move(request), [answer](http_response response) { answer->answer(std::move(response)); });
  }

  // While a request waits for its answer nothing is read, but a peer that closes its side
  // should not keep the socket until the answer comes: wait for readability and peek. EOF
  // closes; data (the next request) ends the watch and stays unread.
  void watch_peer() {
    lowest_layer().async_wait(tcp::socket::wait_read, [weak = this->weak_from_this(), generation = watch_generation_](auto ec) {
      auto self = weak.lock();
      if (!self || ec || generation != self->watch_generation_ || self->closed_) return;
      self->on_peer_readable();
    });
  }

  void on_peer_readable() {
    char byte = 0;
    boost::system::error_code ec;
    lowest_layer().non_blocking(true, ec);
    const std::size_t n = ec ? 0 : lowest_layer().receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
    if (ec == asio::error::would_block) {
      watch_peer();  // spurious wake-up
    } else if (ec || n == 0) {
      close();  // the peer closed or reset: the answer, when it comes, is dropped
    }
  }

  void stop_watching_peer() {
    ++watch_generation_;
    boost::system::error_code ignored;
    lowest_layer().cancel(ignored);  // only the watch is pending while awaiting an answer
  }

  void write_response(bhttp::status status, std::string body, std::string_view content_type,
                      std::string_view www_authenticate = {}) {
    response_ = std::make_unique<bhttp::response<bhttp::string_body>>(status, version_);
    response_->set(bhttp::field::content_type, content_type);
    if (!www_authenticate.empty()) response_->set(bhttp::field::www_authenticate, www_authenticate);
    response_->keep_alive(keep_alive_);
    response_->body() = std::move(body);
    response_->prepare_payload();
    set_deadline(phase::writing, state_->options.request_timeout);
    bhttp::async_write(stream_, *response_, [self = this->shared_from_this()](auto ec, std::size_t) {
      self->response_.reset();
      if (ec) {
        self->close();
      } else if (!self->keep_alive_) {
        self->linger_close();
      } else {
        self->wait_for_request();
      }
    });
  }

  // Stops sending, then reads and discards what the client still sends until it closes
  // or linger_timeout passes.
  void linger_close() {
    set_deadline(phase::lingering, state_->options.linger_timeout);
    boost::system::error_code ignored;
    lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    discard_until_eof();
  }

  void discard_until_eof() {
    lowest_layer().async_read_some(discard_buffer(), [self = this->shared_from_this()](auto ec, std::size_t) {
      ec ? self->close() : self->discard_until_eof();
    });
  }

  void set_deadline(phase p, std::chrono::milliseconds duration) {
    phase_ = p;
    timer_.expires_after(duration);
    timer_.async_wait([weak = this->weak_from_this(), generation = ++timer_generation_](auto ec) {
      auto self = weak.lock();
      if (!ec && self && generation == self->timer_generation_) self->on_deadline();
    });
  }

  void clear_deadline(phase p) {
    phase_ = p;
    ++timer_generation_;
    timer_.cancel();
  }

  void on_deadline() {
    switch (phase_) {
      case phase::idle:
        count(state_->idle_timeouts);
        break;
      case phase::reading:
      case phase::writing:
        count(state_->request_timeouts);
        break;
      case phase::handshake:  // counted as a handshake failure when the handshake ends
      case phase::awaiting_answer:
      case phase::lingering:
        break;
    }
    close();
  }

  // Closes the socket; pending operations end with errors and release the connection.
  // Buffers stay until destruction: those operations may still refer to them.
  void close() {
    if (closed_) return;
    mark_closed();
    clear_deadline(phase_);
    boost::system::error_code ignored;
    lowest_layer().close(ignored);
  }

  void mark_closed() {
    if (closed_) return;
    closed_ = true;
    if (awaiting_answer_abandoned_) awaiting_answer_abandoned_->store(true, std::memory_order_relaxed);
    state_->connections_open.fetch_sub(1, std::memory_order_relaxed);
  }

  Stream stream_;
  asio::steady_timer timer_;
  std::shared_ptr<server_state> state_;
  std::string remote_;
  beast::flat_buffer buffer_;
  // Present only while a request is read / an answer written, so idle connections are small.
  std::unique_ptr<bhttp::request_parser<bhttp::string_body>> parser_;
  std::unique_ptr<bhttp::response<bhttp::string_body>> response_;
  unsigned version_ = 11;  // of the request being answered
  bool keep_alive_ = true;
  bool closed_ = false;
  // The flag of the request last handed to the handler (http_request::abandoned).
  std::shared_ptr<std::atomic<bool>> awaiting_answer_abandoned_;
  phase phase_ = phase::idle;
  std::uint64_t timer_generation_ = 0;  // a timer wait acts only if no deadline was set since
  std::uint64_t watch_generation_ = 0;  // a peer watch acts only if the answer has not come
};

void start_connection(tcp::socket socket, const std::optional<net::proxy_source>& proxied,
                      const std::shared_ptr<server_state>& state) {
  if (state->connections_open.fetch_add(1, std::memory_order_relaxed) >= state->options.max_connections) {
    state->connections_open.fetch_sub(1, std::memory_order_relaxed);
    count(state->connections_refused);
    return;  // the socket closes as it goes out of scope
  }
  if (state->tls) {
    std::make_shared<connection<asio::ssl::stream<tcp::socket>>>(std::move(socket), proxied, state)->start();
  } else {
    std::make_shared<connection<tcp::socket>>(std::move(socket), proxied, state)->start();
  }
}

void accept_connection(tcp::socket socket, const std::shared_ptr<server_state>& state) {
  if (!state->proxy) return start_connection(std::move(socket), std::nullopt, state);
  accept_proxied(std::move(socket), state->proxy, state->proxy_counts,
                 [state](tcp::socket s, std::optional<net::proxy_source> client) {
                   start_connection(std::move(s), client, state);
                 });
}

}  // namespace

http_server_options http_server_options_from(const config::queue_api_config& cfg) {
  http_server_options o;
  o.max_header_bytes = cfg.max_header_bytes;
  o.max_body_bytes = cfg.max_body_bytes;
  o.request_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  o.idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms);
  o.max_connections = cfg.max_connections;
  return o;
}

http_server_stats http_listener::stats() const noexcept {
  http_server_stats s;
  if (!state_) return s;
  const net::acceptor_stats a = acceptors_.stats();
  s.accepted = a.accepted;
  s.accept_pauses = a.accept_pauses;
  s.accept_errors = a.accept_errors;
  auto load = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  s.connections_open = load(state_->connections_open);
  s.connections_refused = load(state_->connections_refused);
  s.handshake_failures = load(state_->handshake_failures);
  s.requests = load(state_->requests);
  s.body_too_large = load(state_->body_too_large);
  s.header_too_large = load(state_->header_too_large);
  s.malformed = load(state_->malformed);
  s.request_timeouts = load(state_->request_timeouts);
  s.idle_timeouts = load(state_->idle_timeouts);
  s.late_responses = load(state_->late_responses);
  s.proxy_headers = load(state_->proxy_counts->headers);
  s.proxy_refused = load(state_->proxy_counts->refused);
  return s;
}

void http_listener::stop() { acceptors_.stop(); }

void http_listener::replace_tls_context(std::shared_ptr<asio::ssl::context> context) const {
  if (state_ && state_->tls && context) state_->tls_context.replace(std::move(context));
}

http_listener start_http_listener(net::io_pool& pool, const config::listener_config& cfg,
                                  std::shared_ptr<asio::ssl::context> tls_or_null, request_handler handler,
                                  http_server_options options) {
  if (cfg.tls && !tls_or_null) {
    throw std::invalid_argument(fmt::format("queue API listener {}: TLS configured but no TLS context given", cfg.bind));
  }
  auto state = std::make_shared<server_state>();
  state->options = std::move(options);
  if (!state->options.error_body) state->options.error_body = default_error_body;
  state->handler = std::move(handler);
  state->tls = tls_or_null != nullptr;
  state->tls_context.replace(std::move(tls_or_null));
  state->proxy = net::proxy_options_from(cfg.proxy_protocol);

  http_listener listener;
  listener.acceptors_ = net::start_acceptors(pool, cfg.bind, state->options.acceptor,
                                        [state](tcp::socket socket) { accept_connection(std::move(socket), state); });
  listener.state_ = std::move(state);
  log::http().info("queue API listener {} ({}) on port {} with {} acceptors", cfg.bind,
               listener.state_->tls ? "https" : "http", listener.port(), pool.size());
  return listener;
}

}  // namespace wharf::gateway::http
