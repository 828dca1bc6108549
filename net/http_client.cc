#include "net/http_client.h"

#include <algorithm>
#include <deque>
#include <exception>
#include <utility>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "tls/tls_context.h"

namespace wharf::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady_clock = std::chrono::steady_clock;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr std::uint32_t max_response_header_bytes = 8 * 1024;

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// Connections are shared by requests to the same scheme, host and port.
struct connection_key {
  bool tls = false;
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const connection_key&) const = default;
};

struct connection {
  connection(connection_key key, std::variant<plain_stream, tls_stream> stream)
      : key(std::move(key)), stream(std::move(stream)) {}

  connection_key key;
  std::variant<plain_stream, tls_stream> stream;
  beast::flat_buffer buffer;  // bytes received past the end of a response

  beast::tcp_stream& tcp_layer() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream);
  }
};

// Kept-alive connections between requests. Bounded: a full pool closes the connection that
// has been idle longest.
class idle_pool {
 public:
  explicit idle_pool(std::size_t capacity) : capacity_(capacity) {}

  // The connection to `key` that was used last, or null.
  std::unique_ptr<connection> take(const connection_key& key) {
    auto newest_first = std::find_if(idle_.rbegin(), idle_.rend(), [&](const auto& c) { return c->key == key; });
    if (newest_first == idle_.rend()) return nullptr;
    auto found = std::move(*newest_first);
    idle_.erase(std::next(newest_first).base());
    return found;
  }

  void put(std::unique_ptr<connection> c) {
    if (capacity_ == 0) return;
    if (idle_.size() == capacity_) idle_.pop_front();
    idle_.push_back(std::move(c));
  }

 private:
  std::size_t capacity_;
  std::deque<std::unique_ptr<connection>> idle_;  // idle longest first
};

struct exchange_result {
  boost::system::error_code error;
  bool response_started = false;  // some response bytes arrived
  std::optional<unsigned> status;  // the response header arrived
  std::string body;                // when the whole response arrived
  bool body_complete = false;
  bool reusable = false;           // the whole response arrived and the server keeps the connection
};

template <class Stream>
asio::awaitable<exchange_result> exchange(Stream& stream, beast::flat_buffer& buffer,
                                          const http::request<http::string_body>& request,
                                          std::size_t max_body_bytes, steady_clock::time_point deadline) {
  auto& transport = beast::get_lowest_layer(stream);
  transport.expires_at(deadline);
  exchange_result result;
  auto [write_error, written] = co_await http::async_write(stream, request, use_tuple);
  if (write_error) {
    result.error = write_error;
    co_return result;
  }
  http::response_parser<http::string_body> parser;
  parser.header_limit(max_response_header_bytes);
  parser.body_limit(max_body_bytes);
  auto [read_error, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
  transport.expires_never();  // an idle connection must not time out in the pool
  result.error = read_error;
  result.response_started = parser.got_some();
  if (parser.is_header_done()) result.status = parser.get().result_int();
  result.body_complete = !read_error && parser.is_done();
  if (result.body_complete) result.body = std::move(parser.get().body());
  result.reusable = result.body_complete && parser.get().keep_alive();
  co_return result;
}

http_response failed(std::string why) {
  http_response r;
  r.error = std::move(why);
  return r;
}

std::string describe(const boost::system::error_code& error, std::chrono::milliseconds timeout) {
  if (error == beast::error::timeout) return fmt::format("timed out after {} ms", timeout.count());
  return error.message();
}

}  // namespace

bool fits_in_header(std::string_view value) noexcept {
  return std::none_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::optional<endpoint> parse_endpoint(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return std::nullopt;
  const auto& u = *parsed;
  endpoint out;
  if (u.scheme_id() == boost::urls::scheme::https) {
    out.tls = true;
  } else if (u.scheme_id() != boost::urls::scheme::http) {
    return std::nullopt;
  }
  if (u.has_userinfo()) return std::nullopt;
  switch (u.host_type()) {
    case boost::urls::host_type::name:
      out.host = u.host_name();
      break;
    case boost::urls::host_type::ipv4:
      out.host = u.host_ipv4_address().to_string();
      break;
    case boost::urls::host_type::ipv6:
      out.host = u.host_ipv6_address().to_string();
      break;
    default:  // none, or an IPvFuture literal
      return std::nullopt;
  }
  if (out.host.empty()) return std::nullopt;
  if (u.port().empty()) {  // no port, or an empty one (RFC 3986 §3.2.3: the default)
    out.port = out.tls ? 443 : 80;
  } else {
    out.port = u.port_number();
    if (out.port == 0) return std::nullopt;  // 0 or beyond 65535
  }
  out.host_header = std::string(u.encoded_host_and_port());
  out.target = std::string(u.encoded_target());
  if (out.target.empty() || out.target.front() != '/') out.target.insert(0, "/");
  return out;
}

// Owns everything an http_client uses; requests in flight hold it alive.
class http_client::state : public std::enable_shared_from_this<state> {
 public:
  state(asio::any_io_executor executor, http_client_options options)
      : strand_(asio::make_strand(std::move(executor))),
        options_(std::move(options)),
        tls_context_(tls::make_client_context(options_.ca_file)),
        idle_(options_.max_idle_connections) {}

  void post(endpoint to, http_post request, completion done) {
    // `self` keeps the state alive until the request has ended.
    asio::co_spawn(strand_, attempt(std::move(to), std::move(request)),
                   [self = shared_from_this(), done = std::move(done)](std::exception_ptr failure, http_response result) {
                     if (failure) result = failed(message_of(failure));
                     done(std::move(result));
                   });
  }

  const http_client_options& options() const noexcept { return options_; }

 private:
  struct connect_result {
    std::unique_ptr<connection> connected;  // null on failure
    std::string error;
  };

  static std::string message_of(const std::exception_ptr& failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      return e.what();
    } catch (...) {
      return "unknown exception";
    }
  }

  asio::awaitable<http_response> attempt(endpoint url, http_post post) {
    for (const auto& [name, value] : post.headers) {
      if (!fits_in_header(value)) co_return failed(fmt::format("header {} holds CR, LF or NUL", name));
    }
    const auto deadline = steady_clock::now() + options_.timeout;
    const auto request = make_request(url, std::move(post));
    const connection_key key{url.tls, url.host, url.port};

    if (auto reused = idle_.take(key)) {
      auto result = co_await exchange_on(*reused, request, deadline);
      // A server may close a kept-alive connection while it sits idle; that shows as an
      // error before any response byte, and then the request goes again on a new
      // connection.
      if (result.response_started || result.error == beast::error::timeout) {
        co_return finish(std::move(reused), std::move(result));
      }
    }
    auto fresh = co_await connect(url, key, deadline);
    if (!fresh.connected) co_return failed(std::move(fresh.error));
    auto result = co_await exchange_on(*fresh.connected, request, deadline);
    co_return finish(std::move(fresh.connected), std::move(result));
  }

  http::request<http::string_body> make_request(const endpoint& url, http_post post) const {
    http::request<http::string_body> request{http::verb::post, url.target, 11};
    request.set(http::field::host, url.host_header);
    request.set(http::field::user_agent, options_.user_agent);
    request.set(http::field::content_type, post.content_type);
    for (const auto& [name, value] : post.headers) request.set(name, value);
    request.body() = std::move(post.body);
    request.keep_alive(options_.max_idle_connections > 0);
    request.prepare_payload();
    return request;
  }

  asio::awaitable<exchange_result> exchange_on(connection& c, const http::request<http::string_body>& request,
                                               steady_clock::time_point deadline) {
    return std::visit(
        [&](auto& stream) { return exchange(stream, c.buffer, request, options_.max_response_body_bytes, deadline); },
        c.stream);
  }

  http_response finish(std::unique_ptr<connection> c, exchange_result result) {
    if (result.reusable) idle_.put(std::move(c));
    // A status decides, even when the body that followed it was too long or cut short.
    if (result.status) {
      return http_response{
          .status = result.status, .body = std::move(result.body), .body_complete = result.body_complete, .error = {}};
    }
    return failed(describe(result.error, options_.timeout));
  }

  // A new connection to `url` with the TLS handshake done, or why there is none.
  asio::awaitable<connect_result> connect(const endpoint& url, const connection_key& key,
                                          steady_clock::time_point deadline) {
    const auto where = fmt::format("{}:{}", url.host, url.port);
    auto [resolve_error, addresses] = co_await resolve(url, deadline);
    if (resolve_error) {
      co_return connect_result{nullptr, fmt::format("resolve {}: {}", where, describe(resolve_error, options_.timeout))};
    }
    auto c = std::make_unique<connection>(key, make_stream(url.tls));
    c->tcp_layer().expires_at(deadline);
    auto [connect_error, peer] = co_await c->tcp_layer().async_connect(addresses, use_tuple);
    if (connect_error) {
      co_return connect_result{nullptr, fmt::format("connect to {}: {}", where, describe(connect_error, options_.timeout))};
    }
    boost::system::error_code no_delay_refused;  // only costs latency
    c->tcp_layer().socket().set_option(tcp::no_delay(true), no_delay_refused);
    if (auto* secure = std::get_if<tls_stream>(&c->stream)) {
      tls::set_server_name(secure->native_handle(), url.host);
      secure->set_verify_callback(asio::ssl::host_name_verification(url.host));
      auto [handshake_error] = co_await secure->async_handshake(asio::ssl::stream_base::client, use_tuple);
      if (handshake_error) {
        co_return connect_result{
            nullptr, fmt::format("TLS handshake with {}: {}", where, describe(handshake_error, options_.timeout))};
      }
    }
    co_return connect_result{std::move(c), {}};
  }

  std::variant<plain_stream, tls_stream> make_stream(bool tls) {
    if (tls) return std::variant<plain_stream, tls_stream>(std::in_place_type<tls_stream>, strand_, *tls_context_);
    return std::variant<plain_stream, tls_stream>(std::in_place_type<plain_stream>, strand_);
  }

  // Resolves `url`'s host before `deadline`. getaddrinfo cannot be interrupted and the
  // resolver completes only when it returns, so the wait for it is a timer that the
  // resolver's completion cancels; a lookup still running at the deadline finishes unseen.
  asio::awaitable<std::pair<boost::system::error_code, tcp::resolver::results_type>> resolve(
      const endpoint& url, steady_clock::time_point deadline) {
    struct lookup {
      lookup(const asio::strand<asio::any_io_executor>& ex, steady_clock::time_point deadline)
          : resolver(ex), done(ex, deadline) {}
      tcp::resolver resolver;
      asio::steady_timer done;
      std::optional<std::pair<boost::system::error_code, tcp::resolver::results_type>> result;
    };
    auto pending = std::make_shared<lookup>(strand_, deadline);
    pending->resolver.async_resolve(url.host, std::to_string(url.port),
                                    [pending](const boost::system::error_code& error, tcp::resolver::results_type found) {
                                      pending->result.emplace(error, std::move(found));
                                      pending->done.cancel();
                                    });
    // Both completions run on the strand, which this coroutine holds now: neither can
    // happen before the wait begins.
    co_await pending->done.async_wait(use_tuple);
    if (!pending->result) {
      pending->resolver.cancel();
      co_return std::pair{boost::system::error_code(beast::error::timeout), tcp::resolver::results_type{}};
    }
    co_return std::move(*pending->result);
  }

  asio::strand<asio::any_io_executor> strand_;
  http_client_options options_;
  std::shared_ptr<asio::ssl::context> tls_context_;
  idle_pool idle_;
};

http_client::http_client(asio::any_io_executor executor, http_client_options options)
    : state_(std::make_shared<state>(std::move(executor), std::move(options))) {}

http_client::~http_client() = default;

void http_client::post(endpoint to, http_post request, completion done) {
  state_->post(std::move(to), std::move(request), std::move(done));
}

const http_client_options& http_client::options() const noexcept { return state_->options(); }

}  // namespace wharf::net
