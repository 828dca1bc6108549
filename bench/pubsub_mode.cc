// pub/sub mode: publishers and subscribers in one process. Payload layout (host byte
// order, same process): [0,8) send time, steady_clock ns; [8,16) sequence number of the
// publisher; [16,20) publisher index; [20,24) run nonce (messages of earlier runs, e.g.
// from a persistent session, are acknowledged but not counted); the rest is filler.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "bench/client.h"
#include "bench/modes.h"
#include "bench/pacer.h"
#include "bench/report.h"
#include "bench/runtime.h"

namespace wharf::bench {
namespace {

using clock = std::chrono::steady_clock;
constexpr std::size_t queue_limit_bytes = 64 * 1024;  // unpaced senders wait above this

std::int64_t now_ns() { return clock::now().time_since_epoch().count(); }

// Counters of one thread; the progress printer reads them from the main thread.
struct thread_stats {
  std::atomic<std::uint64_t> sent{0}, acked{0}, received{0}, unique{0}, errors{0};
  std::atomic<std::int64_t> last_receive_ns{0};
  std::mutex mu;
  histogram latency;  // GUARDED_BY(mu): the owning thread records, the main thread merges
};

// Returns whether bit `i` was already set; sets it.
bool test_and_set(std::vector<std::uint64_t>& bits, std::uint64_t i) {
  if (i / 64 >= bits.size()) bits.resize(i / 64 + 1 + bits.size() / 2);
  const std::uint64_t mask = 1ULL << (i % 64);
  const bool was = bits[i / 64] & mask;
  bits[i / 64] |= mask;
  return was;
}

std::uint64_t popcount(const std::vector<std::uint64_t>& bits) {
  std::uint64_t n = 0;
  for (auto w : bits) n += static_cast<std::uint64_t>(std::popcount(w));
  return n;
}

struct publisher {
  std::uint32_t index = 0;
  thread_stats* stats = nullptr;
  std::shared_ptr<client> conn;
  std::string topic;
  std::vector<std::uint64_t> acked;  // by sequence: QoS 0 written, QoS 1/2 flow completed
  std::uint64_t next_seq = 0;
  std::uint32_t inflight = 0;
  std::unique_ptr<event> window;  // an acknowledgement arrived, or the connection closed
  bool ready = false;

  // Packet ids run 1..65535 in sequence order; the window (< 65535) keeps them unique.
  [[nodiscard]] std::uint64_t seq_of(std::uint16_t id) const {
    const std::uint64_t last = next_seq - 1;
    return last - ((last + 65535 - (id - 1U)) % 65535);
  }
  void complete(std::uint16_t id) {
    if (inflight == 0 || next_seq == 0) {
      stats->errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    test_and_set(acked, seq_of(id));
    --inflight;
    stats->acked.fetch_add(1, std::memory_order_relaxed);
    window->notify();
  }
};

struct subscriber {
  std::uint32_t index = 0;
  thread_stats* stats = nullptr;
  std::shared_ptr<client> conn;
  std::string filter;
  std::vector<std::vector<std::uint64_t>> seen;  // [publisher][sequence]
  std::uint64_t duplicates = 0;
  std::uint64_t stale = 0;
};

struct shared_state {
  const options* opts = nullptr;
  tcp::endpoint broker;
  std::uint32_t nonce = 0;
  std::atomic<std::uint32_t> ready{0}, failed{0}, publishers_done{0};
  std::atomic<bool> stopping{false};  // closes from now on are ours, not errors
};

mqtt::ack_packet make_ack(mqtt::packet_type type, std::uint16_t packet_id) {
  mqtt::ack_packet a;
  a.type = type;
  a.packet_id = packet_id;
  return a;
}

mqtt::connect_packet make_connect(const options& o, std::string client_id, bool persistent) {
  mqtt::connect_packet c;
  c.client_id = std::move(client_id);
  c.keep_alive_s = o.keep_alive_s;
  c.clean_start = !persistent;
  if (persistent && o.version == mqtt::protocol_version::v5) c.props.session_expiry_interval = 3600;
  return c;
}

// An unexpected close during the run is an error, reported once per connection.
void count_close(shared_state& st, thread_stats& stats, std::error_code reason, const char* role, std::uint32_t index) {
  if (st.stopping) return;
  stats.errors.fetch_add(1, std::memory_order_relaxed);
  fmt::print(stderr, "{} {}: connection closed: {}\n", role, index, reason ? reason.message() : "by peer");
}

void on_subscriber_packet(subscriber& s, shared_state& st, mqtt::packet& p) {
  if (auto* pub = std::get_if<mqtt::publish_packet>(&p)) {
    const auto recv_ns = now_ns();
    if (pub->qos == mqtt::qos::at_least_once) s.conn->send(make_ack(mqtt::packet_type::puback, pub->packet_id));
    if (pub->qos == mqtt::qos::exactly_once) s.conn->send(make_ack(mqtt::packet_type::pubrec, pub->packet_id));
    if (pub->payload.size() < 24) {
      s.stats->errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::int64_t sent_ns = 0;
    std::uint64_t seq = 0;
    std::uint32_t pub_index = 0, nonce = 0;
    std::memcpy(&sent_ns, pub->payload.data(), 8);
    std::memcpy(&seq, pub->payload.data() + 8, 8);
    std::memcpy(&pub_index, pub->payload.data() + 16, 4);
    std::memcpy(&nonce, pub->payload.data() + 20, 4);
    if (nonce != st.nonce || pub_index >= s.seen.size()) {
      ++s.stale;
      return;
    }
    {
      std::lock_guard lock(s.stats->mu);
      s.stats->latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(recv_ns - sent_ns, 0)));
    }
    s.stats->received.fetch_add(1, std::memory_order_relaxed);
    s.stats->last_receive_ns.store(recv_ns, std::memory_order_relaxed);
    if (test_and_set(s.seen[pub_index], seq)) ++s.duplicates;
    else s.stats->unique.fetch_add(1, std::memory_order_relaxed);
  } else if (auto* ack = std::get_if<mqtt::ack_packet>(&p); ack && ack->type == mqtt::packet_type::pubrel) {
    s.conn->send(make_ack(mqtt::packet_type::pubcomp, ack->packet_id));
  }
}

asio::awaitable<void> start_subscriber(subscriber& s, shared_state& st) {
  const options& o = *st.opts;
  bool done = false;
  event suback(s.conn->socket_executor());
  // Set before CONNECT: a resumed session's stored messages may come before the SUBACK.
  s.conn->set_handler([&s, &st, &done, &suback](mqtt::packet& p) {
    if (auto* ack = std::get_if<mqtt::suback_packet>(&p)) {
      done = true;
      if (ack->reasons.empty() || mqtt::is_error(ack->reasons.front())) s.stats->errors.fetch_add(1);
      suback.notify();
      return;
    }
    on_subscriber_packet(s, st, p);
  });
  s.conn->set_close_handler([&suback] { suback.notify(); });
  auto ec = co_await s.conn->open(st.broker, std::nullopt,
                                  make_connect(o, fmt::format("bench-sub-{}", s.index), o.persistent),
                                  std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.connect_timeout_s)));
  if (ec) {
    fmt::print(stderr, "subscriber {}: connect failed: {}\n", s.index, ec.message());
    st.failed.fetch_add(1);
    co_return;
  }
  mqtt::subscribe_packet sub;
  sub.packet_id = 1;
  mqtt::subscription_request request;
  request.filter = s.filter;
  request.options.max_qos = o.qos;
  sub.subscriptions.push_back(std::move(request));
  s.conn->send(sub);
  while (!done && s.conn->is_open()) co_await suback.wait();
  s.conn->set_close_handler([&s, &st] { count_close(st, *s.stats, s.conn->close_reason(), "subscriber", s.index); });
  s.conn->set_handler([&s, &st](mqtt::packet& p) { on_subscriber_packet(s, st, p); });
  if (done) st.ready.fetch_add(1);
  else st.failed.fetch_add(1);
}

asio::awaitable<void> start_publisher(publisher& p, shared_state& st) {
  const options& o = *st.opts;
  auto ec = co_await p.conn->open(st.broker, std::nullopt, make_connect(o, fmt::format("bench-pub-{}", p.index), false),
                                  std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.connect_timeout_s)));
  if (ec) {
    fmt::print(stderr, "publisher {}: connect failed: {}\n", p.index, ec.message());
    st.failed.fetch_add(1);
    co_return;
  }
  p.window = std::make_unique<event>(p.conn->socket_executor());
  p.conn->set_close_handler([&p, &st] {
    count_close(st, *p.stats, p.conn->close_reason(), "publisher", p.index);
    p.window->notify();
  });
  p.conn->set_handler([&p](mqtt::packet& pk) {
    auto* ack = std::get_if<mqtt::ack_packet>(&pk);
    if (ack == nullptr) return;
    if (ack->type == mqtt::packet_type::pubrec) p.conn->send(make_ack(mqtt::packet_type::pubrel, ack->packet_id));
    else if (ack->type == mqtt::packet_type::puback || ack->type == mqtt::packet_type::pubcomp) p.complete(ack->packet_id);
  });
  p.ready = true;
  st.ready.fetch_add(1);
}

asio::awaitable<void> publish_loop(publisher& p, shared_state& st, clock::time_point start, clock::time_point end) {
  const options& o = *st.opts;
  std::optional<pacer> pace;
  if (o.rate > 0) pace.emplace(start, o.rate, o.publishers, p.index);
  // [MQTT-3.3.4-7]: never more unacknowledged QoS 1/2 PUBLISHes than the broker's Receive Maximum.
  const std::uint32_t window = std::min<std::uint32_t>(o.inflight_max, p.conn->server_receive_maximum());
  asio::steady_timer timer(p.conn->socket_executor());
  timer.expires_at(start);
  co_await timer.async_wait(asio::use_awaitable);
  mqtt::publish_packet pkt;
  pkt.qos = o.qos;
  pkt.topic = p.topic;
  pkt.payload.assign(o.size_bytes, 'x');
  std::memcpy(pkt.payload.data() + 16, &p.index, 4);
  std::memcpy(pkt.payload.data() + 20, &st.nonce, 4);
  while (p.conn->is_open()) {
    if (pace) {
      const auto due = pace->next();
      if (due >= end) break;
      if (due > clock::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(asio::use_awaitable);
      }
    }
    if (o.qos != mqtt::qos::at_most_once)
      while (p.conn->is_open() && p.inflight >= window) co_await p.window->wait();
    co_await p.conn->wait_queue_below(queue_limit_bytes);
    if (!p.conn->is_open() || (!pace && clock::now() >= end)) break;
    const std::uint64_t seq = p.next_seq++;
    const std::int64_t ts = now_ns();
    std::memcpy(pkt.payload.data(), &ts, 8);
    std::memcpy(pkt.payload.data() + 8, &seq, 8);
    if (o.qos == mqtt::qos::at_most_once) {
      test_and_set(p.acked, seq);
    } else {
      pkt.packet_id = static_cast<std::uint16_t>(seq % 65535 + 1);
      ++p.inflight;
    }
    p.conn->send(pkt);
    p.stats->sent.fetch_add(1, std::memory_order_relaxed);
  }
  // Drain: wait for the outstanding acknowledgements (the main thread bounds the wait).
  while (p.conn->is_open() && p.inflight > 0) co_await p.window->wait();
  st.publishers_done.fetch_add(1);
}

std::string topic_for(const options& o, std::uint32_t publisher_index) {
  switch (o.scenario) {
    case scenario::p2p: return fmt::format("{}/p2p/{}", o.topic_prefix, publisher_index);
    case scenario::fanin: return o.topic_prefix + "/fanin";
    case scenario::fanout: return o.topic_prefix + "/fanout";
    case scenario::shared: return o.topic_prefix + "/shared";
  }
  return o.topic_prefix;
}

bool wait_for(const std::function<bool()>& done, double timeout_s) {
  const auto deadline = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s));
  while (!done()) {
    if (clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

int run_pubsub(const options& o) {
  shared_state st;
  st.opts = &o;
  st.broker = resolve(o.host, o.port);
  st.nonce = std::random_device{}();
  runtime rt(o.threads);
  std::vector<std::unique_ptr<thread_stats>> stats;
  for (std::size_t t = 0; t < rt.size(); ++t) stats.push_back(std::make_unique<thread_stats>());

  std::vector<subscriber> subs(o.subscribers);
  std::vector<publisher> pubs(o.publishers);
  for (std::uint32_t i = 0; i < o.subscribers; ++i) {
    auto& s = subs[i];
    s.index = i;
    s.stats = stats[i % rt.size()].get();
    s.conn = std::make_shared<client>(rt.io(i), o.version, 64 * 1024);
    s.seen.resize(o.publishers);
    s.filter = o.scenario == scenario::shared  ? "$share/bench/" + topic_for(o, 0)
               : o.subscribe_filter.empty() ? topic_for(o, i)
                                            : o.subscribe_filter;
  }
  for (std::uint32_t i = 0; i < o.publishers; ++i) {
    auto& p = pubs[i];
    p.index = i;
    p.stats = stats[(i + o.subscribers) % rt.size()].get();
    p.conn = std::make_shared<client>(rt.io(i + o.subscribers), o.version, 16 * 1024);
    p.topic = topic_for(o, i);
  }

  // Subscribers first, so that nothing published is missed; then publishers.
  for (auto& s : subs) asio::co_spawn(rt.io(s.index), start_subscriber(s, st), asio::detached);
  const double setup_s = o.connect_timeout_s + 5;
  wait_for([&] { return st.ready + st.failed >= o.subscribers; }, setup_s);
  for (auto& p : pubs) asio::co_spawn(rt.io(p.index + o.subscribers), start_publisher(p, st), asio::detached);
  wait_for([&] { return st.ready + st.failed >= o.subscribers + o.publishers; }, setup_s);
  const std::uint32_t failed_setup = st.failed.load() + (o.subscribers + o.publishers - st.ready - st.failed);
  if (st.ready == 0) {
    fmt::print(stderr, "wharf-bench: no client could connect to {}:{}\n", o.host, o.port);
    return 1;
  }
  // --offline: the subscribers' sessions stay with their subscriptions while they are away,
  // so every message is stored for them (durably before the PUBACK, on wharf); they come
  // back after the publishers finished and drain what was stored.
  if (o.offline) {
    st.stopping = true;
    for (auto& s : subs) asio::co_spawn(rt.io(s.index), s.conn->disconnect(), asio::detached);
    wait_for([&] { return std::none_of(subs.begin(), subs.end(), [](auto& s) { return s.conn->is_open(); }); }, setup_s);
    for (auto& s : subs) s.conn = std::make_shared<client>(rt.io(s.index), o.version, 64 * 1024);
    st.stopping = false;
  }

  const auto start = clock::now() + std::chrono::milliseconds(20);
  const auto end = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.duration_s));
  std::uint32_t publishing = 0;
  for (auto& p : pubs) {
    if (!p.ready) continue;
    ++publishing;
    asio::co_spawn(rt.io(p.index + o.subscribers), publish_loop(p, st, start, end), asio::detached);
  }

  const std::uint64_t receivers = (o.scenario == scenario::fanin || o.scenario == scenario::fanout) ? o.subscribers : 1;
  auto sum = [&](auto member) {
    std::uint64_t n = 0;
    for (auto& t : stats) n += ((*t).*member).load(std::memory_order_relaxed);
    return n;
  };
  auto merged_latency = [&] {
    histogram h;
    for (auto& t : stats) {
      std::lock_guard lock(t->mu);
      h.merge(t->latency);
    }
    return h;
  };
  auto progress = [&, last_sent = std::uint64_t{0}, last_recv = std::uint64_t{0}](const char* phase) mutable {
    const auto sent = sum(&thread_stats::sent), recv = sum(&thread_stats::received);
    fmt::print(stderr, "[{:5.1f}s {}] sent {}/s  received {}/s  total sent {} received {}  p99 {:.1f} us\n",
               seconds_between(start, clock::now()), phase, sent - last_sent, recv - last_recv, sent, recv,
               static_cast<double>(merged_latency().percentile(99)) / 1000.0);
    last_sent = sent;
    last_recv = recv;
  };
  auto next_tick = start + std::chrono::seconds(1);
  auto sleep_to_tick = [&](clock::time_point limit) {
    std::this_thread::sleep_until(std::min(next_tick, limit));
    if (clock::now() < next_tick) return false;
    next_tick += std::chrono::seconds(1);
    return true;
  };
  while (clock::now() < end)
    if (sleep_to_tick(end)) progress("pub");
  if (o.offline) {
    wait_for([&] { return st.publishers_done >= publishing; }, o.drain_s);
    const std::uint32_t ready_before = st.ready;
    for (auto& s : subs) asio::co_spawn(rt.io(s.index), start_subscriber(s, st), asio::detached);
    wait_for([&] { return st.ready + st.failed >= ready_before + o.subscribers; }, setup_s);
  }
  const auto drain_end = end + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.drain_s));
  auto drained = [&] {
    const auto settled = o.qos == mqtt::qos::at_most_once ? sum(&thread_stats::sent) : sum(&thread_stats::acked);
    return st.publishers_done >= publishing && sum(&thread_stats::unique) >= settled * receivers;
  };
  while (!drained() && clock::now() < drain_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (clock::now() >= next_tick) {
      next_tick += std::chrono::seconds(1);
      progress("drain");
    }
  }
  const auto finished = clock::now();
  st.stopping = true;

  for (auto& s : subs) asio::co_spawn(rt.io(s.index), s.conn->disconnect(), asio::detached);
  for (auto& p : pubs) asio::co_spawn(rt.io(p.index + o.subscribers), p.conn->disconnect(), asio::detached);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  rt.stop();

  pubsub_result r;
  r.publish_s = seconds_between(start, end);
  r.elapsed_s = seconds_between(start, finished);
  r.sent = sum(&thread_stats::sent);
  r.acked = o.qos == mqtt::qos::at_most_once ? 0 : sum(&thread_stats::acked);
  r.received = sum(&thread_stats::received);
  r.errors = sum(&thread_stats::errors) + failed_setup;
  r.latency = merged_latency();
  std::int64_t last_rx = 0;
  for (auto& t : stats) last_rx = std::max(last_rx, t->last_receive_ns.load());
  const double rx_s = std::max(r.publish_s, static_cast<double>(last_rx - start.time_since_epoch().count()) / 1e9);
  r.received_per_s = rx_s > 0 ? static_cast<double>(r.received) / rx_s : 0;

  // Loss and duplicates per receiving group: each group must see every message of its
  // publishers once. p2p: subscriber i for publisher i; fanin/fanout: each subscriber for
  // all; shared: all subscribers together for all.
  auto account = [&](const std::vector<const subscriber*>& group, std::uint32_t first_pub, std::uint32_t last_pub) {
    for (std::uint32_t pi = first_pub; pi < last_pub; ++pi) {
      std::vector<std::uint64_t> seen;
      for (const auto* s : group) {
        const auto& bits = s->seen[pi];
        if (seen.size() < bits.size()) seen.resize(bits.size());
        for (std::size_t w = 0; w < bits.size(); ++w) {
          r.duplicates += static_cast<std::uint64_t>(std::popcount(seen[w] & bits[w]));
          seen[w] |= bits[w];
        }
      }
      const auto& acked = pubs[pi].acked;
      r.expected += popcount(acked);
      for (std::size_t w = 0; w < acked.size(); ++w)
        r.lost += static_cast<std::uint64_t>(std::popcount(acked[w] & ~(w < seen.size() ? seen[w] : 0)));
    }
  };
  for (const auto& s : subs) {
    r.duplicates += s.duplicates;
    r.stale += s.stale;
  }
  if (o.scenario == scenario::p2p) {
    for (const auto& s : subs) account({&s}, s.index, s.index + 1);
  } else if (o.scenario == scenario::shared) {
    std::vector<const subscriber*> all;
    for (const auto& s : subs) all.push_back(&s);
    account(all, 0, o.publishers);
  } else {
    for (const auto& s : subs) account({&s}, 0, o.publishers);
  }
  fmt::print("{}", format_pubsub(r, o));
  return 0;
}

}  // namespace wharf::bench
