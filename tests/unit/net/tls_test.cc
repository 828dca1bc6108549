#include "test_support.h"
#include "tls/tls_context.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <thread>

namespace wharf::net::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ssl_client = asio::ssl::stream<tcp::socket>;

class tls_fixture : public ::testing::Test {
 protected:
  void SetUp() override { certs_ = tls::generate_self_signed(dir_.path().string()); }

  config::listener_config tls_listener(bool require_client_cert) {
    auto cfg = plain_listener();
    config::tls_config t;
    t.cert_file = certs_.server.cert_file;
    t.key_file = certs_.server.key_file;
    if (require_client_cert) {
      t.ca_file = certs_.ca.cert_file;
      t.require_client_cert = true;
    }
    cfg.tls = t;
    return cfg;
  }

  tls::cert_key_files client_cert(const std::string& cn) {
    tls::cert_key_files out{(dir_.path() / (cn + ".pem")).string(), (dir_.path() / (cn + ".key")).string()};
    tls::certificate_request req;
    req.common_name = cn;
    req.subject_alt_names = {"DNS:" + cn + ".example", "email:" + cn + "@example.com"};
    req.usage = tls::cert_usage::client;
    tls::issue_certificate(certs_.ca, req, out);
    return out;
  }

  temp_dir dir_;
  tls::dev_certificates certs_;
};

TEST_F(tls_fixture, echo) {
  auto cfg = tls_listener(false);
  echo_server server(2, cfg, tls::make_server_context(*cfg.tls));
  auto client_ctx = tls::make_client_context(certs_.ca.cert_file);
  asio::io_context io;
  ssl_client c(io, *client_ctx);
  c.set_verify_callback(asio::ssl::host_name_verification("localhost"));
  c.lowest_layer().connect(loopback(server.port()));
  c.handshake(asio::ssl::stream_base::client);
  std::vector<std::uint8_t> msg(200000);
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::uint8_t>(i ^ (i >> 8));
  // Write and read at once, on one thread: an SSL object must not be used by two threads
  // concurrently (a sync write on another thread races the read inside OpenSSL and can hang).
  std::vector<std::uint8_t> got(msg.size());
  boost::system::error_code write_ec, read_ec;
  asio::async_write(c, asio::buffer(msg), [&](const boost::system::error_code& ec, std::size_t) { write_ec = ec; });
  asio::async_read(c, asio::buffer(got), [&](const boost::system::error_code& ec, std::size_t) { read_ec = ec; });
  io.run();
  ASSERT_FALSE(write_ec) << write_ec.message();
  ASSERT_FALSE(read_ec) << read_ec.message();
  EXPECT_TRUE(got == msg);
  ASSERT_EQ(server.accepted(), 1u);
  {
    std::lock_guard lock(server.mutex);
    EXPECT_TRUE(server.peers[0].tls);
    EXPECT_FALSE(server.peers[0].websocket);
    EXPECT_FALSE(server.peers[0].cert_common_name);
  }
  boost::system::error_code ec;
  c.shutdown(ec);
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 1; }));
  EXPECT_EQ(server.counters.closed, 1);
}

TEST_F(tls_fixture, many_small_writes_and_close_flushes) {
  auto cfg = tls_listener(false);
  echo_options opts;
  opts.close_after_bytes = 1;
  opts.then_write = 1 << 20;
  echo_server server(1, cfg, tls::make_server_context(*cfg.tls), opts);
  auto client_ctx = tls::make_client_context(certs_.ca.cert_file);
  asio::io_context io;
  ssl_client c(io, *client_ctx);
  c.lowest_layer().connect(loopback(server.port()));
  c.handshake(asio::ssl::stream_base::client);
  asio::write(c, asio::buffer("x", 1));
  std::vector<std::uint8_t> got;
  std::vector<std::uint8_t> buf(1 << 16);
  boost::system::error_code ec;
  for (;;) {
    std::size_t n = c.read_some(asio::buffer(buf), ec);
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) break;
  }
  EXPECT_EQ(ec, asio::error::eof) << ec.message();  // close_notify, not a truncation
  EXPECT_EQ(got.size(), std::size_t{1} << 20);
  c.lowest_layer().close();
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 1; }));
  EXPECT_EQ(server.counters.closed, 1);
}

TEST_F(tls_fixture, mutual_tls_refuses_a_client_without_certificate) {
  auto cfg = tls_listener(true);
  echo_server server(1, cfg, tls::make_server_context(*cfg.tls));
  auto client_ctx = tls::make_client_context(certs_.ca.cert_file);
  asio::io_context io;
  ssl_client c(io, *client_ctx);
  c.lowest_layer().connect(loopback(server.port()));
  boost::system::error_code ec;
  c.handshake(asio::ssl::stream_base::client, ec);
  if (!ec) {
    // TLS 1.3: the client finishes before the server has judged its (missing) certificate;
    // the refusal arrives as an alert on the first read.
    asio::write(c, asio::buffer("x", 1), ec);
    char b;
    c.read_some(asio::buffer(&b, 1), ec);
  }
  EXPECT_TRUE(ec);
  EXPECT_TRUE(wait_for([&] { return server.listener().stats().handshake_failures == 1; }));
  EXPECT_EQ(server.accepted(), 0u);
}

TEST_F(tls_fixture, mutual_tls_reports_the_client_identity) {
  auto cfg = tls_listener(true);
  echo_server server(1, cfg, tls::make_server_context(*cfg.tls));
  auto client_ctx = tls::make_client_context(certs_.ca.cert_file, client_cert("device-7"));
  asio::io_context io;
  ssl_client c(io, *client_ctx);
  c.lowest_layer().connect(loopback(server.port()));
  c.handshake(asio::ssl::stream_base::client);
  asio::write(c, asio::buffer("ping", 4));
  std::vector<std::uint8_t> got(4);
  asio::read(c, asio::buffer(got));
  EXPECT_EQ(got, bytes_of("ping"));
  ASSERT_EQ(server.accepted(), 1u);
  std::lock_guard lock(server.mutex);
  const auto& p = server.peers[0];
  EXPECT_TRUE(p.tls);
  ASSERT_TRUE(p.cert_common_name);
  EXPECT_EQ(*p.cert_common_name, "device-7");
  EXPECT_NE(std::find(p.cert_subject_alt_names.begin(), p.cert_subject_alt_names.end(), "device-7.example"),
            p.cert_subject_alt_names.end());
}

TEST_F(tls_fixture, handshake_timeout_closes_a_silent_client) {
  auto cfg = tls_listener(false);
  listener_options lopts;
  lopts.handshake_timeout = std::chrono::milliseconds(100);
  echo_server server(1, cfg, tls::make_server_context(*cfg.tls), {}, lopts);
  asio::io_context io;
  tcp::socket c(io);
  c.connect(loopback(server.port()));
  boost::system::error_code ec;
  char b;
  c.read_some(asio::buffer(&b, 1), ec);  // we send nothing; the server gives up
  EXPECT_TRUE(ec);
  EXPECT_TRUE(wait_for([&] { return server.listener().stats().handshake_failures == 1; }));
  EXPECT_EQ(server.accepted(), 0u);
}

// Counts bytes in.
class counting_handler final : public stream_handler {
 public:
  explicit counting_handler(std::atomic<std::size_t>& in) : in_(in) {}
  void on_data(std::span<const std::uint8_t> bytes) override { in_ += bytes.size(); }
  void on_closed(std::error_code) override {}

 private:
  std::atomic<std::size_t>& in_;
};

TEST_F(tls_fixture, set_reading_false_holds_data_until_resumed) {
  auto cfg = tls_listener(false);
  io_pool pool(1);
  std::atomic<std::size_t> in{0};
  std::shared_ptr<stream> accepted;
  std::atomic<bool> ready{false};
  auto l = start_listener(pool, 0, cfg, tls::make_server_context(*cfg.tls), [&](std::shared_ptr<stream> s) {
    s->set_handler(std::make_unique<counting_handler>(in));
    accepted = s;
    ready = true;
  });
  pool.run();
  auto client_ctx = tls::make_client_context(certs_.ca.cert_file);
  asio::io_context io;
  ssl_client c(io, *client_ctx);
  c.lowest_layer().connect(loopback(l.port()));
  c.handshake(asio::ssl::stream_base::client);
  ASSERT_TRUE(wait_for([&] { return ready.load(); }));
  asio::write(c, asio::buffer("a", 1));
  ASSERT_TRUE(wait_for([&] { return in == 1; }));
  // Switched off from outside, while a read is pending: that read gets "bcd" and holds it.
  std::atomic<bool> paused{false};
  asio::post(pool.context(0), [&] {
    accepted->set_reading(false);
    paused = true;
  });
  ASSERT_TRUE(wait_for([&] { return paused.load(); }));
  asio::write(c, asio::buffer("bcd", 3));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(in, 1u) << "delivered while reading was disabled";
  asio::post(pool.context(0), [&] { accepted->set_reading(true); });
  EXPECT_TRUE(wait_for([&] { return in == 4; }));
  asio::post(pool.context(0), [&] { accepted->close(); });
  boost::system::error_code ec;
  char b;
  c.read_some(asio::buffer(&b, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  asio::post(pool.context(0), [&] { accepted.reset(); });
  pool.stop();
  pool.join();
}

}  // namespace
}  // namespace wharf::net::test
