#include "gateway/mqtt/publish_conversion.h"

#include <utility>

namespace wharf::gateway {

core::message message_from_publish(std::string topic, std::string payload, mqtt::qos qos, bool retain,
                                   mqtt::properties& props, std::int64_t expiry_from_ms) {
  core::message m;
  m.topic = std::move(topic);
  m.payload = std::move(payload);
  m.qos = static_cast<std::uint8_t>(qos);
  m.retain = retain;
  m.payload_format_indicator = props.payload_format_indicator;
  m.content_type = std::move(props.content_type);
  m.response_topic = std::move(props.response_topic);
  m.correlation_data = std::move(props.correlation_data);
  m.user_properties.reserve(props.user_properties.size());
  for (auto& up : props.user_properties) m.user_properties.emplace_back(std::move(up.name), std::move(up.value));
  if (props.message_expiry_interval)
    m.expiry_unix_ms = expiry_from_ms + std::int64_t{*props.message_expiry_interval} * 1000;
  return m;
}

std::optional<std::uint32_t> expiry_left_s(const core::message& m, std::int64_t now_ms) {
  if (m.expiry_unix_ms == 0) return std::nullopt;
  return static_cast<std::uint32_t>((m.expiry_unix_ms - now_ms + 999) / 1000);
}

mqtt::publish_packet publish_of_delivery(const session::delivery& d, bool dup, std::string_view topic,
                                         mqtt::protocol_version version, std::int64_t now_ms) {
  const core::message& m = *d.msg;
  mqtt::publish_packet p;
  p.dup = dup;
  p.qos = static_cast<mqtt::qos>(d.qos);
  p.retain = d.retain;
  p.packet_id = d.qos > 0 ? d.packet_id : 0;
  p.topic = topic;
  p.payload = m.payload;
  if (version == mqtt::protocol_version::v5) {
    auto& props = p.props;
    props.payload_format_indicator = m.payload_format_indicator;
    props.content_type = m.content_type;
    props.response_topic = m.response_topic;
    props.correlation_data = m.correlation_data;
    for (const auto& [k, v] : m.user_properties) props.user_properties.push_back({k, v});
    props.message_expiry_interval = expiry_left_s(m, now_ms);
    props.subscription_identifiers = d.subscription_ids;
  }
  return p;
}

}  // namespace wharf::gateway
