#include "gateway/mqtt/protocol/connection_machine.h"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/topic.h"
#include "gateway/mqtt/protocol/wire.h"

namespace wharf::mqtt {

connection_machine::connection_machine(connection_host& host, std::int64_t now_ms)
    : host_(host),
      framer_(host.limits().max_packet_size),
      created_ms_(now_ms),
      last_rx_ms_(now_ms),
      publish_tokens_(host.limits().max_publish_rate),
      byte_tokens_(host.limits().max_inbound_bytes_rate),
      rate_refilled_ms_(now_ms) {}

void connection_machine::receive(std::span<const std::uint8_t> bytes, std::int64_t now_ms) {
  if (phase_ == phase::closed) return;
  last_rx_ms_ = now_ms;
  if (phase_ == phase::awaiting_connect && framer_.buffered_bytes() == 0 && !bytes.empty() &&
      static_cast<packet_type>(bytes[0] >> 4) != packet_type::connect) {
    // [MQTT-3.1.0-1] Not MQTT, or not starting with CONNECT: close at the first byte rather
    // than wait for a "remaining length" of garbage to arrive.
    close_silently(true, "the first packet is not CONNECT");
    return;
  }
  const auto status = framer_.feed(bytes, [this](const fixed_header& h, std::span<const std::uint8_t> body) {
    return handle_packet(h, body);
  });
  if (status == framer::status::malformed)
    end(reason_code::malformed_packet, "bad fixed header", true);
  else if (status == framer::status::too_large)
    end(reason_code::packet_too_large, "packet above maximum packet size", true);
}

bool connection_machine::handle_packet(const fixed_header& header, std::span<const std::uint8_t> body) {
  if (phase_ == phase::closed) return false;
  if (holding_input()) {
    hold(header, body);
    return true;
  }
  auto decoded = decode(header, body, version_);
  if (phase_ == phase::awaiting_connect) {
    if (header.type() != packet_type::connect) {
      close_silently(true, "the first packet is not CONNECT");  // [MQTT-3.1.0-1]
      return false;
    }
    if (!decoded.ok()) {
      // Answer in the client's own version where it said one we speak (an unsupported
      // level gets the 3.1.1 form: return code 0x01, [MQTT-3.1.2-2]).
      if (decoded.protocol_level == static_cast<std::uint8_t>(protocol_version::v5)) version_ = protocol_version::v5;
      send(connack_packet{.session_present = false, .reason = decoded.error, .props = {}});
      close_silently(true, decoded.detail);
      return false;
    }
    handle_connect(std::get<connect_packet>(decoded.value));
    return phase_ != phase::closed;
  }
  if (!decoded.ok()) {
    end(decoded.error, decoded.detail, true);
    return false;
  }
  if (host_.holds(decoded.value)) {
    held_by_host_ = true;
    host_.set_reading(false);
    hold(header, body);
    return true;
  }
  std::visit(
      [this](auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, connect_packet>) {
          end(reason_code::protocol_error, "second CONNECT", true);  // [MQTT-3.1.0-2]
        } else if constexpr (std::is_same_v<T, publish_packet>) {
          handle_publish(p);
        } else if constexpr (std::is_same_v<T, ack_packet>) {
          handle_ack(p);
        } else if constexpr (std::is_same_v<T, subscribe_packet>) {
          handle_subscribe(p);
        } else if constexpr (std::is_same_v<T, unsubscribe_packet>) {
          handle_unsubscribe(p);
        } else if constexpr (std::is_same_v<T, pingreq_packet>) {
          send(pingresp_packet{});
        } else if constexpr (std::is_same_v<T, disconnect_packet>) {
          handle_disconnect(p);
        } else if constexpr (std::is_same_v<T, auth_packet>) {
          // No enhanced authentication method was agreed in CONNECT [MQTT-4.12.0-1].
          end(reason_code::protocol_error, "AUTH without an authentication method", true);
        } else {
          end(reason_code::protocol_error, "packet a client may not send", true);
        }
      },
      decoded.value);
  byte_tokens_ -= static_cast<double>(header.size + header.remaining_length);
  if (phase_ == phase::connected && over_inbound_rate()) {
    // Nothing is refused: what the client sent after this waits, and TCP slows it down.
    paused_for_rate_ = true;
    host_.set_reading(false);
    host_.rate_limited();
  }
  return phase_ != phase::closed;
}

void connection_machine::hold(const fixed_header& header, std::span<const std::uint8_t> body) {
  held_.push_back({header, {body.begin(), body.end()}});
}

void connection_machine::run_held() {
  if (phase_ == phase::closed || holding_input()) return;
  // A packet that pauses input again (over the rate, or the host holds it) makes
  // handle_packet hold it and the rest, in order, ahead of anything read later.
  auto held = std::exchange(held_, {});
  for (auto& packet : held) {
    if (!handle_packet(packet.header, packet.body)) return;
  }
  if (!holding_input()) host_.set_reading(true);
}

void connection_machine::release() {
  held_by_host_ = false;
  run_held();
}

bool connection_machine::over_inbound_rate() const noexcept {
  const auto& limits = host_.limits();
  return (limits.max_publish_rate != 0 && publish_tokens_ < 0) ||
         (limits.max_inbound_bytes_rate != 0 && byte_tokens_ < 0);
}

void connection_machine::refill_rate_buckets(std::int64_t now_ms) {
  const auto& limits = host_.limits();
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
    run_held();
  }
}

void connection_machine::tick(std::int64_t now_ms) {
  if (phase_ == phase::awaiting_connect) {
    if (now_ms - created_ms_ > host_.limits().connect_timeout_ms) close_silently(false, "no CONNECT in time");
    return;
  }
  if (phase_ != phase::connected) return;
  // A client held back by its rate, or by the host, is not read meanwhile: that is not its
  // keep alive lapsing.
  if (paused_for_rate_ || held_by_host_) last_rx_ms_ = now_ms;
  refill_rate_buckets(now_ms);
  if (phase_ == phase::connected && keep_alive_ms_ != 0 &&
      now_ms - last_rx_ms_ > static_cast<std::int64_t>(keep_alive_ms_) * 3 / 2)
    end(reason_code::keep_alive_timeout, "keep alive timeout", true);
}

void connection_machine::handle_connect(connect_packet& p) {
  const auto& limits = host_.limits();
  version_ = p.version;
  const bool v5 = version_ == protocol_version::v5;
  if (p.props.authentication_method) {
    refuse_connect_now(reason_code::bad_authentication_method);  // not offered: [MQTT-4.12.0-1]
    return;
  }
  if (p.client_id.size() > limits.max_client_id_length ||
      (version_ == protocol_version::v3_1 && p.client_id.size() > 23)) {
    refuse_connect_now(reason_code::client_identifier_not_valid);
    return;
  }
  if (p.client_id.empty() && !v5 && !p.clean_start) {
    // [MQTT-3.1.3-8] An empty client id needs clean session 1 before 5.0.
    refuse_connect_now(reason_code::client_identifier_not_valid);
    return;
  }
  if (v5 && (p.props.receive_maximum == std::uint16_t{0} || p.props.maximum_packet_size == std::uint32_t{0})) {
    refuse_connect_now(reason_code::protocol_error);  // MQTT 5.0 3.1.2.11.3/3.1.2.11.4: 0 is a protocol error
    return;
  }

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
  client_max_packet_size_ = p.props.maximum_packet_size.value_or(client_max_packet_size_);
  client_topic_alias_max_ = p.props.topic_alias_maximum.value_or(0);
  client_receive_maximum_ = p.props.receive_maximum.value_or(65535);

  phase_ = phase::connecting;
  host_.set_reading(false);
  host_.connect(connect_request{.version = version_,
                                .client_id = std::move(p.client_id),
                                .clean_start = p.clean_start,
                                .session_expiry_s = session_expiry_s_,
                                .username = std::move(p.username),
                                .password = std::move(p.password),
                                .will = std::move(p.will)});
}

void connection_machine::accept_connect(bool session_present, std::string_view assigned_client_id) {
  if (phase_ != phase::connecting) return;
  const auto& limits = host_.limits();
  connack_packet ack;
  ack.session_present = session_present;
  if (version_ == protocol_version::v5) {
    auto& props = ack.props;
    props.receive_maximum = limits.receive_maximum;
    props.maximum_packet_size = limits.max_packet_size;
    props.topic_alias_maximum = limits.topic_alias_maximum;
    props.retain_available = 1;
    props.wildcard_subscription_available = 1;
    props.subscription_identifier_available = 1;
    props.shared_subscription_available = 1;
    if (!assigned_client_id.empty()) props.assigned_client_identifier = std::string(assigned_client_id);
    if (server_keep_alive_) props.server_keep_alive = *server_keep_alive_;
    props.session_expiry_interval = session_expiry_s_;
  }
  phase_ = phase::connected;
  send(ack);
}

void connection_machine::refuse_connect(reason_code code) {
  if (phase_ != phase::connecting) return;
  refuse_connect_now(code);
}

void connection_machine::refuse_connect_now(reason_code code) {
  send(connack_packet{.session_present = false, .reason = code, .props = {}});
  close_silently(false, to_string(code));
}

void connection_machine::close_silently(bool protocol_error, std::string_view why) {
  phase_ = phase::closed;
  host_.closing(close_cause{.reason = std::nullopt, .publish_will = true, .protocol_error = protocol_error, .why = why});
}

void connection_machine::end(reason_code reason, std::string_view why, bool protocol_error) {
  if (phase_ == phase::closed) return;
  if (version_ == protocol_version::v5 && phase_ == phase::connected) send(disconnect_packet{reason, {}});
  phase_ = phase::closed;
  host_.closing(close_cause{.reason = reason, .publish_will = true, .protocol_error = protocol_error, .why = why});
}

std::string_view connection_machine::resolved_topic(const publish_packet& p) const {
  if (!p.topic.empty() || !p.props.topic_alias) return p.topic;
  if (!sparse_) return {};
  const auto known = sparse_->inbound_aliases.find(*p.props.topic_alias);
  return known == sparse_->inbound_aliases.end() ? std::string_view{} : std::string_view(known->second);
}

void connection_machine::handle_publish(publish_packet& p) {
  const auto& limits = host_.limits();
  const bool v5 = version_ == protocol_version::v5;
  const auto qos = static_cast<std::uint8_t>(p.qos);
  if (qos > 0 && inbound_unacked_ >= limits.receive_maximum) {
    end(reason_code::receive_maximum_exceeded, "more unacknowledged QoS 1/2 publishes than Receive Maximum", true);
    return;
  }
  if (!p.props.subscription_identifiers.empty()) {
    end(reason_code::protocol_error, "subscription identifier in a client PUBLISH", true);  // [MQTT-3.3.4-6]
    return;
  }
  if (p.props.topic_alias) {
    const auto alias = *p.props.topic_alias;
    if (alias == 0 || alias > limits.topic_alias_maximum) {
      end(reason_code::topic_alias_invalid, "topic alias out of range", true);  // [MQTT-3.3.2-9/10]
      return;
    }
    if (p.topic.empty()) {
      const auto& aliases = sparse().inbound_aliases;
      auto it = aliases.find(alias);
      if (it == aliases.end()) {
        end(reason_code::protocol_error, "unknown topic alias", true);
        return;
      }
      p.topic = it->second;
    } else {
      sparse().inbound_aliases[alias] = p.topic;
    }
  } else if (p.topic.empty()) {
    end(reason_code::protocol_error, "empty topic without alias", true);
    return;
  }
  const auto ack_type = qos == 1 ? packet_type::puback : packet_type::pubrec;
  auto reply = [&](reason_code rc) {
    acknowledge({.reply = ack_packet{.type = ack_type, .packet_id = p.packet_id, .reason = rc, .props = {}}});
  };
  if (qos == 2 && awaits_pubrel(p.packet_id)) {
    // A resend of a QoS 2 publish already taken [MQTT-4.3.3-10]: acknowledged, not routed again.
    reply(reason_code::success);
    return;
  }
  if (!host_.may_publish(p.topic)) {
    if (qos == 0) return;
    // v5 says why (and the flow ends there); 3.1.1 has no negative ack, and a client that got
    // none would send the message again and again: it gets a positive one, and the message
    // is dropped, as Mosquitto does.
    reply(v5 ? reason_code::not_authorized : reason_code::success);
    return;
  }
  if (v5 && p.props.payload_format_indicator == std::uint8_t{1} && !is_valid_utf8(p.payload)) {
    if (qos > 0) reply(reason_code::payload_format_invalid);  // [MQTT-3.3.2-4] may refuse it
    return;
  }
  publish_tokens_ -= 1;
  if (qos == 0) {
    (void)host_.publish(p, 0);
    return;
  }
  ++inbound_unacked_;
  if (qos == 2) sparse().inbound_qos2.insert(p.packet_id);
  const auto packet_id = p.packet_id;
  const auto waits = host_.publish(p, next_ticket());
  acknowledge({.commits_pending = waits.commits,
               .publish = true,
               .then_store_qos2 = waits.then_store_qos2,
               .qos = qos,
               .packet_id = packet_id,
               .reply = {}});
}

void connection_machine::handle_ack(const ack_packet& p) {
  switch (p.type) {
    case packet_type::puback:
    case packet_type::pubcomp:
      host_.delivery_completed(p.packet_id);
      return;
    case packet_type::pubrec:
      if (is_error(p.reason)) {
        // A PUBREC with an error code ends the QoS 2 flow (MQTT 5.0 4.3.3): no PUBREL follows.
        host_.delivery_completed(p.packet_id);
        return;
      }
      send_ack(packet_type::pubrel, p.packet_id,
               host_.delivery_received(p.packet_id) || version_ != protocol_version::v5
                   ? reason_code::success
                   : reason_code::packet_identifier_not_found);
      return;
    case packet_type::pubrel: {
      const bool known = end_inbound_qos2(p.packet_id);
      if (known) {
        --inbound_unacked_;
        host_.forget_inbound_qos2(p.packet_id);
      }
      send_ack(packet_type::pubcomp, p.packet_id,
               known || version_ != protocol_version::v5 ? reason_code::success
                                                         : reason_code::packet_identifier_not_found);
      return;
    }
    default:
      end(reason_code::protocol_error, "unexpected acknowledgement", true);
  }
}

void connection_machine::handle_subscribe(const subscribe_packet& p) {
  std::vector<reason_code> reasons;
  reasons.reserve(p.subscriptions.size());
  for (const auto& req : p.subscriptions) {
    if (!core::is_valid_topic_filter(req.filter) || !is_valid_utf8(req.filter)) {
      reasons.push_back(reason_code::topic_filter_invalid);
      continue;
    }
    if (req.options.no_local && core::parse_shared_filter(req.filter)) {
      end(reason_code::protocol_error, "No Local on a shared subscription", true);  // [MQTT-3.8.3-4]
      return;
    }
    reasons.push_back(reason_code::success);
  }
  const std::uint32_t subscription_id =
      p.props.subscription_identifiers.empty() ? 0 : p.props.subscription_identifiers[0];
  const auto ticket = next_ticket();
  const auto waits = host_.subscribe(p, subscription_id, reasons, ticket);
  if (phase_ == phase::closed) return;
  acknowledge({.commits_pending = waits.commits,
               .tell_when_sent = waits.tell_when_sent,
               .reply = suback_packet{.packet_id = p.packet_id, .reasons = std::move(reasons), .props = {}}});
}

void connection_machine::handle_unsubscribe(const unsubscribe_packet& p) {
  std::vector<reason_code> reasons;
  reasons.reserve(p.filters.size());
  const auto waits = host_.unsubscribe(p, reasons, next_ticket());
  if (phase_ == phase::closed) return;
  acknowledge({.commits_pending = waits.commits,
               .tell_when_sent = waits.tell_when_sent,
               .reply = unsuback_packet{.packet_id = p.packet_id, .reasons = std::move(reasons), .props = {}}});
}

void connection_machine::handle_disconnect(const disconnect_packet& p) {
  if (p.props.session_expiry_interval) {
    // [MQTT-3.14.2-2] A session that was to end with the connection cannot be revived here.
    if (session_expiry_s_ == 0 && *p.props.session_expiry_interval != 0) {
      end(reason_code::protocol_error, "session expiry set on DISCONNECT after CONNECT had 0", true);
      return;
    }
    session_expiry_s_ = std::min(*p.props.session_expiry_interval, host_.limits().max_session_expiry_s);
  }
  phase_ = phase::closed;
  // [MQTT-3.14.4-3] Normal disconnection discards the will; 0x04 asks for it to be published.
  host_.closing(close_cause{.reason = p.reason,
                            .publish_will = p.reason == reason_code::disconnect_with_will,
                            .protocol_error = false,
                            .why = "DISCONNECT from the client"});
}

void connection_machine::restore_inbound_qos2(std::uint16_t packet_id) {
  if (sparse().inbound_qos2.insert(packet_id).second) ++inbound_unacked_;
}

void connection_machine::acknowledge(pending_ack ack) {
  if (ack.commits_pending == 0 && !ack.then_store_qos2 && acks_.empty()) {
    send_ready_ack(ack, acks_base_);
    ++acks_base_;
    return;
  }
  acks_.push_back(std::move(ack));
  if (acks_.back().commits_pending == 0) send_acks_ready();
}

void connection_machine::commit_done(ack_ticket ticket, reason_code outcome) {
  if (phase_ == phase::closed || ticket < acks_base_ || ticket >= next_ticket()) return;
  auto& waiting = acks_[ticket - acks_base_];
  if (waiting.commits_pending > 0) --waiting.commits_pending;
  if (is_error(outcome)) waiting.outcome = outcome;
  send_acks_ready();
}

void connection_machine::send_acks_ready() {
  while (acks_sent_ < acks_.size() && acks_[acks_sent_].commits_pending == 0) {
    auto& next = acks_[acks_sent_];
    const ack_ticket ticket = acks_base_ + acks_sent_;
    if (next.then_store_qos2 && !is_error(next.outcome)) {
      // Its second stage: stored only once the rest is durable, and waited for too (still
      // at the front, so later acknowledgements keep waiting behind it).
      next.then_store_qos2 = false;
      next.commits_pending = 1;
      host_.store_inbound_qos2(next.packet_id, ticket);
      return;
    }
    ++acks_sent_;
    send_ready_ack(next, ticket);
    if (phase_ == phase::closed) return;
  }
  if (acks_sent_ == acks_.size()) {
    acks_base_ += acks_.size();
    acks_.clear();
    acks_sent_ = 0;
  }
}

void connection_machine::send_ready_ack(const pending_ack& ack, ack_ticket ticket) {
  if (ack.publish) {
    send_publish_ack(ack);
    return;
  }
  send(ack.reply);
  if (ack.tell_when_sent) host_.acknowledgement_sent(ticket);
}

void connection_machine::send_publish_ack(const pending_ack& ack) {
  const auto type = ack.qos == 1 ? packet_type::puback : packet_type::pubrec;
  if (!is_error(ack.outcome)) {
    if (ack.qos == 1) --inbound_unacked_;
    send_ack(type, ack.packet_id, reason_code::success);
    return;
  }
  // Refused (a bridged copy the queue core did not take): the flow ends here either way, so
  // a resend of this id is a new message, not a duplicate.
  if (ack.qos == 2 && end_inbound_qos2(ack.packet_id)) host_.forget_inbound_qos2(ack.packet_id);
  if (version_ != protocol_version::v5) {
    // 3.1.1 has no negative acknowledgement: the connection closes, so the client sends it
    // again later.
    end(ack.outcome, "the broker could not keep a QoS 1/2 publish");
    return;
  }
  --inbound_unacked_;
  // A PUBREC with an error code ends the QoS 2 flow, as a PUBACK ends QoS 1 (MQTT 5.0 4.3.3).
  send_ack(type, ack.packet_id, ack.outcome);
}

bool connection_machine::send_publish(publish_packet& p) {
  if (encoded_size(p, version_) > client_max_packet_size_) return false;
  if (client_topic_alias_max_ > 0) {
    auto& aliases = sparse().outbound_aliases;
    if (auto it = aliases.find(p.topic); it != aliases.end()) {
      p.props.topic_alias = it->second;
      p.topic.clear();
    } else if (aliases.size() < client_topic_alias_max_) {
      const auto alias = static_cast<std::uint16_t>(aliases.size() + 1);
      aliases.emplace(p.topic, alias);
      p.props.topic_alias = alias;
    }
  }
  std::vector<std::uint8_t> bytes;
  encode(p, version_, bytes);  // reserves what it needs
  host_.write(std::move(bytes));
  return true;
}

bool connection_machine::send_shared(const shared_publish& shared, bool dup, qos q, bool retain,
                                     std::uint16_t packet_id) {
  const auto& bytes = *shared.bytes;
  if (bytes.size() > client_max_packet_size_) return false;
  const auto first_byte = static_cast<std::uint8_t>(static_cast<std::uint8_t>(packet_type::publish) << 4 |
                                                    std::uint8_t{dup} << 3 | static_cast<std::uint8_t>(q) << 1 |
                                                    std::uint8_t{retain});
  const auto at = shared.packet_id_at;
  WHARF_MQTT_ASSERT((at == 0) == (q == qos::at_most_once));
  if (bytes[0] == first_byte && (at == 0 || (bytes[at] == packet_id >> 8 && bytes[at + 1] == (packet_id & 0xFF)))) {
    host_.write_shared(shared.bytes);
    return true;
  }
  std::vector<std::uint8_t> copy(bytes);
  copy[0] = first_byte;
  if (at != 0) {
    copy[at] = static_cast<std::uint8_t>(packet_id >> 8);
    copy[at + 1] = static_cast<std::uint8_t>(packet_id);
  }
  host_.write(std::move(copy));
  return true;
}

void connection_machine::send(const packet& p) {
  std::vector<std::uint8_t> bytes;
  encode(p, version_, bytes);  // reserves what it needs
  host_.write(std::move(bytes));
}

void connection_machine::send_ack(packet_type type, std::uint16_t packet_id, reason_code reason) {
  send(ack_packet{.type = type, .packet_id = packet_id, .reason = reason, .props = {}});
}

}  // namespace wharf::mqtt
