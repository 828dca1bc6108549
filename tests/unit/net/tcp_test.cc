#include "test_support.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace wharf::net::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::vector<std::uint8_t> read_exactly(tcp::socket& s, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  asio::read(s, asio::buffer(out));
  return out;
}

TEST(tcp_stream, port_zero_reports_the_bound_port) {
  echo_server server(2, plain_listener());
  ASSERT_NE(server.port(), 0);
  asio::io_context io;
  tcp::socket c(io);
  c.connect(loopback(server.port()));
  asio::write(c, asio::buffer("hi", 2));
  EXPECT_EQ(read_exactly(c, 2), bytes_of("hi"));
}

TEST(tcp_stream, echo_with_many_small_writes_is_coalesced) {
  echo_options opts;
  opts.byte_by_byte = true;
  echo_server server(1, plain_listener(), nullptr, opts);
  asio::io_context io;
  tcp::socket c(io);
  c.connect(loopback(server.port()));
  std::vector<std::uint8_t> msg(1000);
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::uint8_t>(i);
  ASSERT_TRUE(wait_for([&] { return server.accepted() == 1; }));
  asio::write(c, asio::buffer(msg));
  // 1000 write() calls of one byte each. If the server received the 1000 bytes in one
  // chunk (loopback, one segment), they leave in one sendmsg and arrive in one read.
  std::vector<std::uint8_t> got;
  std::vector<std::uint8_t> buf(4096);
  std::size_t reads = 0;
  while (got.size() < msg.size()) {
    std::size_t n = c.read_some(asio::buffer(buf));
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    ++reads;
  }
  EXPECT_EQ(got, msg);
  EXPECT_LE(reads, 3u) << "small writes were not coalesced";
}

TEST(tcp_stream, large_echo_with_shared_buffers) {
  echo_options opts;
  opts.shared = true;
  echo_server server(2, plain_listener(), nullptr, opts);
  asio::io_context io;
  tcp::socket c(io);
  c.connect(loopback(server.port()));
  std::vector<std::uint8_t> msg(3 << 20);
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::uint8_t>(i * 31 + (i >> 12));
  // Write and read concurrently: the echo exceeds the socket buffers, so the server
  // must wait for writability with data queued.
  std::thread writer([&] { asio::write(c, asio::buffer(msg)); });
  auto got = read_exactly(c, msg.size());
  writer.join();
  EXPECT_TRUE(got == msg);
}

TEST(tcp_stream, connections_are_spread_over_threads) {
  echo_server server(2, plain_listener());
  asio::io_context io;
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 200; ++i) {
    clients.emplace_back(io);
    clients.back().connect(loopback(server.port()));
  }
  ASSERT_TRUE(wait_for([&] { return server.accepted() == 200; }));
  for (auto& c : clients) {
    asio::write(c, asio::buffer("x", 1));
    EXPECT_EQ(read_exactly(c, 1), bytes_of("x"));
  }
  std::size_t on0 = 0;
  std::size_t on1 = 0;
  {
    std::lock_guard lock(server.mutex);
    for (auto t : server.accept_threads) (t == 0 ? on0 : on1)++;
    for (const auto& p : server.peers) {
      EXPECT_EQ(p.remote_address, "127.0.0.1");
      EXPECT_NE(p.remote_port, 0);
      EXPECT_EQ(p.listener_index, 3u);
      EXPECT_FALSE(p.tls);
      EXPECT_FALSE(p.websocket);
    }
  }
  EXPECT_GT(on0, 0u);
  EXPECT_GT(on1, 0u);
  EXPECT_EQ(on0 + on1, 200u);
  EXPECT_EQ(server.listener().stats().accepted, 200u);
  clients.clear();
  EXPECT_TRUE(wait_for([&] { return server.counters.closed == 200; }));
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 200; }));
  EXPECT_EQ(server.counters.constructed, 200);
  EXPECT_EQ(server.counters.closed_twice, 0);
}

TEST(tcp_stream, close_flushes_queued_data_then_closes) {
  echo_options opts;
  opts.close_after_bytes = 1;
  opts.then_write = 5 << 20;  // far beyond the socket buffers
  echo_server server(1, plain_listener(), nullptr, opts);
  asio::io_context io;
  tcp::socket c(io);
  c.connect(loopback(server.port()));
  asio::write(c, asio::buffer("go", 2));
  std::vector<std::uint8_t> got;
  std::vector<std::uint8_t> buf(1 << 16);
  boost::system::error_code ec;
  for (;;) {
    std::size_t n = c.read_some(asio::buffer(buf), ec);
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) break;
  }
  EXPECT_EQ(ec, asio::error::eof);
  ASSERT_EQ(got.size(), std::size_t{5} << 20);
  for (std::size_t i = 0; i < got.size(); i += 4099) ASSERT_EQ(got[i], static_cast<std::uint8_t>(i * 7));
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 1; }));
  EXPECT_EQ(server.counters.closed, 1);
  EXPECT_EQ(server.counters.closed_twice, 0);
}

TEST(tcp_stream, close_gives_up_on_a_peer_that_does_not_read) {
  echo_options opts;
  opts.close_after_bytes = 1;
  opts.then_write = 64 << 20;  // never fits into the socket buffers
  listener_options lopts;
  lopts.close_timeout = std::chrono::milliseconds(200);
  echo_server server(1, plain_listener(), nullptr, opts, lopts);
  asio::io_context io;
  tcp::socket c(io);
  c.connect(loopback(server.port()));
  asio::write(c, asio::buffer("go", 2));
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 1; }, std::chrono::seconds(5)));
  EXPECT_EQ(server.counters.closed, 1);
}

TEST(tcp_stream, peer_reset_closes_once) {
  echo_server server(1, plain_listener());
  {
    asio::io_context io;
    tcp::socket c(io);
    c.connect(loopback(server.port()));
    c.set_option(asio::socket_base::linger(true, 0));  // close → RST
    asio::write(c, asio::buffer("abc", 3));
    ASSERT_TRUE(wait_for([&] { return server.counters.bytes_in == 3; }));
  }
  EXPECT_TRUE(wait_for([&] { return server.counters.destroyed == 1; }));
  EXPECT_EQ(server.counters.closed, 1);
}

// A handler that pauses reading after the first chunk; the test resumes it later.
class pausing_handler final : public stream_handler {
 public:
  explicit pausing_handler(stream& s, std::atomic<std::size_t>& in) : stream_(s), in_(in) {}
  void on_data(std::span<const std::uint8_t> bytes) override {
    in_ += bytes.size();
    stream_.set_reading(false);
  }
  void on_closed(std::error_code) override {}

 private:
  stream& stream_;
  std::atomic<std::size_t>& in_;
};

TEST(tcp_stream, set_reading_false_stops_reads_until_resumed) {
  io_pool pool(1);
  std::atomic<std::size_t> in{0};
  std::shared_ptr<stream> accepted;
  std::atomic<bool> ready{false};
  auto l = start_listener(pool, 0, plain_listener(), nullptr, [&](std::shared_ptr<stream> s) {
    s->set_handler(std::make_unique<pausing_handler>(*s, in));
    accepted = s;
    ready = true;
  });
  pool.run();
  asio::io_context io;
  tcp::socket c(io);
  c.connect(loopback(l.port()));
  ASSERT_TRUE(wait_for([&] { return ready.load(); }));
  asio::write(c, asio::buffer("a", 1));
  ASSERT_TRUE(wait_for([&] { return in == 1; }));
  asio::write(c, asio::buffer("bcd", 3));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(in, 1u) << "read while reading was disabled";
  asio::post(pool.context(0), [&] { accepted->set_reading(true); });
  EXPECT_TRUE(wait_for([&] { return in == 4; }));
  asio::post(pool.context(0), [&] { accepted->close(); });
  boost::system::error_code ec;
  char b;
  c.read_some(asio::buffer(&b, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  l.stop();
  asio::post(pool.context(0), [&] { accepted.reset(); });
  pool.stop();
  pool.join();
}

TEST(listener, stop_closes_the_acceptors) {
  echo_server server(2, plain_listener());
  auto port = server.port();
  server.listener().stop();
  asio::io_context io;
  EXPECT_TRUE(wait_for([&] {
    tcp::socket c(io);
    boost::system::error_code ec;
    c.connect(loopback(port), ec);
    return ec == asio::error::connection_refused;
  }));
}

TEST(listener, bind_conflict_throws) {
  // A port held by a socket without SO_REUSEPORT cannot be shared: startup fails loudly.
  asio::io_context io;
  tcp::acceptor plain(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  io_pool pool(1);
  auto cfg = plain_listener();
  cfg.bind = "127.0.0.1:" + std::to_string(plain.local_endpoint().port());
  EXPECT_THROW((void)start_listener(pool, 0, cfg, nullptr, [](std::shared_ptr<stream>) {}), std::system_error);
}

TEST(listener, a_second_listener_group_on_a_taken_address_throws) {
  // Both groups set SO_REUSEPORT, which alone would let the second join the port (as a
  // second broker of the same user would) and take half of the new connections.
  io_pool pool(2);
  auto first = start_listener(pool, 0, plain_listener(), nullptr, [](std::shared_ptr<stream>) {});
  auto cfg = plain_listener();
  cfg.bind = "127.0.0.1:" + std::to_string(first.port());
  try {
    (void)start_listener(pool, 1, cfg, nullptr, [](std::shared_ptr<stream>) {});
    ADD_FAILURE() << "the second listener bound a port the first listens on";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    EXPECT_NE(std::string(e.what()).find("another program holds the address"), std::string::npos) << e.what();
  }
  // The wildcard address covers the first listener's too.
  cfg.bind = "0.0.0.0:" + std::to_string(first.port());
  EXPECT_THROW((void)start_listener(pool, 1, cfg, nullptr, [](std::shared_ptr<stream>) {}), std::system_error);
  first.stop();
}

TEST(listener, a_listener_taking_over_its_own_address_shares_it) {
  // A reload that turns TLS on for a port starts the new listener before the old one stops.
  io_pool pool(1);
  auto old_listener = start_listener(pool, 0, plain_listener(), nullptr, [](std::shared_ptr<stream>) {});
  auto cfg = plain_listener();
  cfg.bind = "127.0.0.1:" + std::to_string(old_listener.port());
  std::atomic<int> accepted_by_new{0};
  listener_options options;
  options.acceptor.takes_over_own_listener = true;
  auto new_listener = start_listener(pool, 1, cfg, nullptr, [&](std::shared_ptr<stream>) { accepted_by_new++; },
                                     options);
  EXPECT_EQ(new_listener.port(), old_listener.port());
  old_listener.stop();
  pool.run();
  asio::io_context io;
  // The old acceptor closes on its own thread: a connection may still reach it meanwhile.
  ASSERT_TRUE(wait_for([&] {
    tcp::socket c(io);
    c.connect(loopback(new_listener.port()));
    return wait_for([&] { return accepted_by_new > 0; }, std::chrono::milliseconds(200));
  }));
  new_listener.stop();
}

TEST(listener, a_stream_without_handler_is_freed) {
  io_pool pool(1);
  std::atomic<int> accepted{0};
  std::weak_ptr<stream> weak;
  auto l = start_listener(pool, 0, plain_listener(), nullptr, [&](std::shared_ptr<stream> s) {
    weak = s;
    accepted++;
  });
  pool.run();
  asio::io_context io;
  tcp::socket c(io);
  c.connect(loopback(l.port()));
  ASSERT_TRUE(wait_for([&] { return accepted == 1; }));
  boost::system::error_code ec;
  char b;
  c.read_some(asio::buffer(&b, 1), ec);  // the server dropped the stream: EOF
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset);
  pool.stop();
  pool.join();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace wharf::net::test
