#include "net/io_pool.h"

#include <cassert>
#include <exception>

#include "core/log.h"

namespace wharf::net {

namespace {
thread_local std::size_t t_thread_index = io_pool::npos;
thread_local const io_pool* t_pool = nullptr;
}  // namespace

io_pool::io_pool(std::size_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  contexts_.reserve(threads);
  guards_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread. Posting from other
    // threads stays safe (the hint only drops the multi-runner optimisations).
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.push_back(boost::asio::make_work_guard(*contexts_.back()));
  }
}

io_pool::~io_pool() {
  stop();
  join();
}

void io_pool::run() {
  assert(threads_.empty() && "io_pool::run called twice");
  threads_.reserve(contexts_.size());
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] { thread_main(i); });
  }
}

void io_pool::stop() {
  for (auto& ctx : contexts_) ctx->stop();
}

void io_pool::join() {
  assert(index_of_current_thread() == npos || current_pool() != this);
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::size_t io_pool::index_of_current_thread() noexcept { return t_thread_index; }

const io_pool* io_pool::current_pool() noexcept { return t_pool; }

void io_pool::thread_main(std::size_t index) {
  t_thread_index = index;
  t_pool = this;
  auto& ctx = *contexts_[index];
  for (;;) {
    try {
      ctx.run();
      break;  // stopped
    } catch (const std::exception& e) {
      log::mqtt().error("io thread {}: handler threw: {}", index, e.what());
    } catch (...) {
      log::mqtt().error("io thread {}: handler threw a non-std exception", index);
    }
  }
  t_thread_index = npos;
  t_pool = nullptr;
}

}  // namespace wharf::net
