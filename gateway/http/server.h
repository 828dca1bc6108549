// The HTTP/1.1 server of the CMQ queue API (plain and TLS) on the wharf io_pool. Like the
// MQTT listeners it accepts on every I/O thread (SO_REUSEPORT, net/
// acceptor.h), and a connection stays on the thread that accepted it.
//
// A connection serves one request at a time: the next request is read only after the
// answer to the previous one is written. So a connection holds at most one pending long
// poll, and pipelined requests wait (unread) behind it. While a request waits for its
// answer nothing is read, but the socket is watched: a peer that closes without sending
// more frees the socket at once, and the late answer is dropped (counted in late_responses).
//
// A CMQ answer is HTTP 200 with Content-Type application/json (CMQ clients treat any other
// status as a network failure); the admin listener's answers have their own status and
// type (http_response). The server answers by itself only
// what it must refuse before the handler could: a body over max_body_bytes (200 with CMQ
// code 4000, then close), a header over max_header_bytes (431, close) and malformed HTTP
// (400, close). "Expect: 100-continue" is honoured.
//
// Idle cost: an idle keep-alive connection holds no read buffer and no parser (both are
// released after each request) and, over plain TCP, waits for readability with no buffer
// at all. Measured heap per idle connection after one request (server_memory_test.cc, 300
// connections, RelWithDebInfo): plain ≈ 1.6 KB (the connection, Asio's socket state, the
// pending wait and the timer's wait); TLS ≈ 87 KB, nearly all of it asio::ssl::stream's
// own buffers (the known gap in docs/ARCHITECTURE.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "config/config.h"
#include "net/acceptor.h"
#include "net/io_pool.h"

namespace wharf::gateway::http {

// One complete request, as the client sent it.
struct http_request {
  std::string method;                       // "GET", "POST", ... (case as sent)
  std::string target;                       // "/v2/index.php?Action=...", not decoded
  std::string host;                         // the Host header exactly as sent; "" when absent
  std::optional<std::string> content_type;  // absent when there is no Content-Type header
  std::string authorization;                // the Authorization header; "" when absent
  std::string body;
  bool tls = false;                         // arrived over TLS
  std::string remote;                       // peer address and port: "127.0.0.1:50000", "[::1]:50000"
  // Becomes true when the connection closes before the answer is written: nobody will read
  // it (a long poll can then stop waiting and take nothing). Set on the connection's
  // thread, read from any. Never null.
  std::shared_ptr<const std::atomic<bool>> abandoned;
};

// One answer. A string converts to a CMQ answer: 200, application/json.
struct http_response {
  http_response(std::string json_body) : body(std::move(json_body)) {}  // NOLINT(google-explicit-constructor)
  http_response(const char* json_body) : body(json_body) {}            // NOLINT(google-explicit-constructor)
  http_response(unsigned status_code, std::string type, std::string text)
      : status(status_code), content_type(std::move(type)), body(std::move(text)) {}

  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string www_authenticate;  // sent as WWW-Authenticate when not empty (a 401)
};

// Answers one request with `response`. Call it exactly once, from any thread, at once or later (a long poll): it posts the
// write to the connection's thread. A call after the connection closed, or after the
// first call, does nothing. Dropping it uncalled closes the connection.
// REQUIRES: it is called or destroyed (the last copy) before the io_pool is destroyed:
// both post to the connection's thread. Stopping the pool first is fine.
using respond_fn = std::function<void(http_response response)>;

// Called on the connection's I/O thread with each complete request. It must not block:
// work that waits (storage, a long poll) keeps `respond` and calls it later.
using request_handler = std::function<void(http_request request, respond_fn respond)>;

struct http_server_options {
  // Request line plus header fields. Larger → 431 and close. Default: 8 KiB.
  std::size_t max_header_bytes = 8192;
  // Request body (after chunked decoding). Larger → 200 with CMQ code 4000 and close.
  // Default: 4 MiB.
  std::size_t max_body_bytes = std::size_t{4} << 20;
  // From the first byte of a request to the last; also the time allowed to write an answer.
  // Exceeded → the connection is closed. Default: 30 s.
  std::chrono::milliseconds request_timeout{30000};
  // A keep-alive connection with no request started is closed after this. Default: 60 s.
  std::chrono::milliseconds idle_timeout{60000};
  // From accept to a completed TLS handshake. Default: 10 s.
  std::chrono::milliseconds handshake_timeout{10000};
  // After a closing answer the server stops sending and discards what the client still
  // sends (an unread rest of a refused body) for at most this long before closing, so the
  // client's TCP stack does not get a reset that could destroy the answer. Default: 2 s.
  std::chrono::milliseconds linger_timeout{2000};
  // Open connections of this listener, all threads together. A connection beyond it is
  // accepted and closed at once (counted). Default: 10000.
  std::size_t max_connections = 10000;
  // The JSON body of the 4000 answer to a body over max_body_bytes. Receives the CMQ code
  // and message; the dispatch layer supplies one that adds its requestId. Default:
  // {"code":4000,"message":"...","requestId":""}.
  std::function<std::string(int code, const std::string& message)> error_body;
  net::acceptor_options acceptor;
};

// The options a queue-api listener runs with, from the config's queue_api section.
[[nodiscard]] http_server_options http_server_options_from(const config::queue_api_config& cfg);

// Counters of one listener, summed over its threads. Read from any thread.
struct http_server_stats {
  std::uint64_t accepted = 0;             // sockets accepted (including those refused below)
  std::uint64_t accept_pauses = 0;        // accept paused on EMFILE/ENFILE/ENOBUFS/ENOMEM
  std::uint64_t accept_errors = 0;        // other accept errors
  std::uint64_t connections_open = 0;     // now
  std::uint64_t connections_refused = 0;  // over max_connections: closed at once
  std::uint64_t handshake_failures = 0;   // TLS handshakes that failed or timed out
  std::uint64_t requests = 0;             // complete requests given to the handler
  std::uint64_t body_too_large = 0;       // over max_body_bytes (answered 4000, closed)
  std::uint64_t header_too_large = 0;     // over max_header_bytes (answered 431, closed)
  std::uint64_t malformed = 0;            // malformed HTTP (answered 400, closed)
  std::uint64_t request_timeouts = 0;     // request not read, or answer not written, in time
  std::uint64_t idle_timeouts = 0;        // keep-alive connections closed for idleness
  std::uint64_t late_responses = 0;       // respond_fn called after its connection closed
  std::uint64_t proxy_headers = 0;        // PROXY protocol headers taken (proxy_accept.h)
  std::uint64_t proxy_refused = 0;        // connections closed for their PROXY header, or its lack
};

namespace detail {
struct http_server_state;
}

// A running listener. Copyable handle. REQUIRES: the io_pool outlives every call on it.
class http_listener {
 public:
  http_listener() = default;
  // The bound port (the kernel's choice when the bind said port 0).
  [[nodiscard]] std::uint16_t port() const noexcept { return acceptors_.port(); }
  [[nodiscard]] http_server_stats stats() const noexcept;
  // Stops accepting (asynchronously, per thread). Open connections are unaffected: they end
  // with their clients, their timeouts, or the pool. Thread-safe; idempotent.
  void stop();
  // New connections use `context` from now on (a reload rotating the certificate); open
  // ones keep theirs. Ignored for a plain HTTP listener. Thread-safe.
  void replace_tls_context(std::shared_ptr<boost::asio::ssl::context> context) const;

 private:
  friend http_listener start_http_listener(net::io_pool&, const config::listener_config&,
                                           std::shared_ptr<boost::asio::ssl::context>, request_handler,
                                           http_server_options);
  std::shared_ptr<detail::http_server_state> state_;
  net::acceptor_group acceptors_;
};

// Starts serving HTTP on `cfg.bind` on every pool thread; TLS when `tls_or_null` is given
// (tls::make_server_context(*cfg.tls)). Throws std::system_error when the address cannot be
// parsed or bound, std::invalid_argument when cfg.tls is set but no context is given.
[[nodiscard]] http_listener start_http_listener(net::io_pool& pool, const config::listener_config& cfg,
                                                std::shared_ptr<boost::asio::ssl::context> tls_or_null,
                                                request_handler handler, http_server_options options = {});

}  // namespace wharf::gateway::http
