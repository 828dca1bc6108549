#include "gateway/mqtt/admission.h"

#include <algorithm>

namespace wharf::gateway {
namespace {

// Client ids tracked for flapping before the stale ones (window over, not banned) are
// dropped: bounds the map under a storm of distinct ids.
constexpr std::size_t flapping_sweep_threshold = 100000;

}  // namespace

admission::admission(const config::mqtt_config& mqtt, const std::vector<config::listener_config>& listeners)
    : max_connections_(mqtt.max_connections), flapping_limits_(mqtt.flapping) {
  for (std::size_t i = 0; i < listeners.size(); ++i) set_listener(i, listeners[i]);
}

void admission::update(const config::mqtt_config& mqtt) {
  max_connections_.store(mqtt.max_connections, std::memory_order_relaxed);
  std::lock_guard lock(flapping_mu_);
  flapping_limits_ = mqtt.flapping;
}

void admission::set_listener(std::size_t index, const config::listener_config& cfg) {
  std::shared_ptr<per_listener> l;
  {
    std::lock_guard lock(listeners_mu_);
    if (index >= listeners_.size()) listeners_.resize(index + 1);
    if (!listeners_[index]) {
      listeners_[index] = std::make_shared<per_listener>();
      listeners_[index]->tokens = cfg.max_connection_rate;  // a full bucket: a burst of one second's worth
    }
    l = listeners_[index];
  }
  l->max_connections.store(cfg.max_connections, std::memory_order_relaxed);
  std::lock_guard lock(l->rate_mu);
  l->max_rate.store(cfg.max_connection_rate, std::memory_order_relaxed);
  l->tokens = std::min<double>(l->tokens, cfg.max_connection_rate);
}

std::shared_ptr<admission::per_listener> admission::listener(std::size_t index) const {
  std::lock_guard lock(listeners_mu_);
  return index < listeners_.size() ? listeners_[index] : nullptr;
}

admission::verdict admission::admit(std::size_t listener_index, std::string_view client_id, std::int64_t now_ms) {
  if (flapping(client_id, now_ms)) return verdict::banned;
  const auto l = listener(listener_index);
  if (l != nullptr && l->max_rate != 0 && !take_rate_token(*l, now_ms)) return verdict::rate_exceeded;
  if (connections_.fetch_add(1, std::memory_order_relaxed) >= max_connections_.load(std::memory_order_relaxed)) {
    connections_.fetch_sub(1, std::memory_order_relaxed);
    return verdict::too_many_connections;
  }
  if (l != nullptr) {
    const auto before = l->connections.fetch_add(1, std::memory_order_relaxed);
    const auto most = l->max_connections.load(std::memory_order_relaxed);
    if (most != 0 && before >= most) {
      l->connections.fetch_sub(1, std::memory_order_relaxed);
      connections_.fetch_sub(1, std::memory_order_relaxed);
      return verdict::too_many_connections;
    }
  }
  return verdict::admitted;
}

void admission::released(std::size_t listener_index) {
  connections_.fetch_sub(1, std::memory_order_relaxed);
  if (const auto l = listener(listener_index)) l->connections.fetch_sub(1, std::memory_order_relaxed);
}

bool admission::take_rate_token(per_listener& l, std::int64_t now_ms) {
  std::lock_guard lock(l.rate_mu);
  const double rate = l.max_rate.load(std::memory_order_relaxed);
  if (l.refilled_ms != 0 && now_ms > l.refilled_ms) {
    l.tokens = std::min(rate, l.tokens + static_cast<double>(now_ms - l.refilled_ms) * rate / 1000.0);
  }
  l.refilled_ms = std::max(l.refilled_ms, now_ms);
  if (l.tokens < 1.0) return false;
  l.tokens -= 1.0;
  return true;
}

bool admission::flapping(std::string_view client_id, std::int64_t now_ms) {
  if (client_id.empty()) return false;
  std::lock_guard lock(flapping_mu_);
  const auto& f = flapping_limits_;
  if (f.max_connects == 0) return false;
  const std::int64_t window_ms = std::int64_t{f.window_s} * 1000;
  if (flapping_.size() >= flapping_sweep_threshold) {
    std::erase_if(flapping_, [&](const auto& entry) {
      return entry.second.banned_until_ms <= now_ms && now_ms - entry.second.window_start_ms > window_ms;
    });
  }
  auto& r = flapping_[std::string(client_id)];
  if (r.banned_until_ms > now_ms) return true;
  if (now_ms - r.window_start_ms > window_ms) {
    r.window_start_ms = now_ms;
    r.connects = 0;
  }
  if (++r.connects <= f.max_connects) return false;
  r.banned_until_ms = now_ms + std::int64_t{f.ban_s} * 1000;
  r.connects = 0;
  r.window_start_ms = r.banned_until_ms;
  return true;
}

}  // namespace wharf::gateway
