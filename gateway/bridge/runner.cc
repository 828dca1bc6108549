#include "gateway/bridge/runner.h"

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "core/log.h"
#include "gateway/mqtt/broker.h"

namespace wharf::gateway::bridge {
namespace {

// What the shards get: nothing when there is nothing to bridge (no per-publish work).
std::shared_ptr<const queue_tap> tap_of(const std::shared_ptr<const bridge>& rules) {
  if (rules->empty()) return nullptr;
  return rules;
}

// Whether two uplink settings connect the same way (where they stand in the file aside).
bool same_uplink(const std::optional<config::uplink_config>& a, const std::optional<config::uplink_config>& b) {
  if (!a || !b) return !a && !b;
  auto same_topic = [](const config::uplink_topic& x, const config::uplink_topic& y) {
    return std::tie(x.filter, x.direction, x.qos, x.local_prefix, x.remote_prefix) ==
           std::tie(y.filter, y.direction, y.qos, y.local_prefix, y.remote_prefix);
  };
  return std::tie(a->address, a->client_id, a->mqtt_version, a->username, a->password, a->ca_file, a->cert_file,
                  a->key_file, a->keep_alive_s, a->clean_session, a->reconnect_min_ms, a->reconnect_max_ms, a->queue,
                  a->max_queued_messages) ==
             std::tie(b->address, b->client_id, b->mqtt_version, b->username, b->password, b->ca_file, b->cert_file,
                      b->key_file, b->keep_alive_s, b->clean_session, b->reconnect_min_ms, b->reconnect_max_ms,
                      b->queue, b->max_queued_messages) &&
         std::equal(a->topics.begin(), a->topics.end(), b->topics.begin(), b->topics.end(), same_topic);
}

}  // namespace

runner::runner(core::queue::service& queue_core, broker& mqtt_broker) : queue_core_(queue_core), broker_(mqtt_broker) {}

runner::~runner() { stop(); }

void runner::attach(std::shared_ptr<const bridge> rules) {
  rules->provision(queue_core_);
  broker_.attach_queue_core(queue_core_, tap_of(rules));
  const std::lock_guard lock(mu_);
  rules_ = std::move(rules);
}

void runner::start() {
  const std::lock_guard lock(mu_);
  start_uplink_locked();
}

void runner::start_uplink_locked() {
  has_uplink_.store(rules_->uplink().has_value(), std::memory_order_relaxed);
  if (!rules_->uplink()) return;
  uplink_ = std::make_unique<uplink>(*rules_->uplink(), queue_core_, broker_, uplink_counters_);
  uplink_->start();
}

bool runner::reload(std::shared_ptr<const bridge> rules) {
  try {
    rules->provision(queue_core_);
  } catch (const std::exception& e) {
    log::bridge().error("config reload: the bridge's new bindings were refused, the running ones are kept: {}", e.what());
    return false;
  }
  broker_.replace_queue_tap(tap_of(rules));
  std::unique_ptr<uplink> old_uplink;
  {
    const std::lock_guard lock(mu_);
    const bool uplink_changed = !same_uplink(rules->uplink(), rules_->uplink());
    rules_ = std::move(rules);
    if (!uplink_changed) return true;
    old_uplink = std::move(uplink_);
  }
  // Stopped outside the lock: its worker may be waiting for the core, whose thread may be
  // in deliver() waiting for the lock.
  if (old_uplink) old_uplink->stop();
  old_uplink.reset();
  const std::lock_guard lock(mu_);
  try {
    start_uplink_locked();
    log::bridge().info("config reload: uplink {}", rules_->uplink() ? "restarted with its new settings" : "stopped");
  } catch (const std::exception& e) {
    log::bridge().error("config reload: the uplink could not start: {}", e.what());
  }
  return true;
}

void runner::deliver(const core::queue::push_delivery& d, std::function<void(bool)> done) {
  std::shared_ptr<const bridge> rules;
  {
    const std::lock_guard lock(mu_);
    rules = rules_;
  }
  rules->deliver(d, broker_, std::move(done));
}

void runner::stop() {
  std::unique_ptr<uplink> stopping;
  {
    const std::lock_guard lock(mu_);
    stopping = std::move(uplink_);
  }
  if (stopping) stopping->stop();
}

}  // namespace wharf::gateway::bridge
