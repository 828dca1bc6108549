// Threads of wharf-bench: one io_context per thread, each run by its own thread; clients
// are spread over them round robin and never move.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

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

inline double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace wharf::bench
