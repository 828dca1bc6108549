// The bridge between MQTT and the queue core (docs/BRIDGE.md), from the `bridge:` section
// of the config:
//   mqtt_to_queue  PUBLISHes matching a filter become messages of a queue
//   mqtt_to_topic  ... are published to a core topic, the MQTT topic's levels as routing key
//   topic_to_mqtt  messages of a core topic are published to MQTT on a topic template
//   events         device connected / disconnected / session expired / will published,
//                  as JSON messages of a queue
//
// The MQTT → core directions run inside the broker's shards through queue_tap: the shard
// batches the commands of a loop turn and holds the QoS 1/2 acknowledgement until the queue
// core has them durably. The core → MQTT direction is a subscription of protocol `mqtt` on
// the core topic: the core keeps each delivery pending (durably, with its retry policy)
// until the broker has published it and stored the copies it keeps.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "config/config.h"
#include "core/queue/engine.h"
#include "gateway/mqtt/queue_tap.h"

namespace wharf::core::queue {
class service;
}

namespace wharf::gateway {
class broker;
}

namespace wharf::gateway::bridge {

// The name of the core subscription that carries `binding` (protocol mqtt): derived from
// what it delivers, so a changed binding is a new subscription and the old one is removed.
[[nodiscard]] std::string subscription_name(const config::bridge_mqtt_binding& binding);

// `mqtt_topic` with "{routingKey}" replaced by `routing_key`, its '.' written as '/'.
[[nodiscard]] std::string expand_topic_template(std::string_view mqtt_topic, std::string_view routing_key);

// The routing key of a message published on MQTT `topic`: its levels joined by '.'.
[[nodiscard]] std::string routing_key_of(std::string_view topic);
// The message group of a PUBLISH to `topic` for a binding with group_level `level`: that
// level's value, its first max_group_id_bytes bytes (devices whose ids share those share a
// group: still in order, only less parallel); nullopt (the default group) when the topic
// has no such level or it is empty.
[[nodiscard]] std::optional<std::string> group_of(std::string_view topic, std::uint32_t level);

// The `json` body format of a message (docs/BRIDGE.md), and back: the uplink's queue keeps
// messages going up in it. message_from_json restores topic, payload, QoS, retain and the
// MQTT 5 properties; nullopt when `body` is not such a document.
// message_json is the same document as an object (the admin API lists retained messages
// in it).
[[nodiscard]] std::string json_body(const core::message& m);
[[nodiscard]] boost::json::object message_json(const core::message& m);
[[nodiscard]] std::optional<core::message> message_from_json(std::string_view body);

class bridge final : public queue_tap {
 public:
  // Checks the bindings (topic filters, topic templates). Throws config::config_errors
  // naming each bad binding's file:line:col.
  explicit bridge(config::bridge_config cfg);
  bridge(const bridge&) = delete;  // holds pointers into its own bindings
  bridge& operator=(const bridge&) = delete;

  [[nodiscard]] bool empty() const noexcept;
  [[nodiscard]] const std::optional<config::uplink_config>& uplink() const noexcept { return cfg_.uplink; }

  // queue_tap
  void commands_for(const core::message& m, std::vector<core::queue::command_body>& out) const override;
  [[nodiscard]] std::optional<core::queue::command_body> event_command(const device_event& e) const override;

  // Creates the queues and topics the bindings name when they are missing, and makes the
  // core's `mqtt` subscriptions exactly those of topic_to_mqtt (stale ones are removed with
  // their pending deliveries). Blocks until the core has done it. Startup only.
  // Throws std::runtime_error when the core refuses (e.g. a name CMQ does not accept).
  void provision(core::queue::service& queue_core) const;

  // Publishes a due delivery of an `mqtt` subscription through `mqtt_broker`; `done` as the
  // core's push sender wants it (true: delivered and stored where the broker keeps copies).
  void deliver(const core::queue::push_delivery& d, broker& mqtt_broker, std::function<void(bool)> done) const;

 private:
  // Checks the uplink's topics and adds a binding into its queue for each one going up.
  void add_uplink_bindings(std::vector<config::config_error>& errors);

  config::bridge_config cfg_;
  std::map<std::string, const config::bridge_mqtt_binding*, std::less<>> mqtt_by_subscription_;
};

}  // namespace wharf::gateway::bridge
