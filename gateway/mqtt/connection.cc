#include "gateway/mqtt/connection.h"

#include <algorithm>

#include "core/log.h"
#include "core/queue/tenant.h"
#include "core/topic.h"
#include "gateway/mqtt/publish_conversion.h"

namespace wharf::gateway {

using mqtt::packet_type;
using mqtt::protocol_version;
using mqtt::reason_code;

connection::connection(shard& home, std::shared_ptr<net::stream> s)
    : home_(home),
      broker_(home.owner()),
      stream_(std::move(s)),
      id_(home.add_connection(this)),
      machine_(*this, unix_now_ms()),
      window_(home.limits().max_inflight, home.limits().max_queued_messages, home.limits().max_queued_bytes) {}

connection::~connection() {
  if (admitted_listener_) home_.admission_control().released(*admitted_listener_);
  home_.remove_connection(id_);
}

const mqtt::connection_limits& connection::limits() const { return home_.protocol_limits(); }

void connection::on_data(std::span<const std::uint8_t> bytes) {
  home_.counters().bytes_received.fetch_add(bytes.size(), std::memory_order_relaxed);
  machine_.receive(bytes, unix_now_ms());
}

void connection::on_closed(std::error_code ec) {
  // A close we began that its time bounds cut short: the peer did not read what was sent
  // (listener_options close_timeout; a drain cut by close_drain is counted by the stream,
  // tcp_drains_cut, as the connection is gone by then).
  if (machine_.current_phase() == mqtt::connection_machine::phase::closed && ec == std::errc::timed_out)
    home_.counters().closes_cut.fetch_add(1, std::memory_order_relaxed);
  machine_.stream_closed();
  if (session_live()) end_session(/*publish_will=*/true, std::nullopt);
}

void connection::write(std::vector<std::uint8_t> bytes) {
  home_.counters().bytes_sent.fetch_add(bytes.size(), std::memory_order_relaxed);
  stream_->write(std::move(bytes));
}

void connection::write_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes) {
  home_.counters().bytes_sent.fetch_add(bytes->size(), std::memory_order_relaxed);
  stream_->write_shared(std::move(bytes));
}

void connection::closing(const mqtt::close_cause& cause) {
  if (cause.protocol_error) home_.counters().protocol_errors.fetch_add(1, std::memory_order_relaxed);
  if (cause.reason) {
    log::mqtt().debug("client '{}' ({}): {} ({})", client_id_, stream_->peer().remote_address,
                      mqtt::to_string(*cause.reason), cause.why);
  }
  if (session_live()) end_session(cause.publish_will, cause.reason);
  stream_->close();
}

void connection::rate_limited() { home_.counters().rate_limited.fetch_add(1, std::memory_order_relaxed); }

void connection::connect(mqtt::connect_request request) {
  clean_start_ = request.clean_start;
  if (request.client_id.empty()) {
    static thread_local std::uint64_t counter = 0;
    client_id_ = fmt::format("wharf-{:x}-{:x}-{:x}", unix_now_ms(), home_.index(), ++counter);
    assigned_client_id_ = true;
  } else {
    client_id_ = std::move(request.client_id);
  }
  window_.set_inflight_max(std::min<std::size_t>(machine_.client_receive_maximum(), home_.limits().max_inflight));
  if (request.will) {
    auto& w = *request.will;
    // Its expiry stays relative (from 0) until it is published (shard::publish_will).
    will_ = std::make_unique<core::message>(
        message_from_publish(std::move(w.topic), std::move(w.payload), w.qos, w.retain, w.props, 0));
    will_->publisher_client_id = client_id_;
    will_delay_s_ = w.props.will_delay_interval.value_or(0);
  }
  if (!admitted_by_limits()) return;
  authenticate(std::move(request.username), std::move(request.password));
}

bool connection::may_publish(std::string_view topic) {
  if (allowed_to_publish(topic)) return true;
  home_.counters().acl_denied_publishes.fetch_add(1, std::memory_order_relaxed);
  return false;
}

namespace {

// The reason code a PUBACK/PUBREC gives for what the queue core answered a bridged copy.
reason_code publish_outcome(core::queue::code c) {
  switch (c) {
    case core::queue::code::ok: return reason_code::success;
    case core::queue::code::queue_full: return reason_code::quota_exceeded;
    case core::queue::code::message_too_large:
    case core::queue::code::invalid_parameter: return reason_code::implementation_specific_error;
    default: return reason_code::unspecified_error;
  }
}

}  // namespace

mqtt::publish_commits connection::publish(mqtt::publish_packet& p, mqtt::ack_ticket ticket) {
  const auto qos = static_cast<std::uint8_t>(p.qos);
  home_.counters().messages_received[protocol_index(static_cast<std::uint8_t>(machine_.version()))][qos].fetch_add(
      1, std::memory_order_relaxed);
  const auto now = unix_now_ms();
  auto m = std::make_shared<core::message>(message_from_publish(
      in_tenant_ ? std::string(mount()) + p.topic : std::move(p.topic), std::move(p.payload), p.qos, p.retain, p.props,
      now));
  m->publish_unix_ms = now;
  m->publisher_client_id = client_id_;

  durable_ops ops;
  if (m->retain) {
    // [MQTT-3.3.1-5..7] store, replace, or (empty payload) delete the retained message.
    if (!home_.retained().set(*m, home_.batch()))
      home_.counters().retained_rejected.fetch_add(1, std::memory_order_relaxed);
    else
      ops.added = true;
  }
  home_.route(m, ops);
  home_.bridge(*m, ops);
  if (qos == 0) {
    // Nobody to answer: a refused copy is only counted.
    if (!ops.core_commands.empty()) {
      home_.submit_to_core(std::move(ops.core_commands), trace_origin(), [&counters = home_.counters()](core::queue::code worst) {
        if (worst != core::queue::code::ok) counters.bridge_refused.fetch_add(1, std::memory_order_relaxed);
      });
    }
    return {};
  }
  mqtt::publish_commits waits;
  if (qos == 2 && machine_.session_expiry_s() > 0) {
    if (ops.core_commands.empty()) {
      session::put_inbound_qos2(home_.batch(), client_id_, p.packet_id);
      ops.added = true;
    } else {
      // Stored only once the core holds its copies: a stored id makes a resend after a
      // reconnect count as a duplicate, so it must not exist for a copy the core lacks.
      waits.then_store_qos2 = true;
    }
  }
  waits.commits = commit_tickets(ops, ticket);
  return waits;
}

std::uint8_t connection::commit_tickets(durable_ops& ops, mqtt::ack_ticket ticket) {
  std::uint8_t commits = 0;
  if (ops.added) {
    ++commits;
    home_.run_after_commit([&home = home_, id = id_, ticket] {
      if (auto* c = home.find_connection(id)) c->machine_.commit_done(ticket, reason_code::success);
    });
  }
  if (!ops.core_commands.empty()) {
    ++commits;
    home_.submit_to_core(std::move(ops.core_commands), trace_origin(),
                         [&home = home_, &counters = home_.counters(), id = id_, ticket](core::queue::code worst) {
                           if (worst != core::queue::code::ok)
                             counters.bridge_refused.fetch_add(1, std::memory_order_relaxed);
                           if (auto* c = home.find_connection(id)) c->machine_.commit_done(ticket, publish_outcome(worst));
                         });
  }
  return commits;
}

void connection::store_inbound_qos2(std::uint16_t packet_id, mqtt::ack_ticket ticket) {
  durable_ops ops;
  session::put_inbound_qos2(home_.batch(), client_id_, packet_id);
  ops.added = true;
  (void)commit_tickets(ops, ticket);
}

void connection::forget_inbound_qos2(std::uint16_t packet_id) {
  if (machine_.session_expiry_s() > 0) session::erase_inbound_qos2(home_.batch(), client_id_, packet_id);
}

void connection::delivery_completed(std::uint16_t packet_id) {
  std::uint64_t stored_seq = 0;
  if (window_.complete(packet_id, &stored_seq) && stored_seq != 0)
    session::erase_delivery(home_.batch(), client_id_, stored_seq);
  pump();
}

mqtt::change_commits connection::subscribe(const mqtt::subscribe_packet& p, std::uint32_t subscription_id,
                                           std::vector<reason_code>& reasons, mqtt::ack_ticket ticket) {
  const auto& limits = home_.limits();
  const bool v5 = machine_.version() == protocol_version::v5;
  std::vector<session::delivery> retained;
  bool stored = false;
  const auto now = unix_now_ms();
  for (std::size_t i = 0; i < p.subscriptions.size(); ++i) {
    const auto& req = p.subscriptions[i];
    if (reasons[i] != reason_code::success) continue;  // refused by the protocol's rules
    auto verdict = home_.access()->check_subscription(identity(), req.filter);
    if (hook_verdict_on('s', req.filter) == false) verdict.granted = false;
    // A default-tenant client never subscribes into the tenants' tree.
    if (!in_tenant_ && core::queue::names_tenant_tree(req.filter)) verdict.granted = false;
    if (!verdict.granted) {
      home_.counters().acl_denied_subscriptions.fetch_add(1, std::memory_order_relaxed);
      // 3.1.1's SUBACK has one failure code, 0x80.
      reasons[i] = v5 ? static_cast<reason_code>(home_.access()->subscribe_denied_reason()) : reason_code::unspecified_error;
      continue;
    }
    // Held under the tenant's mount: routes, the session and the store see only that.
    const std::string filter = core::queue::mount_filter(mount(), req.filter);
    auto existing = std::find_if(subscriptions_.begin(), subscriptions_.end(), [&](auto& s) { return s.filter == filter; });
    const bool is_new = existing == subscriptions_.end();
    if (is_new && subscriptions_.size() >= limits.max_subscriptions_per_client) {
      reasons[i] = v5 ? reason_code::quota_exceeded : reason_code::unspecified_error;
      continue;
    }
    session::stored_subscription sub;
    sub.filter = filter;
    sub.max_qos = static_cast<std::uint8_t>(req.options.max_qos);
    sub.no_local = req.options.no_local;
    sub.retain_as_published = req.options.retain_as_published;
    sub.retain_handling = req.options.retain_handling;
    sub.subscription_id = subscription_id;
    if (is_new)
      subscriptions_.push_back(sub);
    else
      *existing = sub;
    {
      std::lock_guard lock(entry_->mu);
      auto& subs = entry_->subscriptions;
      auto it = std::find_if(subs.begin(), subs.end(), [&](auto& s) { return s.filter == sub.filter; });
      if (it == subs.end())
        subs.push_back(sub);
      else
        *it = sub;
    }
    home_.add_route(entry_, sub, verdict.withheld);
    if (machine_.session_expiry_s() > 0) {
      session::put_subscription(home_.batch(), client_id_, sub);
      stored = true;
    }
    reasons[i] = static_cast<reason_code>(sub.max_qos);

    // Retained messages [MQTT-3.3.1-9..11]; not for shared subscriptions (MQTT 5.0 4.8.2).
    if (!core::parse_shared_filter(req.filter) && (sub.retain_handling == 0 || (sub.retain_handling == 1 && is_new))) {
      home_.retained().match(filter, now, [&](const core::message& rm) {
        if (verdict.withheld && verdict.withheld->withholds(std::string_view(rm.topic).substr(mount().size()))) {
          home_.counters().acl_withheld.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        session::delivery d;
        d.msg = std::make_shared<const core::message>(rm);
        d.qos = std::min(rm.qos, sub.max_qos);
        d.retain = true;
        if (subscription_id != 0) d.subscription_ids.push_back(subscription_id);
        retained.push_back(std::move(d));
      });
    }
  }
  home_.send_outboxes();
  // A persistent session's subscriptions are durable before the SUBACK says they hold.
  durable_ops ops;
  ops.added = stored;
  mqtt::change_commits waits{.commits = commit_tickets(ops, ticket), .tell_when_sent = !retained.empty()};
  if (waits.tell_when_sent) retained_after_suback_.emplace_back(ticket, std::move(retained));
  return waits;
}

void connection::acknowledgement_sent(mqtt::ack_ticket ticket) {
  auto it = std::find_if(retained_after_suback_.begin(), retained_after_suback_.end(),
                         [ticket](const auto& waiting) { return waiting.first == ticket; });
  if (it == retained_after_suback_.end()) return;
  auto retained = std::move(it->second);
  retained_after_suback_.erase(it);
  for (auto& d : retained) enqueue(std::move(d));
}

mqtt::change_commits connection::unsubscribe(const mqtt::unsubscribe_packet& p, std::vector<reason_code>& reasons,
                                             mqtt::ack_ticket ticket) {
  bool erased = false;
  for (const auto& sent : p.filters) {
    const std::string filter = core::queue::mount_filter(mount(), sent);
    auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(), [&](auto& s) { return s.filter == filter; });
    if (it == subscriptions_.end()) {
      reasons.push_back(reason_code::no_subscription_existed);
      continue;
    }
    subscriptions_.erase(it);
    {
      std::lock_guard lock(entry_->mu);
      std::erase_if(entry_->subscriptions, [&](auto& s) { return s.filter == filter; });
    }
    home_.remove_route(entry_.get(), filter);
    if (machine_.session_expiry_s() > 0) {
      session::erase_subscription(home_.batch(), client_id_, filter);
      erased = true;
    }
    reasons.push_back(reason_code::success);
  }
  home_.send_outboxes();
  durable_ops ops;
  ops.added = erased;
  return {.commits = commit_tickets(ops, ticket), .tell_when_sent = false};
}

}  // namespace wharf::gateway
