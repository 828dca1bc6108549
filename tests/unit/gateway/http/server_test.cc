// The HTTP server over real loopback sockets: keep-alive, TLS, answers from other threads,
// and every bound (body, header, idle, request time, connections).
#include "gateway/http/server.h"

#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>

#include <thread>

#include "http_test_support.h"
#include "tls/tls_context.h"

namespace wharf::gateway::http::test {
namespace {

using namespace std::chrono_literals;

TEST(http_server, keep_alive_serves_many_requests_on_one_connection) {
  test_server server;
  client c(server.port());
  for (int i = 0; i < 3; ++i) {
    c.send(post("Action=SendMessage&n=" + std::to_string(i)));
    const response r = c.read();
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(r[boost::beast::http::field::content_type], "application/json");
    EXPECT_TRUE(r.keep_alive());
    EXPECT_EQ(r.body(), "POST /v2/index.php host=localhost:8080 type=<none> tls=false body=Action=SendMessage&n=" +
                            std::to_string(i));
  }
  c.send("GET /v2/index.php?Action=ListQueue HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n");
  EXPECT_EQ(c.read().body(), "GET /v2/index.php?Action=ListQueue host=127.0.0.1:1 type=<none> tls=false body=");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].remote.substr(0, 10), "127.0.0.1:");
  EXPECT_EQ(server.stats().accepted, 1u);
  EXPECT_EQ(server.stats().requests, 4u);
}

TEST(http_server, passes_content_type_and_decodes_chunked_bodies) {
  test_server server;
  client c(server.port());
  c.send("POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
         "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_EQ(c.read().body(), "POST /p host=h type=application/x-www-form-urlencoded; charset=utf-8 tls=false body=hello world");
}

TEST(http_server, pipelined_requests_are_answered_one_at_a_time_in_order) {
  test_server server(hold_answers);
  client c(server.port());
  c.send(post("first") + post("second"));
  auto first = server.take_answer();
  ASSERT_TRUE(first);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(server.held_answers(), 0u) << "the second request was read before the first was answered";
  first("{\"n\":1}");
  EXPECT_EQ(c.read().body(), "{\"n\":1}");
  auto second = server.take_answer();
  ASSERT_TRUE(second);
  second("{\"n\":2}");
  EXPECT_EQ(c.read().body(), "{\"n\":2}");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].body, "second");
}

TEST(http_server, answer_later_from_another_thread) {
  test_server server({}, [](http_request, respond_fn respond) {
    std::thread([respond = std::move(respond)] {
      std::this_thread::sleep_for(50ms);
      respond("{\"code\":0}");
      respond("{\"code\":1}");  // only the first call counts
    }).detach();
  });
  client c(server.port());
  for (int i = 0; i < 2; ++i) {
    c.send(post("x"));
    EXPECT_EQ(c.read().body(), "{\"code\":0}");
  }
}

TEST(http_server, client_leaving_during_a_long_poll_frees_the_connection_and_the_late_answer_is_dropped) {
  test_server server(hold_answers);
  respond_fn respond;
  {
    client c(server.port());
    c.send(post("long poll"));
    respond = server.take_answer();
    ASSERT_TRUE(respond);
  }
  // The server notices the close while the request waits (the socket is watched).
  ASSERT_TRUE(wait_for([&] { return server.stats().connections_open == 0; }));
  respond("{\"code\":7000}");
  EXPECT_TRUE(wait_for([&] { return server.stats().late_responses == 1; }));
}

TEST(http_server, dropping_the_respond_fn_closes_the_connection) {
  test_server server({}, [](http_request, respond_fn) {});
  client c(server.port());
  c.send(post("x"));
  EXPECT_TRUE(c.closed_by_server());
}

TEST(http_server, connection_close_and_http_1_0_end_the_connection) {
  test_server server;
  {
    client c(server.port());
    c.send(post("x", "Connection: close\r\n"));
    const response r = c.read();
    EXPECT_FALSE(r.keep_alive());
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    client c(server.port());
    c.send("GET /v2/index.php?a=1 HTTP/1.0\r\n\r\n");
    const response r = c.read();
    EXPECT_EQ(r.version(), 10u);
    EXPECT_EQ(r.body(), "GET /v2/index.php?a=1 host= type=<none> tls=false body=");
    EXPECT_TRUE(c.closed_by_server());
  }
}

TEST(http_server, expect_100_continue) {
  test_server server;
  client c(server.port());
  c.send("POST /v2/index.php HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(c.read_exactly(25), "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("hello");
  EXPECT_EQ(c.read().body(), "POST /v2/index.php host=h type=<none> tls=false body=hello");
}

TEST(http_server, body_over_the_limit_gets_cmq_4000_and_close) {
  http_server_options options;
  options.max_body_bytes = 1024;
  test_server server(options);
  client c(server.port());
  c.send(post(std::string(1024, 'a')));
  EXPECT_EQ(c.read().result_int(), 200);
  c.send(post(std::string(3000, 'b')));
  const response r = c.read();
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r[boost::beast::http::field::content_type], "application/json");
  EXPECT_FALSE(r.keep_alive());
  EXPECT_EQ(r.body(), R"({"code":4000,"message":"request body exceeds 1024 bytes","requestId":""})");
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(server.stats().body_too_large, 1u);
  EXPECT_EQ(server.stats().requests, 1u);
}

TEST(http_server, chunked_body_over_the_limit_and_a_custom_error_body) {
  http_server_options options;
  options.max_body_bytes = 8;
  options.error_body = [](int code, const std::string& message) {
    return "{\"code\":" + std::to_string(code) + ",\"message\":\"" + message + "\",\"requestId\":\"r-1\"}";
  };
  test_server server(options);
  client c(server.port());
  c.send("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n");
  EXPECT_EQ(c.read().body(), R"({"code":4000,"message":"request body exceeds 8 bytes","requestId":"r-1"})");
  EXPECT_TRUE(c.closed_by_server());
}

TEST(http_server, header_over_the_limit_gets_431_and_close) {
  http_server_options options;
  options.max_header_bytes = 1024;
  test_server server(options);
  client c(server.port());
  c.send(post("x", "X-Big: " + std::string(2000, 'h') + "\r\n"));
  EXPECT_EQ(c.read().result_int(), 431);
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(server.stats().header_too_large, 1u);
}

TEST(http_server, malformed_http_gets_400_and_close) {
  test_server server;
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n",
                          "GET / HTTP/9.1\r\n\r\n"}) {
    client c(server.port());
    c.send(bad);
    const response r = c.read();
    EXPECT_EQ(r.result_int(), 400) << bad;
    EXPECT_TRUE(c.closed_by_server()) << bad;
  }
  EXPECT_EQ(server.stats().malformed, 3u);
  EXPECT_EQ(server.stats().requests, 0u);
}

TEST(http_server, idle_keep_alive_connections_time_out) {
  http_server_options options;
  options.idle_timeout = 200ms;
  test_server server(options);
  client used(server.port());
  used.send(post("x"));
  EXPECT_EQ(used.read().result_int(), 200);
  client silent(server.port());
  EXPECT_TRUE(used.closed_by_server());
  EXPECT_TRUE(silent.closed_by_server());
  EXPECT_EQ(server.stats().idle_timeouts, 2u);
}

TEST(http_server, request_not_completed_in_time_is_closed) {
  http_server_options options;
  options.request_timeout = 200ms;
  test_server server(options);
  client c(server.port());
  c.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhal");
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(server.stats().request_timeouts, 1u);
  EXPECT_EQ(server.stats().requests, 0u);
}

TEST(http_server, connections_beyond_the_limit_are_closed_at_once) {
  http_server_options options;
  options.max_connections = 1;
  test_server server(options);
  client first(server.port());
  first.send(post("x"));
  EXPECT_EQ(first.read().result_int(), 200);
  client second(server.port());
  EXPECT_TRUE(second.closed_by_server());
  EXPECT_EQ(server.stats().connections_refused, 1u);
  EXPECT_EQ(server.stats().connections_open, 1u);
  first.close();
  ASSERT_TRUE(wait_for([&] { return server.stats().connections_open == 0; }));
  client third(server.port());
  third.send(post("y"));
  EXPECT_EQ(third.read().result_int(), 200);
}

class http_tls_test : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = tls::generate_self_signed(dir_.path().string());
    server_context_ = tls::make_server_context({certs_.server.cert_file, certs_.server.key_file, "", false});
    client_context_ = tls::make_client_context(certs_.ca.cert_file);
  }

  temp_dir dir_;
  tls::dev_certificates certs_;
  std::shared_ptr<boost::asio::ssl::context> server_context_;
  std::shared_ptr<boost::asio::ssl::context> client_context_;
};

TEST_F(http_tls_test, keep_alive_over_tls) {
  test_server server({}, nullptr, server_context_);
  client c(server.port(), client_context_.get());
  for (int i = 0; i < 3; ++i) {
    c.send(post("n=" + std::to_string(i)));
    EXPECT_EQ(c.read().body(), "POST /v2/index.php host=localhost:8080 type=<none> tls=true body=n=" + std::to_string(i));
  }
  // Two requests in one write: the second is already inside OpenSSL when the first is answered.
  c.send(post("a") + post("b"));
  EXPECT_EQ(c.read().body(), "POST /v2/index.php host=localhost:8080 type=<none> tls=true body=a");
  EXPECT_EQ(c.read().body(), "POST /v2/index.php host=localhost:8080 type=<none> tls=true body=b");
  EXPECT_EQ(server.stats().accepted, 1u);
}

TEST_F(http_tls_test, body_limit_over_tls) {
  http_server_options options;
  options.max_body_bytes = 1024;
  test_server server(options, nullptr, server_context_);
  client c(server.port(), client_context_.get());
  c.send(post(std::string(5000, 'z')));
  EXPECT_EQ(c.read().body(), R"({"code":4000,"message":"request body exceeds 1024 bytes","requestId":""})");
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(http_tls_test, late_answer_over_tls) {
  test_server server(hold_answers, {}, server_context_);
  client c(server.port(), client_context_.get());
  c.send(post("x"));
  auto respond = server.take_answer();
  ASSERT_TRUE(respond);
  std::thread([respond = std::move(respond)] { respond("{\"late\":true}"); }).join();
  EXPECT_EQ(c.read().body(), "{\"late\":true}");
}

TEST_F(http_tls_test, handshake_timeout_and_failure_are_counted) {
  http_server_options options;
  options.handshake_timeout = 200ms;
  test_server server(options, nullptr, server_context_);
  client silent(server.port());  // TCP only: never starts the handshake
  EXPECT_TRUE(silent.closed_by_server());
  client plain(server.port());
  plain.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(wait_for([&] { return server.stats().handshake_failures == 2; }));
}

TEST(http_server_start, tls_configured_without_a_context_is_refused) {
  net::io_pool pool(1);
  auto cfg = loopback_listener();
  cfg.tls = config::tls_config{};
  EXPECT_THROW((void)start_http_listener(pool, cfg, nullptr, [](http_request, respond_fn) {}), std::invalid_argument);
  cfg.tls.reset();
  cfg.bind = "127.0.0.1:http";
  EXPECT_THROW((void)start_http_listener(pool, cfg, nullptr, [](http_request, respond_fn) {}), std::system_error);
}

TEST(http_server_options_from, copies_the_queue_api_bounds) {
  config::queue_api_config cfg;
  cfg.max_header_bytes = 1111;
  cfg.max_body_bytes = 2222;
  cfg.request_timeout_ms = 3333;
  cfg.idle_timeout_ms = 4444;
  cfg.max_connections = 5555;
  const auto o = http_server_options_from(cfg);
  EXPECT_EQ(o.max_header_bytes, 1111u);
  EXPECT_EQ(o.max_body_bytes, 2222u);
  EXPECT_EQ(o.request_timeout, 3333ms);
  EXPECT_EQ(o.idle_timeout, 4444ms);
  EXPECT_EQ(o.max_connections, 5555u);
}

}  // namespace
}  // namespace wharf::gateway::http::test
