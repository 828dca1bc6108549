// The HTTP push client against a small HTTP/1.1 server on loopback that records what it
// receives and answers as each test tells it.
#include "gateway/push/push_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/parse.hpp>

#include "config/config.h"
#include "tls/tls_context.h"

namespace wharf::gateway::push {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using core::queue::notify_format;
using core::queue::push_delivery;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A fresh directory under /tmp, removed with everything in it on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/wharf-push-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

struct recorded_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  int connection = 0;  // which accepted connection carried it, from 1
};

// How the server answers every request until told otherwise.
enum class behaviour {
  answer,               // with `status`, keeping the connection open
  answer_then_close,    // with `status` and Connection: keep-alive, then closes anyway
  hang,                 // never answers
  close_without_answer,
};

// An HTTP/1.1 server on 127.0.0.1, on its own thread; HTTPS with a server TLS context.
class test_server {
 public:
  explicit test_server(std::shared_ptr<asio::ssl::context> tls = nullptr)
      : tls_(std::move(tls)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~test_server() {
    io_.stop();
    thread_.join();
  }
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  [[nodiscard]] std::string url(const std::string& path_and_query) const {
    return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port()) + path_and_query;
  }

  void set(behaviour b, unsigned status = 200, std::size_t response_body_bytes = 2) {
    std::lock_guard lock(mutex_);
    behaviour_ = b;
    status_ = status;
    response_body_bytes_ = response_body_bytes;
  }
  [[nodiscard]] std::vector<recorded_request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  [[nodiscard]] int connections() const { return connections_.load(); }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [error, socket] = co_await acceptor_.async_accept(use_tuple);
      if (error) co_return;
      const int connection = ++connections_;
      if (tls_) {
        asio::co_spawn(io_, serve_tls(beast::tcp_stream(std::move(socket)), connection), asio::detached);
      } else {
        asio::co_spawn(io_, serve(beast::tcp_stream(std::move(socket)), connection), asio::detached);
      }
    }
  }

  asio::awaitable<void> serve_tls(beast::tcp_stream socket, int connection) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls_);
    auto [error] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (!error) co_await serve_requests(stream, connection);
  }

  asio::awaitable<void> serve(beast::tcp_stream stream, int connection) { co_await serve_requests(stream, connection); }

  template <class Stream>
  asio::awaitable<void> serve_requests(Stream& stream, int connection) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      auto [read_error, read] = co_await http::async_read(stream, buffer, request, use_tuple);
      if (read_error) co_return;
      auto [how, status, body_bytes] = record(request, connection);
      if (how == behaviour::close_without_answer) co_return;
      if (how == behaviour::hang) {
        asio::steady_timer forever(io_, asio::steady_timer::time_point::max());
        co_await forever.async_wait(use_tuple);
        co_return;
      }
      http::response<http::string_body> response{static_cast<http::status>(status), 11};
      response.body().assign(body_bytes, 'x');
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      auto [write_error, written] = co_await http::async_write(stream, response, use_tuple);
      if (write_error || !request.keep_alive() || how == behaviour::answer_then_close) co_return;
    }
  }

  std::tuple<behaviour, unsigned, std::size_t> record(const http::request<http::string_body>& request,
                                                      int connection) {
    recorded_request r;
    r.method = std::string(request.method_string());
    r.target = std::string(request.target());
    for (const auto& field : request) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      r.headers[name] = std::string(field.value());
    }
    r.body = request.body();
    r.connection = connection;
    std::lock_guard lock(mutex_);
    requests_.push_back(std::move(r));
    return {behaviour_, status_, response_body_bytes_};
  }

  std::shared_ptr<asio::ssl::context> tls_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::vector<recorded_request> requests_;
  behaviour behaviour_ = behaviour::answer;
  unsigned status_ = 200;
  std::size_t response_body_bytes_ = 2;
};

push_delivery delivery_to(const std::string& endpoint, notify_format format = notify_format::json) {
  push_delivery d;
  d.delivery_id = 7;
  d.topic = "orders";
  d.subscription = "billing";
  d.endpoint = endpoint;
  d.format = format;
  d.msg_id = "1234567";
  d.body = "payload with \"quotes\", a \\ and \xC3\xA9";
  d.tags = {"a", "b"};
  d.publish_time_s = 1'700'000'000;
  return d;
}

struct outcome {
  bool success = false;
  std::string error;
};

class push_client_test : public ::testing::Test {
 protected:
  // Sends one push and runs the client's io_context until it is answered.
  outcome push(push_client& client, push_delivery delivery) {
    std::optional<outcome> got;
    client.send(std::move(delivery), [&](bool success, std::string error) { got = outcome{success, std::move(error)}; });
    io_.restart();
    while (!got && io_.run_one_for(std::chrono::seconds(30)) > 0) {
    }
    if (!got) throw std::runtime_error("the push was never answered");
    return *got;
  }

  asio::io_context io_;
};

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// ---- requests ---------------------------------------------------------------------------

TEST_F(push_client_test, json_notification_carries_cmq_headers_and_typed_fields) {
  test_server server;
  push_client client(io_, {});
  auto result = push(client, delivery_to(server.url("/hook?x=1")));
  EXPECT_TRUE(result.success) << result.error;

  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hook?x=1");
  EXPECT_EQ(r.headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r.headers.at("content-type"), "text/plain");
  EXPECT_EQ(r.headers.at("x-cmq-message-id"), "1234567");
  EXPECT_EQ(r.headers.at("x-cmq-message-tag"), "a, b");
  EXPECT_TRUE(all_digits(r.headers.at("x-cmq-request-id"))) << r.headers.at("x-cmq-request-id");

  auto body = boost::json::parse(r.body).as_object();
  EXPECT_EQ(body.size(), 6u);
  EXPECT_EQ(body.at("TopicOwner").as_string(), "wharf");
  EXPECT_EQ(body.at("topicName").as_string(), "orders");
  EXPECT_EQ(body.at("subscriptionName").as_string(), "billing");
  EXPECT_EQ(body.at("msgId").as_string(), "1234567");
  EXPECT_EQ(body.at("msgBody").as_string(), "payload with \"quotes\", a \\ and \xC3\xA9");
  ASSERT_TRUE(body.at("publishTime").is_int64());
  EXPECT_EQ(body.at("publishTime").as_int64(), 1'700'000'000);
}

TEST_F(push_client_test, topic_owner_is_configurable) {
  test_server server;
  push_client_options options;
  options.topic_owner = "1250000000";
  push_client client(io_, options);
  ASSERT_TRUE(push(client, delivery_to(server.url("/"))).success);
  auto body = boost::json::parse(server.requests().at(0).body).as_object();
  EXPECT_EQ(body.at("TopicOwner").as_string(), "1250000000");
}

TEST_F(push_client_test, simplified_body_is_the_message_as_published) {
  test_server server;
  push_client client(io_, {});
  auto delivery = delivery_to(server.url("/raw"), notify_format::simplified);
  delivery.tags.clear();
  ASSERT_TRUE(push(client, delivery).success);
  const auto r = server.requests().at(0);
  EXPECT_EQ(r.body, delivery.body);
  EXPECT_EQ(r.headers.at("content-type"), "text/plain");
  EXPECT_EQ(r.headers.at("x-cmq-message-id"), "1234567");
  EXPECT_EQ(r.headers.at("x-cmq-message-tag"), "");
}

TEST_F(push_client_test, request_id_is_new_for_every_attempt) {
  test_server server;
  push_client client(io_, {});
  const auto delivery = delivery_to(server.url("/"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(push(client, delivery).success);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_NE(requests[0].headers.at("x-cmq-request-id"), requests[1].headers.at("x-cmq-request-id"));
  EXPECT_NE(requests[1].headers.at("x-cmq-request-id"), requests[2].headers.at("x-cmq-request-id"));
  EXPECT_NE(requests[0].headers.at("x-cmq-request-id"), requests[2].headers.at("x-cmq-request-id"));
}

TEST_F(push_client_test, a_tag_that_would_end_the_header_line_is_refused_before_sending) {
  test_server server;
  push_client client(io_, {});
  auto delivery = delivery_to(server.url("/"));
  delivery.tags = {"a\r\nx-injected: 1"};
  auto result = push(client, delivery);
  EXPECT_FALSE(result.success);
  EXPECT_EQ(server.connections(), 0);
}

// ---- outcomes ---------------------------------------------------------------------------

TEST_F(push_client_test, any_2xx_is_success) {
  test_server server;
  push_client client(io_, {});
  for (unsigned status : {200u, 201u, 202u, 204u, 299u}) {
    server.set(behaviour::answer, status, status == 204 ? 0 : 2);
    auto result = push(client, delivery_to(server.url("/")));
    EXPECT_TRUE(result.success) << status << ": " << result.error;
  }
}

TEST_F(push_client_test, any_other_status_is_failure) {
  test_server server;
  push_client client(io_, {});
  for (unsigned status : {301u, 304u, 400u, 404u, 500u, 503u}) {
    server.set(behaviour::answer, status, status == 304 ? 0 : 2);
    auto result = push(client, delivery_to(server.url("/")));
    EXPECT_FALSE(result.success) << status;
    EXPECT_EQ(result.error, "HTTP " + std::to_string(status));
  }
}

TEST_F(push_client_test, no_answer_before_the_timeout_is_failure) {
  test_server server;
  server.set(behaviour::hang);
  push_client_options options;
  options.timeout = std::chrono::milliseconds(300);
  push_client client(io_, options);
  const auto start = std::chrono::steady_clock::now();
  auto result = push(client, delivery_to(server.url("/")));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.error, "timed out after 300 ms");
  EXPECT_GE(elapsed, std::chrono::milliseconds(250));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST_F(push_client_test, connection_closed_without_an_answer_is_failure) {
  test_server server;
  server.set(behaviour::close_without_answer);
  push_client client(io_, {});
  auto result = push(client, delivery_to(server.url("/")));
  EXPECT_FALSE(result.success);
  EXPECT_FALSE(result.error.empty());
}

TEST_F(push_client_test, connection_refused_is_failure) {
  std::uint16_t closed_port = 0;
  {
    tcp::acceptor probe(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed_port = probe.local_endpoint().port();
  }
  push_client client(io_, {});
  auto result = push(client, delivery_to("http://127.0.0.1:" + std::to_string(closed_port) + "/"));
  EXPECT_FALSE(result.success);
  EXPECT_NE(result.error.find("connect to 127.0.0.1:"), std::string::npos) << result.error;
}

TEST_F(push_client_test, invalid_endpoint_is_failure) {
  push_client client(io_, {});
  auto result = push(client, delivery_to("ftp://127.0.0.1/"));
  EXPECT_FALSE(result.success);
  EXPECT_EQ(result.error, "invalid endpoint URL 'ftp://127.0.0.1/'");
}

TEST_F(push_client_test, the_status_decides_even_when_the_body_is_too_long) {
  test_server server;
  server.set(behaviour::answer, 200, 200 * 1024);
  push_client client(io_, {});
  EXPECT_TRUE(push(client, delivery_to(server.url("/"))).success);
  // The connection was not kept: the rest of the body would have been read as the next answer.
  server.set(behaviour::answer, 200);
  EXPECT_TRUE(push(client, delivery_to(server.url("/"))).success);
  EXPECT_EQ(server.connections(), 2);
}

// ---- connections ------------------------------------------------------------------------

TEST_F(push_client_test, keep_alive_connection_carries_later_pushes) {
  test_server server;
  push_client client(io_, {});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(push(client, delivery_to(server.url("/"))).success);
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(push_client_test, a_connection_the_server_closed_while_idle_is_replaced) {
  test_server server;
  server.set(behaviour::answer_then_close);
  push_client client(io_, {});
  ASSERT_TRUE(push(client, delivery_to(server.url("/"))).success);
  auto result = push(client, delivery_to(server.url("/")));
  EXPECT_TRUE(result.success) << result.error;
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST_F(push_client_test, without_an_idle_pool_every_push_has_its_own_connection) {
  test_server server;
  push_client_options options;
  options.max_idle_connections = 0;
  push_client client(io_, options);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(push(client, delivery_to(server.url("/"))).success);
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests().at(0).headers.at("connection"), "close");
}

TEST_F(push_client_test, a_full_idle_pool_closes_the_connection_idle_longest) {
  test_server first;
  test_server second;
  push_client_options options;
  options.max_idle_connections = 1;
  push_client client(io_, options);
  ASSERT_TRUE(push(client, delivery_to(first.url("/"))).success);
  ASSERT_TRUE(push(client, delivery_to(second.url("/"))).success);  // first's connection closed
  ASSERT_TRUE(push(client, delivery_to(second.url("/"))).success);
  ASSERT_TRUE(push(client, delivery_to(first.url("/"))).success);
  EXPECT_EQ(first.connections(), 2);
  EXPECT_EQ(second.connections(), 1);
}

TEST_F(push_client_test, a_push_in_flight_completes_after_the_client_is_gone) {
  test_server server;
  server.set(behaviour::hang);
  push_client_options options;
  options.timeout = std::chrono::milliseconds(200);
  std::optional<outcome> got;
  {
    push_client client(io_, options);
    client.send(delivery_to(server.url("/")), [&](bool success, std::string error) {
      got = outcome{success, std::move(error)};
    });
  }
  io_.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->success);
}

// ---- https ------------------------------------------------------------------------------

class push_client_tls_test : public push_client_test {
 protected:
  void SetUp() override { certs_ = tls::generate_self_signed(dir_.path() + "/pki"); }

  std::shared_ptr<asio::ssl::context> server_context(const tls::cert_key_files& server_cert) {
    config::tls_config cfg;
    cfg.cert_file = server_cert.cert_file;
    cfg.key_file = server_cert.key_file;
    return tls::make_server_context(cfg);
  }

  push_client_options trusting_dev_ca() {
    push_client_options options;
    options.ca_file = certs_.ca.cert_file;
    return options;
  }

  temp_dir dir_;
  tls::dev_certificates certs_;
};

TEST_F(push_client_tls_test, https_endpoint_with_a_trusted_certificate) {
  test_server server(server_context(certs_.server));
  push_client client(io_, trusting_dev_ca());
  auto result = push(client, delivery_to(server.url("/secure")));
  EXPECT_TRUE(result.success) << result.error;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].target, "/secure");
  // By name too (SNI is sent then), and over the kept-alive connection.
  auto by_name = "https://localhost:" + std::to_string(server.port()) + "/secure";
  result = push(client, delivery_to(by_name));
  EXPECT_TRUE(result.success) << result.error;
  result = push(client, delivery_to(by_name));
  EXPECT_TRUE(result.success) << result.error;
  EXPECT_EQ(server.connections(), 2);
}

TEST_F(push_client_tls_test, certificate_from_an_unknown_ca_is_refused) {
  test_server server(server_context(certs_.server));
  auto other = tls::generate_self_signed(dir_.path() + "/other-pki");
  push_client_options options;
  options.ca_file = other.ca.cert_file;
  push_client client(io_, options);
  auto result = push(client, delivery_to(server.url("/")));
  EXPECT_FALSE(result.success);
  EXPECT_NE(result.error.find("TLS handshake"), std::string::npos) << result.error;
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(push_client_tls_test, certificate_for_another_name_is_refused) {
  tls::cert_key_files elsewhere{dir_.path() + "/elsewhere.pem", dir_.path() + "/elsewhere.key"};
  tls::certificate_request request;
  request.common_name = "elsewhere.example";
  request.subject_alt_names = {"DNS:elsewhere.example"};
  request.usage = tls::cert_usage::server;
  tls::issue_certificate(certs_.ca, request, elsewhere);
  test_server server(server_context(elsewhere));
  push_client client(io_, trusting_dev_ca());
  auto result = push(client, delivery_to(server.url("/")));
  EXPECT_FALSE(result.success);
  EXPECT_NE(result.error.find("TLS handshake"), std::string::npos) << result.error;
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(push_client_tls_test, unreadable_ca_file_fails_at_construction) {
  push_client_options options;
  options.ca_file = dir_.path() + "/missing.pem";
  EXPECT_THROW(push_client(io_, options), std::runtime_error);
}

}  // namespace
}  // namespace wharf::gateway::push
