#include "test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

namespace wharf::net::test {

std::vector<std::uint8_t> patterned_bytes(std::size_t size) {
  // Byte i is i * 7 (mod 256), which repeats every 256 bytes: one period is written byte by
  // byte, the rest doubled with memcpy. A byte loop over 64 MiB takes seconds where the
  // tests' own code is unoptimised and sanitized, seconds that ate a 5 s deadline meant for
  // the stream under test.
  std::vector<std::uint8_t> bytes(size);
  const std::size_t period = std::min<std::size_t>(256, size);
  for (std::size_t i = 0; i < period; ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  for (std::size_t filled = period; filled < size; filled *= 2)
    std::memcpy(bytes.data() + filled, bytes.data(), std::min(filled, size - filled));
  return bytes;
}

echo_handler::echo_handler(stream& s, handler_counters& counters, echo_options options)
    : stream_(s), counters_(counters), options_(options) {
  counters_.constructed.fetch_add(1);
}

echo_handler::~echo_handler() { counters_.destroyed.fetch_add(1); }

void echo_handler::on_data(std::span<const std::uint8_t> bytes) {
  EXPECT_FALSE(closed_) << "on_data after on_closed";
  counters_.bytes_in.fetch_add(bytes.size());
  received_ += bytes.size();
  if (options_.pause_in_on_data) {
    stream_.set_reading(false);
    stream_.set_reading(true);
  }
  if (options_.close_after_bytes > 0) {
    if (received_ >= options_.close_after_bytes) {
      stream_.write(patterned_bytes(options_.then_write));
      stream_.close();
    }
    return;
  }
  if (options_.byte_by_byte) {
    for (auto b : bytes) stream_.write(std::vector<std::uint8_t>{b});
    // Nothing is sent inside the call: all of it is queued for the flush.
    EXPECT_GE(stream_.queued_output_bytes(), bytes.size());
    return;
  }
  std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());
  if (options_.shared) {
    stream_.write_shared(std::make_shared<const std::vector<std::uint8_t>>(std::move(copy)));
  } else {
    stream_.write(std::move(copy));
  }
}

void echo_handler::on_closed(std::error_code) {
  if (closed_) counters_.closed_twice.fetch_add(1);
  closed_ = true;
  counters_.closed.fetch_add(1);
}

echo_server::echo_server(std::size_t threads, config::listener_config cfg,
                         std::shared_ptr<boost::asio::ssl::context> tls, echo_options options,
                         listener_options lopts, bool start)
    : pool(threads), options_(options) {
  listener_ = start_listener(
      pool, 3, cfg, std::move(tls),
      [this](std::shared_ptr<stream> s) {
        if (options_.record) {
          std::lock_guard lock(mutex);
          accept_threads.push_back(io_pool::index_of_current_thread());
          peers.push_back(s->peer());
          streams.push_back(s);
        }
        s->set_handler(std::make_unique<echo_handler>(*s, counters, options_));
      },
      lopts);
  if (start) pool.run();
}

echo_server::~echo_server() {
  pool.stop();
  pool.join();
}

config::listener_config plain_listener(config::listener_type type) {
  config::listener_config cfg;
  cfg.type = type;
  cfg.bind = "127.0.0.1:0";
  return cfg;
}

temp_dir::temp_dir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() / ("wharf-transport-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

boost::asio::ip::tcp::endpoint loopback(std::uint16_t port) {
  return {boost::asio::ip::address_v4::loopback(), port};
}

std::vector<std::uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

}  // namespace wharf::net::test
