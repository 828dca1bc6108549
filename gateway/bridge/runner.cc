#include "gateway/bridge/runner.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "gateway/mqtt/broker.h"

namespace wharf::gateway::bridge {
namespace {

// What the shards get: nothing when there is nothing to bridge (no per-publish work).
std::shared_ptr<const queue_tap> tap_of(const std::shared_ptr<const bridge>& rules) {
  if (rules->empty()) return nullptr;
  return rules;
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
  if (!rules_->uplink()) return;
  uplink_ = std::make_unique<uplink>(*rules_->uplink(), queue_core_, broker_);
  uplink_->start();
}

bool runner::reload(std::shared_ptr<const bridge> rules) {
  try {
    rules->provision(queue_core_);
  } catch (const std::exception& e) {
    spdlog::error("config reload: the bridge's new bindings were refused, the running ones are kept: {}", e.what());
    return false;
  }
  broker_.replace_queue_tap(tap_of(rules));
  const std::lock_guard lock(mu_);
  const bool uplink_changed = rules->uplink() != rules_->uplink();
  rules_ = std::move(rules);
  if (uplink_changed) {
    if (uplink_) uplink_->stop();
    uplink_.reset();
    start_uplink_locked();
    spdlog::info("config reload: uplink {}", rules_->uplink() ? "restarted with its new settings" : "stopped");
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
