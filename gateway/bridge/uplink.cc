#include "gateway/bridge/uplink.h"

#include <mqtt/async_client.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/queue/service.h"
#include "core/topic.h"
#include "gateway/bridge/bridge.h"
#include "gateway/mqtt/broker.h"

namespace wharf::gateway::bridge {
namespace {

namespace q = core::queue;
using std::chrono::milliseconds;

constexpr std::string_view trace_origin = "bridge uplink";  // who receives and deletes, in the message trace
constexpr std::uint32_t max_batch = 16;                  // CMQ's largest receive
constexpr milliseconds receive_wait{1000};               // long poll while connected and idle
// A PUBACK the remote owes us: well inside the visibility timeout, so a batch is normally
// deleted with receipt handles that are still valid.
constexpr milliseconds remote_ack_timeout{uplink_visibility_timeout_s * 1000 / 2};

bool goes(config::uplink_direction d, config::uplink_direction wanted) {
  return d == wanted || d == config::uplink_direction::both;
}

}  // namespace

std::optional<std::pair<std::string, std::uint8_t>> remote_topic_for(const config::uplink_config& cfg,
                                                                     std::string_view local_topic) {
  for (const auto& t : cfg.topics) {
    if (!goes(t.direction, config::uplink_direction::out) || !local_topic.starts_with(t.local_prefix)) continue;
    const auto rest = local_topic.substr(t.local_prefix.size());
    if (core::topic_matches(t.filter, rest)) return std::pair(t.remote_prefix + std::string(rest), t.qos);
  }
  return std::nullopt;
}

std::optional<std::string> local_topic_for(const config::uplink_config& cfg, std::string_view remote_topic) {
  for (const auto& t : cfg.topics) {
    if (!goes(t.direction, config::uplink_direction::in) || !remote_topic.starts_with(t.remote_prefix)) continue;
    const auto rest = remote_topic.substr(t.remote_prefix.size());
    if (core::topic_matches(t.filter, rest)) return t.local_prefix + std::string(rest);
  }
  return std::nullopt;
}

struct uplink::impl {
  // A message taken from the queue and not yet acknowledged by the remote.
  struct outgoing {
    std::string receipt_handle;
    std::string body;
  };

  impl(config::uplink_config c, q::service& core, broker& b, uplink_counters& counts)
      : cfg(std::move(c)),
        queue_core(core),
        mqtt_broker(b),
        counters(counts),
        client(cfg.address, cfg.client_id, mqtt::create_options(cfg.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1),
               nullptr) {
    client.set_message_callback([this](mqtt::const_message_ptr m) { on_remote_message(*m); });
    client.set_connection_lost_handler([this](const std::string& cause) {
      counters.connected.store(false, std::memory_order_relaxed);
      log::bridge().warn("uplink {}: connection lost ({}); messages going up wait in queue '{}'", cfg.address, cause,
                   cfg.queue);
      wake();
    });
  }

  ~impl() { client.disable_callbacks(); }

  mqtt::connect_options connect_options() const {
    auto b = mqtt::connect_options_builder()
                 .mqtt_version(cfg.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1)
                 .keep_alive_interval(std::chrono::seconds(cfg.keep_alive_s))
                 .connect_timeout(std::chrono::seconds(10));
    if (cfg.mqtt_version == 5)
      b.clean_start(cfg.clean_session);
    else
      b.clean_session(cfg.clean_session);
    if (!cfg.username.empty()) b.user_name(cfg.username);
    if (!cfg.password.empty()) b.password(cfg.password);
    if (cfg.address.starts_with("ssl://")) {
      auto ssl = mqtt::ssl_options_builder().enable_server_cert_auth(true).verify(true);
      if (!cfg.ca_file.empty()) ssl.trust_store(cfg.ca_file);
      if (!cfg.cert_file.empty()) ssl.key_store(cfg.cert_file);
      if (!cfg.key_file.empty()) ssl.private_key(cfg.key_file);
      b.ssl(ssl.finalize());
    }
    return b.finalize();
  }

  // Connects and subscribes the in topics. False (logged once per outage) on failure.
  bool connect() {
    try {
      client.connect(connect_options())->wait();
      for (const auto& t : cfg.topics) {
        if (!goes(t.direction, config::uplink_direction::in)) continue;
        // No Local (MQTT 5): what we send up is not sent back down to us.
        mqtt::subscribe_options options(cfg.mqtt_version == 5);
        client.subscribe(t.remote_prefix + t.filter, t.qos, options)->wait();
      }
    } catch (const mqtt::exception& e) {
      counters.connect_failures.fetch_add(1, std::memory_order_relaxed);
      if (!outage_logged) log::bridge().warn("uplink {}: cannot connect: {}; retrying", cfg.address, e.what());
      outage_logged = true;
      if (client.is_connected()) {
        try {
          client.disconnect()->wait();
        } catch (const mqtt::exception&) {
        }
      }
      return false;
    }
    outage_logged = false;
    counters.connects.fetch_add(1, std::memory_order_relaxed);
    counters.connected.store(true, std::memory_order_relaxed);
    log::bridge().info("uplink {}: connected as '{}'", cfg.address, cfg.client_id);
    return true;
  }

  // A message from the remote: published locally, stored where the broker keeps copies,
  // before this returns (Paho acknowledges it to the remote after the callback).
  void on_remote_message(const mqtt::message& m) {
    const auto local = local_topic_for(cfg, m.get_topic());
    if (!local) return;  // a remote subscription's match that no in topic maps (overlaps)
    core::message msg;
    msg.topic = *local;
    msg.payload = m.get_payload_str();
    msg.qos = static_cast<std::uint8_t>(m.get_qos());
    msg.retain = m.is_retained();
    auto stored = std::make_shared<std::promise<bool>>();
    auto future = stored->get_future();
    mqtt_broker.publish_from_core(std::move(msg), [stored](bool durable) { stored->set_value(durable); });
    // No time limit: returning is what acknowledges the message to the remote.
    if (!future.get())
      log::bridge().error("uplink {}: a message on '{}' could not be stored locally (storage failing)", cfg.address,
                    m.get_topic());
    counters.received.fetch_add(1, std::memory_order_relaxed);
  }

  // Messages still invisible in the queue when the worker starts were taken by the run
  // before a restart and not deleted: wait (at most the visibility timeout) until they are
  // visible again, so they go up before newer ones.
  void wait_for_leftovers() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(uplink_visibility_timeout_s + 1);
    bool logged = false;
    while (!stopping.load() && std::chrono::steady_clock::now() < deadline) {
      std::promise<std::uint64_t> inactive;
      auto future = inactive.get_future();
      queue_core.query([&](const q::engine& e, q::time_ms now) {
        const auto info = e.queue(cfg.queue, now);
        inactive.set_value(info ? info->counts.inactive : 0);
      });
      const auto count = future.get();
      if (count == 0) return;
      if (!logged) log::bridge().info("uplink: {} messages were in flight before the restart; sending them first", count);
      logged = true;
      sleep_for(milliseconds(200));
    }
  }

  // Takes the next batch from the queue (waiting up to receive_wait). Empty when none.
  std::vector<outgoing> take_batch() {
    std::promise<q::result> answer;
    auto future = answer.get_future();
    queue_core.receive(
        q::receive_messages{cfg.queue, max_batch}, receive_wait,
        [&answer](q::result r) { answer.set_value(std::move(r)); }, nullptr, std::string(trace_origin));
    const q::result r = future.get();
    std::vector<outgoing> batch;
    if (!r.outcome.ok()) {
      if (r.outcome.value != q::code::no_message) {
        log::bridge().error("uplink: cannot read queue '{}': {}", cfg.queue, r.outcome.message);
        sleep_for(milliseconds(cfg.reconnect_min_ms));
      }
      return batch;
    }
    for (const auto& m : r.messages) batch.push_back({m.receipt_handle, m.body});
    return batch;
  }

  // Publishes the batch in order, pipelined; true once the remote acknowledged all of it.
  bool send_batch(const std::vector<outgoing>& batch) {
    std::vector<mqtt::delivery_token_ptr> tokens;
    try {
      for (const auto& out : batch) {
        const auto m = message_from_json(out.body);
        const auto remote = m ? remote_topic_for(cfg, m->topic) : std::nullopt;
        if (!remote) {
          counters.dropped.fetch_add(1, std::memory_order_relaxed);
          log::bridge().warn("uplink: a queued message ({} bytes) maps to no out topic any more; dropped", out.body.size());
          continue;
        }
        const int qos = std::min<int>(m->qos, remote->second);
        tokens.push_back(client.publish(remote->first, m->payload.data(), m->payload.size(), qos, m->retain));
      }
      for (auto& t : tokens) {
        if (!t->wait_for(remote_ack_timeout)) return false;
      }
    } catch (const mqtt::exception& e) {
      log::bridge().warn("uplink {}: sending failed: {}; the batch is sent again after reconnecting", cfg.address, e.what());
      return false;
    }
    counters.sent.fetch_add(tokens.size(), std::memory_order_relaxed);
    return true;
  }

  void delete_batch(const std::vector<outgoing>& batch) {
    q::delete_messages del;
    del.queue = cfg.queue;
    for (const auto& out : batch) del.receipt_handles.push_back(out.receipt_handle);
    std::promise<q::result> answer;
    auto future = answer.get_future();
    queue_core.submit(
        std::move(del), [&answer](q::result r) { answer.set_value(std::move(r)); }, std::string(trace_origin));
    const auto r = future.get();
    // 6010: some handle expired meanwhile (the message is visible again and goes up again).
    if (!r.outcome.ok()) log::bridge().warn("uplink: deleting sent messages from '{}': {}", cfg.queue, r.outcome.message);
  }

  void run() {
    wait_for_leftovers();
    auto delay = milliseconds(cfg.reconnect_min_ms);
    std::vector<outgoing> batch;
    std::chrono::steady_clock::time_point batch_taken;
    while (!stopping.load()) {
      if (!client.is_connected()) {
        counters.connected.store(false, std::memory_order_relaxed);
        if (!connect()) {
          sleep_for(delay);
          delay = std::min(delay * 2, milliseconds(cfg.reconnect_max_ms));
          continue;
        }
        delay = milliseconds(cfg.reconnect_min_ms);
      }
      // A batch held longer than the visibility timeout is visible in the queue again: take
      // it from there (in order) rather than send it with receipt handles that expired.
      if (!batch.empty() && std::chrono::steady_clock::now() - batch_taken > std::chrono::seconds(uplink_visibility_timeout_s))
        batch.clear();
      if (batch.empty()) {
        batch = take_batch();
        batch_taken = std::chrono::steady_clock::now();
      }
      if (batch.empty()) continue;
      if (!send_batch(batch)) continue;  // kept: sent again, in order, once connected
      delete_batch(batch);
      batch.clear();
    }
    if (client.is_connected()) {
      try {
        client.disconnect()->wait_for(std::chrono::seconds(5));
      } catch (const mqtt::exception&) {
      }
    }
    counters.connected.store(false, std::memory_order_relaxed);
  }

  void sleep_for(milliseconds d) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, d, [this] { return stopping.load() || woken; });
    woken = false;
  }
  void wake() {
    {
      std::lock_guard lock(mu);
      woken = true;
    }
    cv.notify_all();
  }

  const config::uplink_config cfg;
  q::service& queue_core;
  broker& mqtt_broker;
  std::thread worker;
  std::atomic<bool> stopping{false};
  bool outage_logged = false;  // worker thread only
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  uplink_counters& counters;
  // Last: destroyed first, while everything its callbacks use still exists.
  mqtt::async_client client;
};

uplink::uplink(config::uplink_config cfg, q::service& queue_core, broker& mqtt_broker, uplink_counters& counters)
    : impl_(std::make_unique<impl>(std::move(cfg), queue_core, mqtt_broker, counters)) {}

uplink::~uplink() { stop(); }

void uplink::start() {
  impl_->worker = std::thread([this] { impl_->run(); });
}

void uplink::stop() {
  if (!impl_->worker.joinable()) return;
  impl_->stopping.store(true);
  impl_->wake();
  impl_->worker.join();
  const auto& i = *impl_;
  const auto& c = i.counters;
  log::bridge().info(
      "uplink {}: stopped; since start, {} connections ({} attempts failed), {} messages sent up, {} received, {} "
      "dropped",
      i.cfg.address, c.connects.load(), c.connect_failures.load(), c.sent.load(), c.received.load(), c.dropped.load());
}

}  // namespace wharf::gateway::bridge
