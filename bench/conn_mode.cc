// conn mode: open many connections at a fixed rate and hold them (keep-alive pings from
// each client), to measure connect rate and the broker's cost per idle connection.
#include <atomic>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>

#include "bench/client.h"
#include "bench/modes.h"
#include "bench/report.h"
#include "bench/runtime.h"
#include "bench/spread.h"

namespace wharf::bench {
namespace {

using clock = std::chrono::steady_clock;
struct conn_thread {
  std::vector<std::shared_ptr<client>> clients;  // touched only by the owning thread
  std::atomic<std::uint32_t> connected{0}, failed{0}, dropped{0};
  std::atomic<std::int64_t> last_done_ns{0};
  std::mutex mu;
  histogram latency;  // GUARDED_BY(mu)
};

struct conn_shared {
  const options* opts;
  connect_targets targets;
};

asio::awaitable<void> open_one(conn_thread& t, conn_shared& sh, std::uint32_t n, std::shared_ptr<client> c) {
  const options& o = *sh.opts;
  mqtt::connect_packet connect;
  const std::uint64_t id = std::uint64_t{o.first_id} + n;
  connect.client_id = fmt::format("bench-conn-{}", id);
  connect.keep_alive_s = o.keep_alive_s;
  connect.username = o.username;
  connect.password = o.passwords.empty() ? o.password : o.passwords[id % o.passwords.size()];
  const auto begin = clock::now();
  const auto ec = co_await c->open(sh.targets.broker, sh.targets.source_for(n), std::move(connect),
                                   std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.connect_timeout_s)));
  const auto done = clock::now();
  t.last_done_ns.store(done.time_since_epoch().count(), std::memory_order_relaxed);
  if (ec) {
    if (t.failed.fetch_add(1) < 5) fmt::print(stderr, "connection {}: {}\n", n, ec.message());
    co_return;
  }
  {
    std::lock_guard lock(t.mu);
    t.latency.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(done - begin).count()));
  }
  c->set_close_handler([&t] { t.dropped.fetch_add(1); });
  t.connected.fetch_add(1);
}

// Opens connections index, index + threads, index + 2 * threads, ... on this thread.
asio::awaitable<void> open_all(conn_thread& t, conn_shared& sh, asio::io_context& io, spread_plan plan,
                               std::uint32_t index) {
  co_await spread(io, plan, index, [&t, &sh, &io](std::uint32_t n) {
    auto c = sh.targets.make_client(io, sh.opts->version, 256);
    t.clients.push_back(c);
    return open_one(t, sh, n, std::move(c));
  });
}

}  // namespace

int run_conn(const options& o) {
  conn_shared sh{&o, connect_targets(o)};
  runtime rt(o.threads);
  std::vector<std::unique_ptr<conn_thread>> threads;
  for (std::size_t i = 0; i < rt.size(); ++i) threads.push_back(std::make_unique<conn_thread>());
  const auto start = clock::now();
  const spread_plan plan{.count = o.connections, .threads = static_cast<std::uint32_t>(rt.size()), .rate = o.rate,
                         .start = start};
  for (std::size_t i = 0; i < rt.size(); ++i)
    asio::co_spawn(rt.io(i), open_all(*threads[i], sh, rt.io(i), plan, static_cast<std::uint32_t>(i)), asio::detached);

  auto total = [&](auto member) {
    std::uint32_t n = 0;
    for (auto& t : threads) n += ((*t).*member).load();
    return n;
  };
  std::uint32_t last_connected = 0;
  auto progress = [&](const char* phase) {
    const auto connected = total(&conn_thread::connected);
    fmt::print(stderr, "[{:6.1f}s {}] connected {} (+{}/s)  failed {}  dropped {}\n",
               seconds_between(start, clock::now()), phase, connected, connected - last_connected,
               total(&conn_thread::failed), total(&conn_thread::dropped));
    last_connected = connected;
  };
  // Connect phase: until every attempt succeeded or failed (each is bounded by its timeout).
  auto tick = start + std::chrono::seconds(1);
  while (total(&conn_thread::connected) + total(&conn_thread::failed) < o.connections) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (clock::now() >= tick) {
      tick += std::chrono::seconds(1);
      progress("connect");
    }
  }
  std::int64_t last_done = 0;
  for (auto& t : threads) last_done = std::max(last_done, t->last_done_ns.load());
  const double connect_s = static_cast<double>(last_done - start.time_since_epoch().count()) / 1e9;

  const auto hold_end = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.hold_s));
  while (clock::now() < hold_end) {
    std::this_thread::sleep_until(std::min(hold_end, tick));
    if (clock::now() >= tick) {
      tick += std::chrono::seconds(1);
      progress("hold");
    }
  }

  conn_result r;
  r.requested = o.connections;
  r.connected = total(&conn_thread::connected);
  r.failed = total(&conn_thread::failed);
  r.dropped = total(&conn_thread::dropped);
  r.connect_s = connect_s;
  for (auto& t : threads) {
    std::lock_guard lock(t->mu);
    r.connect_latency.merge(t->latency);
  }
  // Close without DISCONNECT handshakes: thousands of them would only time the teardown.
  for (std::size_t i = 0; i < rt.size(); ++i)
    asio::post(rt.io(i), [&t = *threads[i]] {
      for (auto& c : t.clients) {
        c->set_close_handler({});
        c->close();
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  rt.stop();
  fmt::print("{}", format_conn(r, o));
  return 0;
}

}  // namespace wharf::bench
