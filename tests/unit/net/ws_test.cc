#include "test_support.h"
#include "tls/tls_context.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <gtest/gtest.h>

namespace wharf::net::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

config::listener_config ws_listener() { return plain_listener(config::listener_type::mqtt_ws); }

template <class Ws>
std::string handshake(Ws& ws, std::string_view offered, std::string_view path = "/mqtt") {
  ws.set_option(websocket::stream_base::decorator([offered = std::string(offered)](websocket::request_type& req) {
    if (!offered.empty()) req.set(http::field::sec_websocket_protocol, offered);
  }));
  websocket::response_type res;
  ws.handshake(res, "localhost", path);
  return std::string(res[http::field::sec_websocket_protocol]);
}

template <class Ws>
void expect_echo(Ws& ws) {
  ws.binary(true);
  // Two MQTT-ish chunks in one message, then one split over two messages.
  std::vector<std::uint8_t> a = bytes_of("\x10\x02hi\xc0\x00");
  ws.write(asio::buffer(a));
  beast::flat_buffer in;
  while (in.size() < a.size()) ws.read(in);
  EXPECT_EQ(beast::buffers_to_string(in.data()), std::string(a.begin(), a.end()));
  EXPECT_TRUE(ws.got_binary());
  std::vector<std::uint8_t> big(300000, 0x5a);
  ws.write(asio::buffer(big.data(), 1000));
  ws.write(asio::buffer(big.data() + 1000, big.size() - 1000));
  beast::flat_buffer in2;
  while (in2.size() < big.size()) ws.read(in2);
  EXPECT_EQ(in2.size(), big.size());
}

TEST(ws_stream, echo_with_mqtt_subprotocol) {
  echo_server server(2, ws_listener());
  asio::io_context io;
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(loopback(server.port()));
  EXPECT_EQ(handshake(ws, "mqtt"), "mqtt");
  expect_echo(ws);
  {
    std::lock_guard lock(server.mutex);
    ASSERT_EQ(server.peers.size(), 1u);
    EXPECT_TRUE(server.peers[0].websocket);
    EXPECT_FALSE(server.peers[0].tls);
    EXPECT_EQ(server.peers[0].remote_address, "127.0.0.1");
  }
  ws.close(websocket::close_code::normal);
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 1; }));
  EXPECT_EQ(server.counters.closed, 1);
}

TEST(ws_stream, subprotocol_choice) {
  echo_server server(1, ws_listener());
  asio::io_context io;
  for (auto [offered, chosen] : std::vector<std::pair<std::string, std::string>>{
           {"mqttv3.1", "mqttv3.1"}, {"foo, mqttv3.1 , mqtt", "mqtt"}, {"", ""}}) {
    websocket::stream<tcp::socket> ws(io);
    ws.next_layer().connect(loopback(server.port()));
    EXPECT_EQ(handshake(ws, offered), chosen) << offered;
    ws.close(websocket::close_code::normal);
  }
}

TEST(ws_stream, wrong_path_gets_404) {
  echo_server server(1, ws_listener());
  asio::io_context io;
  tcp::socket s(io);
  s.connect(loopback(server.port()));
  http::request<http::empty_body> req{http::verb::get, "/other", 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::connection, "upgrade");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  req.set(http::field::sec_websocket_version, "13");
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  EXPECT_EQ(res.result(), http::status::not_found);
  // And the Beast client sees a failed handshake.
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(loopback(server.port()));
  EXPECT_THROW(handshake(ws, "mqtt", "/nope"), boost::system::system_error);
  EXPECT_TRUE(wait_for([&] { return server.listener().stats().upgrade_refused == 2; }));
  EXPECT_EQ(server.accepted(), 0u);
}

TEST(ws_stream, text_frames_are_refused) {
  echo_server server(1, ws_listener());
  asio::io_context io;
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(loopback(server.port()));
  handshake(ws, "mqtt");
  ws.text(true);
  ws.write(asio::buffer("hello", 5));
  beast::flat_buffer in;
  boost::system::error_code ec;
  ws.read(in, ec);
  EXPECT_TRUE(ec);
  EXPECT_TRUE(wait_for([&] { return server.counters.closed == 1; }));
  EXPECT_EQ(server.counters.bytes_in, 0u);
}

TEST(ws_stream, close_flushes_then_sends_close_frame) {
  echo_options opts;
  opts.close_after_bytes = 1;
  opts.then_write = 200000;
  echo_server server(1, ws_listener(), nullptr, opts);
  asio::io_context io;
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(loopback(server.port()));
  handshake(ws, "mqtt");
  ws.binary(true);
  ws.write(asio::buffer("x", 1));
  beast::flat_buffer in;
  boost::system::error_code ec;
  while (!ec) ws.read(in, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(in.size(), 200000u);
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 1; }));
  EXPECT_EQ(server.counters.closed, 1);
}

TEST(ws_stream, message_size_is_bounded) {
  listener_options lopts;
  lopts.max_ws_message_bytes = 1000;
  echo_server server(1, ws_listener(), nullptr, {}, lopts);
  asio::io_context io;
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(loopback(server.port()));
  handshake(ws, "mqtt");
  ws.binary(true);
  std::vector<std::uint8_t> big(5000, 1);
  boost::system::error_code ec;
  // The client sends this in several writes; the server may cut it off in the middle.
  ws.write(asio::buffer(big), ec);
  beast::flat_buffer in;
  while (!ec) ws.read(in, ec);
  EXPECT_TRUE(wait_for([&] { return server.counters.closed == 1; }));
}

TEST(wss_stream, echo) {
  temp_dir dir;
  auto certs = tls::generate_self_signed(dir.path().string());
  auto cfg = ws_listener();
  cfg.tls = config::tls_config{certs.server.cert_file, certs.server.key_file, "", false};
  echo_server server(2, cfg, tls::make_server_context(*cfg.tls));
  auto client_ctx = tls::make_client_context(certs.ca.cert_file);
  asio::io_context io;
  websocket::stream<asio::ssl::stream<tcp::socket>> ws(io, *client_ctx);
  ws.next_layer().set_verify_callback(asio::ssl::host_name_verification("localhost"));
  beast::get_lowest_layer(ws).connect(loopback(server.port()));
  ws.next_layer().handshake(asio::ssl::stream_base::client);
  EXPECT_EQ(handshake(ws, "mqtt"), "mqtt");
  expect_echo(ws);
  {
    std::lock_guard lock(server.mutex);
    ASSERT_EQ(server.peers.size(), 1u);
    EXPECT_TRUE(server.peers[0].websocket);
    EXPECT_TRUE(server.peers[0].tls);
  }
  ws.close(websocket::close_code::normal);
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 1; }));
  EXPECT_EQ(server.counters.closed, 1);
}

}  // namespace
}  // namespace wharf::net::test
