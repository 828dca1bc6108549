// Message trace: the history of one msgId through the service (origins as actors, command
// times, dead-lettering and redrive across queues, expiry by ticks, purge, topic fan-out and
// pushes), its bounds, and that observing the engine changes nothing it does.
// The service runs over a real RocksDB with a fake clock; ticks and timers still run on
// real time (tick_interval is short), so a test advances the clock and then waits.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../test_util.h"
#include "core/queue/message_trace.h"
#include "core/queue/service.h"
#include "harness.h"

namespace wharf::core::queue {
namespace {

using namespace std::chrono_literals;
using kind = trace_event::kind;

constexpr auto test_wait = 10s;  // how long a test waits for something that should happen

class trace_test : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(service_options options) {
    svc_.reset();
    if (!store_) {
      storage_options store_options;
      store_options.path = dir_.sub("db");
      store_options.sync = false;
      store_ = storage::open(store_options);
    }
    options.clock = [clock = clock_] { return clock->load(); };
    options.tick_interval = 10ms;
    svc_ = std::make_unique<service>(*store_, std::move(options));
  }

  void advance_ms(time_ms ms) { clock_->fetch_add(ms); }
  time_ms now() const { return clock_->load(); }

  result run(command_body body, std::string origin = {}) {
    std::promise<result> answer;
    auto future = answer.get_future();
    svc_->submit(std::move(body), [&answer](result r) { answer.set_value(std::move(r)); }, std::move(origin));
    EXPECT_EQ(future.wait_for(test_wait), std::future_status::ready);
    return future.get();
  }

  result receive(std::string queue, std::string origin, std::uint32_t max_messages = 1) {
    std::promise<result> answer;
    auto future = answer.get_future();
    svc_->receive(
        {std::move(queue), max_messages}, 0ms, [&answer](result r) { answer.set_value(std::move(r)); }, nullptr,
        std::move(origin));
    EXPECT_EQ(future.wait_for(test_wait), std::future_status::ready);
    return future.get();
  }

  std::string send(const std::string& queue, std::string body, std::string origin = {}) {
    const result r = run(send_messages{queue, {{std::move(body), 0, std::nullopt, {}}}}, std::move(origin));
    EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
    return r.msg_ids.empty() ? std::string() : r.msg_ids.front();
  }

  std::optional<message_history> trace(const std::string& msg_id) {
    std::promise<std::optional<message_history>> answer;
    auto future = answer.get_future();
    svc_->trace(msg_id, [&answer](std::optional<message_history> h) { answer.set_value(std::move(h)); });
    EXPECT_EQ(future.wait_for(test_wait), std::future_status::ready);
    return future.get();
  }

  // Waits until msg_id's history holds an event of kind `what` (the service's timers act on
  // their own); returns that history.
  std::optional<message_history> trace_until(const std::string& msg_id, kind what) {
    const auto deadline = std::chrono::steady_clock::now() + test_wait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto history = trace(msg_id);
      if (history && kinds_of(*history).back() == what) return history;
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "no " << to_string(what) << " event for " << msg_id;
    return trace(msg_id);
  }

  static std::vector<kind> kinds_of(const message_history& h) {
    std::vector<kind> out;
    for (const auto& e : h.events) out.push_back(e.what);
    return out;
  }

  std::shared_ptr<std::atomic<time_ms>> clock_ =
      std::make_shared<std::atomic<time_ms>>(testing::start_time_ms);
  core::testing::temp_dir dir_;
  std::unique_ptr<storage> store_;
  std::unique_ptr<service> svc_;
};

TEST_F(trace_test, send_receive_delete_are_recorded_in_order_with_actors_and_times) {
  ASSERT_TRUE(run(create_queue{"orders", {}}).outcome.ok());
  const time_ms sent_at = now();
  const std::string id = send("orders", "hello", "SecretId AKIDsender from 127.0.0.1");
  advance_ms(1500);
  const std::string consumer = "SecretId AKIDconsumer from 10.0.0.2";
  const result got = receive("orders", consumer);
  ASSERT_TRUE(got.outcome.ok()) << got.outcome.message;
  advance_ms(500);
  ASSERT_TRUE(run(delete_messages{"orders", {got.messages.at(0).receipt_handle}}, consumer).outcome.ok());

  const auto h = trace(id);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->msg_id, id);
  EXPECT_EQ(h->queue_or_topic, "orders");
  EXPECT_FALSE(h->is_topic);
  EXPECT_FALSE(h->truncated);
  ASSERT_EQ(kinds_of(*h), (std::vector<kind>{kind::enqueued, kind::received, kind::deleted}));
  const auto& e = h->events;
  EXPECT_EQ(e[0].at, sent_at);
  EXPECT_EQ(e[0].actor, "SecretId AKIDsender from 127.0.0.1");
  EXPECT_EQ(e[0].queue, "orders");
  EXPECT_EQ(e[0].dequeue_count, 0u);
  EXPECT_EQ(e[1].at, sent_at + 1500);
  EXPECT_EQ(e[1].actor, consumer);
  EXPECT_EQ(e[1].dequeue_count, 1u);
  EXPECT_EQ(e[2].at, sent_at + 2000);
  EXPECT_EQ(e[2].actor, consumer);
  EXPECT_EQ(to_string(e[2].what), "deleted");
  EXPECT_FALSE(trace("msg-00000000000000ff"));
}

TEST_F(trace_test, submit_all_gives_each_command_its_own_origin) {
  ASSERT_TRUE(run(create_queue{"orders", {}}).outcome.ok());
  std::promise<std::vector<result>> answer;
  auto future = answer.get_future();
  svc_->submit_all({send_messages{"orders", {{"a", 0, std::nullopt, {}}}},
                    send_messages{"orders", {{"b", 0, std::nullopt, {}}}}},
                   [&answer](std::vector<result> r) { answer.set_value(std::move(r)); },
                   {"mqtt client dev-1", "mqtt client dev-2"});
  ASSERT_EQ(future.wait_for(test_wait), std::future_status::ready);
  const auto results = future.get();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(trace(results[0].msg_ids.at(0))->events.at(0).actor, "mqtt client dev-1");
  EXPECT_EQ(trace(results[1].msg_ids.at(0))->events.at(0).actor, "mqtt client dev-2");
}

TEST_F(trace_test, a_dead_letter_and_its_redrive_keep_one_history) {
  ASSERT_TRUE(run(create_queue{"dead", {}}).outcome.ok());
  queue_attribute_changes a;
  a.visibility_timeout = 1;
  a.dead_letter_queue = "dead";
  a.policy = dead_letter_policy::max_receive_count;
  a.max_receive_count = 1;
  ASSERT_TRUE(run(create_queue{"orders", a}).outcome.ok());
  const std::string id = send("orders", "poison", "producer");
  ASSERT_TRUE(receive("orders", "consumer").outcome.ok());
  advance_ms(2000);  // visible again; the next receive dead-letters it
  EXPECT_EQ(receive("orders", "consumer").outcome.value, code::no_message);
  const result redriven = run(redrive_dead_letters{"dead", "", 10}, "operator");
  ASSERT_TRUE(redriven.outcome.ok());
  EXPECT_EQ(redriven.count, 1u);
  const result again = receive("orders", "consumer");
  ASSERT_TRUE(again.outcome.ok());
  EXPECT_EQ(again.messages.at(0).msg_id, id);  // dead-lettering and redrive keep the msgId

  const auto h = trace(id);
  ASSERT_TRUE(h);
  ASSERT_EQ(kinds_of(*h), (std::vector<kind>{kind::enqueued, kind::received, kind::dead_lettered,
                                             kind::redriven, kind::received}));
  const auto& e = h->events;
  EXPECT_EQ(e[2].queue, "orders");
  EXPECT_EQ(e[2].actor, "consumer");  // its receive moved it
  EXPECT_EQ(e[2].dequeue_count, 1u);
  EXPECT_NE(e[2].detail.find("dead"), std::string::npos) << e[2].detail;
  EXPECT_EQ(e[3].queue, "dead");
  EXPECT_EQ(e[3].actor, "operator");
  EXPECT_NE(e[3].detail.find("orders"), std::string::npos) << e[3].detail;
  EXPECT_EQ(e[4].queue, "orders");
  EXPECT_EQ(e[4].dequeue_count, 1u);  // counted afresh after the redrive
}

TEST_F(trace_test, expiry_by_retention_is_recorded_by_a_tick_without_actor) {
  queue_attribute_changes a;
  a.msg_retention_seconds = 60;
  ASSERT_TRUE(run(create_queue{"orders", a}).outcome.ok());
  const std::string id = send("orders", "old", "producer");
  const time_ms sent_at = now();
  advance_ms(60000);
  const auto h = trace_until(id, kind::expired);
  ASSERT_TRUE(h);
  ASSERT_EQ(kinds_of(*h), (std::vector<kind>{kind::enqueued, kind::expired}));
  EXPECT_EQ(h->events[1].at, sent_at + 60000);
  EXPECT_EQ(h->events[1].actor, "");
  EXPECT_NE(h->events[1].detail.find("msgRetentionSeconds 60"), std::string::npos) << h->events[1].detail;
}

TEST_F(trace_test, a_purge_ends_the_history_of_each_message_it_removes) {
  ASSERT_TRUE(run(create_queue{"orders", {}}).outcome.ok());
  const std::string held = send("orders", "held", "producer");
  const std::string waiting = send("orders", "waiting", "producer");
  ASSERT_TRUE(receive("orders", "consumer").outcome.ok());
  const result purged = run(purge_queue{"orders"}, "admin");
  ASSERT_TRUE(purged.outcome.ok());
  EXPECT_EQ(purged.count, 2u);
  const auto h1 = trace(held);
  const auto h2 = trace(waiting);
  ASSERT_TRUE(h1 && h2);
  EXPECT_EQ(kinds_of(*h1), (std::vector<kind>{kind::enqueued, kind::received, kind::purged}));
  EXPECT_EQ(kinds_of(*h2), (std::vector<kind>{kind::enqueued, kind::purged}));
  EXPECT_EQ(h1->events.back().actor, "admin");
  EXPECT_EQ(h1->events.back().dequeue_count, 1u);
}

TEST_F(trace_test, a_deleted_queue_ends_the_history_of_its_messages) {
  ASSERT_TRUE(run(create_queue{"orders", {}}).outcome.ok());
  const std::string id = send("orders", "m");
  ASSERT_TRUE(run(delete_queue{"orders"}, "admin").outcome.ok());
  const auto h = trace(id);
  ASSERT_TRUE(h);
  EXPECT_EQ(kinds_of(*h), (std::vector<kind>{kind::enqueued, kind::queue_deleted}));
  EXPECT_EQ(h->events.back().actor, "admin");
}

TEST_F(trace_test, a_topic_message_shows_its_publish_and_each_delivery) {
  std::mutex mutex;
  int push_attempts = 0;
  svc_->set_push_sender([&](push_delivery, std::function<void(bool)> done) {
    std::lock_guard lock(mutex);
    done(++push_attempts > 1);  // the first attempt fails
  });
  ASSERT_TRUE(run(create_queue{"inbox", {}}).outcome.ok());
  ASSERT_TRUE(run(create_topic{"news", {}}).outcome.ok());
  subscription_attributes to_queue;
  to_queue.protocol = sub_protocol::queue;
  to_queue.endpoint = "inbox";
  to_queue.format = notify_format::simplified;
  ASSERT_TRUE(run(subscribe{"news", "copy", to_queue}).outcome.ok());
  subscription_attributes to_http;
  to_http.protocol = sub_protocol::http;
  to_http.endpoint = "http://127.0.0.1:9/hook";
  ASSERT_TRUE(run(subscribe{"news", "hook", to_http}).outcome.ok());

  const result published = run(publish_messages{"news", {{"headline", {}, ""}}}, "publisher");
  ASSERT_TRUE(published.outcome.ok());
  const std::string id = published.msg_ids.at(0);
  trace_until(id, kind::push_failed);
  advance_ms(2000);  // past EXPONENTIAL_DECAY_RETRY's first retry delay (1 s)
  trace_until(id, kind::push_succeeded);
  const result got = receive("inbox", "reader");
  ASSERT_TRUE(got.outcome.ok());
  EXPECT_EQ(got.messages.at(0).msg_id, id);  // the queue's copy has the topic message's id

  const auto h = trace(id);
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->is_topic);
  EXPECT_EQ(h->queue_or_topic, "news");
  ASSERT_EQ(kinds_of(*h), (std::vector<kind>{kind::published, kind::delivered, kind::push_failed,
                                             kind::push_succeeded, kind::received}));
  const auto& e = h->events;
  EXPECT_EQ(e[0].queue, "news");
  EXPECT_EQ(e[0].actor, "publisher");
  EXPECT_EQ(e[1].queue, "inbox");
  EXPECT_NE(e[1].detail.find("copy"), std::string::npos) << e[1].detail;
  EXPECT_NE(e[2].detail.find("hook"), std::string::npos) << e[2].detail;
  EXPECT_NE(e[3].detail.find("attempt 2"), std::string::npos) << e[3].detail;
  EXPECT_EQ(e[4].queue, "inbox");
  EXPECT_EQ(e[4].actor, "reader");
}

TEST_F(trace_test, retention_zero_turns_tracing_off) {
  service_options options;
  options.trace_retention = 0ms;
  start(options);
  ASSERT_TRUE(run(create_queue{"orders", {}}).outcome.ok());
  const std::string id = send("orders", "m", "producer");
  EXPECT_FALSE(trace(id));
  EXPECT_EQ(svc_->stats().traced_messages, 0u);
}

TEST_F(trace_test, a_history_is_dropped_its_retention_after_its_last_event) {
  service_options options;
  options.trace_retention = 5s;
  start(options);
  ASSERT_TRUE(run(create_queue{"orders", {}}).outcome.ok());
  const std::string id = send("orders", "m");
  advance_ms(4000);
  ASSERT_TRUE(receive("orders", "consumer").outcome.ok());
  advance_ms(4999);
  EXPECT_TRUE(trace(id));  // 5 s after the receive, not after the send
  advance_ms(1);
  EXPECT_FALSE(trace(id));
}

TEST_F(trace_test, beyond_max_messages_the_oldest_histories_are_evicted_and_counted) {
  service_options options;
  options.trace_max_messages = 2;
  start(options);
  ASSERT_TRUE(run(create_queue{"orders", {}}).outcome.ok());
  const std::string first = send("orders", "1");
  advance_ms(1);
  const std::string second = send("orders", "2");
  advance_ms(1);
  ASSERT_TRUE(receive("orders", "consumer").outcome.ok());  // the first is touched last now
  advance_ms(1);
  const std::string third = send("orders", "3");
  EXPECT_TRUE(trace(first));
  EXPECT_FALSE(trace(second));
  EXPECT_TRUE(trace(third));
  EXPECT_EQ(svc_->stats().traces_evicted, 1u);
  EXPECT_EQ(svc_->stats().traced_messages, 2u);
}

// ---- the store alone --------------------------------------------------------------------

trace_event event_at(time_ms at, kind what, std::uint32_t dequeue_count = 0) {
  trace_event e;
  e.at = at;
  e.what = what;
  e.queue = "q";
  e.dequeue_count = dequeue_count;
  return e;
}

TEST(message_trace, keeps_the_first_and_the_latest_events_of_a_long_history) {
  message_trace trace(trace_limits{1h, 10, 4});
  trace.record("msg-1", event_at(0, kind::enqueued));
  for (std::uint32_t n = 1; n <= 5; ++n) trace.record("msg-1", event_at(n, kind::received, n));
  const auto h = trace.find("msg-1", 10);
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->truncated);
  ASSERT_EQ(h->events.size(), 4u);
  EXPECT_EQ(h->events[0].what, kind::enqueued);
  EXPECT_EQ(h->events[1].dequeue_count, 3u);
  EXPECT_EQ(h->events[3].dequeue_count, 5u);
}

TEST(message_trace, expire_drops_histories_past_retention_from_the_oldest) {
  message_trace trace(trace_limits{100ms, 10, 64});
  trace.record("msg-1", event_at(0, kind::enqueued));
  trace.record("msg-2", event_at(50, kind::enqueued));
  trace.record("msg-1", event_at(60, kind::received, 1));
  trace.expire(150);
  EXPECT_EQ(trace.size(), 1u);  // msg-2's last event is the oldest
  EXPECT_FALSE(trace.find("msg-2", 150));
  EXPECT_TRUE(trace.find("msg-1", 150));
  EXPECT_EQ(trace.evicted(), 0u);  // expiry is not eviction
}

TEST(message_trace, strings_shared_by_histories_outlive_the_histories_dropped) {
  // Every event names the same queue, actor and detail: each is held once, and dropping
  // histories (evicted, truncated, expired) must not drop a string another still uses.
  message_trace trace(trace_limits{100ms, 2, 2});
  auto event = [](time_ms at, kind what, std::string actor) {
    auto e = event_at(at, what);
    e.actor = std::move(actor);
    e.detail = "shared detail, longer than a short string's buffer";
    return e;
  };
  trace.record("msg-1", event(0, kind::enqueued, "SecretId a from 127.0.0.1:40000"));
  trace.record("msg-2", event(1, kind::enqueued, "SecretId a from 127.0.0.1:40000"));
  trace.record("msg-3", event(2, kind::enqueued, "SecretId a from 127.0.0.1:40000"));  // evicts msg-1
  for (time_ms at = 3; at < 6; ++at) {
    trace.record("msg-3", event(at, kind::received, "SecretId b from 127.0.0.1:40001"));
  }
  EXPECT_EQ(trace.evicted(), 1u);
  EXPECT_FALSE(trace.find("msg-1", 10));
  const auto h2 = trace.find("msg-2", 10);
  ASSERT_TRUE(h2);
  EXPECT_EQ(h2->queue_or_topic, "q");
  EXPECT_EQ(h2->events.at(0).actor, "SecretId a from 127.0.0.1:40000");
  const auto h3 = trace.find("msg-3", 10);
  ASSERT_TRUE(h3);
  ASSERT_EQ(h3->events.size(), 2u);  // the first and the latest
  EXPECT_EQ(h3->events[0].actor, "SecretId a from 127.0.0.1:40000");
  EXPECT_EQ(h3->events[1].actor, "SecretId b from 127.0.0.1:40001");
  EXPECT_EQ(h3->events[1].detail, "shared detail, longer than a short string's buffer");
  trace.expire(103);  // msg-2 goes; msg-3 (last event at 5) stays
  ASSERT_TRUE(trace.find("msg-3", 103));
  EXPECT_EQ(trace.find("msg-3", 103)->events[0].queue, "q");
  trace.record("msg-4", event(104, kind::enqueued, "SecretId a from 127.0.0.1:40000"));
  EXPECT_EQ(trace.find("msg-4", 104)->events[0].actor, "SecretId a from 127.0.0.1:40000");
}

// ---- observing the engine changes nothing -------------------------------------------------

class collecting_observer final : public message_observer {
 public:
  void observe(std::string_view msg_id, trace_event event) override {
    events.emplace_back(std::string(msg_id), std::move(event));
  }
  std::vector<std::pair<std::string, trace_event>> events;
};

TEST(message_observer, results_state_and_storage_are_the_same_with_and_without_one) {
  testing::harness plain;
  testing::harness observed;
  collecting_observer observer;
  observed.eng().set_observer(&observer);

  queue_attribute_changes with_dlq;
  with_dlq.dead_letter_queue = "dead";
  with_dlq.max_receive_count = 1;
  with_dlq.visibility_timeout = 1;
  with_dlq.rewind_seconds = 600;
  with_dlq.msg_retention_seconds = 120;
  subscription_attributes to_queue;
  to_queue.endpoint = "orders";
  to_queue.format = notify_format::simplified;
  subscription_attributes to_dead = to_queue;
  to_dead.endpoint = "dead";
  subscription_attributes to_http;
  to_http.protocol = sub_protocol::http;
  to_http.endpoint = "http://example.com/hook";
  const auto due_push = [](testing::harness& h) { return h.eng().due_pushes(h.now, 1, {}).at(0).delivery_id; };

  // Every command that reports events, in an order that makes each one do something.
  const std::vector<std::function<command_body(testing::harness&)>> script = {
      [](auto&) { return create_queue{"dead", {}}; },
      [&](auto&) { return create_queue{"orders", with_dlq}; },
      [](auto&) { return send_messages{"orders", {{"a", 0, "k", {}}, {"b", 0, "k", {}}, {"c", 5, std::nullopt, {}}}}; },
      [](auto&) { return receive_messages{"orders", 1}; },
      [](auto& h) {
        h.advance_s(2);
        return receive_messages{"orders", 16};  // dead-letters "a"
      },
      [](auto& h) {
        h.advance_s(4);  // "c" is visible now
        const result r = h.receive("orders");
        return delete_messages{"orders", {r.messages.empty() ? "none" : r.messages[0].receipt_handle}};
      },
      [](auto&) { return redrive_dead_letters{"dead", "", 10}; },
      [](auto& h) { return rewind_queue{"orders", h.now / 1000 - 10}; },
      [](auto&) { return create_topic{"news", {}}; },
      [&](auto&) { return subscribe{"news", "copy", to_queue}; },
      [&](auto&) { return subscribe{"news", "hook", to_http}; },
      [&](auto&) { return subscribe{"news", "gone", to_dead}; },
      [](auto&) { return publish_messages{"news", {{"n", {}, ""}}}; },
      [&](auto& h) { return push_result{due_push(h), false, false, 1000}; },
      [&](auto& h) {
        h.advance_s(1);
        return push_result{due_push(h), true, false, 0};
      },
      [](auto&) { return purge_queue{"orders"}; },
      [](auto&) { return send_messages{"orders", {{"late", 0, std::nullopt, {}}}}; },
      [](auto& h) {
        h.advance_s(200);
        return tick{};  // retention
      },
      [](auto&) { return send_messages{"dead", {{"d", 0, std::nullopt, {}}}}; },
      [](auto&) { return delete_queue{"dead"}; },
      [](auto&) { return publish_messages{"news", {{"n2", {}, ""}}}; },  // "gone" misses its copy
      [&](auto& h) { return push_result{due_push(h), false, true, 0}; },
  };
  for (std::size_t i = 0; i < script.size(); ++i) {
    const result a = plain.run(script[i](plain));
    const result b = observed.run(script[i](observed));
    EXPECT_EQ(a.outcome.value, b.outcome.value) << "step " << i;
    EXPECT_EQ(a.msg_ids, b.msg_ids) << "step " << i;
    EXPECT_EQ(a.count, b.count) << "step " << i;
    EXPECT_EQ(a.messages.size(), b.messages.size()) << "step " << i;
  }
  EXPECT_EQ(observed.eng().dump(), plain.eng().dump());
  EXPECT_TRUE(observed.scan("c") == plain.scan("c"));

  std::set<kind> seen;
  for (const auto& [id, e] : observer.events) seen.insert(e.what);
  for (const kind k : {kind::enqueued, kind::deduplicated, kind::received, kind::deleted, kind::rewound,
                       kind::dead_lettered, kind::redriven, kind::expired, kind::purged, kind::queue_deleted,
                       kind::published, kind::delivered, kind::not_delivered, kind::push_succeeded,
                       kind::push_failed, kind::push_given_up}) {
    EXPECT_TRUE(seen.contains(k)) << to_string(k);
  }
}

}  // namespace
}  // namespace wharf::core::queue
