// queue::service: one thread owns the engine. Each loop turn applies the commands that
// arrived, serves long polls that can now be served, and hands the turn's storage batch to
// the group-committing writer; answers go out when the writer reports the batch durable.
// With tracing on, the engine reports its message events to a trace_recorder, which adds
// the origin of the command being applied.
#include "core/queue/service.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/queue/push_retry.h"

namespace wharf::core::queue {
namespace {

namespace asio = boost::asio;

time_ms system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

result failure(code value, std::string message) {
  result r;
  r.outcome = {value, std::move(message)};
  return r;
}

constexpr std::uint32_t max_receive_batch = 16;

// A turn's batch starts with room for what the previous turn wrote, up to these bounds
// (beyond them it grows as needed): under steady load turns are alike, and growing a
// fresh buffer every turn was a fifth of the service thread's apply time.
constexpr std::size_t max_reserved_batch_ops = 4096;
constexpr std::size_t max_reserved_batch_bytes = 1 << 20;

// The engine's observer while tracing is on: records each event with the origin of the
// command being applied as its actor.
class trace_recorder final : public message_observer {
 public:
  explicit trace_recorder(trace_limits limits) : trace_(limits) {}

  // The origin of the command applied next. REQUIRES: `actor` outlives that apply().
  void set_actor(std::string_view actor) noexcept { actor_ = actor; }

  void observe(std::string_view msg_id, trace_event event) override {
    event.actor = actor_;
    trace_.record(msg_id, std::move(event));
  }

  [[nodiscard]] message_trace& trace() noexcept { return trace_; }

 private:
  message_trace trace_;
  std::string_view actor_;
};

}  // namespace

struct service::impl {
  // A receive waiting for a message (long polling). Lives in waiting_ until answered.
  struct waiter {
    receive_messages request;
    time_ms deadline = 0;
    result_callback done;
    std::shared_ptr<const std::atomic<bool>> abandoned;  // may be null
    std::string origin;  // the consumer, for the message trace
    [[nodiscard]] bool is_abandoned() const { return abandoned && abandoned->load(std::memory_order_relaxed); }
  };
  // Answers that wait for their batch to be durable.
  struct pending_answer {
    result_callback done;
    result answer;
  };

  impl(storage& store_in, service_options options_in)
      : store(store_in),
        options(std::move(options_in)),
        eng(engine::open(store, options.limits)),
        work(asio::make_work_guard(ctx)),
        timer(ctx),
        random(std::random_device{}()) {
    if (!options.clock) options.clock = system_clock_ms;
    if (options.trace_retention.count() > 0) {
      recorder = std::make_unique<trace_recorder>(
          trace_limits{options.trace_retention, options.trace_max_messages, options.trace_max_events_per_message});
      eng->set_observer(recorder.get());
    }
    thread = std::thread([this] { ctx.run(); });
  }

  // ---- time ----
  // Command times never go backwards, even when the wall clock does (the engine's expiry
  // indexes rely on it).
  time_ms now() {
    last_now = std::max(last_now, options.clock());
    return last_now;
  }

  // ---- applying ----
  // REQUIRES: on the service thread (all of the following too).
  // Applies one command into the turn's batch; `origin` is the actor of its trace events.
  result apply(time_ms t, command_body body, std::string_view origin) {
    if (recorder) recorder->set_actor(origin);
    result r = eng->apply(command{t, std::move(body)}, batch);
    if (recorder) recorder->set_actor({});
    commands.fetch_add(1, std::memory_order_relaxed);
    return r;
  }

  void apply_and_answer_after_commit(command_body body, result_callback done, std::string_view origin) {
    if (failed) {
      if (done) done(failure(code::internal_error, "the queue store failed; see the broker log"));
      return;
    }
    result r = apply(now(), std::move(body), origin);
    answers.push_back({std::move(done), std::move(r)});
    schedule_turn_end();
  }

  // Posting the end of the turn puts it behind every handler already queued, so everything
  // that arrived together shares one batch and one fsync.
  void schedule_turn_end() {
    if (turn_end_posted) return;
    turn_end_posted = true;
    asio::post(ctx, [this] { end_turn(); });
  }

  void end_turn() {
    turn_end_posted = false;
    serve_waiters();
    commit_batch();
    start_due_pushes();
    arm_timer();
    if (recorder) {
      message_trace& trace = recorder->trace();
      trace.expire(now());
      traced_messages.store(trace.size(), std::memory_order_relaxed);
      traces_evicted.store(trace.evicted(), std::memory_order_relaxed);
    }
    const std::lock_guard lock(engine_stats_mutex);
    last_engine_stats = eng->stats();
  }

  void commit_batch() {
    eng->finish_batch(batch);
    if (batch.empty()) {
      // Nothing written (e.g. every command was read-only): answer at once.
      for (auto& a : answers)
        if (a.done) a.done(std::move(a.answer));
      answers.clear();
      return;
    }
    auto committed_answers = std::make_shared<std::vector<pending_answer>>(std::move(answers));
    answers.clear();
    const std::uint64_t index = eng->applied_index();
    const std::size_t ops = batch.size();
    const std::size_t bytes = batch.bytes();
    ++commits_in_flight;
    store.write(std::exchange(batch, write_batch{}), [this, index, committed_answers](std::error_code ec) {
      // Storage writer thread: hop back to the service thread, one post per batch.
      asio::post(ctx, [this, index, committed_answers, ec] { on_committed(index, *committed_answers, ec); });
    });
    batch.reserve(std::min(ops, max_reserved_batch_ops), std::min(bytes, max_reserved_batch_bytes));
  }

  void on_committed(std::uint64_t index, std::vector<pending_answer>& done_answers, std::error_code ec) {
    --commits_in_flight;
    commits.fetch_add(1, std::memory_order_relaxed);
    if (ec) {
      // Memory now holds changes the disk may not: refuse everything from here on rather than
      // answer from a state that a restart would not reproduce.
      if (!failed) log::queue().critical("queue store write failed: {}; the queue core stops accepting commands", ec.message());
      failed = true;
      storage_failures.fetch_add(1, std::memory_order_relaxed);
      for (auto& a : done_answers)
        if (a.done) a.done(failure(code::internal_error, "the message store failed to write: " + ec.message()));
    } else {
      eng->committed(index);
      for (auto& a : done_answers)
        if (a.done) a.done(std::move(a.answer));
    }
    if (stopping && commits_in_flight == 0) work.reset();
  }

  // ---- long polling ----
  void receive(receive_messages request, std::optional<std::chrono::milliseconds> requested_wait,
               result_callback done, std::shared_ptr<const std::atomic<bool>> abandoned, std::string origin) {
    const time_ms t = now();
    const bool valid_batch = request.max_messages >= 1 && request.max_messages <= max_receive_batch;
    const auto info = failed || !valid_batch ? std::nullopt : eng->queue(request.queue, t);
    if (!info) {
      // Let the engine answer (invalid parameter, missing queue, failed store).
      apply_and_answer_after_commit(std::move(request), std::move(done), origin);
      return;
    }
    const std::chrono::milliseconds wait =
        requested_wait.value_or(std::chrono::seconds(info->attributes.polling_wait_seconds));
    const bool may_wait = wait.count() > 0 && !stopping;
    if (eng->has_visible(request.queue, t)) {
      result r = apply(t, request, origin);
      schedule_turn_end();
      // 7000 although a message was visible: the receive dead-lettered or expired it. A
      // receive that may wait goes on waiting instead.
      if (r.outcome.value != code::no_message || !may_wait) {
        answers.push_back({std::move(done), std::move(r)});
        return;
      }
    } else if (!may_wait) {
      // Nothing to take: answered without a command (an empty receive changes nothing).
      if (done) done(failure(code::no_message, "no message in the queue"));
      return;
    }
    if (deadlines.size() >= options.max_long_polls) {
      long_polls_refused.fetch_add(1, std::memory_order_relaxed);
      if (done) done(failure(code::rate_limited, "too many receives are waiting (queue_api.max_long_polls)"));
      return;
    }
    // `t` is the current millisecond rounded down, so the deadline is one more: a wait is
    // never shorter than asked (a client timing its own long poll must not see it end early).
    const time_ms deadline = t + wait.count() + 1;
    const std::string queue = request.queue;
    waiting[queue].push_back(
        {std::move(request), deadline, std::move(done), std::move(abandoned), std::move(origin)});
    deadlines.insert(deadline);
    long_polls_waiting.store(deadlines.size(), std::memory_order_relaxed);
    arm_timer();
  }

  // Takes messages for waiting receives, oldest waiter first, while the queue has visible
  // ones; answers the ones whose wait is over. Runs at the end of every turn and on timer.
  void serve_waiters() {
    if (waiting.empty()) return;
    const time_ms t = now();
    for (auto it = waiting.begin(); it != waiting.end();) {
      auto& queue_waiters = it->second;
      while (!queue_waiters.empty() && !failed && eng->has_visible(it->first, t)) {
        waiter& w = queue_waiters.front();
        if (w.is_abandoned()) {  // its client is gone: take nothing for it
          forget(w);
          queue_waiters.pop_front();
          abandoned_long_polls.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        result r = apply(t, w.request, w.origin);
        // 7000 although a message was visible: the receive dead-lettered or expired what
        // was there. The waiter keeps waiting (and nothing is visible any more).
        if (r.outcome.value == code::no_message && w.deadline > t) break;
        answers.push_back({std::move(w.done), std::move(r)});
        forget(w);
        queue_waiters.pop_front();
      }
      // Deadlines of one queue's waiters are not ordered (waits differ), so ending waits
      // takes a sweep; it runs only when some wait is over (or the queue is gone, or the
      // service stops), not on every turn.
      const bool queue_exists = eng->queue(it->first, t).has_value();
      const bool sweep = !queue_exists || stopping || failed || (!deadlines.empty() && *deadlines.begin() <= t);
      for (auto w = queue_waiters.begin(); sweep && w != queue_waiters.end();) {
        if (w->deadline > t && queue_exists && !stopping && !failed && !w->is_abandoned()) {
          ++w;
          continue;
        }
        if (w->done)
          w->done(queue_exists ? failure(code::no_message, "no message in the queue")
                               : failure(code::not_found, "the queue was deleted while the receive waited"));
        forget(*w);
        w = queue_waiters.erase(w);
      }
      it = queue_waiters.empty() ? waiting.erase(it) : std::next(it);
    }
    long_polls_waiting.store(deadlines.size(), std::memory_order_relaxed);
  }

  // Bookkeeping of a waiter leaving `waiting` (the caller erases it).
  void forget(const waiter& w) {
    deadlines.erase(deadlines.find(w.deadline));
  }

  // ---- timer: waits ending, messages becoming visible, housekeeping, push retries ----
  void arm_timer() {
    if (stopping) return;
    const time_ms t = now();
    time_ms next = t + options.tick_interval.count();
    if (!deadlines.empty()) next = std::min(next, *deadlines.begin());
    for (const auto& entry : waiting)
      if (auto v = eng->next_visible_time(entry.first, t)) next = std::min(next, *v);
    if (auto v = eng->next_tick_time()) next = std::min(next, std::max(*v, t));
    if (push_sender_fn)
      if (auto v = eng->next_push_time()) next = std::min(next, std::max(*v, t));
    if (timer_armed && next >= timer_due) return;
    timer_armed = true;
    timer_due = next;
    timer.expires_after(std::chrono::milliseconds(std::max<time_ms>(next - t, 0)));
    timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;  // cancelled by a re-arm or stop
      timer_armed = false;
      on_timer();
    });
  }

  void on_timer() {
    const time_ms t = now();
    if (auto due = eng->next_tick_time(); due && *due <= t && !failed) {
      // Housekeeping: no origin (trace events without an actor).
      answers.push_back({nullptr, apply(t, tick{}, {})});
    }
    end_turn();
  }

  // ---- HTTP pushes ----
  void start_due_pushes() {
    if (!push_sender_fn || stopping || failed || in_flight_pushes.size() >= options.max_pushes_in_flight) return;
    const std::vector<std::uint64_t> in_flight(in_flight_pushes.begin(), in_flight_pushes.end());
    auto due = eng->due_pushes(now(), options.max_pushes_in_flight - in_flight_pushes.size(), in_flight);
    for (auto& delivery : due) {
      in_flight_pushes.insert(delivery.delivery_id);
      const auto id = delivery.delivery_id;
      const auto strategy = delivery.strategy;
      const auto attempts = delivery.attempts;
      push_sender_fn(std::move(delivery), [this, id, strategy, attempts](bool success) {
        asio::post(ctx, [this, id, strategy, attempts, success] { on_push_done(id, strategy, attempts, success); });
      });
    }
    pushes_in_flight.store(in_flight_pushes.size(), std::memory_order_relaxed);
  }

  void on_push_done(std::uint64_t id, notify_strategy strategy, std::uint32_t attempts, bool success) {
    in_flight_pushes.erase(id);
    pushes_in_flight.store(in_flight_pushes.size(), std::memory_order_relaxed);
    push_result outcome{.delivery_id = id, .success = success};
    if (!success) {
      // The retry delay is chosen here, not in apply(), so that the engine stays deterministic.
      const auto delay = next_retry_delay_ms(strategy, attempts + 1, random());
      outcome.give_up = !delay;
      outcome.retry_delay_ms = delay.value_or(0);
    }
    // The push sender's report: no origin either.
    apply_and_answer_after_commit(outcome, nullptr, {});
  }

  // ---- stop ----
  void begin_stop() {
    stopping = true;
    timer.cancel();
    serve_waiters();  // answers every waiter: stopping ends their wait
    commit_batch();
    if (commits_in_flight == 0) work.reset();
  }

  storage& store;
  service_options options;
  std::unique_ptr<engine> eng;
  asio::io_context ctx;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::steady_timer timer;
  std::thread thread;
  std::mt19937_64 random;
  push_sender push_sender_fn;
  std::unique_ptr<trace_recorder> recorder;  // null: tracing off

  // Service-thread state.
  time_ms last_now = 0;
  write_batch batch;
  std::vector<pending_answer> answers;
  bool turn_end_posted = false;
  std::size_t commits_in_flight = 0;
  bool failed = false;
  bool stopping = false;
  bool timer_armed = false;
  time_ms timer_due = 0;
  std::map<std::string, std::deque<waiter>> waiting;  // by queue name
  std::multiset<time_ms> deadlines;  // one per waiter: the earliest arms the timer
  std::set<std::uint64_t> in_flight_pushes;

  // Counters read from any thread.
  std::atomic<std::uint64_t> commands{0};
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> long_polls_waiting{0};
  std::atomic<std::uint64_t> long_polls_refused{0};
  std::atomic<std::uint64_t> abandoned_long_polls{0};
  std::atomic<std::uint64_t> pushes_in_flight{0};
  std::atomic<std::uint64_t> storage_failures{0};
  std::atomic<std::uint64_t> traced_messages{0};
  std::atomic<std::uint64_t> traces_evicted{0};
  mutable std::mutex engine_stats_mutex;
  engine_stats last_engine_stats;
  std::once_flag stop_once;
};

service::service(storage& store, service_options options)
    : impl_(std::make_unique<impl>(store, std::move(options))) {}

service::~service() { stop(); }

void service::set_push_sender(push_sender sender) {
  asio::post(impl_->ctx, [this, sender = std::move(sender)]() mutable {
    impl_->push_sender_fn = std::move(sender);
    impl_->end_turn();
  });
}

void service::submit(command_body body, result_callback done, std::string origin) {
  asio::post(impl_->ctx,
             [this, body = std::move(body), done = std::move(done), origin = std::move(origin)]() mutable {
               impl_->apply_and_answer_after_commit(std::move(body), std::move(done), origin);
             });
}

void service::submit_all(std::vector<command_body> bodies, std::function<void(std::vector<result>)> done,
                         std::vector<std::string> origins) {
  asio::post(impl_->ctx, [this, bodies = std::move(bodies), done = std::move(done),
                          origins = std::move(origins)]() mutable {
    if (bodies.empty()) {
      done({});
      return;
    }
    // Every command of one turn is answered by the same commit, in order: the last answer
    // completes the set.
    struct collected {
      std::vector<result> results;
      std::function<void(std::vector<result>)> done;
    };
    auto all = std::make_shared<collected>(collected{std::vector<result>(bodies.size()), std::move(done)});
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      const bool last = i + 1 == bodies.size();
      const std::string_view origin = i < origins.size() ? std::string_view(origins[i]) : std::string_view();
      impl_->apply_and_answer_after_commit(
          std::move(bodies[i]),
          [all, i, last](result r) {
            all->results[i] = std::move(r);
            if (last) all->done(std::move(all->results));
          },
          origin);
    }
  });
}

void service::receive(receive_messages request, std::optional<std::chrono::milliseconds> wait,
                      result_callback done, std::shared_ptr<const std::atomic<bool>> abandoned,
                      std::string origin) {
  asio::post(impl_->ctx, [this, request = std::move(request), wait, done = std::move(done),
                          abandoned = std::move(abandoned), origin = std::move(origin)]() mutable {
    impl_->receive(std::move(request), wait, std::move(done), std::move(abandoned), std::move(origin));
  });
}

void service::trace(std::string msg_id, std::function<void(std::optional<message_history>)> done) {
  asio::post(impl_->ctx, [this, msg_id = std::move(msg_id), done = std::move(done)] {
    std::optional<message_history> history;
    if (impl_->recorder) history = impl_->recorder->trace().find(msg_id, impl_->now());
    done(std::move(history));
  });
}

void service::query(std::function<void(const engine&, time_ms now)> run_query) {
  asio::post(impl_->ctx, [this, run_query = std::move(run_query)] { run_query(*impl_->eng, impl_->now()); });
}

service_stats service::stats() const {
  service_stats s;
  {
    const std::lock_guard lock(impl_->engine_stats_mutex);
    s.engine = impl_->last_engine_stats;
  }
  s.commands = impl_->commands.load(std::memory_order_relaxed);
  s.commits = impl_->commits.load(std::memory_order_relaxed);
  s.long_polls_waiting = impl_->long_polls_waiting.load(std::memory_order_relaxed);
  s.long_polls_refused = impl_->long_polls_refused.load(std::memory_order_relaxed);
  s.long_polls_abandoned = impl_->abandoned_long_polls.load(std::memory_order_relaxed);
  s.pushes_in_flight = impl_->pushes_in_flight.load(std::memory_order_relaxed);
  s.storage_failures = impl_->storage_failures.load(std::memory_order_relaxed);
  s.traced_messages = impl_->traced_messages.load(std::memory_order_relaxed);
  s.traces_evicted = impl_->traces_evicted.load(std::memory_order_relaxed);
  return s;
}

void service::stop() {
  std::call_once(impl_->stop_once, [this] {
    asio::post(impl_->ctx, [this] { impl_->begin_stop(); });
    impl_->thread.join();
  });
}

}  // namespace wharf::core::queue
