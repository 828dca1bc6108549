#include "gateway/mqtt/shard.h"

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <algorithm>

#include "core/log.h"
#include "core/queue/tenant.h"
#include "core/topic.h"
#include "core/queue/service.h"
#include "gateway/mqtt/connection.h"
#include "gateway/mqtt/publish_conversion.h"

namespace wharf::gateway {

shard::shard(shared_parts parts, boost::asio::io_context& ioc, int index, std::size_t shard_count)
    : parts_(parts),
      ioc_(ioc),
      index_(index),
      delivery_outbox_(shard_count),
      route_outbox_(shard_count),
      timer_(ioc) {}

namespace {

// One session a message goes to, after merging its overlapping subscriptions:
// the highest granted QoS and every matching subscription identifier ([MQTT-3.3.4-3..5]).
struct target {
  const std::shared_ptr<session::session_entry>* entry;
  std::uint8_t qos;
  bool retain_as_published;
  std::vector<std::uint32_t> subscription_ids;
};

}  // namespace

void shard::route(const std::shared_ptr<const core::message>& m, durable_ops& ops) {
  std::vector<target> targets;
  // Shared groups matched by this message: (filter + group) -> members.
  std::vector<std::pair<std::string, std::vector<route_value*>>> groups;

  routes_.match(m->topic, [&](std::string_view filter, const route_key& key, route_value& value) {
    if (!sends(value, m->topic)) return;
    if (!key.group.empty()) {
      std::string group_id;
      group_id.reserve(key.group.size() + filter.size() + 1);
      group_id.append(key.group).push_back('/');
      group_id.append(filter);
      auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == group_id; });
      if (it == groups.end()) it = groups.insert(groups.end(), {std::move(group_id), {}});
      it->second.push_back(&value);
      return;
    }
    // [MQTT-3.8.3-3] No Local: not to the connection that published it.
    if (value.sub.no_local && key.session->client_id == m->publisher_client_id) return;
    const auto granted = std::min<std::uint8_t>(m->qos, value.sub.max_qos);
    auto it = std::find_if(targets.begin(), targets.end(), [&](auto& t) { return t.entry->get() == key.session; });
    if (it == targets.end()) {
      targets.push_back({&value.entry, granted, value.sub.retain_as_published, {}});
      it = targets.end() - 1;
    } else {
      it->qos = std::max(it->qos, granted);
      it->retain_as_published = it->retain_as_published || value.sub.retain_as_published;
    }
    if (value.sub.subscription_id != 0) it->subscription_ids.push_back(value.sub.subscription_id);
  });

  for (auto& [group_id, members] : groups) {
    route_value* chosen = pick_member(group_id, members);
    session::delivery d;
    d.msg = m;
    d.qos = std::min<std::uint8_t>(m->qos, chosen->sub.max_qos);
    d.retain = false;  // shared deliveries are live messages, never "retained"
    if (chosen->sub.subscription_id != 0) d.subscription_ids.push_back(chosen->sub.subscription_id);
    d.shared_group = group_id;
    deliver(chosen->entry, std::move(d), ops);
  }

  for (auto& t : targets) {
    session::delivery d;
    d.msg = m;
    d.qos = t.qos;
    // [MQTT-3.3.1-12] Retain As Published keeps the flag; otherwise a forwarded message has it 0.
    d.retain = t.retain_as_published && m->retain;
    d.subscription_ids = std::move(t.subscription_ids);
    deliver(*t.entry, std::move(d), ops);
  }
}

route_value* shard::pick_member(const std::string& group_id, const std::vector<route_value*>& members) {
  auto& cursor = share_cursor_[group_id];
  route_value* chosen = nullptr;
  for (std::size_t i = 0; i < members.size() && !chosen; ++i) {
    route_value* candidate = members[(cursor + i) % members.size()];
    std::lock_guard lock(candidate->entry->mu);
    if (candidate->entry->owner_shard >= 0) chosen = candidate;
  }
  if (!chosen) chosen = members[cursor % members.size()];
  ++cursor;
  return chosen;
}

void shard::redispatch_shared(session::session_entry* leaving, session::delivery d) {
  std::vector<route_value*> members;
  routes_.match(d.msg->topic, [&](std::string_view filter, const route_key& key, route_value& value) {
    if (key.session == leaving || key.group.empty() || !sends(value, d.msg->topic)) return;
    if (d.shared_group.size() == key.group.size() + 1 + filter.size() && d.shared_group.starts_with(key.group) &&
        d.shared_group[key.group.size()] == '/' && std::string_view(d.shared_group).substr(key.group.size() + 1) == filter)
      members.push_back(&value);
  });
  if (members.empty()) return;
  route_value* chosen = pick_member(d.shared_group, members);
  d.packet_id = 0;
  d.pubrel_sent = false;
  d.stored_seq = 0;
  d.qos = std::min<std::uint8_t>(d.msg->qos, chosen->sub.max_qos);
  d.subscription_ids.clear();
  if (chosen->sub.subscription_id != 0) d.subscription_ids.push_back(chosen->sub.subscription_id);
  durable_ops ops;
  deliver(chosen->entry, std::move(d), ops);
}

void shard::deliver(const std::shared_ptr<session::session_entry>& entry, session::delivery d, durable_ops& ops) {
  auto& counters = parts_.counters;
  int owner;
  {
    std::lock_guard lock(entry->mu);
    if (entry->ended) return;
    owner = entry->owner_shard;
    if (owner < 0) {
      // Offline: QoS 1/2 go to the session's stored queue, durable before the publisher's ack.
      if (!entry->persistent) return;
      if (d.qos == 0) {
        counters.dropped_offline_qos0.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      const auto bytes = d.msg->payload.size() + d.msg->topic.size();
      const auto& bounds = limits();
      if (entry->queued_count >= bounds.max_queued_messages || entry->queued_bytes + bytes > bounds.max_queued_bytes) {
        if (counters.dropped_queue_full.fetch_add(1, std::memory_order_relaxed) % 1000 == 0)
          log::mqtt().warn("session '{}': offline queue full ({} messages, {} bytes); dropping message on '{}' (counted)",
                       entry->client_id, entry->queued_count, entry->queued_bytes, d.msg->topic);
        return;
      }
      const auto seq = entry->next_seq++;
      ++entry->queued_count;
      entry->queued_bytes += bytes;
      ++entry->writes_in_flight;
      d.packet_id = 0;
      session::put_delivery(batch(), entry->client_id, seq, session::to_stored(d));
      offline_writes_.push_back(entry);
      ops.added = true;
      return;
    }
  }
  if (owner == index_) {
    // A session owned here is attached here for as long as it is owned (same thread).
    if (auto* c = live(entry.get())) c->enqueue(std::move(d));
    return;
  }
  delivery_outbox_[owner].emplace_back(entry, std::move(d));
  schedule_flush();
}

void shard::receive_deliveries(std::vector<remote_delivery>&& batch) {
  durable_ops ops;
  for (auto& [entry, d] : batch) {
    if (auto* c = live(entry.get())) {
      c->enqueue(std::move(d));
      continue;
    }
    // It moved or went offline after the sender looked: route again from here.
    deliver(entry, std::move(d), ops);
  }
}

route_change make_route_change(const std::shared_ptr<session::session_entry>& entry,
                               const session::stored_subscription& sub,
                               std::shared_ptr<const auth::withheld_topics> withheld) {
  const auto shared = core::parse_shared_filter(sub.filter);
  route_change change;
  change.add = true;
  change.filter = std::string(shared ? shared->filter : std::string_view(sub.filter));
  change.key = route_key{entry.get(), shared ? std::string(shared->group) : std::string()};
  change.value = route_value{entry, sub, std::move(withheld)};
  return change;
}

std::shared_ptr<const auth::withheld_topics> withheld_from(const auth::access_policy& policy,
                                                           const session::session_entry& entry,
                                                           std::string_view filter) {
  std::optional<std::string> username;
  std::vector<config::acl_rule> own_rules;
  {
    std::lock_guard lock(entry.mu);
    username = entry.username;
    if (entry.rules) own_rules = *entry.rules;
  }
  // The ACL speaks of what the client sent: a tenant's client id and filter without its mount.
  const auto mount = core::queue::mqtt_mount_of(entry.client_id);
  const std::string sent = core::queue::unmount_filter(mount, filter);
  return policy
      .check_subscription({.client_id = std::string_view(entry.client_id).substr(mount.size()),
                           .username = username,
                           .own_rules = own_rules},
                          sent)
      .withheld;
}

void shard::add_route(const std::shared_ptr<session::session_entry>& entry, const session::stored_subscription& sub,
                      std::shared_ptr<const auth::withheld_topics> withheld) {
  change_route(make_route_change(entry, sub, std::move(withheld)));
}

void shard::recheck_routes() {
  routes_.for_each([&](const route_key&, route_value& value) {
    value.withheld = withheld_from(*access_, *value.entry, value.sub.filter);
  });
}

bool shard::sends(const route_value& value, std::string_view topic) {
  if (!value.withheld ||
      !value.withheld->withholds(topic.substr(core::queue::mqtt_mount_of(value.entry->client_id).size())))
    return true;
  parts_.counters.acl_withheld.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void shard::remove_route(session::session_entry* entry, std::string_view filter) {
  const auto shared = core::parse_shared_filter(filter);
  route_change change;
  change.add = false;
  change.filter = std::string(shared ? shared->filter : filter);
  change.key = route_key{entry, shared ? std::string(shared->group) : std::string()};
  change_route(std::move(change));
}

void shard::change_route(route_change change) {
  for (std::size_t i = 0; i < route_outbox_.size(); ++i)
    if (static_cast<int>(i) != index_) route_outbox_[i].push_back(change);
  apply_route(std::move(change));
  schedule_flush();
}

void shard::apply_route(route_change&& change) {
  if (change.add)
    routes_.insert(change.filter, change.key, std::move(change.value));
  else
    routes_.erase(change.filter, change.key);
}

void shard::bridge(const core::message& m, durable_ops& ops) {
  if (tap_) tap_->commands_for(m, ops.core_commands);
}

void shard::publish_will(core::message will, const std::string& client_id, std::int64_t now_ms) {
  if (will.expiry_unix_ms != 0) will.expiry_unix_ms += now_ms;
  will.publish_unix_ms = now_ms;
  auto& counters = parts_.counters;
  counters.wills_published.fetch_add(1, std::memory_order_relaxed);
  auto m = std::make_shared<const core::message>(std::move(will));
  durable_ops ops;
  if (m->retain && !parts_.retained.set(*m, batch()))
    counters.retained_rejected.fetch_add(1, std::memory_order_relaxed);
  route(m, ops);
  bridge(*m, ops);
  if (!ops.core_commands.empty()) {
    submit_to_core(std::move(ops.core_commands), fmt::format("will of mqtt client {}", client_id),
                   [&counters](core::queue::code worst) {
                     if (worst != core::queue::code::ok)
                       counters.bridge_refused.fetch_add(1, std::memory_order_relaxed);
                   });
  }
  device_event e;
  e.what = device_event::kind::will_published;
  e.client_id = client_id;
  e.time_unix_ms = now_ms;
  e.will = m.get();
  record_event(e);
}

void shard::record_event(const device_event& e) {
  if (!tap_) return;
  auto command = tap_->event_command(e);
  if (!command) return;
  std::vector<core::queue::command_body> commands;
  commands.push_back(std::move(*command));
  submit_to_core(std::move(commands), "device events", [&counters = parts_.counters, kind = e.what](core::queue::code worst) {
    if (worst == core::queue::code::ok) return;
    if (counters.bridge_events_failed.fetch_add(1, std::memory_order_relaxed) % 1000 == 0)
      log::mqtt().warn("bridge: the events queue refused a device event (kind {}, code {}); counted",
                   static_cast<int>(kind), static_cast<int>(worst));
  });
}

void shard::submit_to_core(std::vector<core::queue::command_body> commands, std::string_view origin,
                           std::function<void(core::queue::code)> done) {
  core_waiters_.push_back({commands.size(), std::move(done)});
  for (auto& c : commands) {
    core_outbox_.push_back(std::move(c));
    core_origins_.emplace_back(origin);
  }
  schedule_flush();
}

void shard::send_core_outbox() {
  if (core_outbox_.empty()) return;
  auto waiters = std::move(core_waiters_);
  core_waiters_.clear();
  auto commands = std::move(core_outbox_);
  core_outbox_.clear();
  auto origins = std::move(core_origins_);
  core_origins_.clear();
  queue_core_->submit_all(
      std::move(commands),
      [this, waiters = std::move(waiters)](std::vector<core::queue::result> results) mutable {
    // The queue core's thread: back to ours with one post for the whole turn.
    boost::asio::post(ioc_, [waiters = std::move(waiters), results = std::move(results)] {
      std::size_t next = 0;
      for (const auto& w : waiters) {
        auto worst = core::queue::code::ok;
        for (std::size_t i = 0; i < w.commands; ++i, ++next)
          if (!results[next].outcome.ok()) worst = results[next].outcome.value;
        w.done(worst);
      }
    });
      },
      std::move(origins));
}

void shard::run_after_commit(std::function<void()> fn, std::function<void()> on_failure) {
  after_commit_.push_back(std::move(fn));
  if (on_failure) after_failed_commit_.push_back(std::move(on_failure));
  schedule_flush();
}

void shard::note_offline_write(const std::shared_ptr<session::session_entry>& entry) {
  offline_writes_.push_back(entry);
  schedule_flush();
}

void shard::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  boost::asio::post(ioc_, [this] { flush(); });
}

void shard::send_outboxes() {
  const auto& shards = parts_.shards;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    auto routes = std::move(route_outbox_[i]);
    auto deliveries = std::move(delivery_outbox_[i]);
    route_outbox_[i].clear();
    delivery_outbox_[i].clear();
    if (routes.empty() && deliveries.empty()) continue;
    shard* target = shards[i].get();
    // Route changes first, so a delivery never overtakes the subscription it needs.
    boost::asio::post(target->ioc_, [target, routes = std::move(routes), deliveries = std::move(deliveries)]() mutable {
      for (auto& change : routes) target->apply_route(std::move(change));
      if (!deliveries.empty()) target->receive_deliveries(std::move(deliveries));
    });
  }
}

void shard::flush() {
  flush_scheduled_ = false;
  send_outboxes();
  send_core_outbox();
  if (batch_.empty() && after_commit_.empty()) return;
  auto callbacks = std::move(after_commit_);
  after_commit_.clear();
  auto failure_callbacks = std::move(after_failed_commit_);
  after_failed_commit_.clear();
  auto offline = std::move(offline_writes_);
  offline_writes_.clear();
  core::write_batch batch = std::move(batch_);
  batch_ = core::write_batch{};
  parts_.db.write(std::move(batch), [this, callbacks = std::move(callbacks),
                                       failure_callbacks = std::move(failure_callbacks),
                                       offline = std::move(offline)](std::error_code ec) mutable {
    // Writer thread: release the sessions' queue barrier here, then ack on our thread.
    for (auto& entry : offline) {
      std::lock_guard lock(entry->mu);
      --entry->writes_in_flight;
    }
    if (ec) {
      parts_.counters.storage_errors.fetch_add(1, std::memory_order_relaxed);
      log::mqtt().error("storage write failed: {}; acknowledgements withheld", ec.message());
      if (!failure_callbacks.empty()) {
        boost::asio::post(ioc_, [failure_callbacks = std::move(failure_callbacks)] {
          for (auto& fn : failure_callbacks) fn();
        });
      }
      return;
    }
    if (callbacks.empty()) return;
    boost::asio::post(ioc_, [callbacks = std::move(callbacks)] {
      for (auto& fn : callbacks) fn();
    });
  });
}

void shard::detach(session::session_entry* entry, connection* c) {
  auto it = live_.find(entry);
  if (it != live_.end() && it->second == c) live_.erase(it);
}

connection* shard::live(session::session_entry* entry) const {
  auto it = live_.find(entry);
  return it == live_.end() ? nullptr : it->second;
}

std::uint64_t shard::add_connection(connection* c) {
  const auto id = next_connection_id_++;
  connections_.emplace(id, c);
  return id;
}

void shard::remove_connection(std::uint64_t id) { connections_.erase(id); }

connection* shard::find_connection(std::uint64_t id) const {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second;
}

void shard::for_each_connection(const std::function<void(connection&)>& fn) {
  std::vector<connection*> all;
  all.reserve(connections_.size());
  for (auto& [id, c] : connections_) all.push_back(c);
  for (auto* c : all) fn(*c);
}

void shard::post_to(int target, std::function<void()> fn) {
  boost::asio::post(parts_.shards[target]->ioc_, std::move(fn));
}

void shard::end_on_owner(int owner_shard, std::shared_ptr<session::session_entry> entry,
                         std::uint64_t owner_generation, std::function<void()> then) {
  post_to(owner_shard, [owner = parts_.shards[owner_shard].get(), entry = std::move(entry), owner_generation,
                        back = index_, then = std::move(then)]() mutable {
    if (auto* old = owner->live(entry.get()); old && old->generation() == owner_generation)
      old->kick(mqtt::reason_code::session_taken_over);
    // The old connection's disconnected event reaches the core before the new one's
    // connected event can (the core runs posted work in order).
    owner->send_core_outbox();
    owner->post_to(back, std::move(then));
  });
}

void shard::set_access_policy(std::shared_ptr<const auth::access_policy> policy, bool acl_changed) {
  access_ = std::move(policy);
  // Every route's withheld topics compiled again: one pass over this shard's routes.
  if (acl_changed) recheck_routes();
}

const mqtt::shared_publish& shard::shared_publish_of(const session::delivery& d, std::string_view topic,
                                                    mqtt::protocol_version version, std::int64_t now_ms) {
  if (encoded_message_ != d.msg) {
    encoded_message_ = d.msg;
    encodings_.clear();
  }
  const bool v5 = version == mqtt::protocol_version::v5;
  const bool with_packet_id = d.qos > 0;
  const auto expiry = v5 ? expiry_left_s(*d.msg, now_ms) : std::nullopt;
  for (const auto& e : encodings_) {
    if (e.v5 == v5 && e.with_packet_id == with_packet_id && e.topic_size == topic.size() && e.expiry_left_s == expiry)
      return e.encoded;
  }
  session::delivery plain;
  plain.msg = d.msg;
  plain.qos = with_packet_id ? 1 : 0;
  auto p = publish_of_delivery(plain, false, topic, version, now_ms);
  if (v5) p.props.message_expiry_interval = expiry;
  // Few kinds of subscriber get one message; a message with more starts over.
  constexpr std::size_t max_encodings = 8;
  if (encodings_.size() == max_encodings) encodings_.clear();
  encodings_.push_back({v5, with_packet_id, topic.size(), expiry, mqtt::encode_shared(p, version)});
  return encodings_.back().encoded;
}

void shard::set_limits(std::shared_ptr<const config::mqtt_config> limits) {
  limits_ = std::move(limits);
  protocol_limits_ = mqtt::connection_limits{.max_packet_size = limits_->max_packet_size,
                                             .receive_maximum = limits_->receive_maximum,
                                             .topic_alias_maximum = limits_->topic_alias_maximum,
                                             .max_keep_alive_s = limits_->max_keep_alive_s,
                                             .max_session_expiry_s = limits_->max_session_expiry_s,
                                             .max_client_id_length = limits_->max_client_id_length,
                                             .connect_timeout_ms = limits_->connect_timeout_ms,
                                             .max_publish_rate = limits_->max_publish_rate,
                                             .max_inbound_bytes_rate = limits_->max_inbound_bytes_rate};
}

void shard::start_timer() {
  timer_.expires_after(std::chrono::milliseconds(250));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    tick();
    start_timer();
  });
}

void shard::tick() {
  const auto now = unix_now_ms();
  for_each_connection([now](connection& c) { c.tick(now); });
  if (index_ == 0) {
    parts_.owner.run_housekeeping(*this, now);
  }
}

}  // namespace wharf::gateway
