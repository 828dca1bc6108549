#include "gateway/mqtt/protocol/properties_codec.h"

#include <initializer_list>
#include <string>

#include "core/topic.h"

namespace wharf::mqtt::wire {
namespace {

enum property_id : std::uint8_t {
  payload_format_indicator = 0x01,
  message_expiry_interval = 0x02,
  content_type = 0x03,
  response_topic = 0x08,
  correlation_data = 0x09,
  subscription_identifier = 0x0B,
  session_expiry_interval = 0x11,
  assigned_client_identifier = 0x12,
  server_keep_alive = 0x13,
  authentication_method = 0x15,
  authentication_data = 0x16,
  request_problem_information = 0x17,
  will_delay_interval = 0x18,
  request_response_information = 0x19,
  response_information = 0x1A,
  server_reference = 0x1C,
  reason_string = 0x1F,
  receive_maximum = 0x21,
  topic_alias_maximum = 0x22,
  topic_alias = 0x23,
  maximum_qos = 0x24,
  retain_available = 0x25,
  user_property = 0x26,
  maximum_packet_size = 0x27,
  wildcard_subscription_available = 0x28,
  subscription_identifier_available = 0x29,
  shared_subscription_available = 0x2A,
};

constexpr std::uint64_t mask_of(std::initializer_list<property_id> ids) {
  std::uint64_t mask = 0;
  for (const property_id id : ids) mask |= std::uint64_t{1} << id;
  return mask;
}

// Table 2-4 of MQTT 5.0, read by column.
std::uint64_t allowed(property_scope scope) noexcept {
  switch (scope) {
    case property_scope::connect:
      return mask_of({session_expiry_interval, authentication_method, authentication_data,
                      request_problem_information, request_response_information,
                      receive_maximum, topic_alias_maximum, user_property, maximum_packet_size});
    case property_scope::will:
      return mask_of({payload_format_indicator, message_expiry_interval, content_type,
                      response_topic, correlation_data, will_delay_interval, user_property});
    case property_scope::connack:
      return mask_of({session_expiry_interval, assigned_client_identifier, server_keep_alive,
                      authentication_method, authentication_data, response_information,
                      server_reference, reason_string, receive_maximum, topic_alias_maximum,
                      maximum_qos, retain_available, user_property, maximum_packet_size,
                      wildcard_subscription_available, subscription_identifier_available,
                      shared_subscription_available});
    case property_scope::publish:
      return mask_of({payload_format_indicator, message_expiry_interval, content_type,
                      response_topic, correlation_data, subscription_identifier, topic_alias,
                      user_property});
    case property_scope::puback:
    case property_scope::pubrec:
    case property_scope::pubrel:
    case property_scope::pubcomp:
    case property_scope::suback:
    case property_scope::unsuback:
      return mask_of({reason_string, user_property});
    case property_scope::subscribe:
      return mask_of({subscription_identifier, user_property});
    case property_scope::unsubscribe:
      return mask_of({user_property});
    case property_scope::disconnect:
      return mask_of({session_expiry_interval, server_reference, reason_string, user_property});
    case property_scope::auth:
      return mask_of({authentication_method, authentication_data, reason_string, user_property});
  }
  return 0;
}

bool is_allowed(property_scope scope, property_id id) noexcept {
  return (allowed(scope) >> id) & 1;
}

// Single-occurrence check: "It is a Protocol Error to include <property> more than once".
template <typename T>
bool set_once(reader& in, std::optional<T>& field, T value) {
  if (field.has_value()) return in.fail(reason_code::protocol_error, "duplicate property");
  field = std::move(value);
  return true;
}

bool read_flag(reader& in, std::optional<std::uint8_t>& field) {
  std::uint8_t value = 0;
  if (!in.u8(value)) return false;
  if (value > 1) return in.fail(reason_code::protocol_error, "property value must be 0 or 1");
  return set_once(in, field, value);
}

bool read_u16(reader& in, std::optional<std::uint16_t>& field) {
  std::uint16_t value = 0;
  return in.u16(value) && set_once(in, field, value);
}

bool read_u32(reader& in, std::optional<std::uint32_t>& field) {
  std::uint32_t value = 0;
  return in.u32(value) && set_once(in, field, value);
}

bool read_utf8(reader& in, std::optional<std::string>& field) {
  std::string value;
  return in.utf8(value) && set_once(in, field, std::move(value));
}

bool read_binary(reader& in, std::optional<std::string>& field) {
  std::string value;
  return in.binary(value) && set_once(in, field, std::move(value));
}

bool read_property(reader& in, property_scope scope, std::uint32_t id, properties& out) {
  switch (id) {
    case payload_format_indicator: return read_flag(in, out.payload_format_indicator);
    case message_expiry_interval: return read_u32(in, out.message_expiry_interval);
    case content_type: return read_utf8(in, out.content_type);
    case response_topic:
      if (!read_utf8(in, out.response_topic)) return false;
      // [MQTT-3.3.2-14] The Response Topic MUST NOT contain wildcard characters.
      if (!core::is_valid_topic_name(*out.response_topic)) {
        return in.fail(reason_code::protocol_error, "invalid response topic");
      }
      return true;
    case correlation_data: return read_binary(in, out.correlation_data);
    case subscription_identifier: {
      std::uint32_t value = 0;
      if (!in.varint(value)) return false;
      // "It is a Protocol Error if the Subscription Identifier has a value of 0."
      if (value == 0) return in.fail(reason_code::protocol_error, "subscription identifier 0");
      // PUBLISH carries one per matching subscription; SUBSCRIBE at most one.
      if (scope != property_scope::publish && !out.subscription_identifiers.empty()) {
        return in.fail(reason_code::protocol_error, "duplicate property");
      }
      out.subscription_identifiers.push_back(value);
      return true;
    }
    case session_expiry_interval: return read_u32(in, out.session_expiry_interval);
    case assigned_client_identifier: return read_utf8(in, out.assigned_client_identifier);
    case server_keep_alive: return read_u16(in, out.server_keep_alive);
    case authentication_method: return read_utf8(in, out.authentication_method);
    case authentication_data: return read_binary(in, out.authentication_data);
    case request_problem_information: return read_flag(in, out.request_problem_information);
    case will_delay_interval: return read_u32(in, out.will_delay_interval);
    case request_response_information: return read_flag(in, out.request_response_information);
    case response_information: return read_utf8(in, out.response_information);
    case server_reference: return read_utf8(in, out.server_reference);
    case reason_string: return read_utf8(in, out.reason_string);
    case receive_maximum:
      if (!read_u16(in, out.receive_maximum)) return false;
      if (*out.receive_maximum == 0) return in.fail(reason_code::protocol_error, "receive maximum 0");
      return true;
    case topic_alias_maximum: return read_u16(in, out.topic_alias_maximum);
    case topic_alias: return read_u16(in, out.topic_alias);
    case maximum_qos: return read_flag(in, out.maximum_qos);
    case retain_available: return read_flag(in, out.retain_available);
    case user_property: {
      mqtt::user_property pair;
      if (!in.utf8(pair.name) || !in.utf8(pair.value)) return false;
      out.user_properties.push_back(std::move(pair));
      return true;
    }
    case maximum_packet_size:
      if (!read_u32(in, out.maximum_packet_size)) return false;
      if (*out.maximum_packet_size == 0) {
        return in.fail(reason_code::protocol_error, "maximum packet size 0");
      }
      return true;
    case wildcard_subscription_available: return read_flag(in, out.wildcard_subscription_available);
    case subscription_identifier_available:
      return read_flag(in, out.subscription_identifier_available);
    case shared_subscription_available: return read_flag(in, out.shared_subscription_available);
    default: break;
  }
  return in.fail(reason_code::malformed_packet, "unknown property");
}

// Calls `emit(id)` for each property of `props` that `scope` allows, in identifier order;
// user properties and subscription identifiers once per element.
template <typename Emit>
void for_each_present(property_scope scope, const properties& props, Emit&& emit) {
  const auto when = [&](property_id id, bool present) {
    if (present && is_allowed(scope, id)) emit(id);
  };
  when(payload_format_indicator, props.payload_format_indicator.has_value());
  when(message_expiry_interval, props.message_expiry_interval.has_value());
  when(content_type, props.content_type.has_value());
  when(response_topic, props.response_topic.has_value());
  when(correlation_data, props.correlation_data.has_value());
  when(subscription_identifier, !props.subscription_identifiers.empty());
  when(session_expiry_interval, props.session_expiry_interval.has_value());
  when(assigned_client_identifier, props.assigned_client_identifier.has_value());
  when(server_keep_alive, props.server_keep_alive.has_value());
  when(authentication_method, props.authentication_method.has_value());
  when(authentication_data, props.authentication_data.has_value());
  when(request_problem_information, props.request_problem_information.has_value());
  when(will_delay_interval, props.will_delay_interval.has_value());
  when(request_response_information, props.request_response_information.has_value());
  when(response_information, props.response_information.has_value());
  when(server_reference, props.server_reference.has_value());
  when(reason_string, props.reason_string.has_value());
  when(receive_maximum, props.receive_maximum.has_value());
  when(topic_alias_maximum, props.topic_alias_maximum.has_value());
  when(topic_alias, props.topic_alias.has_value());
  when(maximum_qos, props.maximum_qos.has_value());
  when(retain_available, props.retain_available.has_value());
  when(user_property, !props.user_properties.empty());
  when(maximum_packet_size, props.maximum_packet_size.has_value());
  when(wildcard_subscription_available, props.wildcard_subscription_available.has_value());
  when(subscription_identifier_available, props.subscription_identifier_available.has_value());
  when(shared_subscription_available, props.shared_subscription_available.has_value());
}

void write_value(writer& out, property_scope scope, property_id id, const properties& props) {
  const auto byte = [&](const std::optional<std::uint8_t>& v) { out.u8(id), out.u8(*v); };
  const auto two = [&](const std::optional<std::uint16_t>& v) { out.u8(id), out.u16(*v); };
  const auto four = [&](const std::optional<std::uint32_t>& v) { out.u8(id), out.u32(*v); };
  const auto text = [&](const std::optional<std::string>& v) { out.u8(id), out.binary(*v); };
  switch (id) {
    case payload_format_indicator: return byte(props.payload_format_indicator);
    case message_expiry_interval: return four(props.message_expiry_interval);
    case content_type: return text(props.content_type);
    case response_topic: return text(props.response_topic);
    case correlation_data: return text(props.correlation_data);
    case subscription_identifier: {
      // SUBSCRIBE has room for one.
      const std::size_t count =
          scope == property_scope::publish ? props.subscription_identifiers.size() : 1;
      for (std::size_t i = 0; i < count; ++i) {
        out.u8(id);
        out.varint(props.subscription_identifiers[i]);
      }
      return;
    }
    case session_expiry_interval: return four(props.session_expiry_interval);
    case assigned_client_identifier: return text(props.assigned_client_identifier);
    case server_keep_alive: return two(props.server_keep_alive);
    case authentication_method: return text(props.authentication_method);
    case authentication_data: return text(props.authentication_data);
    case request_problem_information: return byte(props.request_problem_information);
    case will_delay_interval: return four(props.will_delay_interval);
    case request_response_information: return byte(props.request_response_information);
    case response_information: return text(props.response_information);
    case server_reference: return text(props.server_reference);
    case reason_string: return text(props.reason_string);
    case receive_maximum: return two(props.receive_maximum);
    case topic_alias_maximum: return two(props.topic_alias_maximum);
    case topic_alias: return two(props.topic_alias);
    case maximum_qos: return byte(props.maximum_qos);
    case retain_available: return byte(props.retain_available);
    case user_property:
      for (const auto& pair : props.user_properties) {
        out.u8(id);
        out.binary(pair.name);
        out.binary(pair.value);
      }
      return;
    case maximum_packet_size: return four(props.maximum_packet_size);
    case wildcard_subscription_available: return byte(props.wildcard_subscription_available);
    case subscription_identifier_available: return byte(props.subscription_identifier_available);
    case shared_subscription_available: return byte(props.shared_subscription_available);
  }
}

}  // namespace

bool read_properties(reader& in, property_scope scope, properties& out) {
  std::uint32_t length = 0;
  if (!in.varint(length)) return false;
  reader list({});
  if (!in.split(length, list)) return false;
  while (list.remaining() > 0) {
    // The identifier is a Variable Byte Integer; all 5.0 identifiers fit in one byte.
    std::uint32_t id = 0;
    if (!list.varint(id)) break;
    if (id >= 64 || !is_allowed(scope, static_cast<property_id>(id))) {
      list.fail(reason_code::malformed_packet, "property not allowed in this packet");
      break;
    }
    if (!read_property(list, scope, id, out)) break;
  }
  if (!list.ok()) return in.fail(list.error(), list.detail());
  return true;
}

void write_properties(writer& out, property_scope scope, const properties& props) {
  writer counter(nullptr);
  for_each_present(scope, props, [&](property_id id) { write_value(counter, scope, id, props); });
  out.varint(static_cast<std::uint32_t>(counter.size()));
  for_each_present(scope, props, [&](property_id id) { write_value(out, scope, id, props); });
}

bool properties_empty(property_scope scope, const properties& props) {
  bool empty = true;
  for_each_present(scope, props, [&](property_id) { empty = false; });
  return empty;
}

}  // namespace wharf::mqtt::wire
