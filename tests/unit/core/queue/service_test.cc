// queue::service: answers after the commit, long polls woken by sends, delays and their own
// deadline, the long-poll bound, stop, and HTTP push retries through a fake push sender.
// Real RocksDB with sync and the real clock: waits here are short and only bound how long a
// failing test takes.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../test_util.h"
#include "core/queue/service.h"
#include "tests/support/wait_for.h"

namespace wharf::core::queue {
namespace {

using namespace std::chrono_literals;

constexpr auto test_wait = 10s;  // how long a test waits for an answer that should come

class service_test : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(service_options options) {
    svc_.reset();
    if (!store_) {
      storage_options store_options;
      store_options.path = dir_.sub("db");
      store_ = storage::open(store_options);
    }
    svc_ = std::make_unique<service>(*store_, std::move(options));
  }

  // Submits `body` and waits for its answer.
  result run(command_body body) {
    std::promise<result> answer;
    auto future = answer.get_future();
    svc_->submit(std::move(body), [&answer](result r) { answer.set_value(std::move(r)); });
    EXPECT_EQ(future.wait_for(test_wait), std::future_status::ready);
    return future.get();
  }

  std::future<result> receive(std::string queue, std::optional<std::chrono::milliseconds> wait) {
    auto answer = std::make_shared<std::promise<result>>();
    auto future = answer->get_future();
    svc_->receive({std::move(queue), 1}, wait, [answer](result r) { answer->set_value(std::move(r)); });
    return future;
  }

  void create_queue(const std::string& name) { ASSERT_EQ(run(create_queue_cmd(name)).outcome.value, code::ok); }
  static command_body create_queue_cmd(const std::string& name) { return queue::create_queue{name, {}}; }
  static command_body send(const std::string& queue, std::string body, std::uint32_t delay_s = 0) {
    return send_messages{queue, {{std::move(body), delay_s, std::nullopt, {}}}};
  }

  core::testing::temp_dir dir_;
  std::unique_ptr<storage> store_;
  std::unique_ptr<service> svc_;
};

TEST_F(service_test, a_command_is_answered_after_its_batch_is_synced) {
  std::promise<std::uint64_t> syncs_at_answer;
  svc_->submit(create_queue_cmd("orders"), [&](result r) {
    EXPECT_TRUE(r.outcome.ok()) << r.outcome.message;
    syncs_at_answer.set_value(store_->stats().syncs);
  });
  auto f = syncs_at_answer.get_future();
  ASSERT_EQ(f.wait_for(test_wait), std::future_status::ready);
  EXPECT_GE(f.get(), 1u);
}

TEST_F(service_test, an_empty_receive_without_wait_is_7000_and_writes_nothing) {
  create_queue("orders");
  // What the log holds, not the storage batches: the engine's state after create_queue is
  // written buffered behind its entry and may still be landing when the answer comes.
  const auto before = svc_->stats();
  auto r = receive("orders", 0ms);
  ASSERT_EQ(r.wait_for(test_wait), std::future_status::ready);
  EXPECT_EQ(r.get().outcome.value, code::no_message);
  const auto after = svc_->stats();
  EXPECT_EQ(after.entries_proposed, before.entries_proposed);
  EXPECT_EQ(after.replication.last_index, before.replication.last_index);
}

TEST_F(service_test, a_waiting_receive_is_answered_by_a_send) {
  create_queue("orders");
  auto r = receive("orders", 20s);
  ASSERT_TRUE(wharf::test::wait_for([&] { return svc_->stats().long_polls_waiting == 1; }));
  EXPECT_EQ(r.wait_for(0ms), std::future_status::timeout);
  ASSERT_TRUE(run(send("orders", "hello")).outcome.ok());
  ASSERT_EQ(r.wait_for(test_wait), std::future_status::ready);
  const auto answer = r.get();
  ASSERT_TRUE(answer.outcome.ok()) << answer.outcome.message;
  EXPECT_EQ(answer.messages.at(0).body, "hello");
  EXPECT_EQ(svc_->stats().long_polls_waiting, 0u);
}

TEST_F(service_test, a_waiting_receive_is_answered_when_a_delayed_message_becomes_visible) {
  create_queue("orders");
  ASSERT_TRUE(run(send("orders", "later", 1)).outcome.ok());
  const auto started = std::chrono::steady_clock::now();
  auto r = receive("orders", 20s);
  ASSERT_EQ(r.wait_for(test_wait), std::future_status::ready);
  const auto answer = r.get();
  ASSERT_TRUE(answer.outcome.ok()) << answer.outcome.message;
  EXPECT_EQ(answer.messages.at(0).body, "later");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 500ms);  // not before the delay
}

TEST_F(service_test, a_waiting_receive_ends_with_7000_at_its_deadline) {
  create_queue("orders");
  const auto started = std::chrono::steady_clock::now();
  auto r = receive("orders", 300ms);
  ASSERT_EQ(r.wait_for(test_wait), std::future_status::ready);
  EXPECT_EQ(r.get().outcome.value, code::no_message);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
}

TEST_F(service_test, a_receive_that_dead_letters_the_only_message_goes_on_waiting) {
  create_queue("dead");
  queue_attribute_changes a;
  a.visibility_timeout = 1;
  a.dead_letter_queue = "dead";
  a.policy = dead_letter_policy::max_receive_count;
  a.max_receive_count = 1;
  ASSERT_TRUE(run(queue::create_queue{"orders", a}).outcome.ok());
  ASSERT_TRUE(run(send("orders", "poison")).outcome.ok());
  auto first = receive("orders", 0ms);
  ASSERT_EQ(first.wait_for(test_wait), std::future_status::ready);
  ASSERT_TRUE(first.get().outcome.ok());
  // Visible again after 1 s; the next receive moves it to "dead" and, finding nothing else,
  // must wait out its 2 s rather than answer 7000 at once.
  std::this_thread::sleep_for(1100ms);
  const auto started = std::chrono::steady_clock::now();
  auto second = receive("orders", 2s);
  ASSERT_EQ(second.wait_for(test_wait), std::future_status::ready);
  EXPECT_EQ(second.get().outcome.value, code::no_message);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1900ms);
  auto letter = receive("dead", 0ms);
  ASSERT_EQ(letter.wait_for(test_wait), std::future_status::ready);
  const auto answer = letter.get();
  ASSERT_TRUE(answer.outcome.ok()) << answer.outcome.message;
  EXPECT_EQ(answer.messages.at(0).body, "poison");
}

TEST_F(service_test, the_queue_polling_wait_applies_when_the_request_names_none) {
  queue_attribute_changes a;
  a.polling_wait_seconds = 1;
  ASSERT_TRUE(run(queue::create_queue{"orders", a}).outcome.ok());
  auto r = receive("orders", std::nullopt);
  EXPECT_EQ(r.wait_for(300ms), std::future_status::timeout);
  ASSERT_EQ(r.wait_for(test_wait), std::future_status::ready);
  EXPECT_EQ(r.get().outcome.value, code::no_message);
}

TEST_F(service_test, receives_beyond_max_long_polls_are_refused_with_4420) {
  service_options options;
  options.max_long_polls = 2;
  start(options);
  create_queue("orders");
  auto first = receive("orders", 20s);
  auto second = receive("orders", 20s);
  auto third = receive("orders", 20s);
  ASSERT_EQ(third.wait_for(test_wait), std::future_status::ready);
  EXPECT_EQ(third.get().outcome.value, code::rate_limited);
  EXPECT_EQ(svc_->stats().long_polls_refused, 1u);
  svc_->stop();
  ASSERT_EQ(first.wait_for(test_wait), std::future_status::ready);
  ASSERT_EQ(second.wait_for(test_wait), std::future_status::ready);
}

TEST_F(service_test, stop_answers_waiting_receives_with_7000) {
  create_queue("orders");
  auto r = receive("orders", 20s);
  EXPECT_EQ(r.wait_for(50ms), std::future_status::timeout);
  svc_->stop();
  ASSERT_EQ(r.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(r.get().outcome.value, code::no_message);
}

TEST_F(service_test, a_failed_push_is_retried_until_it_succeeds) {
  std::mutex mutex;
  std::vector<std::uint32_t> attempts_seen;
  std::promise<void> delivered;
  svc_->set_push_sender([&](push_delivery d, std::function<void(bool)> done) {
    std::lock_guard lock(mutex);
    attempts_seen.push_back(d.attempts);
    const bool ok = attempts_seen.size() == 2;  // fail once (EXPONENTIAL_DECAY_RETRY: retry after 1 s)
    done(ok);
    if (ok) delivered.set_value();
  });
  ASSERT_TRUE(run(create_topic{"alerts", {}}).outcome.ok());
  subscription_attributes sub;
  sub.protocol = sub_protocol::http;
  sub.endpoint = "http://127.0.0.1:9/hook";
  ASSERT_TRUE(run(subscribe{"alerts", "ops", sub}).outcome.ok());
  ASSERT_TRUE(run(publish_messages{"alerts", {{"disk full", {}, ""}}}).outcome.ok());
  auto f = delivered.get_future();
  ASSERT_EQ(f.wait_for(test_wait), std::future_status::ready);
  std::lock_guard lock(mutex);
  EXPECT_EQ(attempts_seen, (std::vector<std::uint32_t>{0, 1}));
}

TEST_F(service_test, state_survives_a_restart_of_the_service) {
  create_queue("orders");
  ASSERT_TRUE(run(send("orders", "kept")).outcome.ok());
  svc_.reset();
  start({});
  auto r = receive("orders", 0ms);
  ASSERT_EQ(r.wait_for(test_wait), std::future_status::ready);
  const auto answer = r.get();
  ASSERT_TRUE(answer.outcome.ok()) << answer.outcome.message;
  EXPECT_EQ(answer.messages.at(0).body, "kept");
}

}  // namespace
}  // namespace wharf::core::queue
