// Reading of the `bridge:` section. Only its shape is checked here (maps, required
// strings, enums, QoS range); what the values mean (valid MQTT filters, queue names that
// CMQ accepts) is checked by the bridge, at each binding's source_location.
#include "config/bridge_config.h"

#include <fmt/format.h>

#include <array>

namespace wharf::config::detail {
namespace {

constexpr std::array<std::string_view, 2> body_formats = {"raw", "json"};
constexpr std::array<std::string_view, 3> directions = {"out", "in", "both"};
constexpr std::array<std::string_view, 2> mqtt_versions = {"3.1.1", "5"};

// A binding's `tenant` (checked against `tenants:` once the whole file is read).
void read_tenant(map_reader& b, std::string& out, diagnostics& diag) {
  if (auto e = b.find("tenant")) {
    if (auto v = read_non_empty_string(*e, diag)) out = std::move(*v);
  }
}

// mqtt_to_queue / mqtt_to_topic: `destination_key` names the queue or the topic.
void read_bindings(const entry& list, std::string_view destination_key, std::vector<bridge_binding>& out,
                   diagnostics& diag) {
  read_map_list(list, fmt::format("filter and {}", destination_key), diag, [&](map_reader& b, std::string location) {
    bridge_binding binding;
    auto filter = required_string(b, "filter", diag);
    auto destination = required_string(b, destination_key, diag);
    if (auto e = b.find("format")) {
      if (auto v = read_enum(*e, body_formats, diag))
        binding.format = *v == "json" ? bridge_body_format::json : bridge_body_format::raw;
    }
    // A core topic has no message groups: mqtt_to_topic does not know the key.
    if (destination_key == "queue") {
      if (auto e = b.find("group_level")) {
        if (auto v = read_uint(*e, 1, 1000, diag)) binding.group_level = static_cast<std::uint32_t>(*v);
      }
    }
    read_tenant(b, binding.tenant, diag);
    if (!filter || !destination) return;
    binding.filter = std::move(*filter);
    binding.destination = std::move(*destination);
    binding.source_location = std::move(location);
    out.push_back(std::move(binding));
  });
}

void read_string_into(map_reader& m, std::string_view key, std::string& out, diagnostics& diag) {
  if (auto e = m.find(key)) {
    if (auto v = read_string(*e, diag)) out = std::move(*v);
  }
}

std::optional<uplink_config> read_uplink(const entry& e, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "bridge.uplink: expected a map with address, client_id and topics");
    return std::nullopt;
  }
  uplink_config u;
  u.source_location = diag.location(e.value.Mark());
  map_reader m(e.value, "bridge.uplink", diag);
  auto address = required_string(m, "address", diag);
  if (address && !address->starts_with("tcp://") && !address->starts_with("ssl://")) {
    diag.add(value_mark(*m.find("address")),
             fmt::format("bridge.uplink.address: '{}' is not a broker address, expected tcp://host:port or "
                         "ssl://host:port", *address));
    address.reset();
  }
  auto client_id = required_string(m, "client_id", diag);
  if (auto v = m.find("mqtt_version")) {
    if (auto s = read_enum(*v, mqtt_versions, diag)) u.mqtt_version = *s == "5" ? 5 : 4;
  }
  read_string_into(m, "username", u.username, diag);
  read_string_into(m, "password", u.password, diag);
  if (auto v = read_file(m, "ca_file", false)) u.ca_file = std::move(*v);
  if (auto v = read_file(m, "cert_file", false)) u.cert_file = std::move(*v);
  if (auto v = read_file(m, "key_file", false)) u.key_file = std::move(*v);
  read_uint_into(m, "keep_alive_s", u.keep_alive_s, 1, 65535, diag);
  if (auto v = m.find("clean_session")) {
    if (auto b = read_bool(*v, diag)) u.clean_session = *b;
  }
  read_uint_into(m, "reconnect_min_ms", u.reconnect_min_ms, 100, 600000, diag);
  read_uint_into(m, "reconnect_max_ms", u.reconnect_max_ms, 100, 3600000, diag);
  if (auto v = m.find("queue")) {
    if (auto s = read_string(*v, diag); s && !s->empty()) u.queue = std::move(*s);
  }
  read_uint_into(m, "max_queued_messages", u.max_queued_messages, 1000000, 1000000000, diag);
  auto topics = m.find("topics");
  if (!topics) {
    diag.add(e.value.Mark(), "bridge.uplink: missing required field 'topics', expected a list of {filter, direction}");
  } else {
    read_map_list(*topics, "filter", diag, [&](map_reader& t, std::string location) {
      uplink_topic topic;
      auto filter = required_string(t, "filter", diag);
      if (auto d = t.find("direction")) {
        if (auto s = read_enum(*d, directions, diag))
          topic.direction = *s == "in" ? uplink_direction::in : *s == "both" ? uplink_direction::both : uplink_direction::out;
      }
      read_uint_into(t, "qos", topic.qos, 0, 2, diag);
      read_string_into(t, "local_prefix", topic.local_prefix, diag);
      read_string_into(t, "remote_prefix", topic.remote_prefix, diag);
      if (!filter) return;
      topic.filter = std::move(*filter);
      topic.source_location = std::move(location);
      u.topics.push_back(std::move(topic));
    });
  }
  m.finish();
  if (!address || !client_id) return std::nullopt;
  u.address = std::move(*address);
  u.client_id = std::move(*client_id);
  return u;
}

}  // namespace

void read_bridge(const entry& e, bridge_config& out, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "bridge: expected a map with mqtt_to_queue, mqtt_to_topic, topic_to_mqtt, events or uplink");
    return;
  }
  map_reader m(e.value, "bridge", diag);
  if (auto list = m.find("mqtt_to_queue")) read_bindings(*list, "queue", out.mqtt_to_queue, diag);
  if (auto list = m.find("mqtt_to_topic")) read_bindings(*list, "topic", out.mqtt_to_topic, diag);
  if (auto list = m.find("topic_to_mqtt")) {
    read_map_list(*list, "topic and mqtt_topic", diag, [&](map_reader& b, std::string location) {
      bridge_mqtt_binding binding;
      auto topic = required_string(b, "topic", diag);
      auto mqtt_topic = required_string(b, "mqtt_topic", diag);
      if (auto q = b.find("qos")) {
        if (auto v = read_uint(*q, 0, 2, diag)) binding.qos = static_cast<std::uint8_t>(*v);
      }
      if (auto r = b.find("retain")) {
        if (auto v = read_bool(*r, diag)) binding.retain = *v;
      }
      read_tenant(b, binding.tenant, diag);
      if (!topic || !mqtt_topic) return;
      binding.topic = std::move(*topic);
      binding.mqtt_topic = std::move(*mqtt_topic);
      binding.source_location = std::move(location);
      out.topic_to_mqtt.push_back(std::move(binding));
    });
  }
  if (auto events = m.find("events")) {
    if (!events->value.IsMap()) {
      diag.add(value_mark(*events), "bridge.events: expected a map with queue");
    } else {
      map_reader ev(events->value, "bridge.events", diag);
      if (auto queue = required_string(ev, "queue", diag)) {
        out.events_queue = std::move(*queue);
        out.events_source_location = diag.location(events->value.Mark());
      }
      ev.finish();
    }
  }
  if (auto uplink = m.find("uplink")) out.uplink = read_uplink(*uplink, diag, read_file);
  m.finish();
}

}  // namespace wharf::config::detail
