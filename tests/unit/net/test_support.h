// Test support for the transport: an echo handler with instance counters, a server
// fixture on 127.0.0.1:0, and waiting helpers. Tests use real loopback sockets.
#pragma once

#include "net/io_pool.h"
#include "net/listener.h"
#include "net/stream.h"
#include "tests/support/wait_for.h"

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace wharf::net::test {

// Counts live handlers and on_closed calls across all tests (reset per test).
struct handler_counters {
  std::atomic<int> constructed{0};
  std::atomic<int> destroyed{0};
  std::atomic<int> closed{0};
  std::atomic<int> closed_twice{0};
  std::atomic<std::size_t> bytes_in{0};
};

// `size` bytes, byte i being i * 7 (mod 256): what echo_options::then_write sends.
std::vector<std::uint8_t> patterned_bytes(std::size_t size);

// Echoes what it gets. Behaviour switches let tests shape the output.
struct echo_options {
  bool byte_by_byte = false;          // one write() per received byte
  std::size_t close_after_bytes = 0;  // >0: after this many bytes in, write `then_write` and close()
  std::size_t then_write = 0;         // patterned_bytes(then_write)
  bool shared = false;                // use write_shared
  bool record = true;                 // echo_server records thread, peer and stream per accept
  bool pause_in_on_data = false;      // set_reading(false) then (true) inside each on_data, as a CONNECT does
};

class echo_handler final : public stream_handler {
 public:
  echo_handler(stream& s, handler_counters& counters, echo_options options);
  ~echo_handler() override;
  void on_data(std::span<const std::uint8_t> bytes) override;
  void on_closed(std::error_code ec) override;

 private:
  stream& stream_;
  handler_counters& counters_;
  echo_options options_;
  std::size_t received_ = 0;
  bool closed_ = false;
};

using wharf::test::wait_for;

// A pool of `threads` running an echo server on 127.0.0.1:0.
class echo_server {
 public:
  echo_server(std::size_t threads, config::listener_config cfg,
              std::shared_ptr<boost::asio::ssl::context> tls = nullptr, echo_options options = {},
              listener_options lopts = {}, bool start = true);
  ~echo_server();
  void start() { pool.run(); }

  std::uint16_t port() const { return listener_.port(); }
  listener_handle& listener() { return listener_; }
  handler_counters counters;
  // Per accepted stream: thread index and peer (filled on the stream's thread).
  std::mutex mutex;
  std::vector<std::size_t> accept_threads;
  std::vector<peer_info> peers;
  std::vector<std::weak_ptr<stream>> streams;
  std::size_t accepted() {
    std::lock_guard lock(mutex);
    return peers.size();
  }
  io_pool pool;

 private:
  echo_options options_;
  listener_handle listener_;
};

config::listener_config plain_listener(config::listener_type type = config::listener_type::mqtt);

// A fresh temporary directory, removed at destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Blocking client helpers.
boost::asio::ip::tcp::endpoint loopback(std::uint16_t port);
std::vector<std::uint8_t> bytes_of(std::string_view s);

}  // namespace wharf::net::test
