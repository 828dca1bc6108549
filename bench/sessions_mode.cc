// sessions mode: the stored-sessions figure. `--phase create` leaves --connections
// persistent sessions behind, each subscribed to its own topic; `--phase resume` comes back
// to --sample of them (spread evenly over the range) and checks that each finds its
// session (CONNACK session present) and its subscription (a QoS 1 message it publishes
// to its own topic comes back to it without subscribing again). Between the two phases
// the caller restarts the broker (bench/sessions.py), so resume shows what survived.
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

struct sessions_thread {
  std::atomic<std::uint32_t> done{0}, failed{0}, absent{0}, delivered{0};
  std::mutex mu;
  histogram latency;  // GUARDED_BY(mu)
};

struct sessions_shared {
  const options* opts;
  connect_targets targets;
  clock::duration timeout;  // of one whole visit
  // The resume probe, with a per-run nonce: a probe left queued by an interrupted earlier
  // run does not count.
  std::string probe;
};

std::string session_topic(const options& o, std::uint32_t n) { return fmt::format("{}/session/{}", o.topic_prefix, n); }

mqtt::connect_packet session_connect(const options& o, std::uint32_t n) {
  mqtt::connect_packet c;
  c.client_id = fmt::format("bench-session-{}", n);
  c.keep_alive_s = o.keep_alive_s;
  c.clean_start = false;
  if (o.version == mqtt::protocol_version::v5) c.props.session_expiry_interval = 0xFFFFFFFF;  // never expires
  return c;
}

void fail(sessions_thread& t, std::uint32_t n, std::string_view what) {
  if (t.failed.fetch_add(1) < 5) fmt::print(stderr, "session {}: {}\n", n, what);
}

// One session's visit: connect, then the phase's exchange, then DISCONNECT (the session
// stays). `exchange_done` is set by the packet handler when the exchange has finished.
asio::awaitable<void> visit(sessions_thread& t, sessions_shared& sh, asio::io_context& io, std::uint32_t n) {
  const options& o = *sh.opts;
  const bool resume = o.session_phase == session_phase::resume;
  const auto topic = session_topic(o, n);
  auto c = sh.targets.make_client(io, o.version, 512);
  event progress(io.get_executor());
  bool exchange_done = false, exchange_ok = false;
  c->set_handler([&](mqtt::packet& p) {
    if (auto* ack = std::get_if<mqtt::suback_packet>(&p)) {
      exchange_done = true;
      exchange_ok = !ack->reasons.empty() && !mqtt::is_error(ack->reasons.front());
    } else if (auto* pub = std::get_if<mqtt::publish_packet>(&p)) {
      if (pub->qos != mqtt::qos::at_most_once) {
        mqtt::ack_packet puback;
        puback.packet_id = pub->packet_id;
        c->send(puback);
      }
      if (pub->topic == topic && pub->payload == sh.probe) exchange_done = exchange_ok = true;
    }
    progress.notify();
  });
  c->set_close_handler([&progress] { progress.notify(); });
  // Bounds the whole visit: an answer that never comes ends it as a failure, not a hang.
  asio::steady_timer deadline(io);
  deadline.expires_after(sh.timeout);
  deadline.async_wait([c](boost::system::error_code ec) {
    if (!ec) c->close(std::make_error_code(std::errc::timed_out));
  });

  const auto begin = clock::now();
  const auto ec = co_await c->open(sh.targets.broker, sh.targets.source_for(n), session_connect(o, n), sh.timeout);
  if (ec) {
    fail(t, n, "connect: " + ec.message());
  } else {
    if (resume) {
      if (!c->session_present()) t.absent.fetch_add(1);
      mqtt::publish_packet probe;
      probe.qos = mqtt::qos::at_least_once;
      probe.packet_id = 1;
      probe.topic = topic;
      probe.payload = sh.probe;
      c->send(probe);
    } else {
      mqtt::subscribe_packet sub;
      sub.packet_id = 1;
      mqtt::subscription_request request;
      request.filter = topic;
      request.options.max_qos = mqtt::qos::at_least_once;
      sub.subscriptions.push_back(std::move(request));
      c->send(sub);
    }
    while (!exchange_done && c->is_open()) co_await progress.wait();
    if (exchange_ok) {
      {
        std::lock_guard lock(t.mu);
        t.latency.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(clock::now() - begin).count()));
      }
      if (resume) t.delivered.fetch_add(1);
      t.done.fetch_add(1);
      co_await c->disconnect();
    } else {
      fail(t, n, exchange_done ? "SUBACK refused the subscription"
                 : resume      ? "its own message did not come back"
                               : "no SUBACK");
      c->close();
    }
  }
  deadline.cancel();
  // The handlers refer to this frame: drop them before it goes.
  c->set_handler({});
  c->set_close_handler({});
}

}  // namespace

int run_sessions(const options& o) {
  const bool resume = o.session_phase == session_phase::resume;
  sessions_shared sh{
      &o, connect_targets(o),
      std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.connect_timeout_s)),
      fmt::format("wharf-bench resume probe {}", std::chrono::system_clock::now().time_since_epoch().count())};
  const std::uint32_t visits = resume ? std::min(o.sample, o.connections) : o.connections;
  // resume visits session n * connections / visits: the first, the last and evenly between.
  auto session_of = [&o, visits](std::uint32_t i) {
    return static_cast<std::uint32_t>(std::uint64_t{i} * o.connections / visits);
  };

  runtime rt(o.threads);
  std::vector<std::unique_ptr<sessions_thread>> threads;
  for (std::size_t i = 0; i < rt.size(); ++i) threads.push_back(std::make_unique<sessions_thread>());
  std::atomic<std::uint32_t> threads_finished{0};
  const auto start = clock::now();
  const spread_plan plan{.count = visits, .threads = static_cast<std::uint32_t>(rt.size()), .rate = o.rate, .start = start};
  for (std::size_t i = 0; i < rt.size(); ++i) {
    auto& t = *threads[i];
    auto& io = rt.io(i);
    auto job = [&t, &sh, &io, session_of](std::uint32_t visit_index) { return visit(t, sh, io, session_of(visit_index)); };
    asio::co_spawn(io, spread(io, plan, static_cast<std::uint32_t>(i), job),
                   [&threads_finished](std::exception_ptr) { threads_finished.fetch_add(1); });
  }

  auto total = [&](auto member) {
    std::uint32_t n = 0;
    for (auto& t : threads) n += ((*t).*member).load();
    return n;
  };
  std::uint32_t last_done = 0;
  auto tick = start + std::chrono::seconds(1);
  while (threads_finished.load() < rt.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (clock::now() < tick) continue;
    tick += std::chrono::seconds(1);
    const auto done = total(&sessions_thread::done);
    fmt::print(stderr, "[{:6.1f}s {}] {} {} (+{}/s)  failed {}\n", seconds_between(start, clock::now()),
               resume ? "resume" : "create", resume ? "resumed" : "stored", done, done - last_done,
               total(&sessions_thread::failed));
    last_done = done;
  }

  sessions_result r;
  r.phase = resume ? "resume" : "create";
  r.sessions = o.connections;
  r.visited = visits;
  r.done = total(&sessions_thread::done);
  r.failed = total(&sessions_thread::failed);
  r.absent = total(&sessions_thread::absent);
  r.delivered = total(&sessions_thread::delivered);
  r.elapsed_s = seconds_between(start, clock::now());
  for (auto& t : threads) {
    std::lock_guard lock(t->mu);
    r.latency.merge(t->latency);
  }
  rt.stop();
  fmt::print("{}", format_sessions(r, o));
  return 0;
}

}  // namespace wharf::bench
