#include "gateway/mqtt/connection.h"

#include <algorithm>

#include "core/log.h"
#include "core/queue/tenant.h"
#include "core/topic.h"
#include "gateway/mqtt/publish_conversion.h"
#include "gateway/mqtt/protocol/codec.h"

namespace wharf::gateway {

using mqtt::packet_type;
using mqtt::protocol_version;
using mqtt::reason_code;

namespace {
constexpr std::uint32_t unlimited_packet_size = 268435460;  // 256 MiB + header: the protocol maximum
}

connection::connection(shard& home, std::shared_ptr<net::stream> s)
    : home_(home),
      broker_(home.owner()),
      stream_(std::move(s)),
      id_(home.add_connection(this)),
      framer_(home.limits().max_packet_size),
      created_ms_(unix_now_ms()),
      last_rx_ms_(created_ms_),
      window_(home.limits().max_inflight, home.limits().max_queued_messages,
              home.limits().max_queued_bytes),
      publish_tokens_(home.limits().max_publish_rate),
      byte_tokens_(home.limits().max_inbound_bytes_rate),
      rate_refilled_ms_(created_ms_) {}

connection::~connection() {
  if (admitted_listener_) broker_.admission_.released(*admitted_listener_);
  home_.remove_connection(id_);
}

void connection::on_data(std::span<const std::uint8_t> bytes) {
  if (state_ == state::closed) return;
  last_rx_ms_ = unix_now_ms();
  broker_.counters_.bytes_received.fetch_add(bytes.size(), std::memory_order_relaxed);
  if (state_ == state::awaiting_connect && framer_.buffered_bytes() == 0 && !bytes.empty() &&
      static_cast<packet_type>(bytes[0] >> 4) != packet_type::connect) {
    // [MQTT-3.1.0-1] Not MQTT, or not starting with CONNECT: close at the first byte rather
    // than wait for a "remaining length" of garbage to arrive.
    broker_.counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    close_stream();
    return;
  }
  const auto status = framer_.feed(bytes, [this](const mqtt::fixed_header& h, std::span<const std::uint8_t> body) {
    return handle_packet(h, body);
  });
  if (status == mqtt::framer::status::malformed)
    fail(reason_code::malformed_packet, "bad fixed header");
  else if (status == mqtt::framer::status::too_large)
    fail(reason_code::packet_too_large, "packet above maximum packet size");
}

bool connection::over_inbound_rate() const noexcept {
  const auto& limits = home_.limits();
  return (limits.max_publish_rate != 0 && publish_tokens_ < 0) ||
         (limits.max_inbound_bytes_rate != 0 && byte_tokens_ < 0);
}

void connection::refill_rate_buckets(std::int64_t now_ms) {
  const auto& limits = home_.limits();
  const auto elapsed = static_cast<double>(std::max<std::int64_t>(0, now_ms - rate_refilled_ms_));
  rate_refilled_ms_ = now_ms;
  // A full bucket holds one second's worth: the burst a client may send after a pause.
  auto refill = [elapsed](double& tokens, std::uint32_t rate) {
    tokens = std::min<double>(rate, tokens + elapsed * rate / 1000.0);
  };
  refill(publish_tokens_, limits.max_publish_rate);
  refill(byte_tokens_, limits.max_inbound_bytes_rate);
  if (paused_for_rate_ && !over_inbound_rate()) {
    paused_for_rate_ = false;
    release_held_packets();
  }
}

void connection::on_closed(std::error_code ec) {
  // A close we began that its time bounds cut short: the peer did not read what was sent
  // (listener_options close_timeout; a drain cut by close_drain is counted by the stream,
  // tcp_drains_cut, as the connection is gone by then).
  if (state_ == state::closed && ec == std::errc::timed_out)
    broker_.counters_.closes_cut.fetch_add(1, std::memory_order_relaxed);
  const bool was_live = state_ == state::connected || state_ == state::restoring;
  state_ = state::closed;
  if (was_live && !session_ended_) end_session(/*publish_will=*/!will_cleared_, std::nullopt);
}

bool connection::handle_packet(const mqtt::fixed_header& header, std::span<const std::uint8_t> body) {
  if (state_ == state::closed) return false;
  if (state_ == state::authenticating || paused_for_rate_ || hook_answers_awaited_ > 0) {
    // Held until the CONNECT is answered, the client is back within its rate, or the HTTP
    // hook has answered about a topic; reading is paused, so this is at most the rest of
    // one read.
    held_packets_.push_back({header, {body.begin(), body.end()}});
    return true;
  }
  auto decoded = mqtt::decode(header, body, version_);
  if (state_ == state::awaiting_connect) {
    if (header.type() != packet_type::connect) {
      // [MQTT-3.1.0-1] The first packet must be CONNECT: close without a response.
      broker_.counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      close_stream();
      return false;
    }
    if (!decoded.ok()) {
      broker_.counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      // Answer in the client's own version where it said one we speak (an unsupported
      // level gets the 3.1.1 form: return code 0x01, [MQTT-3.1.2-2]).
      if (decoded.protocol_level == static_cast<std::uint8_t>(protocol_version::v5)) version_ = protocol_version::v5;
      send_connack_error(decoded.error);
      close_stream();
      return false;
    }
    handle_connect(std::get<mqtt::connect_packet>(decoded.value));
    return state_ != state::closed;
  }
  if (!decoded.ok()) {
    fail(decoded.error, decoded.detail);
    return false;
  }
  if (awaits_hook_answers(decoded.value)) {
    held_packets_.push_back({header, {body.begin(), body.end()}});
    return true;
  }
  std::visit(
      [this](auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, mqtt::connect_packet>) {
          fail(reason_code::protocol_error, "second CONNECT");  // [MQTT-3.1.0-2]
        } else if constexpr (std::is_same_v<T, mqtt::publish_packet>) {
          handle_publish(p);
        } else if constexpr (std::is_same_v<T, mqtt::ack_packet>) {
          handle_ack(p);
        } else if constexpr (std::is_same_v<T, mqtt::subscribe_packet>) {
          handle_subscribe(p);
        } else if constexpr (std::is_same_v<T, mqtt::unsubscribe_packet>) {
          handle_unsubscribe(p);
        } else if constexpr (std::is_same_v<T, mqtt::pingreq_packet>) {
          send(mqtt::pingresp_packet{});
        } else if constexpr (std::is_same_v<T, mqtt::disconnect_packet>) {
          handle_disconnect(p);
        } else if constexpr (std::is_same_v<T, mqtt::auth_packet>) {
          // No enhanced authentication method was agreed in CONNECT [MQTT-4.12.0-1].
          fail(reason_code::protocol_error, "AUTH without an authentication method");
        } else {
          fail(reason_code::protocol_error, "packet a client may not send");
        }
      },
      decoded.value);
  byte_tokens_ -= static_cast<double>(header.size + header.remaining_length);
  if (state_ == state::connected && over_inbound_rate()) {
    // Nothing is refused: what the client sent after this waits, and TCP slows it down.
    paused_for_rate_ = true;
    stream_->set_reading(false);
    broker_.counters_.rate_limited.fetch_add(1, std::memory_order_relaxed);
  }
  return state_ != state::closed;
}

void connection::handle_connect(mqtt::connect_packet& p) {
  const auto& limits = home_.limits();
  version_ = p.version;
  const bool v5 = version_ == protocol_version::v5;
  if (p.props.authentication_method) {
    // Enhanced authentication is not offered: [MQTT-4.12.0-1].
    send_connack_error(reason_code::bad_authentication_method);
    close_stream();
    return;
  }
  if (p.client_id.size() > limits.max_client_id_length ||
      (version_ == protocol_version::v3_1 && p.client_id.size() > 23)) {
    send_connack_error(reason_code::client_identifier_not_valid);
    close_stream();
    return;
  }
  if (p.client_id.empty()) {
    if (!v5 && !p.clean_start) {
      // [MQTT-3.1.3-8] An empty client id needs clean session 1 before 5.0.
      send_connack_error(reason_code::client_identifier_not_valid);
      close_stream();
      return;
    }
    static thread_local std::uint64_t counter = 0;
    client_id_ = fmt::format("wharf-{:x}-{:x}-{:x}", unix_now_ms(), home_.index(), ++counter);
    assigned_client_id_ = true;
  } else {
    client_id_ = std::move(p.client_id);
  }
  if (v5 && (p.props.receive_maximum == std::uint16_t{0} || p.props.maximum_packet_size == std::uint32_t{0})) {
    send_connack_error(reason_code::protocol_error);  // MQTT 5.0 3.1.2.11.3/3.1.2.11.4: 0 is a protocol error
    close_stream();
    return;
  }

  clean_start_ = p.clean_start;
  if (v5) {
    session_expiry_s_ = std::min(p.props.session_expiry_interval.value_or(0), limits.max_session_expiry_s);
  } else {
    session_expiry_s_ = p.clean_start ? 0 : limits.max_session_expiry_s;
  }
  std::uint16_t keep_alive = p.keep_alive_s;
  if (keep_alive > limits.max_keep_alive_s || (keep_alive == 0 && limits.max_keep_alive_s < 65535)) {
    keep_alive = limits.max_keep_alive_s;
    if (v5) server_keep_alive_ = keep_alive;
  }
  keep_alive_ms_ = std::uint32_t{keep_alive} * 1000;

  client_max_packet_size_ = p.props.maximum_packet_size.value_or(unlimited_packet_size);
  client_topic_alias_max_ = p.props.topic_alias_maximum.value_or(0);
  window_.set_inflight_max(std::min<std::size_t>(p.props.receive_maximum.value_or(65535), limits.max_inflight));

  if (p.will) {
    auto& w = *p.will;
    // Its expiry stays relative (from 0) until it is published (shard::publish_will).
    will_ = std::make_unique<core::message>(
        message_from_publish(std::move(w.topic), std::move(w.payload), w.qos, w.retain, w.props, 0));
    will_->publisher_client_id = client_id_;
    will_delay_s_ = w.props.will_delay_interval.value_or(0);
  }
  if (!admitted_by_limits()) return;
  authenticate(std::move(p.username), std::move(p.password));
}

void connection::handle_publish(mqtt::publish_packet& p) {
  const auto& limits = home_.limits();
  const bool v5 = version_ == protocol_version::v5;
  const auto qos = static_cast<std::uint8_t>(p.qos);
  if (qos > 0 && inbound_unacked_ >= limits.receive_maximum) {
    fail(reason_code::receive_maximum_exceeded, "more unacknowledged QoS 1/2 publishes than Receive Maximum");
    return;
  }
  if (!p.props.subscription_identifiers.empty()) {
    fail(reason_code::protocol_error, "subscription identifier in a client PUBLISH");  // [MQTT-3.3.4-6]
    return;
  }
  if (p.props.topic_alias) {
    const auto alias = *p.props.topic_alias;
    if (alias == 0 || alias > limits.topic_alias_maximum) {
      fail(reason_code::topic_alias_invalid, "topic alias out of range");  // [MQTT-3.3.2-9/10]
      return;
    }
    if (p.topic.empty()) {
      auto it = inbound_aliases_.find(alias);
      if (it == inbound_aliases_.end()) {
        fail(reason_code::protocol_error, "unknown topic alias");
        return;
      }
      p.topic = it->second;
    } else {
      inbound_aliases_[alias] = p.topic;
    }
  } else if (p.topic.empty()) {
    fail(reason_code::protocol_error, "empty topic without alias");
    return;
  }
  if (qos == 2 && inbound_qos2_.count(p.packet_id)) {
    // A resend of a QoS 2 publish we already took [MQTT-4.3.3-10]: acknowledge, don't route
    // again (in order behind acks still waiting).
    ack_when_durable(false, [id = p.packet_id](connection& c) { c.send_ack(packet_type::pubrec, id, reason_code::success); });
    return;
  }
  if (!may_publish(p.topic)) {
    broker_.counters_.acl_denied_publishes.fetch_add(1, std::memory_order_relaxed);
    if (qos == 0) return;
    // v5 says why (and the flow ends there); 3.1.1 has no negative ack, and a client that got
    // none would send the message again and again: it gets a positive one, and the message
    // is dropped, as Mosquitto does.
    ack_when_durable(false, [id = p.packet_id, type = qos == 1 ? packet_type::puback : packet_type::pubrec,
                             rc = v5 ? reason_code::not_authorized : reason_code::success](connection& c) {
      c.send_ack(type, id, rc);
    });
    return;
  }
  if (v5 && p.props.payload_format_indicator == std::uint8_t{1} && !mqtt::is_valid_utf8(p.payload)) {
    if (qos > 0) {
      ack_when_durable(false, [id = p.packet_id, type = qos == 1 ? packet_type::puback : packet_type::pubrec](connection& c) {
        c.send_ack(type, id, reason_code::payload_format_invalid);
      });
    }
    return;
  }
  broker_.counters_.messages_received[protocol_index(static_cast<std::uint8_t>(version_))][qos].fetch_add(
      1, std::memory_order_relaxed);
  publish_tokens_ -= 1;

  const auto now = unix_now_ms();
  auto m = std::make_shared<core::message>(message_from_publish(
      in_tenant_ ? std::string(mount()) + p.topic : std::move(p.topic), std::move(p.payload), p.qos, p.retain, p.props,
      now));
  m->publish_unix_ms = now;
  m->publisher_client_id = client_id_;

  durable_ops ops;
  if (m->retain) {
    // [MQTT-3.3.1-5..7] store, replace, or (empty payload) delete the retained message.
    if (!broker_.retained_.set(*m, home_.batch()))
      broker_.counters_.retained_rejected.fetch_add(1, std::memory_order_relaxed);
    else
      ops.added = true;
  }
  home_.route(m, ops);
  home_.bridge(*m, ops);
  if (qos == 0) {
    // Nobody to answer: a refused copy is only counted.
    if (!ops.core_commands.empty()) {
      home_.submit_to_core(std::move(ops.core_commands), trace_origin(), [&counters = broker_.counters_](core::queue::code worst) {
        if (worst != core::queue::code::ok) counters.bridge_refused.fetch_add(1, std::memory_order_relaxed);
      });
    }
    return;
  }

  ++inbound_unacked_;
  const auto packet_id = p.packet_id;
  std::function<void(connection&)> store_qos2_id;
  if (qos == 2) {
    inbound_qos2_.insert(packet_id);
    if (session_expiry_s_ > 0) {
      if (ops.core_commands.empty()) {
        session::put_inbound_qos2(home_.batch(), client_id_, packet_id);
        ops.added = true;
      } else {
        // Stored only once the core holds its copies: a stored id makes a resend after a
        // reconnect count as a duplicate, so it must not exist for a copy the core lacks.
        store_qos2_id = [packet_id](connection& c) { session::put_inbound_qos2(c.home_.batch(), c.client_id_, packet_id); };
      }
    }
  }
  const auto type = qos == 1 ? packet_type::puback : packet_type::pubrec;
  ack_when_durable(ops, [packet_id, type, qos](connection& c, reason_code outcome) {
    if (mqtt::is_error(outcome)) {
      c.refuse_publish(qos, packet_id, outcome);
      return;
    }
    if (qos == 1) --c.inbound_unacked_;
    c.send_ack(type, packet_id, reason_code::success);
  }, std::move(store_qos2_id));
}

void connection::refuse_publish(std::uint8_t qos, std::uint16_t packet_id, reason_code outcome) {
  broker_.counters_.bridge_refused.fetch_add(1, std::memory_order_relaxed);
  // The flow ends here either way: a resend of this id is a new message, not a duplicate.
  if (qos == 2 && inbound_qos2_.erase(packet_id) != 0 && session_expiry_s_ > 0)
    session::erase_inbound_qos2(home_.batch(), client_id_, packet_id);
  if (version_ != protocol_version::v5) {
    disconnect(outcome, "the queue core refused a bridged copy of a QoS 1/2 publish");
    return;
  }
  --inbound_unacked_;
  // A PUBREC with an error code ends the QoS 2 flow, as a PUBACK ends QoS 1 (MQTT 5.0 4.3.3).
  send_ack(qos == 1 ? packet_type::puback : packet_type::pubrec, packet_id, outcome);
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

void connection::ack_when_durable(durable_ops& ops, ack_sender send_ack, std::function<void(connection&)> then_store) {
  const bool to_core = !ops.core_commands.empty();
  if (!ops.added && !to_core && waiting_acks_.empty()) {
    send_ack(*this, reason_code::success);
    return;
  }
  const std::uint64_t seq = waiting_acks_base_ + waiting_acks_.size();
  waiting_acks_.push_back({static_cast<std::uint8_t>(int{ops.added} + int{to_core}), reason_code::success,
                           std::move(send_ack), std::move(then_store)});
  if (ops.added) {
    home_.run_after_commit([&home = home_, id = id_, seq] {
      if (auto* c = home.find_connection(id)) c->ack_condition_met(seq, reason_code::success);
    });
  }
  if (to_core) {
    home_.submit_to_core(std::move(ops.core_commands), trace_origin(), [&home = home_, id = id_, seq](core::queue::code worst) {
      if (auto* c = home.find_connection(id)) c->ack_condition_met(seq, publish_outcome(worst));
    });
  }
}

void connection::ack_when_durable(bool wrote, std::function<void(connection&)> send_ack) {
  durable_ops ops;
  ops.added = wrote;
  ack_when_durable(ops, [send_ack = std::move(send_ack)](connection& c, reason_code) { send_ack(c); });
}

void connection::ack_condition_met(std::uint64_t seq, reason_code outcome) {
  if (state_ == state::closed) return;
  auto& waiting = waiting_acks_[seq - waiting_acks_base_];
  --waiting.commits_pending;
  if (mqtt::is_error(outcome)) waiting.outcome = outcome;
  while (waiting_acks_sent_ < waiting_acks_.size() && waiting_acks_[waiting_acks_sent_].commits_pending == 0) {
    auto& next = waiting_acks_[waiting_acks_sent_];
    if (next.then_store && !mqtt::is_error(next.outcome)) {
      // Its second stage: write what may only be stored once the rest is durable, and wait
      // for that commit too (still at the front, so later acks keep waiting behind it).
      auto store = std::move(next.then_store);
      next.then_store = nullptr;
      store(*this);
      next.commits_pending = 1;
      home_.run_after_commit([&home = home_, id = id_, seq = waiting_acks_base_ + waiting_acks_sent_] {
        if (auto* c = home.find_connection(id)) c->ack_condition_met(seq, reason_code::success);
      });
      return;
    }
    ++waiting_acks_sent_;
    auto send_ack = std::move(next.send);
    send_ack(*this, next.outcome);
    if (state_ == state::closed) return;
  }
  if (waiting_acks_sent_ == waiting_acks_.size()) {
    waiting_acks_base_ += waiting_acks_.size();
    waiting_acks_.clear();
    waiting_acks_sent_ = 0;
  }
}

void connection::handle_ack(const mqtt::ack_packet& p) {
  switch (p.type) {
    case packet_type::puback:
    case packet_type::pubcomp: {
      std::uint64_t stored_seq = 0;
      if (window_.complete(p.packet_id, &stored_seq) && stored_seq != 0)
        session::erase_delivery(home_.batch(), client_id_, stored_seq);
      pump();
      return;
    }
    case packet_type::pubrec:
      if (mqtt::is_error(p.reason)) {
        // A PUBREC with an error code ends the QoS 2 flow (MQTT 5.0 4.3.3): no PUBREL follows.
        std::uint64_t stored_seq = 0;
        if (window_.complete(p.packet_id, &stored_seq) && stored_seq != 0)
          session::erase_delivery(home_.batch(), client_id_, stored_seq);
        pump();
        return;
      }
      if (window_.received(p.packet_id))
        send_ack(packet_type::pubrel, p.packet_id, reason_code::success);
      else
        send_ack(packet_type::pubrel, p.packet_id,
                 version_ == protocol_version::v5 ? reason_code::packet_identifier_not_found : reason_code::success);
      return;
    case packet_type::pubrel: {
      const bool known = inbound_qos2_.erase(p.packet_id) != 0;
      if (known) {
        --inbound_unacked_;
        if (session_expiry_s_ > 0) session::erase_inbound_qos2(home_.batch(), client_id_, p.packet_id);
      }
      send_ack(packet_type::pubcomp, p.packet_id,
               known || version_ != protocol_version::v5 ? reason_code::success : reason_code::packet_identifier_not_found);
      return;
    }
    default:
      fail(reason_code::protocol_error, "unexpected acknowledgement");
  }
}

void connection::handle_subscribe(const mqtt::subscribe_packet& p) {
  const auto& limits = home_.limits();
  const bool v5 = version_ == protocol_version::v5;
  const std::uint32_t subscription_id = p.props.subscription_identifiers.empty() ? 0 : p.props.subscription_identifiers[0];
  mqtt::suback_packet ack;
  ack.packet_id = p.packet_id;
  std::vector<session::delivery> retained;
  bool stored = false;
  const auto now = unix_now_ms();
  for (const auto& req : p.subscriptions) {
    if (!core::is_valid_topic_filter(req.filter) || !mqtt::is_valid_utf8(req.filter)) {
      ack.reasons.push_back(reason_code::topic_filter_invalid);
      continue;
    }
    auto verdict = home_.access()->check_subscription(identity(), req.filter);
    if (hook_verdict_on('s', req.filter) == false) verdict.granted = false;
    // A default-tenant client never subscribes into the tenants' tree.
    if (!in_tenant_ && core::queue::names_tenant_tree(req.filter)) verdict.granted = false;
    if (!verdict.granted) {
      broker_.counters_.acl_denied_subscriptions.fetch_add(1, std::memory_order_relaxed);
      // 3.1.1's SUBACK has one failure code, 0x80.
      ack.reasons.push_back(v5 ? static_cast<reason_code>(home_.access()->subscribe_denied_reason())
                               : reason_code::unspecified_error);
      continue;
    }
    const auto shared = core::parse_shared_filter(req.filter);
    if (shared && req.options.no_local) {
      fail(reason_code::protocol_error, "No Local on a shared subscription");  // [MQTT-3.8.3-4]
      return;
    }
    // Held under the tenant's mount: routes, the session and the store see only that.
    const std::string filter = core::queue::mount_filter(mount(), req.filter);
    auto existing = std::find_if(subscriptions_.begin(), subscriptions_.end(), [&](auto& s) { return s.filter == filter; });
    const bool is_new = existing == subscriptions_.end();
    if (is_new && subscriptions_.size() >= limits.max_subscriptions_per_client) {
      ack.reasons.push_back(v5 ? reason_code::quota_exceeded : reason_code::unspecified_error);
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
    if (session_expiry_s_ > 0) {
      session::put_subscription(home_.batch(), client_id_, sub);
      stored = true;
    }
    ack.reasons.push_back(static_cast<reason_code>(sub.max_qos));

    // Retained messages [MQTT-3.3.1-9..11]; not for shared subscriptions (MQTT 5.0 4.8.2).
    if (!shared && (sub.retain_handling == 0 || (sub.retain_handling == 1 && is_new))) {
      broker_.retained_.match(filter, now, [&](const core::message& rm) {
        if (verdict.withheld && verdict.withheld->withholds(std::string_view(rm.topic).substr(mount().size()))) {
          broker_.counters_.acl_withheld.fetch_add(1, std::memory_order_relaxed);
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
  auto send_suback = [ack = std::move(ack), retained = std::move(retained)](connection& c) mutable {
    c.send(ack);
    for (auto& d : retained) c.enqueue(std::move(d));
  };
  // A persistent session's subscriptions are durable before the SUBACK says they hold.
  ack_when_durable(stored, std::move(send_suback));
}

void connection::handle_unsubscribe(const mqtt::unsubscribe_packet& p) {
  mqtt::unsuback_packet ack;
  ack.packet_id = p.packet_id;
  bool erased = false;
  for (const auto& sent : p.filters) {
    const std::string filter = core::queue::mount_filter(mount(), sent);
    auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(), [&](auto& s) { return s.filter == filter; });
    if (it == subscriptions_.end()) {
      ack.reasons.push_back(reason_code::no_subscription_existed);
      continue;
    }
    subscriptions_.erase(it);
    {
      std::lock_guard lock(entry_->mu);
      std::erase_if(entry_->subscriptions, [&](auto& s) { return s.filter == filter; });
    }
    home_.remove_route(entry_.get(), filter);
    if (session_expiry_s_ > 0) {
      session::erase_subscription(home_.batch(), client_id_, filter);
      erased = true;
    }
    ack.reasons.push_back(reason_code::success);
  }
  home_.send_outboxes();
  ack_when_durable(erased, [ack = std::move(ack)](connection& c) { c.send(ack); });
}

void connection::handle_disconnect(const mqtt::disconnect_packet& p) {
  if (p.props.session_expiry_interval) {
    // [MQTT-3.14.2-2] A session that was to end with the connection cannot be revived here.
    if (session_expiry_s_ == 0 && *p.props.session_expiry_interval != 0) {
      fail(reason_code::protocol_error, "session expiry set on DISCONNECT after CONNECT had 0");
      return;
    }
    session_expiry_s_ = std::min(*p.props.session_expiry_interval, home_.limits().max_session_expiry_s);
  }
  // [MQTT-3.14.4-3] Normal disconnection discards the will; 0x04 asks for it to be published.
  will_cleared_ = p.reason != reason_code::disconnect_with_will;
  end_session(!will_cleared_, p.reason);
  close_stream();
}

void connection::tick(std::int64_t now_ms) {
  if (state_ == state::awaiting_connect) {
    if (now_ms - created_ms_ > home_.limits().connect_timeout_ms) close_stream();
    return;
  }
  if (state_ != state::connected) return;
  // A client held back by its rate, or waiting for the HTTP hook, is not read meanwhile:
  // that is not its keep alive lapsing.
  if (paused_for_rate_ || hook_answers_awaited_ > 0) last_rx_ms_ = now_ms;
  refill_rate_buckets(now_ms);
  if (keep_alive_ms_ != 0 && now_ms - last_rx_ms_ > static_cast<std::int64_t>(keep_alive_ms_) * 3 / 2)
    fail(reason_code::keep_alive_timeout, "keep alive timeout");
}

void connection::kick(reason_code reason) {
  if (state_ == state::closed) return;
  if (version_ == protocol_version::v5 && state_ == state::connected) send(mqtt::disconnect_packet{reason, {}});
  if (!session_ended_ && state_ != state::awaiting_connect && state_ != state::authenticating)
    end_session(/*publish_will=*/true, reason);
  close_stream();
}

void connection::fail(reason_code rc, std::string_view why) {
  if (state_ == state::closed) return;
  broker_.counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
  disconnect(rc, why);
}

void connection::disconnect(reason_code rc, std::string_view why) {
  if (state_ == state::closed) return;
  log::mqtt().debug("client '{}' ({}): {} ({})", client_id_, stream_->peer().remote_address, mqtt::to_string(rc), why);
  if (version_ == protocol_version::v5 && state_ == state::connected) {
    mqtt::disconnect_packet d{rc, {}};
    send(d);
  }
  if (!session_ended_ && (state_ == state::connected || state_ == state::restoring)) end_session(/*publish_will=*/true, rc);
  close_stream();
}

void connection::close_stream() {
  if (state_ == state::closed) return;
  state_ = state::closed;
  stream_->close();
}

}  // namespace wharf::gateway
