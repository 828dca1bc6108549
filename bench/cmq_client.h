// The client side of wharf's CMQ queue API (docs/API.md) for wharf-bench: endpoint URLs,
// form encoding, request signing (HmacSHA256), and one keep-alive HTTP(S) connection that
// sends signed POSTs one at a time and hands back the JSON answer.
//
// The signing and encoding functions are pure (time and nonce are arguments), so that unit
// tests check them against vectors computed elsewhere.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/object.hpp>

namespace wharf::bench {

// Request parameters in the order they are written to the form body. The signature sorts
// them itself, so the order here does not matter to the server.
using cmq_params = std::vector<std::pair<std::string, std::string>>;

struct cmq_credentials {
  std::string secret_id;
  std::string secret_key;
};

// Where requests go, taken apart from an endpoint URL.
struct cmq_endpoint {
  bool tls = false;         // https
  std::string host;         // to connect to and to verify: a name or an address (IPv6 without brackets)
  std::uint16_t port = 0;   // the URL's, else 80 or 443
  std::string host_header;  // host and port as the URL writes them; signed, so sent verbatim
  std::string path;         // the URL's path; /v2/index.php when it has none
};

// nullopt unless `url` is http://HOST[:PORT][/PATH] or https://... (scheme in lower case,
// no user info, query or fragment).
[[nodiscard]] std::optional<cmq_endpoint> parse_cmq_endpoint(std::string_view url);

// RFC 3986 percent-encoding: the unreserved characters (letters, digits, '-', '.', '_',
// '~') stay as they are, every other byte becomes %XX (upper-case hex). Valid in a form body.
[[nodiscard]] std::string url_encode(std::string_view text);

// The string to sign (docs/API.md#signature): method + Host header + path + "?" + the
// parameters other than Signature, sorted byte-wise by name as sent, joined with '&' as
// name=value, each name written with '_' replaced by '.', values raw (not encoded).
[[nodiscard]] std::string cmq_string_to_sign(std::string_view method, std::string_view host_header,
                                             std::string_view path, const cmq_params& params);

// base64(HMAC-SHA256(secret_key, string_to_sign)): the Signature of a HmacSHA256 request.
[[nodiscard]] std::string cmq_signature_sha256(std::string_view secret_key, std::string_view string_to_sign);

// The form body of a POST to `to`: `action_params`, then the common parameters SecretId,
// Timestamp, Nonce and SignatureMethod=HmacSHA256, then the Signature over all of them;
// every value URL-encoded.
[[nodiscard]] std::string signed_form_body(const cmq_params& action_params, const cmq_credentials& credentials,
                                           const cmq_endpoint& to, std::int64_t timestamp_s, std::uint64_t nonce);

// Nonces for every request of this process. The server refuses a (SecretId, Nonce) pair
// it saw within its signature window, so a process counts up from a random start: unique
// within the process, and unlikely to meet another process's range. Thread-safe.
class nonce_source {
 public:
  // Counts up from `first`. REQUIRES: first > 0 (CMQ nonces are positive).
  explicit nonce_source(std::uint64_t first) : next_(first) {}
  // A random start in [1, 2^62], leaving room to count below CMQ's maximum of 2^63-1.
  [[nodiscard]] static std::uint64_t random_start();
  [[nodiscard]] std::uint64_t next() noexcept { return next_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> next_;
};

// One received message of a ReceiveMessage or BatchReceiveMessage answer.
struct cmq_message {
  std::string body;
  std::string receipt_handle;
};

// The messages of a successful receive answer: the msgInfoList entries of a batch answer,
// or the answer itself for ReceiveMessage. Entries without a string msgBody and
// receiptHandle are left out.
[[nodiscard]] std::vector<cmq_message> received_messages(const boost::json::object& answer);

// What a call brought back: an answer with its CMQ code, or why there was none.
struct cmq_answer {
  // Set when no CMQ answer arrived: connect, TLS or socket error, timeout, an HTTP status
  // other than 200, or a body that is not a JSON object with a numeric code. Says what
  // happened, for the log.
  std::optional<std::string> failure;
  std::int64_t code = 0;
  boost::json::object body;  // the whole answer, code included
};

// What every connection to one server shares. Read-only once the connections exist.
struct cmq_server {
  cmq_endpoint endpoint;
  std::vector<boost::asio::ip::tcp::endpoint> addresses;  // endpoint.host resolved
  cmq_credentials credentials;
  std::shared_ptr<boost::asio::ssl::context> tls_context;  // for https endpoints only
  nonce_source* nonces = nullptr;
};

// One keep-alive HTTP/1.1 connection to the queue API, plain or TLS, one request at a time.
// A call after the connection broke (or was never opened) connects first; a failed call
// closes it, so the next one starts afresh. Lives on one executor: not thread-safe.
class cmq_connection {
 public:
  cmq_connection(boost::asio::any_io_executor executor, const cmq_server& server);

  // TCP connect (and TLS handshake) unless connected. Returns why it failed, or nullopt.
  boost::asio::awaitable<std::optional<std::string>> connect(std::chrono::steady_clock::duration timeout);

  // Signs `action_params` (Timestamp now, the next nonce), POSTs them and reads the answer,
  // all within `timeout` (connecting included).
  boost::asio::awaitable<cmq_answer> call(const cmq_params& action_params, std::chrono::steady_clock::duration timeout);

 private:
  using plain_stream = boost::beast::tcp_stream;
  using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
  using stream = std::variant<plain_stream, tls_stream>;

  boost::asio::awaitable<std::optional<std::string>> connect_before(std::chrono::steady_clock::time_point deadline);

  boost::asio::any_io_executor executor_;
  const cmq_server& server_;
  std::unique_ptr<stream> stream_;  // null while not connected
  boost::beast::flat_buffer buffer_;
};

}  // namespace wharf::bench
