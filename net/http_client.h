// An HTTP/1.1 client for wharf's own outbound requests (HTTP push to subscription endpoints,
// the authentication hook): one POST at a time per connection, kept-alive connections
// shared between requests to the same scheme, host and port, https verified against a CA
// bundle and the URL's host name, and one deadline per request covering every step.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

namespace wharf::net {

// An http or https URL taken apart.
struct endpoint {
  bool tls = false;          // https
  std::string host;          // to resolve and to verify: a name, or an IP address without brackets
  std::uint16_t port = 0;    // the URL's, else 80 or 443
  std::string host_header;   // host and port as the URL writes them (IPv6 in brackets)
  std::string target;        // path and query; "/" when the URL has no path
};

// std::nullopt unless `url` is an absolute http or https URL with a host and no user info.
// A fragment is dropped (it is never sent). Scheme is case-insensitive.
[[nodiscard]] std::optional<endpoint> parse_endpoint(std::string_view url);

struct http_client_options {
  // Limit on one request: resolving, connecting, the TLS handshake, sending the request and
  // reading the response, together. Default: 5 s.
  std::chrono::milliseconds timeout{5000};
  // PEM CA bundle that https servers' certificates must chain to. Empty: the system's
  // default trust store. Default: empty.
  std::string ca_file;
  // Keep-alive connections kept open between requests, all servers together; when full,
  // the one idle longest is closed. 0: one connection per request. Default: 64.
  std::size_t max_idle_connections = 64;
  std::string user_agent = "wharf";
  // The longest response body read. Of a longer one only the status is reported, and its
  // connection is closed. Default: 64 KiB.
  std::size_t max_response_body_bytes = 64 * 1024;
};

struct http_post {
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // values must not hold CR, LF or NUL
  std::string body;
};

struct http_response {
  // The status, when a response header arrived; then `body` holds the body when it arrived
  // whole and within max_response_body_bytes. Otherwise `error` says why there is none, for
  // the log: "connect to example.com:80: Connection refused", "timed out after 5000 ms".
  std::optional<unsigned> status;
  std::string body;
  bool body_complete = false;
  std::string error;
};

// Threading: all state lives on a strand of the executor given; post() may be called from
// any thread.
class http_client {
 public:
  using completion = std::function<void(http_response)>;

  // Throws std::runtime_error when options.ca_file (or the system trust store) cannot be
  // loaded (startup only).
  http_client(boost::asio::any_io_executor executor, http_client_options options);
  // Requests in flight continue, and their completions still run; idle connections close
  // when the last of them ends.
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // Sends `request` to `to` and calls `done` exactly once, on the executor, within
  // options.timeout (plus scheduling delay). A kept-alive connection the server closed while
  // idle is replaced and the request sent again on a new one, before any answer.
  void post(endpoint to, http_post request, completion done);

  [[nodiscard]] const http_client_options& options() const noexcept;

 private:
  class state;
  std::shared_ptr<state> state_;
};

// True when `value` can be a header value: no CR, LF or NUL that would end the line early
// and let its writer add headers of its own.
[[nodiscard]] bool fits_in_header(std::string_view value) noexcept;

}  // namespace wharf::net
