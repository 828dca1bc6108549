// queue::service: receives that wait for a message (long polling), the housekeeping timer,
// and the leader's HTTP pushes (service_impl.h).
#include "core/queue/service_impl.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/log.h"
#include "core/queue/push_retry.h"

namespace wharf::core::queue {

using namespace service_internal;

void service::impl::receive(receive_messages request, std::optional<std::chrono::milliseconds> requested_wait,
                            result_callback done, std::shared_ptr<const std::atomic<bool>> abandoned,
                            std::string origin) {
  const time_ms t = now();
  const bool valid_batch = request.max_messages >= 1 && request.max_messages <= max_receive_batch;
  const auto info = failed || !valid_batch ? std::nullopt : eng->queue(request.queue, t);
  if (!info) {
    // Let the engine answer (invalid parameter, missing queue, failed store).
    take(std::move(request), slot{std::move(done), std::nullopt}, origin);
    return;
  }
  const std::chrono::milliseconds wait =
      requested_wait.value_or(std::chrono::seconds(info->attributes.polling_wait_seconds));
  const bool may_wait = wait.count() > 0 && !stopping;
  // `t` is the current millisecond rounded down, so the deadline is one more: a wait is
  // never shorter than asked (a client timing its own long poll must not see it end early).
  waiter w{std::move(request), may_wait ? t + wait.count() + 1 : 0, std::move(done), std::move(abandoned),
           std::move(origin)};
  if (eng->has_visible(w.request.queue, t)) {
    serve(std::move(w));
    return;
  }
  if (!may_wait) {
    // Nothing to take: answered without a command (an empty receive changes nothing).
    if (w.done) w.done(failure(code::no_message, "no message in the queue"));
    return;
  }
  if (deadlines.size() >= options.max_long_polls) {
    long_polls_refused.fetch_add(1, std::memory_order_relaxed);
    if (w.done) w.done(failure(code::rate_limited, "too many receives are waiting (queue_api.max_long_polls)"));
    return;
  }
  park(std::move(w), /*front=*/false);
}

void service::impl::serve(waiter w) {
  command_body body = w.request;
  const std::string origin = w.origin;
  take(std::move(body), slot{nullptr, std::move(w)}, origin);
}

void service::impl::park(waiter w, bool front) {
  deadlines.insert(w.deadline);
  auto& queue_waiters = waiting[w.request.queue];
  if (front) {
    queue_waiters.push_front(std::move(w));
  } else {
    queue_waiters.push_back(std::move(w));
  }
  long_polls_waiting.store(deadlines.size(), std::memory_order_relaxed);
  arm_housekeeping_timer();
}

void service::impl::serve_waiters() {
  if (waiting.empty()) return;
  const time_ms t = now();
  const bool leading = member->is_leader() && !failed;
  for (auto it = waiting.begin(); it != waiting.end();) {
    auto& queue_waiters = it->second;
    std::size_t& in_flight = receives_in_flight[it->first];
    while (leading && !queue_waiters.empty() && eng->visible_messages(it->first, t, in_flight + 1) > in_flight) {
      waiter w = std::move(queue_waiters.front());
      queue_waiters.pop_front();
      forget(w);
      if (w.is_abandoned()) {  // its client is gone: take nothing for it
        abandoned_long_polls.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      serve(std::move(w));
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

void service::impl::answer_all_waiters() {
  for (auto& [queue, queue_waiters] : waiting)
    for (auto& w : queue_waiters)
      if (w.done) w.done(failure(code::no_message, "no message in the queue"));
  waiting.clear();
  deadlines.clear();
  long_polls_waiting.store(0, std::memory_order_relaxed);
}

void service::impl::forget(const waiter& w) {
  const auto it = deadlines.find(w.deadline);
  if (it != deadlines.end()) deadlines.erase(it);
}

void service::impl::arm_housekeeping_timer() {
  if (stopping) return;
  const time_ms t = now();
  time_ms next = t + options.tick_interval.count();
  if (!deadlines.empty()) next = std::min(next, *deadlines.begin());
  if (!awaiting_leader.empty()) next = std::min(next, awaiting_leader.front().deadline);
  for (const auto& [id, f] : forwarded) next = std::min(next, f.deadline);
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

void service::impl::on_timer() {
  const time_ms t = now();
  expire_requests(t);
  // Housekeeping is the leader's: its effects reach every member through the log.
  if (auto due = eng->next_tick_time(); due && *due <= t && !failed && member->is_leader() && !tick_in_flight) {
    tick_in_flight = true;
    // No origin: trace events without an actor.
    take(tick{}, slot{[this](result) { tick_in_flight = false; }, std::nullopt}, {});
  }
  end_turn();
}

void service::impl::start_due_pushes() {
  if (!push_sender_fn || stopping || failed || !member->is_leader() ||
      in_flight_pushes.size() >= options.max_pushes_in_flight)
    return;
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

void service::impl::on_push_done(std::uint64_t id, notify_strategy strategy, std::uint32_t attempts, bool success) {
  push_result outcome{.delivery_id = id, .success = success};
  if (!success) {
    // The retry delay is chosen here, not in apply(), so that the engine stays deterministic.
    const auto delay = next_retry_delay_ms(strategy, attempts + 1, random());
    outcome.give_up = !delay;
    outcome.retry_delay_ms = delay.value_or(0);
  }
  // The push stays in flight until its result is applied: otherwise a turn in between
  // would hand the same delivery out again. No origin either.
  if (!member->is_leader() || failed || stopping) {
    release_push(id);
    return;
  }
  take(outcome, slot{[this, id](result) { release_push(id); }, std::nullopt}, {});
}

void service::impl::release_push(std::uint64_t id) {
  in_flight_pushes.erase(id);
  pushes_in_flight.store(in_flight_pushes.size(), std::memory_order_relaxed);
}

}  // namespace wharf::core::queue
