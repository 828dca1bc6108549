// Starting many client tasks from one thread of wharf-bench: at a paced rate shared by all
// threads, or unpaced with a bound on how many run at once (so an unpaced run of a million
// short tasks does not open a million sockets together).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "bench/client.h"
#include "bench/pacer.h"

namespace wharf::bench {

struct spread_plan {
  std::uint32_t count = 0;    // tasks over all threads: n = 0 .. count - 1
  std::uint32_t threads = 1;  // thread `index` runs n = index, index + threads, ...
  double rate = 0;            // starts per second over all threads; 0 = unpaced
  std::uint32_t unpaced_running_max = 256;  // per thread, when unpaced
  std::chrono::steady_clock::time_point start;
};

namespace detail {
template <class Job>
asio::awaitable<void> run_counted(Job& job, std::uint32_t n, std::uint32_t& running, event& finished) {
  co_await job(n);
  --running;
  finished.notify();
}
}  // namespace detail

// Runs job(n) (an asio::awaitable<void>) for this thread's share of the plan, and returns
// once every one of them has finished. `job` must not throw.
template <class Job>
asio::awaitable<void> spread(asio::io_context& io, spread_plan plan, std::uint32_t index, Job job) {
  event finished(io.get_executor());
  std::uint32_t running = 0;
  std::optional<pacer> pace;
  if (plan.rate > 0) pace.emplace(plan.start, plan.rate, plan.threads, index);
  asio::steady_timer timer(io);
  for (std::uint32_t n = index; n < plan.count; n += plan.threads) {
    if (pace) {
      timer.expires_at(pace->next());
      co_await timer.async_wait(asio::use_awaitable);
    } else {
      while (running >= plan.unpaced_running_max) co_await finished.wait();
    }
    ++running;
    asio::co_spawn(io, detail::run_counted(job, n, running, finished), asio::detached);
  }
  while (running > 0) co_await finished.wait();
}

}  // namespace wharf::bench
