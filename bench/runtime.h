// Threads of wharf-bench: one io_context per thread, each run by its own thread; clients
// are spread over them round robin and never move.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "bench/client.h"
#include "bench/options.h"
#include "tls/tls_context.h"

namespace wharf::bench {

class runtime {
 public:
  explicit runtime(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i) {
      auto& io = ios_.emplace_back(std::make_unique<boost::asio::io_context>(1));
      guards_.emplace_back(io->get_executor());
    }
    for (auto& io : ios_) threads_.emplace_back([ctx = io.get()] { ctx->run(); });
  }
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;
  ~runtime() { stop(); }

  [[nodiscard]] boost::asio::io_context& io(std::size_t i) { return *ios_[i % ios_.size()]; }
  [[nodiscard]] std::size_t size() const noexcept { return ios_.size(); }

  // Stops every loop and joins the threads; pending coroutines are dropped unfinished.
  void stop() {
    for (auto& io : ios_) io->stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> ios_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

// Resolves host:port once, before the run (throws on failure: startup is an edge).
inline boost::asio::ip::tcp::endpoint resolve(const std::string& host, std::uint16_t port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port));
  return results.begin()->endpoint();
}

// Where connections go and come from: the broker, and the local addresses (--source) that
// connection n binds to in turn, to open more than 64k connections to one broker port.
struct connect_targets {
  boost::asio::ip::tcp::endpoint broker;
  std::vector<boost::asio::ip::address> sources;
  std::shared_ptr<boost::asio::ssl::context> tls;  // --tls: for every connection
  std::string server_name;                          // --host: what the certificate must name

  explicit connect_targets(const options& o) : broker(resolve(o.host, o.port)), server_name(o.host) {
    for (const auto& a : o.sources) sources.push_back(boost::asio::ip::make_address(a));
    if (o.tls) tls = tls::make_client_context(o.ca_file);
  }
  // A client for connection n, over TLS with --tls.
  [[nodiscard]] std::shared_ptr<client> make_client(boost::asio::io_context& io, mqtt::protocol_version version,
                                                    std::size_t read_buffer_bytes) const {
    auto c = std::make_shared<client>(io, version, read_buffer_bytes);
    if (tls) c->use_tls(tls, server_name);
    return c;
  }
  [[nodiscard]] std::optional<boost::asio::ip::address> source_for(std::uint32_t n) const {
    if (sources.empty()) return std::nullopt;
    return sources[n % sources.size()];
  }
};

inline double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace wharf::bench
