// connection: session lifecycle (begin, takeover, restore, end, wills) and output.
#include <boost/asio/steady_timer.hpp>

#include "core/log.h"
#include "core/queue/tenant.h"
#include "gateway/mqtt/publish_conversion.h"
#include "gateway/mqtt/connection.h"

namespace wharf::gateway {

using mqtt::packet_type;
using mqtt::protocol_version;
using mqtt::reason_code;

void connection::begin_session() {
  entry_ = home_.sessions().get_or_create(client_id_);
  std::vector<session::stored_subscription> discarded;
  bool present = false;
  int owner = -1;
  std::uint64_t owner_generation = 0;
  {
    std::lock_guard lock(entry_->mu);
    owner = entry_->owner_shard;
    owner_generation = entry_->generation;
    if (owner < 0) take_session_locked(discarded, present);
  }
  if (owner >= 0) {
    // Live elsewhere: ask its owner to let go; we come back here when it has.
    request_takeover(owner, owner_generation);
    return;
  }
  finish_begin_session(std::move(discarded), present);
}

// REQUIRES: entry_->mu held and the session offline.
void connection::take_session_locked(std::vector<session::stored_subscription>& discarded, bool& present) {
  generation_ = ++entry_->generation;
  entry_->owner_shard = home_.index();
  entry_->ended = false;
  // [MQTT-3.1.3-9] A reconnect before the will delay ends cancels the delayed will.
  entry_->pending_will.reset();
  present = entry_->persistent && !clean_start_;
  if (!present) {
    // Clean start, or no stored state: the old session, if any, is discarded [MQTT-3.1.2-4].
    discarded = std::move(entry_->subscriptions);
    entry_->subscriptions.clear();
    entry_->queued_count = 0;
    entry_->queued_bytes = 0;
  } else {
    subscriptions_ = entry_->subscriptions;
  }
  // Another user (or the same with other rules of its own) resuming the session: the ACL
  // withholds from its subscriptions what it withholds from this one, once
  // finish_begin_session has routed them again.
  const bool same_rules = entry_->rules ? *entry_->rules == own_rules_ : own_rules_.empty();
  identity_changed_ = present && (entry_->username != username_ || !same_rules);
  entry_->username = username_;
  entry_->rules = own_rules_.empty() ? nullptr : std::make_unique<const std::vector<config::acl_rule>>(own_rules_);
  if (!present && entry_->persistent) session::erase_session(home_.batch(), client_id_);
  const auto expiry_s = machine_.session_expiry_s();
  entry_->persistent = expiry_s > 0;
  entry_->expiry_interval_s = expiry_s;
  entry_->expires_at_ms = 0;
  entry_->protocol_version = static_cast<std::uint8_t>(machine_.version());
}

void connection::finish_begin_session(std::vector<session::stored_subscription> discarded, bool present) {
  for (auto& sub : discarded) home_.remove_route(entry_.get(), sub.filter);
  if (std::exchange(identity_changed_, false)) {
    for (const auto& sub : subscriptions_)
      home_.add_route(entry_, sub,
                      home_.access()
                          ->check_subscription(identity(), core::queue::unmount_filter(mount(), sub.filter))
                          .withheld);
  }
  home_.attach(entry_.get(), this);
  attached_ = true;
  home_.counters().clients_connected.fetch_add(1, std::memory_order_relaxed);
  home_.counters().clients_total.fetch_add(1, std::memory_order_relaxed);
  if (machine_.session_expiry_s() > 0) {
    session::session_record record;
    record.protocol_version = static_cast<std::uint8_t>(machine_.version());
    record.expiry_interval_s = machine_.session_expiry_s();
    record.username = username_;
    record.rules = own_rules_;
    session::put_session(home_.batch(), client_id_, record);
  }
  if (present) {
    restore_session();
  } else {
    finish_connect(false);
  }
}

void connection::request_takeover(int owner_shard, std::uint64_t owner_generation) {
  // [MQTT-3.1.4-3] The existing connection is closed (0x8E) before this one goes on.
  home_.end_on_owner(owner_shard, entry_, owner_generation, [&home = home_, id = id_] {
    // Still waiting (not closed meanwhile): its session begins now.
    if (auto* c = home.find_connection(id);
        c && !c->attached_ && c->machine_.current_phase() == mqtt::connection_machine::phase::connecting)
      c->begin_session();
  });
}

void connection::restore_session() {
  bool queue_settled;
  {
    std::lock_guard lock(entry_->mu);
    queue_settled = entry_->writes_in_flight == 0;
  }
  if (!queue_settled) {
    // Offline-queue writes racing with this reconnect are still being synced: read the
    // queue once they are durable, so none is missed or read twice.
    auto timer = std::make_shared<boost::asio::steady_timer>(home_.io(), std::chrono::milliseconds(1));
    timer->async_wait([timer, &sh = home_, id = id_](boost::system::error_code) {
      if (auto* c = sh.find_connection(id); c && c->machine_.current_phase() == mqtt::connection_machine::phase::connecting)
        c->restore_session();
    });
    return;
  }
  auto queue = session::load_queue(home_.storage(), client_id_);
  std::vector<session::delivery> restored;
  restored.reserve(queue.size());
  for (auto& [seq, stored] : queue) {
    auto d = session::from_stored(std::move(stored));
    d.stored_seq = seq;
    restored.push_back(std::move(d));
  }
  window_.restore(std::move(restored));
  for (auto id : session::load_inbound_qos2(home_.storage(), client_id_)) machine_.restore_inbound_qos2(id);
  {
    std::lock_guard lock(entry_->mu);
    entry_->queued_count = 0;
    entry_->queued_bytes = 0;
  }
  finish_connect(true);
}

void connection::finish_connect(bool session_present) {
  session_present_ = session_present;
  home_.send_outboxes();  // a discarded session's routes are gone before the client hears so
  machine_.accept_connect(session_present, assigned_client_id_ ? device_client_id() : std::string_view{});
  pump();

  device_event e;
  e.what = device_event::kind::connected;
  e.client_id = client_id_;
  e.time_unix_ms = unix_now_ms();
  e.remote_address = stream_->peer().remote_address;
  e.protocol_version = static_cast<std::uint8_t>(machine_.version());
  e.clean_start = clean_start_;
  e.session_present = session_present;
  e.session_expiry_s = machine_.session_expiry_s();
  e.keep_alive_s = machine_.keep_alive_s();
  home_.record_event(e);
  machine_.release();  // what the client sent after its CONNECT
}

void connection::end_session(bool publish_will, std::optional<reason_code> reason) {
  session_ended_ = true;
  home_.detach(entry_.get(), this);
  home_.counters().clients_connected.fetch_sub(1, std::memory_order_relaxed);
  const auto now = unix_now_ms();

  device_event e;
  e.what = device_event::kind::disconnected;
  e.client_id = client_id_;
  e.time_unix_ms = now;
  if (reason) e.reason_code = static_cast<std::uint8_t>(*reason);
  // The reason code's name, except where that reads oddly for an ending (0x00 "success").
  e.reason = !reason                           ? "connection lost"
             : *reason == reason_code::success ? "normal disconnection"
                                               : mqtt::to_string(*reason);
  home_.record_event(e);

  std::unique_ptr<core::message> will_now;
  const auto session_expiry_s = machine_.session_expiry_s();
  if (publish_will && will_) {
    if (will_delay_s_ == 0 || session_expiry_s == 0)
      will_now = std::move(will_);  // [MQTT-3.1.3-9]: no delay, or the session ends now
  }
  bool persist = false;
  std::vector<session::stored_subscription> unroute;
  // Taken before locking the entry: passing shared deliveries on locks other entries.
  auto held = take_held_deliveries();
  {
    std::lock_guard lock(entry_->mu);
    if (entry_->generation != generation_ || entry_->owner_shard != home_.index()) return;  // taken over already
    entry_->owner_shard = -1;
    if (session_expiry_s > 0) {
      persist = true;
      entry_->persistent = true;
      entry_->expiry_interval_s = session_expiry_s;
      entry_->expires_at_ms = session_expiry_s == 0xFFFFFFFF ? 0 : now + std::int64_t{session_expiry_s} * 1000;
      if (publish_will && will_ && !will_now) {
        entry_->pending_will = std::move(will_);
        entry_->will_due_ms = now + std::int64_t{std::min(will_delay_s_, session_expiry_s)} * 1000;
      }
      // What the session still holds goes back to its stored queue, in order, before any
      // message queued from now on (those get later sequence numbers).
      const auto base_seq = entry_->next_seq;
      auto& batch = home_.batch();
      batch.erase_range(session::keys::delivery(client_id_, 0), session::keys::delivery(client_id_, base_seq));
      entry_->queued_count = 0;
      entry_->queued_bytes = 0;
      for (auto& d : held) {
        if (d.qos == 0) continue;
        entry_->queued_bytes += d.msg->payload.size() + d.msg->topic.size();
        ++entry_->queued_count;
        session::put_delivery(batch, client_id_, entry_->next_seq++, session::to_stored(d));
      }
      ++entry_->writes_in_flight;
      home_.note_offline_write(entry_);
      session::session_record record;
      record.protocol_version = static_cast<std::uint8_t>(machine_.version());
      record.expiry_interval_s = session_expiry_s;
      record.username = username_;
      record.rules = own_rules_;
      record.disconnected_unix_ms = now;
      if (entry_->pending_will) {
        record.pending_will = *entry_->pending_will;
        record.will_due_unix_ms = entry_->will_due_ms;
      }
      session::put_session(batch, client_id_, record);
    } else {
      const bool had_stored = entry_->persistent;
      entry_->ended = true;
      entry_->persistent = false;
      unroute = std::move(entry_->subscriptions);
      entry_->subscriptions.clear();
      if (had_stored) session::erase_session(home_.batch(), client_id_);
    }
  }
  if (persist) {
    std::int64_t due = 0;
    {
      std::lock_guard lock(entry_->mu);
      due = entry_->pending_will ? entry_->will_due_ms : entry_->expires_at_ms;
    }
    if (due != 0) broker_.schedule_session_timer(due, entry_);
  } else {
    home_.sessions().erase(entry_);
    for (auto& sub : unroute) home_.remove_route(entry_.get(), sub.filter);
    // Messages held for a session that ends are dropped with it (shared-subscription ones
    // were passed to another member above).
  }
  if (will_now) home_.publish_will(std::move(*will_now), client_id_, now);
}

std::vector<session::delivery> connection::take_held_deliveries() {
  // [MQTT-4.8.2] A shared-subscription message the member did not acknowledge goes to
  // another member of the group rather than waiting for this one to come back.
  std::vector<session::delivery> kept;
  for (auto& d : window_.drain()) {
    if (d.shared_group.empty()) {
      kept.push_back(std::move(d));
    } else if (d.qos > 0) {
      if (d.stored_seq != 0) session::erase_delivery(home_.batch(), client_id_, d.stored_seq);
      home_.redispatch_shared(entry_.get(), std::move(d));
    }
  }
  return kept;
}

void connection::enqueue(session::delivery d) {
  if (machine_.current_phase() == mqtt::connection_machine::phase::connected && d.qos == 0 && window_.waiting() == 0) {
    send_delivery(d, false);
    return;
  }
  if (!window_.push(std::move(d))) {
    if (home_.counters().dropped_queue_full.fetch_add(1, std::memory_order_relaxed) % 1000 == 0)
      log::mqtt().warn("client '{}': session queue full ({} waiting); dropping message (counted)", client_id_,
                   window_.waiting());
    return;
  }
  pump();
}

void connection::pump() {
  if (machine_.current_phase() != mqtt::connection_machine::phase::connected) return;
  while (auto item = window_.next()) {
    if (item->delivery.pubrel_sent)
      machine_.send_ack(packet_type::pubrel, item->delivery.packet_id, reason_code::success);
    else
      send_delivery(item->delivery, item->dup);
  }
}

void connection::send_delivery(const session::delivery& d, bool dup) {
  const auto& m = *d.msg;
  const auto now = unix_now_ms();
  auto drop = [&] {
    if (d.qos > 0) {
      std::uint64_t stored_seq = 0;
      if (window_.complete(d.packet_id, &stored_seq) && stored_seq != 0)
        session::erase_delivery(home_.batch(), client_id_, stored_seq);
    }
  };
  if (d.qos == 0 && broker_.over_memory_watermark() && stream_->queued_output_bytes() > 0) {
    // Memory is short: QoS 0 to a client that has not taken what it was sent goes first.
    home_.counters().dropped_memory_watermark.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (d.qos == 0 && stream_->queued_output_bytes() > home_.limits().max_queued_bytes) {
    // A slow reader: QoS 0 is what may be dropped; QoS 1/2 are bounded by the window.
    if (home_.counters().dropped_slow_client.fetch_add(1, std::memory_order_relaxed) % 1000 == 0)
      log::mqtt().warn("client '{}': {} bytes waiting to be sent; dropping QoS 0 messages (counted)", client_id_,
                   stream_->queued_output_bytes());
    return;
  }
  if (m.expiry_unix_ms != 0 && m.expiry_unix_ms <= now) {
    home_.counters().dropped_expired.fetch_add(1, std::memory_order_relaxed);  // [MQTT-3.3.2-5]
    drop();
    return;
  }
  // Every topic its subscriptions match is under its mount, which it never sees.
  const auto topic = std::string_view(m.topic).substr(std::min(mount().size(), m.topic.size()));
  const auto version = machine_.version();
  bool sent = false;
  if ((version != protocol_version::v5 || d.subscription_ids.empty()) && !machine_.sets_topic_aliases()) {
    // Nothing of its own in the PUBLISH but flags and packet id: the shard's one encoding.
    sent = machine_.send_shared(home_.shared_publish_of(d, topic, version, now), dup, static_cast<mqtt::qos>(d.qos),
                                d.retain, d.qos > 0 ? d.packet_id : 0);
  } else {
    auto p = publish_of_delivery(d, dup, topic, version, now);
    sent = machine_.send_publish(p);
  }
  if (!sent) {
    // [MQTT-3.1.2-25] Never send more than the client accepts: discard as if delivered.
    home_.counters().dropped_too_large.fetch_add(1, std::memory_order_relaxed);
    drop();
    return;
  }
  home_.counters().messages_sent[protocol_index(static_cast<std::uint8_t>(version))][d.qos].fetch_add(
      1, std::memory_order_relaxed);
}

}  // namespace wharf::gateway
