// Heap cost of idle keep-alive connections (the figure in server.h). The clients run in a
// forked child, so that their allocations do not count; the child is forked before the
// server's threads start.
#include <malloc.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "gateway/http/server.h"
#include "http_test_support.h"
#include "tls/tls_context.h"

namespace wharf::gateway::http::test {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

std::size_t heap_in_use() {
  const auto mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// One byte each way over a socket pair: "go" from the parent, "done" from the child.
struct signal_pair {
  int fds[2] = {-1, -1};
  signal_pair() {
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::abort();
  }
  ~signal_pair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  static void put(int fd) {
    const char c = 'k';
    if (::write(fd, &c, 1) != 1) ::_exit(4);
  }
  static bool get(int fd) {
    char c = 0;
    return ::read(fd, &c, 1) == 1;
  }
};

// Child: per batch, waits for the parent, opens `n` connections that each complete one
// request (so the server side is back to waiting for the next), reports; holds them all
// until told to finish.
[[noreturn]] void run_clients(int fd, std::uint16_t port, const std::string& ca_file, std::vector<std::size_t> batches) {
  try {
    asio::io_context io;
    std::shared_ptr<asio::ssl::context> tls;
    if (!ca_file.empty()) tls = tls::make_client_context(ca_file);
    std::vector<std::shared_ptr<void>> held;
    const std::string request = "GET /v2/index.php?Action=ListQueue HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (std::size_t n : batches) {
      if (!signal_pair::get(fd)) ::_exit(2);
      for (std::size_t i = 0; i < n; ++i) {
        boost::beast::flat_buffer buffer;
        bhttp::response<bhttp::string_body> response;
        if (tls) {
          auto s = std::make_shared<asio::ssl::stream<tcp::socket>>(io, *tls);
          s->lowest_layer().connect({asio::ip::make_address("127.0.0.1"), port});
          s->handshake(asio::ssl::stream_base::client);
          asio::write(*s, asio::buffer(request));
          bhttp::read(*s, buffer, response);
          held.push_back(s);
        } else {
          auto s = std::make_shared<tcp::socket>(io);
          s->connect({asio::ip::make_address("127.0.0.1"), port});
          asio::write(*s, asio::buffer(request));
          bhttp::read(*s, buffer, response);
          held.push_back(s);
        }
      }
      signal_pair::put(fd);
    }
    signal_pair::get(fd);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "client: %s\n", e.what());
    ::_exit(3);
  }
  ::_exit(0);
}

// Heap bytes per idle server connection after one request/answer cycle.
double idle_connection_heap(bool use_tls) {
  temp_dir dir;
  std::string ca_file;
  std::shared_ptr<asio::ssl::context> server_tls;
  if (use_tls) {
    const auto certs = tls::generate_self_signed(dir.path().string());
    ca_file = certs.ca.cert_file;
    server_tls = tls::make_server_context({certs.server.cert_file, certs.server.key_file, "", false});
  }
  constexpr std::size_t warm = 20;
  constexpr std::size_t measured = 300;
  net::io_pool pool(1);
  auto listener = start_http_listener(pool, loopback_listener(), server_tls,
                                      [](http_request, respond_fn respond) { respond(R"({"code":0})"); });
  signal_pair signals;
  const pid_t pid = ::fork();
  if (pid == 0) run_clients(signals.fds[1], listener.port(), ca_file, {warm, measured});
  const int fd = signals.fds[0];
  pool.run();
  auto idle_after = [&](std::uint64_t requests) {
    EXPECT_TRUE(signal_pair::get(fd));
    EXPECT_TRUE(wait_for([&] { return listener.stats().requests == requests; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the answers' writes complete
    return heap_in_use();
  };
  signal_pair::put(fd);
  const std::size_t before = idle_after(warm);
  signal_pair::put(fd);
  const std::size_t after = idle_after(warm + measured);
  signal_pair::put(fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  listener.stop();
  pool.stop();
  pool.join();
  return (static_cast<double>(after) - static_cast<double>(before)) / measured;
}

TEST(http_server_memory, idle_connection_heap) {
  if (sanitized) GTEST_SKIP() << "allocator replaced by the sanitizer";
  const double plain = idle_connection_heap(false);
  const double tls = idle_connection_heap(true);
  std::printf("idle heap per HTTP connection after one request: plain %.0f B, tls %.0f B\n", plain, tls);
  // A regression guard for the plain connection (no buffers or parser kept while idle).
  EXPECT_LT(plain, 2048.0);
}

}  // namespace
}  // namespace wharf::gateway::http::test
