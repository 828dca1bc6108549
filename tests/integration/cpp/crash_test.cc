// Durability under kill -9: every QoS 1 message the broker acknowledged for an
// offline persistent session is delivered after a crash and restart.
//
// Contract (docs, product.md): a QoS 1 PUBLISH to a topic an offline persistent
// session subscribes to gets its PUBACK only after the message is fsynced. So
// whatever the moment of the kill, acked ⊆ delivered-after-restart. Messages
// that were in flight (sent, not acked) may or may not survive; duplicates are
// allowed (QoS 1 is at least once).
//
// The kill point is random but reproducible: WHARF_TEST_SEED. It is drawn as an
// ack count rather than a wall-clock delay, because the broker's speed is
// unknown (an fsync per group commit can take anywhere from 0.1 to 20 ms), and a
// fixed delay would mostly land after the stream ended on a fast broker. A
// small share of draws deliberately kill after the last ack.
//
// Against Mosquitto (WHARF_TEST_BROKER=mosquitto) this test is expected to
// fail: Mosquitto acknowledges from memory and saves to disk every
// autosave_interval seconds.
#include <cstdint>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "broker_process.h"

namespace wharf::itest {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr int k_messages = 10'000;
constexpr int k_window = 128;  // our own in-flight bound
constexpr auto k_wait = 30s;
constexpr auto k_silence = 5s;
const std::string k_topic = "crash/t";
const std::string k_sub_id = "crash-sub";

// Publishes QoS 1 messages with at most k_window unacknowledged, and records
// the sequence number of each message whose PUBACK arrived.
class acking_publisher : public mqtt::callback {
 public:
  explicit acking_publisher(const std::string& uri)
      // Paho also bounds its queue of not-yet-sent commands (default 100).
      : cli_(uri, "crash-pub", mqtt::create_options(MQTTVERSION_3_1_1, 4 * k_window)) {
    cli_.set_callback(*this);
    auto opts = v311_connect_options(true);
    // Paho counts a message in flight a little longer than delivery_complete
    // suggests; give it slack so publish() never fails on its own bound.
    opts.set_max_inflight(2 * k_window);
    if (!cli_.connect(opts)->wait_for(k_wait)) throw std::runtime_error("publisher CONNECT timed out");
  }

  // Runs on its own thread until all are sent or the connection is gone.
  void run() {
    for (int seq = 0; seq < k_messages; ++seq) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return in_flight_ < k_window || lost_ || stop_; });
        if (lost_ || stop_) return;
        ++in_flight_;
      }
      const std::string payload = std::to_string(seq);
      try {
        // The seq travels as the token's user context; on_success runs only for a PUBACK.
        // (delivery_complete is not used: Paho 1.2 also reports it for messages whose
        // connection was lost, which would count unacknowledged messages as acked.)
        auto msg = mqtt::make_message(k_topic, payload, 1, false);
        cli_.publish(msg, reinterpret_cast<void*>(static_cast<std::intptr_t>(seq)), acks_);
      } catch (const mqtt::exception& e) {
        std::lock_guard lock(mu_);
        if (!lost_) error_ = e.what();
        lost_ = true;
        return;
      }
      sent_.store(seq + 1);
    }
  }

  // Stops sending new messages; those in flight still complete.
  void stop_sending() {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  int acked_count() const { return acked_count_.load(); }
  std::string error() {
    std::lock_guard lock(mu_);
    return error_;
  }
  bool lost() {
    std::lock_guard lock(mu_);
    return lost_;
  }
  int sent_count() const { return sent_.load(); }
  // Valid once the client is disconnected or the connection lost.
  std::vector<int> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  void close() {
    try {
      if (cli_.is_connected()) cli_.disconnect()->wait_for(5s);
    } catch (const mqtt::exception&) {
      // The broker may be gone; nothing to do.
    }
    std::lock_guard lock(mu_);
    lost_ = true;
    cv_.notify_all();
  }

 private:
  class ack_listener final : public mqtt::iaction_listener {
   public:
    explicit ack_listener(acking_publisher& owner) : owner_(owner) {}
    void on_success(const mqtt::token& tok) override {
      owner_.record_ack(static_cast<int>(reinterpret_cast<std::intptr_t>(tok.get_user_context())));
    }
    void on_failure(const mqtt::token&) override {}

   private:
    acking_publisher& owner_;
  };

  void record_ack(int seq) {
    std::lock_guard lock(mu_);
    acked_.push_back(seq);
    --in_flight_;
    acked_count_.store(static_cast<int>(acked_.size()));
    cv_.notify_all();
  }
  void connection_lost(const std::string& cause) override {
    std::lock_guard lock(mu_);
    if (!lost_) error_ = "connection lost: " + cause;
    lost_ = true;
    cv_.notify_all();
  }

  ack_listener acks_{*this};
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  bool lost_ = false;
  bool stop_ = false;
  std::string error_;  // why the publisher stopped early, if it did
  std::vector<int> acked_;
  std::atomic<int> acked_count_{0};
  std::atomic<int> sent_{0};
  // Last, so destroyed first: Paho fails the publishes still in flight (the broker was
  // killed) through acks_ and reports the lost connection to this object as the client
  // goes, and both must still be alive then (a listener destroyed first was a "pure virtual
  // method called" abort).
  mqtt::async_client cli_;
};

class crash : public broker_test {};

TEST_F(crash, acked_qos1_messages_survive_kill_9) {
  const std::uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  // Kill once this many PUBACKs were seen; above k_messages means "after the
  // last ack, plus a short pause" (~4% of draws).
  const int kill_at_acks = std::uniform_int_distribution<int>(200, 10'400)(rng);
  const auto after_all_pause = std::chrono::milliseconds(
      std::uniform_int_distribution<int>(0, 300)(rng));
  // Harness self-check only: WHARF_CRASH_SETTLE_MS=N stops publishing at the
  // kill point and waits N ms before the kill, so a broker that saves lazily
  // (Mosquitto, autosave_interval 1) has everything on disk and the test must
  // pass. It does not test the durability contract; leave it unset for that.
  const char* settle_env = std::getenv("WHARF_CRASH_SETTLE_MS");
  const std::chrono::milliseconds settle(settle_env ? std::atoi(settle_env) : 0);
  std::cout << "[crash] broker=" << to_string(broker().kind()) << " seed=" << seed
            << " (rerun with WHARF_TEST_SEED=" << seed << ") kill_at_acks=" << kill_at_acks
            << (settle.count() > 0 ? " SETTLE_MS=" + std::to_string(settle.count()) +
                                         " (self-check mode: not a durability test)"
                                   : std::string())
            << std::endl;

  // 1. The persistent subscriber: subscribe, then go offline.
  {
    mqtt::async_client sub(broker().uri(), k_sub_id);
    auto tok = sub.connect(v311_connect_options(false));
    ASSERT_TRUE(tok->wait_for(k_wait));
    ASSERT_TRUE(sub.subscribe(k_topic, 1)->wait_for(k_wait));
    ASSERT_TRUE(sub.disconnect()->wait_for(k_wait));
  }
  if (broker().kind() == broker_kind::mosquitto) {
    // Give Mosquitto's 1 s autosave a chance to store the session itself, so
    // what this test measures is message loss.
    std::this_thread::sleep_for(1500ms);
  }

  // 2. Publish as fast as the window allows; kill -9 at the drawn point.
  acking_publisher pub(broker().uri());
  const auto t0 = steady::now();
  std::thread publisher([&] { pub.run(); });
  const auto deadline = t0 + 300s;
  bool all_acked_before_kill = false;
  bool lost_before_kill = false;  // no ASSERT while the publisher thread runs
  while (steady::now() < deadline) {
    const int acked = pub.acked_count();
    if (acked >= std::min(kill_at_acks, k_messages)) {
      if (acked >= k_messages) {
        all_acked_before_kill = true;
        std::this_thread::sleep_for(after_all_pause);
      }
      break;
    }
    if (pub.lost()) {
      lost_before_kill = true;
      break;
    }
    std::this_thread::sleep_for(100us);
  }
  if (settle.count() > 0) {
    pub.stop_sending();
    std::this_thread::sleep_for(settle);
  }
  const std::string early_error = lost_before_kill ? pub.error() : std::string();
  const int acked_at_kill = pub.acked_count();
  const int sent_at_kill = pub.sent_count();
  const auto kill_after_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  broker().kill9();
  pub.close();
  publisher.join();
  const std::vector<int> acked = pub.acked();
  std::cout << "[crash] kill -9 after " << kill_after_ms << " ms: sent=" << sent_at_kill
            << " acked=" << acked_at_kill << " (acked after reaping: " << acked.size() << ") "
            << (all_acked_before_kill ? "landed AFTER the stream (all acked)"
                                      : "landed MID-STREAM")
            << std::endl;
  ASSERT_FALSE(lost_before_kill) << "publisher stopped before the kill: " << early_error;
  ASSERT_GT(acked_at_kill, 0) << "no PUBACK within 300 s; the broker never acknowledged";

  // 3. Restart on the same data dir; the session must be there.
  broker().start();
  std::cout << "[crash] restart took " << broker().last_start_duration_ms().count()
            << " ms until the port accepted" << std::endl;

  mqtt::async_client sub(broker().uri(), k_sub_id);
  sub.start_consuming();
  auto tok = sub.connect(v311_connect_options(false));
  ASSERT_TRUE(tok->wait_for(k_wait));
  EXPECT_TRUE(tok->get_connect_response().is_session_present())
      << "session " << k_sub_id << " did not survive kill -9";

  std::map<int, int> delivered;  // seq -> times delivered
  int unexpected = 0;
  const auto collect_deadline = steady::now() + 300s;
  while (steady::now() < collect_deadline) {
    auto msg = sub.try_consume_message_for(k_silence);
    if (!msg) break;
    if (msg->get_topic() != k_topic) {
      ++unexpected;
      continue;
    }
    try {
      ++delivered[std::stoi(msg->get_payload_str())];
    } catch (const std::exception&) {
      ++unexpected;
    }
  }
  sub.disconnect()->wait_for(k_wait);

  int duplicates = 0;
  for (const auto& [seq, times] : delivered) duplicates += times - 1;
  std::vector<int> missing;
  for (int seq : std::set<int>(acked.begin(), acked.end())) {
    if (!delivered.contains(seq)) missing.push_back(seq);
  }
  int delivered_not_acked = 0;
  const std::set<int> acked_set(acked.begin(), acked.end());
  for (const auto& [seq, times] : delivered) delivered_not_acked += acked_set.contains(seq) ? 0 : 1;

  std::cout << "[crash] acked=" << acked_set.size() << " delivered_distinct=" << delivered.size()
            << " duplicates=" << duplicates << " delivered_but_not_acked=" << delivered_not_acked
            << " missing_acked=" << missing.size() << " unexpected=" << unexpected << std::endl;
  if (!missing.empty()) {
    std::cout << "[crash] first missing:";
    for (std::size_t i = 0; i < std::min<std::size_t>(missing.size(), 20); ++i) {
      std::cout << " " << missing[i];
    }
    std::cout << std::endl;
    if (broker().kind() == broker_kind::mosquitto) {
      std::cout << "[crash] note: Mosquitto does not fsync before PUBACK; loss is expected "
                   "with WHARF_TEST_BROKER=mosquitto"
                << std::endl;
    }
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " acknowledged messages were lost (seed "
                               << seed << ")";
  EXPECT_EQ(unexpected, 0);
}

}  // namespace
}  // namespace wharf::itest
