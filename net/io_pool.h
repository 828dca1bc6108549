// A pool of I/O threads, each running its OWN io_context (shared-nothing). A connection is
// accepted on one thread and stays there for its whole life; work for another thread is
// posted to that thread's context (batched by the caller, see docs/performance-notes).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

namespace wharf::net {

class io_pool {
 public:
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

  // `threads` contexts; 0 = std::thread::hardware_concurrency() (at least 1).
  // Contexts exist from construction, so listeners may be started before run().
  explicit io_pool(std::size_t threads = 0);
  // Stops and joins. Streams still open when the contexts are destroyed are freed without
  // on_closed (their handlers are destroyed): close connections before stopping the pool.
  // REQUIRES: not called on one of the pool's own threads.
  ~io_pool();
  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  // Starts one thread per context. Each runs until stop(), even while idle (work guards).
  // An exception escaping a handler is logged and the loop goes on: a bug in one
  // connection must not take the other connections of the thread down.
  // REQUIRES: called once.
  void run();
  // Asks every context to stop; pending handlers are not run. Thread-safe; returns at once.
  void stop();
  // Waits for the threads to exit. REQUIRES: not called on one of the pool's threads.
  void join();

  [[nodiscard]] boost::asio::io_context& context(std::size_t i) noexcept { return *contexts_[i]; }
  [[nodiscard]] std::size_t size() const noexcept { return contexts_.size(); }

  // Index of the calling thread in the pool that runs it, or npos on a thread that is
  // not an I/O thread (of any pool).
  [[nodiscard]] static std::size_t index_of_current_thread() noexcept;
  // The pool whose thread is calling, or nullptr.
  [[nodiscard]] static const io_pool* current_pool() noexcept;

 private:
  void thread_main(std::size_t index);

  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace wharf::net
