// Test support for the HTTP server: a server on 127.0.0.1:0 with a recording handler, a
// blocking client (plain or TLS) that speaks raw bytes and reads Beast responses, and
// waiting helpers. Real loopback sockets.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/http/server.h"
#include "net/io_pool.h"
#include "tests/support/wait_for.h"

namespace wharf::gateway::http::test {

using response = boost::beast::http::response<boost::beast::http::string_body>;

using wharf::test::wait_for;

config::listener_config loopback_listener();

// A fresh temporary directory, removed at destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Makes a test_server keep every respond_fn for the test to call (take_answer()).
struct hold_answers_t {};
inline constexpr hold_answers_t hold_answers{};

// An HTTP server on a pool of 2 threads, started at construction. By default it answers
// every request at once with a description of it (see describe()); `handler` replaces that.
class test_server {
 public:
  explicit test_server(http_server_options options = {}, request_handler handler = nullptr,
                       std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  explicit test_server(hold_answers_t, http_server_options options = {},
                       std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~test_server();

  [[nodiscard]] std::uint16_t port() const { return listener_.port(); }
  [[nodiscard]] http_server_stats stats() const { return listener_.stats(); }
  [[nodiscard]] std::vector<http_request> requests();
  // The oldest held respond_fn, waiting for one up to `timeout`; empty when none came.
  respond_fn take_answer(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  [[nodiscard]] std::size_t held_answers();

 private:
  net::io_pool pool_;
  std::mutex mutex_;
  std::condition_variable answer_held_;
  std::vector<http_request> requests_;
  // Declared after pool_: destroyed first, while the pool (stopped) still exists, as the
  // respond_fn contract requires.
  std::deque<respond_fn> held_;
  http_listener listener_;
};

// The default handler's answer body for `r`.
std::string describe(const http_request& r);

// A blocking client on one connection.
class client {
 public:
  // TLS when `tls` is given (verifying the server as "localhost").
  explicit client(std::uint16_t port, boost::asio::ssl::context* tls = nullptr);
  void send(std::string_view bytes);
  // Reads one response (and nothing after it).
  response read();
  // Reads exactly `n` bytes (an interim "100 Continue" line, for instance).
  std::string read_exactly(std::size_t n);
  // True when the server closes the connection within `timeout` without sending anything.
  bool closed_by_server(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void close();

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  boost::beast::flat_buffer buffer_;
};

// A POST request to /v2/index.php with `body` and optional extra header lines.
std::string post(std::string_view body, std::string_view extra_headers = "");

}  // namespace wharf::gateway::http::test
