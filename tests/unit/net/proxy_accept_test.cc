// PROXY headers taken off real loopback connections by a listener with proxy_protocol
// (proxy_accept.h): the client's address from the header, the bytes after it intact, and
// connections that break the rules closed and counted.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <mutex>
#include <string>

#include "test_support.h"

namespace wharf::net::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Records each accepted stream's peer and the bytes it reads.
struct accepted {
  std::mutex mu;
  std::string address;
  std::uint16_t port = 0;
  std::string bytes;
  int streams = 0;
};

class collect final : public stream_handler {
 public:
  explicit collect(accepted& a) : a_(a) {}
  void on_data(std::span<const std::uint8_t> bytes) override {
    std::lock_guard lock(a_.mu);
    a_.bytes.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  void on_closed(std::error_code) override {}

 private:
  accepted& a_;
};

listener_handle proxied_listener(io_pool& pool, accepted& got, std::vector<std::string> trusted) {
  auto cfg = plain_listener();
  cfg.proxy_protocol = config::proxy_protocol_config{std::move(trusted), 500};
  return start_listener(pool, 0, cfg, nullptr, [&got](std::shared_ptr<stream> s) {
    {
      std::lock_guard lock(got.mu);
      got.address = s->peer().remote_address;
      got.port = s->peer().remote_port;
      ++got.streams;
    }
    s->set_handler(std::make_unique<collect>(got));
    s->set_reading(true);
  });
}

// A client socket bound to `source` (a 127.0.0.x address) before it connects.
tcp::socket client_from(asio::io_context& io, const std::string& source, std::uint16_t port) {
  tcp::socket c(io);
  c.open(tcp::v4());
  c.bind(tcp::endpoint(asio::ip::make_address(source), 0));
  c.connect(loopback(port));
  return c;
}

bool closed_by_server(tcp::socket& c) {
  c.non_blocking(false);
  char b;
  boost::system::error_code ec;
  c.read_some(asio::buffer(&b, 1), ec);
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

TEST(proxy_accept, a_trusted_balancer_names_the_client_and_the_bytes_after_follow) {
  io_pool pool(1);
  accepted got;
  auto l = proxied_listener(pool, got, {"127.0.0.2"});
  pool.run();
  asio::io_context io;
  auto c = client_from(io, "127.0.0.2", l.port());
  const std::string header = "PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\r\n";
  asio::write(c, asio::buffer(header + "after the header"));
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard lock(got.mu);
    return got.bytes == "after the header";
  }));
  std::lock_guard lock(got.mu);
  EXPECT_EQ(got.address, "203.0.113.7");
  EXPECT_EQ(got.port, 51234);
  EXPECT_EQ(l.stats().proxy_headers, 1u);
}

TEST(proxy_accept, a_header_sent_in_pieces_is_waited_for) {
  io_pool pool(1);
  accepted got;
  auto l = proxied_listener(pool, got, {"127.0.0.0/8"});
  pool.run();
  asio::io_context io;
  auto c = client_from(io, "127.0.0.1", l.port());
  asio::write(c, asio::buffer(std::string("PROXY TCP6 2001:db8")));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  asio::write(c, asio::buffer(std::string("::7 2001:db8::1 4000 443\r\nrest")));
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard lock(got.mu);
    return got.bytes == "rest";
  }));
  std::lock_guard lock(got.mu);
  EXPECT_EQ(got.address, "2001:db8::7");
}

TEST(proxy_accept, others_connect_directly_but_may_not_send_a_header) {
  io_pool pool(1);
  accepted got;
  auto l = proxied_listener(pool, got, {"127.0.0.2"});
  pool.run();
  asio::io_context io;
  auto direct = client_from(io, "127.0.0.3", l.port());
  asio::write(direct, asio::buffer(std::string("\x10\x0c", 2)));
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard lock(got.mu);
    return got.streams == 1 && got.bytes == std::string("\x10\x0c", 2);
  }));
  EXPECT_EQ(got.address, "127.0.0.3");
  auto forger = client_from(io, "127.0.0.3", l.port());
  asio::write(forger, asio::buffer(std::string("PROXY TCP4 10.0.0.1 192.0.2.1 1 2\r\n")));
  EXPECT_TRUE(closed_by_server(forger));
  EXPECT_EQ(l.stats().proxy_refused, 1u);
  EXPECT_EQ(got.streams, 1) << "the forged connection became a stream";
}

TEST(proxy_accept, a_trusted_source_without_a_good_header_in_time_is_closed) {
  io_pool pool(1);
  accepted got;
  auto l = proxied_listener(pool, got, {"127.0.0.2"});
  pool.run();
  asio::io_context io;
  auto bare = client_from(io, "127.0.0.2", l.port());
  asio::write(bare, asio::buffer(std::string("\x10\x0c", 2)));
  EXPECT_TRUE(closed_by_server(bare));
  auto bad = client_from(io, "127.0.0.2", l.port());
  asio::write(bad, asio::buffer(std::string("PROXY TCP4 nowhere 192.0.2.1 1 2\r\n")));
  EXPECT_TRUE(closed_by_server(bad));
  auto silent = client_from(io, "127.0.0.2", l.port());  // says nothing: closed after 500 ms
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_by_server(silent));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
  EXPECT_EQ(l.stats().proxy_refused, 3u);
  EXPECT_EQ(got.streams, 0);
}

}  // namespace
}  // namespace wharf::net::test
