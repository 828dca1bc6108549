// queue mode: producers and consumers of one queue over wharf's CMQ queue API (HTTP or
// HTTPS). Each has its own keep-alive connection and one request outstanding at a time,
// as a CMQ SDK client does. Producers send (batches of) messages; consumers receive with
// long polling and delete what they received.
//
// Message bodies begin with 24 hex digits: [0,8) the run id, [8,24) the steady_clock time
// of the send in ns (producers and consumers share the process, so the clocks agree); the
// rest is filler. A body of another run (left in a kept queue) is received and deleted but
// gives no latency.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>

#include "bench/cmq_client.h"
#include "bench/modes.h"
#include "bench/pacer.h"
#include "bench/report.h"
#include "bench/runtime.h"
#include "tls/tls_context.h"

namespace wharf::bench {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

constexpr std::size_t stamp_chars = 24;
constexpr std::int64_t code_no_message = 7000;
constexpr std::int64_t code_queue_exists = 4460;
constexpr std::int64_t code_batch_delete_partly_failed = 6010;
// CMQ's default maxMsgSize; a queue this run creates for larger bodies gets --size instead.
constexpr std::uint32_t default_max_msg_size = 65536;
// A request not answered within this (after a receive's polling wait) counts as failed.
constexpr std::chrono::seconds request_timeout{10};
// After a failed call, wait this long before the next: a server that is down or refusing
// must not turn the bench into a busy loop of connection attempts or rejected requests.
constexpr std::chrono::milliseconds failure_pause{100};
// Failures are all counted, but only the first few of a run are described on stderr.
constexpr std::uint32_t failures_logged_max = 5;

// Counters of one thread; the progress printer reads them from the main thread.
struct thread_stats {
  std::atomic<std::uint64_t> sent{0}, received{0}, deleted{0}, empty_receives{0}, stale{0}, errors{0};
  std::mutex mu;
  // GUARDED_BY(mu): the owning thread records, the main thread merges.
  histogram send_latency, consume_latency, end_to_end;
  std::map<std::string, std::uint64_t> errors_by_code;
};

struct run_state {
  const options* opts = nullptr;
  cmq_server server;
  std::string queue;
  std::uint32_t run_id = 0;
  std::atomic<std::uint32_t> connected{0}, connect_failed{0}, finished{0};
  std::atomic<std::uint32_t> failures_logged{0};
};

// A producer or a consumer, with its connection. Touched only on its io_context's thread.
struct worker {
  std::uint32_t index = 0;  // among the producers, or among the consumers
  asio::io_context* io = nullptr;
  thread_stats* stats = nullptr;
  std::unique_ptr<cmq_connection> conn;
};

std::uint64_t nanoseconds(clock::duration d) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(std::chrono::nanoseconds(d).count(), 0));
}

// Writes the run id and the send time over the first stamp_chars of `body`.
void stamp(std::string& body, std::uint32_t run_id, clock::time_point sent) {
  fmt::format_to(body.data(), "{:08x}{:016x}", run_id,
                 static_cast<std::uint64_t>(sent.time_since_epoch().count()));
}

// The send time stamped in `body` when this run sent it; nullopt for anything else.
std::optional<clock::time_point> sent_at(std::string_view body, std::uint32_t run_id) {
  if (body.size() < stamp_chars) return std::nullopt;
  std::uint32_t id = 0;
  std::uint64_t ns = 0;
  const char* p = body.data();
  const auto id_read = std::from_chars(p, p + 8, id, 16);
  const auto ns_read = std::from_chars(p + 8, p + stamp_chars, ns, 16);
  if (id_read.ptr != p + 8 || ns_read.ptr != p + stamp_chars || id != run_id) return std::nullopt;
  return clock::time_point(clock::duration(static_cast<clock::rep>(ns)));
}

std::string message_of(const cmq_answer& a) {
  const auto* m = a.body.if_contains("message");
  return m && m->is_string() ? std::string(m->get_string()) : std::string();
}

void count_error(thread_stats& stats, const std::string& code) {
  stats.errors.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(stats.mu);
  ++stats.errors_by_code[code];
}

// Counts a call that got no answer ("transport") or a non-zero code, and describes it on
// stderr while few have been.
void count_failure(run_state& st, thread_stats& stats, std::string_view action, const cmq_answer& a) {
  count_error(stats, a.failure ? std::string("transport") : std::to_string(a.code));
  if (st.failures_logged.fetch_add(1) >= failures_logged_max) return;
  if (a.failure) fmt::print(stderr, "{}: {}\n", action, *a.failure);
  else fmt::print(stderr, "{}: code {}: {}\n", action, a.code, message_of(a));
}

asio::awaitable<void> pause(asio::steady_timer& timer, clock::duration d) {
  timer.expires_after(d);
  co_await timer.async_wait(asio::use_awaitable);
}

// The parameters of a producer's request: the bodies (filler until stamped) from index
// first_body on, then with --groups one group per body (set by set_groups).
constexpr std::size_t first_body = 2;  // after Action and queueName
cmq_params send_params(const run_state& st) {
  const options& o = *st.opts;
  const bool single = o.batch == 1;
  cmq_params params{{"Action", single ? "SendMessage" : "BatchSendMessage"}, {"queueName", st.queue}};
  const std::string filler(o.size_bytes, 'x');
  if (single) params.emplace_back("msgBody", filler);
  else
    for (std::uint32_t i = 1; i <= o.batch; ++i) params.emplace_back(fmt::format("msgBody.{}", i), filler);
  if (o.groups > 0) {
    if (single) params.emplace_back("msgGroupId", "");
    else
      for (std::uint32_t i = 1; i <= o.batch; ++i) params.emplace_back(fmt::format("msgGroupId.{}", i), "");
  }
  return params;
}

// With --groups: the groups of the next request's bodies. The producers take the groups in
// turn between them (producer p's n-th message goes to group (p + n * producers) mod G), so
// every group gets messages at the same rate.
void set_groups(cmq_params& params, const options& o, std::uint32_t producer, std::uint64_t& sent) {
  if (o.groups == 0) return;
  for (std::size_t i = first_body + o.batch; i < params.size(); ++i, ++sent)
    params[i].second = fmt::format("g{}", (producer + sent * o.producers) % o.groups);
}

cmq_params receive_params(const run_state& st) {
  const options& o = *st.opts;
  cmq_params params{{"Action", o.batch == 1 ? "ReceiveMessage" : "BatchReceiveMessage"},
                    {"queueName", st.queue},
                    {"pollingWaitSeconds", std::to_string(o.polling_wait_s)}};
  if (o.batch > 1) params.emplace_back("numOfMsg", std::to_string(o.batch));
  return params;
}

cmq_params delete_params(const run_state& st, const std::vector<cmq_message>& messages) {
  const bool single = st.opts->batch == 1;
  cmq_params params{{"Action", single ? "DeleteMessage" : "BatchDeleteMessage"}, {"queueName", st.queue}};
  if (single) params.emplace_back("receiptHandle", messages.front().receipt_handle);
  else
    for (std::size_t i = 0; i < messages.size(); ++i)
      params.emplace_back(fmt::format("receiptHandle.{}", i + 1), messages[i].receipt_handle);
  return params;
}

asio::awaitable<void> connect_worker(worker& w, run_state& st) {
  if (auto failed = co_await w.conn->connect(request_timeout)) {
    fmt::print(stderr, "{}\n", *failed);
    st.connect_failed.fetch_add(1);
  } else {
    st.connected.fetch_add(1);
  }
}

asio::awaitable<void> produce(worker& w, run_state& st, clock::time_point start, clock::time_point end) {
  const options& o = *st.opts;
  // One pacer slot per request: a batch of messages at a time.
  std::optional<pacer> pace;
  if (o.rate > 0) pace.emplace(start, o.rate / o.batch, o.producers, w.index);
  asio::steady_timer timer(*w.io);
  timer.expires_at(start);
  co_await timer.async_wait(asio::use_awaitable);
  auto params = send_params(st);
  std::uint64_t grouped = 0;  // messages given a group so far
  while (true) {
    if (pace) {
      const auto due = pace->next();
      if (due >= end) break;
      if (due > clock::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(asio::use_awaitable);
      }
    } else if (clock::now() >= end) {
      break;
    }
    const auto begin = clock::now();
    for (std::size_t i = first_body; i < first_body + o.batch; ++i) stamp(params[i].second, st.run_id, begin);
    set_groups(params, o, w.index, grouped);
    const auto answer = co_await w.conn->call(params, request_timeout);
    if (answer.failure || answer.code != 0) {
      count_failure(st, *w.stats, params.front().second, answer);
      co_await pause(timer, failure_pause);
      continue;
    }
    {
      std::lock_guard lock(w.stats->mu);
      w.stats->send_latency.record(nanoseconds(clock::now() - begin));
    }
    w.stats->sent.fetch_add(o.batch, std::memory_order_relaxed);
  }
  st.finished.fetch_add(1);
}

// Records the end-to-end latency of what a receive brought.
void account_received(worker& w, const run_state& st, const std::vector<cmq_message>& messages,
                      clock::time_point received) {
  std::uint64_t stale = 0;
  {
    std::lock_guard lock(w.stats->mu);
    for (const auto& m : messages) {
      if (const auto sent = sent_at(m.body, st.run_id)) w.stats->end_to_end.record(nanoseconds(received - *sent));
      else ++stale;
    }
  }
  w.stats->received.fetch_add(messages.size(), std::memory_order_relaxed);
  w.stats->stale.fetch_add(stale, std::memory_order_relaxed);
}

// Deletes what a receive brought; true when the delete was answered (wholly or partly done).
asio::awaitable<bool> delete_received(worker& w, run_state& st, const std::vector<cmq_message>& messages) {
  const auto params = delete_params(st, messages);
  const auto answer = co_await w.conn->call(params, request_timeout);
  std::uint64_t failed = 0;
  if (!answer.failure && answer.code == code_batch_delete_partly_failed) {
    // The valid handles were deleted; each failed one is listed with its own code.
    const auto* list = answer.body.if_contains("errorList");
    if (list && list->is_array()) {
      for (const auto& e : list->get_array()) {
        const auto* code = e.is_object() ? e.get_object().if_contains("code") : nullptr;
        count_error(*w.stats, code && code->is_int64() ? std::to_string(code->get_int64()) : "6010");
        ++failed;
      }
    }
  } else if (answer.failure || answer.code != 0) {
    count_failure(st, *w.stats, params.front().second, answer);
    co_return false;
  }
  w.stats->deleted.fetch_add(messages.size() - std::min<std::uint64_t>(failed, messages.size()),
                             std::memory_order_relaxed);
  co_return true;
}

asio::awaitable<void> consume(worker& w, run_state& st, clock::time_point start, clock::time_point end) {
  const auto receive_timeout = std::chrono::seconds(st.opts->polling_wait_s) + request_timeout;
  asio::steady_timer timer(*w.io);
  timer.expires_at(start);
  co_await timer.async_wait(asio::use_awaitable);
  const auto params = receive_params(st);
  while (clock::now() < end) {
    const auto begin = clock::now();
    const auto answer = co_await w.conn->call(params, receive_timeout);
    const auto received = clock::now();
    if (!answer.failure && answer.code == code_no_message) {
      w.stats->empty_receives.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (answer.failure || answer.code != 0) {
      count_failure(st, *w.stats, params.front().second, answer);
      co_await pause(timer, failure_pause);
      continue;
    }
    const auto messages = received_messages(answer.body);
    if (messages.empty()) continue;
    account_received(w, st, messages, received);
    if (!co_await delete_received(w, st, messages)) {
      co_await pause(timer, failure_pause);
      continue;
    }
    std::lock_guard lock(w.stats->mu);
    w.stats->consume_latency.record(nanoseconds(clock::now() - begin));
  }
  st.finished.fetch_add(1);
}

// Setup and clean-up calls, on a connection of their own.
asio::awaitable<cmq_answer> call_once(asio::io_context& io, const cmq_server& server, cmq_params params) {
  cmq_connection conn(io.get_executor(), server);
  co_return co_await conn.call(params, request_timeout);
}

// Runs one call to completion on `io`, outside the runtime's threads (before or after them).
cmq_answer call_alone(asio::io_context& io, const cmq_server& server, cmq_params params) {
  auto answer = asio::co_spawn(io, call_once(io, server, std::move(params)), asio::use_future);
  io.restart();
  io.run();
  return answer.get();
}

// Creates the queue unless it exists. Returns whether this run created it. Throws when it
// can neither create nor find it (a startup failure).
bool create_queue(asio::io_context& io, const run_state& st) {
  cmq_params params{{"Action", "CreateQueue"}, {"queueName", st.queue}};
  if (st.opts->size_bytes > default_max_msg_size) params.emplace_back("maxMsgSize", std::to_string(st.opts->size_bytes));
  if (st.opts->groups > 0) params.emplace_back("orderedQueue", "1");
  const auto answer = call_alone(io, st.server, std::move(params));
  if (answer.failure) throw std::runtime_error("CreateQueue: " + *answer.failure);
  if (answer.code == code_queue_exists) return false;
  if (answer.code != 0) throw std::runtime_error(fmt::format("CreateQueue: code {}: {}", answer.code, message_of(answer)));
  return true;
}

void delete_queue(asio::io_context& io, const run_state& st) {
  const auto answer = call_alone(io, st.server, {{"Action", "DeleteQueue"}, {"queueName", st.queue}});
  if (answer.failure || answer.code != 0)
    fmt::print(stderr, "wharf-bench: DeleteQueue {}: {}\n", st.queue,
               answer.failure ? *answer.failure : fmt::format("code {}: {}", answer.code, message_of(answer)));
}

std::vector<tcp::endpoint> resolve_all(asio::io_context& io, const cmq_endpoint& e) {
  tcp::resolver resolver(io);
  std::vector<tcp::endpoint> addresses;
  for (const auto& entry : resolver.resolve(e.host, std::to_string(e.port))) addresses.push_back(entry.endpoint());
  return addresses;
}

bool wait_until(const std::function<bool()>& done, clock::time_point deadline) {
  while (!done()) {
    if (clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

int run_queue(const options& o) {
  const auto endpoint = parse_cmq_endpoint(o.endpoint);
  if (!endpoint) {
    fmt::print(stderr, "wharf-bench: --endpoint must be http://HOST[:PORT][/PATH] or https://..., got '{}'\n",
               o.endpoint);
    return 1;
  }
  std::random_device random;
  nonce_source nonces(nonce_source::random_start());
  run_state st;
  st.opts = &o;
  st.run_id = random();
  st.queue = o.queue_name.empty() ? fmt::format("bench-{:08x}", random()) : o.queue_name;
  asio::io_context setup_io;
  st.server.endpoint = *endpoint;
  st.server.addresses = resolve_all(setup_io, *endpoint);
  st.server.credentials = {o.secret_id, o.secret_key};
  if (endpoint->tls) st.server.tls_context = tls::make_client_context(o.ca_file);
  st.server.nonces = &nonces;
  const bool created = create_queue(setup_io, st);

  runtime rt(o.threads);
  std::vector<std::unique_ptr<thread_stats>> stats;
  for (std::size_t t = 0; t < rt.size(); ++t) stats.push_back(std::make_unique<thread_stats>());
  // Producers first, then consumers, round robin over the threads.
  std::vector<worker> producers(o.producers), consumers(o.consumers);
  std::size_t slot = 0;
  for (auto* group : {&producers, &consumers}) {
    for (std::uint32_t i = 0; i < group->size(); ++i, ++slot) {
      auto& w = (*group)[i];
      w.index = i;
      w.io = &rt.io(slot);
      w.stats = stats[slot % rt.size()].get();
      w.conn = std::make_unique<cmq_connection>(w.io->get_executor(), st.server);
      asio::co_spawn(*w.io, connect_worker(w, st), asio::detached);
    }
  }
  const std::uint32_t workers = o.producers + o.consumers;
  wait_until([&] { return st.connected + st.connect_failed >= workers; }, clock::now() + request_timeout + std::chrono::seconds(1));
  if (st.connected == 0) {
    fmt::print(stderr, "wharf-bench: no connection to {}\n", o.endpoint);
    rt.stop();
    if (created && !o.keep_queue) delete_queue(setup_io, st);
    return 1;
  }

  // Workers whose connection failed run too: each call tries to connect, and its failures count.
  const auto start = clock::now() + std::chrono::milliseconds(20);
  const auto end = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.duration_s));
  for (auto& w : producers) asio::co_spawn(*w.io, produce(w, st, start, end), asio::detached);
  for (auto& w : consumers) asio::co_spawn(*w.io, consume(w, st, start, end), asio::detached);

  auto sum = [&](auto member) {
    std::uint64_t n = 0;
    for (auto& t : stats) n += ((*t).*member).load(std::memory_order_relaxed);
    return n;
  };
  auto merged = [&](histogram thread_stats::*member) {
    histogram h;
    for (auto& t : stats) {
      std::lock_guard lock(t->mu);
      h.merge((*t).*member);
    }
    return h;
  };
  std::uint64_t last_sent = 0, last_received = 0, last_deleted = 0;
  for (auto tick = start + std::chrono::seconds(1); tick <= end; tick += std::chrono::seconds(1)) {
    std::this_thread::sleep_until(tick);
    const auto sent = sum(&thread_stats::sent), received = sum(&thread_stats::received),
               deleted = sum(&thread_stats::deleted);
    fmt::print(stderr, "[{:5.1f}s] sent {}/s  received {}/s  deleted {}/s  errors {}  send p99 {:.1f} us\n",
               seconds_between(start, clock::now()), sent - last_sent, received - last_received,
               deleted - last_deleted, sum(&thread_stats::errors),
               static_cast<double>(merged(&thread_stats::send_latency).percentile(99)) / 1000.0);
    last_sent = sent;
    last_received = received;
    last_deleted = deleted;
  }
  // Requests in flight at the end finish (a receive within its polling wait), and what they
  // received is deleted, so that the queue is left as the counts say.
  const auto stop_deadline = end + std::chrono::seconds(o.polling_wait_s) + 2 * request_timeout;
  if (!wait_until([&] { return st.finished >= workers; }, stop_deadline))
    fmt::print(stderr, "wharf-bench: {} producers or consumers did not finish\n", workers - st.finished);
  rt.stop();

  queue_result r;
  r.queue = st.queue;
  r.send_s = seconds_between(start, end);
  r.sent = sum(&thread_stats::sent);
  r.received = sum(&thread_stats::received);
  r.deleted = sum(&thread_stats::deleted);
  r.empty_receives = sum(&thread_stats::empty_receives);
  r.stale = sum(&thread_stats::stale);
  r.send_latency = merged(&thread_stats::send_latency);
  r.consume_latency = merged(&thread_stats::consume_latency);
  r.end_to_end = merged(&thread_stats::end_to_end);
  for (auto& t : stats)
    for (const auto& [code, n] : t->errors_by_code) r.errors[code] += n;
  if (st.connect_failed > 0) r.errors["transport"] += st.connect_failed;

  if (created && !o.keep_queue) delete_queue(setup_io, st);
  fmt::print("{}", format_queue(r, o));
  return 0;
}

}  // namespace wharf::bench
