#include "gateway/bridge/bridge.h"
#include "core/log.h"
#include "gateway/bridge/uplink.h"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <limits>
#include <set>
#include <span>
#include <stdexcept>

#include "core/queue/service.h"
#include "core/queue/tenant.h"
#include "core/topic.h"
#include "gateway/mqtt/broker.h"
#include "gateway/mqtt/protocol/codec.h"
#include "tls/crypto.h"

namespace wharf::gateway::bridge {
namespace {

namespace q = core::queue;
namespace json = boost::json;

constexpr std::string_view routing_key_placeholder = "{routingKey}";
// Queues and topics the bridge creates take the largest message CMQ allows: an MQTT
// payload (up to mqtt.max_packet_size) must not be refused for a size the operator never set.
constexpr std::uint32_t created_max_msg_size = 1048576;

// A queue or topic name the bridge would create: caught with its location here, so that
// check-config reports it, rather than by the queue core at start.
void check_name(const std::string& name, const std::string& location, std::string_view key,
                std::vector<config::config_error>& errors) {
  if (q::is_valid_name(name)) return;
  errors.push_back(config::error_at(location, fmt::format("bridge.{}: '{}' is not a queue or topic name (expected 1..64 "
                                                          "characters: a letter, then letters, digits, '_' or '-')",
                                                          key, name)));
}

void check_filter(const std::string& filter, const std::string& location, std::string_view section,
                  std::vector<config::config_error>& errors) {
  if (core::parse_shared_filter(filter) || !core::is_valid_topic_filter(filter) || !mqtt::is_valid_utf8(filter)) {
    errors.push_back(config::error_at(location, fmt::format("bridge.{}: '{}' is not an MQTT topic filter (expected levels "
                                                    "separated by '/', '+' and '#' only as whole levels, no $share)",
                                                    section, filter)));
  }
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The payload as JSON text when it is valid UTF-8, otherwise base64; "payloadEncoding" says which.
void put_payload(json::object& o, std::string_view payload) {
  if (mqtt::is_valid_utf8(payload)) {
    o["payload"] = payload;
    o["payloadEncoding"] = "utf8";
  } else {
    o["payload"] = tls::base64_encode(as_bytes(payload));
    o["payloadEncoding"] = "base64";
  }
}

}  // namespace

std::string json_body(const core::message& m) { return json::serialize(message_json(m)); }

json::object message_json(const core::message& m) {
  json::object o;
  o["topic"] = m.topic;
  o["clientId"] = m.publisher_client_id;
  o["qos"] = m.qos;
  o["retain"] = m.retain;
  o["publishTime"] = m.publish_unix_ms;
  if (m.content_type) o["contentType"] = *m.content_type;
  if (m.response_topic) o["responseTopic"] = *m.response_topic;
  if (m.correlation_data) o["correlationData"] = tls::base64_encode(as_bytes(*m.correlation_data));
  if (!m.user_properties.empty()) {
    // A list, not a map: MQTT allows a name more than once and keeps their order.
    json::array props;
    for (const auto& [name, value] : m.user_properties) props.push_back(json::object{{"name", name}, {"value", value}});
    o["userProperties"] = std::move(props);
  }
  put_payload(o, m.payload);
  return o;
}

std::optional<core::message> message_from_json(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  const auto* topic = o.if_contains("topic");
  const auto* payload = o.if_contains("payload");
  const auto* encoding = o.if_contains("payloadEncoding");
  if (!topic || !topic->is_string() || !payload || !payload->is_string() || !encoding || !encoding->is_string())
    return std::nullopt;
  core::message m;
  m.topic = topic->get_string();
  const std::string_view text = payload->get_string();
  if (encoding->get_string() == "base64") {
    auto bytes = tls::base64_decode(text);
    if (!bytes) return std::nullopt;
    m.payload.assign(bytes->begin(), bytes->end());
  } else {
    m.payload = text;
  }
  if (const auto* q = o.if_contains("qos"); q && q->is_int64() && q->get_int64() >= 0 && q->get_int64() <= 2)
    m.qos = static_cast<std::uint8_t>(q->get_int64());
  if (const auto* r = o.if_contains("retain"); r && r->is_bool()) m.retain = r->get_bool();
  if (const auto* c = o.if_contains("clientId"); c && c->is_string()) m.publisher_client_id = c->get_string();
  if (const auto* t = o.if_contains("publishTime"); t && t->is_int64()) m.publish_unix_ms = t->get_int64();
  if (const auto* c = o.if_contains("contentType"); c && c->is_string()) m.content_type = std::string(c->get_string());
  if (const auto* r = o.if_contains("responseTopic"); r && r->is_string())
    m.response_topic = std::string(r->get_string());
  if (const auto* c = o.if_contains("correlationData"); c && c->is_string()) {
    if (auto bytes = tls::base64_decode(c->get_string())) m.correlation_data = std::string(bytes->begin(), bytes->end());
  }
  if (const auto* props = o.if_contains("userProperties"); props && props->is_array()) {
    for (const auto& p : props->get_array()) {
      const auto* name = p.is_object() ? p.get_object().if_contains("name") : nullptr;
      const auto* value = p.is_object() ? p.get_object().if_contains("value") : nullptr;
      if (name && value && name->is_string() && value->is_string())
        m.user_properties.emplace_back(name->get_string(), value->get_string());
    }
  }
  return m;
}

namespace {

// The length of the mount of a binding's tenant (0 for the default tenant).
std::size_t mount_length(const std::string& tenant) {
  return tenant.empty() ? 0 : q::mqtt_mount_root.size() + tenant.size() + 1;
}

// A tenant's binding in the broker's and the core's terms: its filter under the tenant's
// mount, its queue or topic the tenant's one, its group level counted from the mount
// (two levels: "$tenant/<name>").
void place_in_tenant(config::bridge_binding& b) {
  if (b.tenant.empty()) return;
  b.filter = q::mqtt_mount(b.tenant) + b.filter;
  b.destination = q::engine_name(b.tenant, b.destination);
  if (b.group_level) *b.group_level += 2;
}

void place_in_tenant(config::bridge_mqtt_binding& b) {
  if (b.tenant.empty()) return;
  b.topic = q::engine_name(b.tenant, b.topic);
  b.mqtt_topic = q::mqtt_mount(b.tenant) + b.mqtt_topic;
}

// The body of `m` for a binding of `tenant`: its json form names the topic and the client
// as the tenant's devices see them.
std::string body_for(const core::message& m, config::bridge_body_format format, const std::string& tenant) {
  if (format == config::bridge_body_format::raw) return m.payload;
  if (tenant.empty()) return json_body(m);
  core::message seen = m;
  seen.topic.erase(0, mount_length(tenant));
  if (seen.publisher_client_id.starts_with(q::mqtt_mount_root)) seen.publisher_client_id.erase(0, mount_length(tenant));
  return json_body(seen);
}

std::string_view event_name(device_event::kind k) {
  switch (k) {
    case device_event::kind::connected: return "client.connected";
    case device_event::kind::disconnected: return "client.disconnected";
    case device_event::kind::session_expired: return "session.expired";
    case device_event::kind::will_published: return "will.published";
  }
  return "?";
}

// Runs `body` in the core and waits for its result (startup only).
q::result run(q::service& queue_core, q::command_body body) {
  std::promise<q::result> answer;
  auto future = answer.get_future();
  queue_core.submit(std::move(body), [&answer](q::result r) { answer.set_value(std::move(r)); });
  return future.get();
}

void require_created(const q::result& r, std::string_view what, std::string_view name) {
  if (r.outcome.ok() || r.outcome.value == q::code::already_exists) return;
  throw std::runtime_error(fmt::format("bridge: cannot create {} '{}': {} ({})", what, name, r.outcome.message,
                                       static_cast<int>(r.outcome.value)));
}

}  // namespace

std::string subscription_name(const config::bridge_mqtt_binding& binding) {
  // FNV-1a over what the subscription delivers: stable across restarts and builds.
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view s) {
    for (const unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(binding.mqtt_topic);
  mix(fmt::format("\n{}\n{}", binding.qos, binding.retain ? 1 : 0));
  return fmt::format("mqtt-{:016x}", h);
}

std::string expand_topic_template(std::string_view mqtt_topic, std::string_view routing_key) {
  std::string levels(routing_key);
  std::replace(levels.begin(), levels.end(), '.', '/');
  std::string out;
  for (std::size_t pos = 0;;) {
    const auto at = mqtt_topic.find(routing_key_placeholder, pos);
    out.append(mqtt_topic.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos));
    if (at == std::string_view::npos) return out;
    out += levels;
    pos = at + routing_key_placeholder.size();
  }
}

std::optional<std::string> group_of(std::string_view topic, std::uint32_t level) {
  std::size_t start = 0;
  for (std::uint32_t i = 1; i < level; ++i) {
    start = topic.find('/', start);
    if (start == std::string_view::npos) return std::nullopt;
    ++start;
  }
  const std::string_view value = topic.substr(start, topic.find('/', start) - start);
  if (value.empty()) return std::nullopt;
  return std::string(value.substr(0, q::max_group_id_bytes));
}

std::string routing_key_of(std::string_view topic) {
  std::string key(topic);
  std::replace(key.begin(), key.end(), '/', '.');
  return key;
}

bridge::bridge(config::bridge_config cfg) : cfg_(std::move(cfg)) {
  std::vector<config::config_error> errors;
  for (auto& b : cfg_.mqtt_to_queue) {
    check_filter(b.filter, b.source_location, "mqtt_to_queue", errors);
    check_name(b.destination, b.source_location, "mqtt_to_queue.queue", errors);
    place_in_tenant(b);
  }
  for (auto& b : cfg_.mqtt_to_topic) {
    check_filter(b.filter, b.source_location, "mqtt_to_topic", errors);
    check_name(b.destination, b.source_location, "mqtt_to_topic.topic", errors);
    place_in_tenant(b);
  }
  if (!cfg_.events_queue.empty()) check_name(cfg_.events_queue, cfg_.events_source_location, "events.queue", errors);
  for (auto& b : cfg_.topic_to_mqtt) {
    check_name(b.topic, b.source_location, "topic_to_mqtt.topic", errors);
    // With any routing key of letters and digits the template must give a topic name.
    const auto sample = expand_topic_template(b.mqtt_topic, "key");
    if (!core::is_valid_topic_name(sample) || !mqtt::is_valid_utf8(sample)) {
      errors.push_back(config::error_at(b.source_location,
                                fmt::format("bridge.topic_to_mqtt: '{}' is not an MQTT topic template (expected a "
                                            "topic name without '+' or '#', where {} may stand for a level)",
                                            b.mqtt_topic, routing_key_placeholder)));
      continue;
    }
    place_in_tenant(b);
    if (!mqtt_by_subscription_.emplace(subscription_name(b), &b).second) {
      errors.push_back(config::error_at(b.source_location, fmt::format("bridge.topic_to_mqtt: topic '{}' is bound to '{}' "
                                                               "with the same qos and retain more than once",
                                                               b.topic, b.mqtt_topic)));
    }
  }
  if (cfg_.uplink) add_uplink_bindings(errors);
  if (!errors.empty()) throw config::config_errors(std::move(errors));
}

void bridge::add_uplink_bindings(std::vector<config::config_error>& errors) {
  const auto& u = *cfg_.uplink;
  check_name(u.queue, u.source_location, "uplink.queue", errors);
  if (u.topics.empty()) errors.push_back(config::error_at(u.source_location, "bridge.uplink.topics: expected at least one topic"));
  for (const auto& t : u.topics) {
    for (const auto* prefix : {&t.local_prefix, &t.remote_prefix}) {
      if (prefix->find_first_of("+#") != std::string::npos)
        errors.push_back(config::error_at(t.source_location, fmt::format("bridge.uplink.topics: prefix '{}' must not contain "
                                                                 "'+' or '#'", *prefix)));
    }
    if (t.direction != config::uplink_direction::in) {
      check_filter(t.local_prefix + t.filter, t.source_location, "uplink.topics", errors);
      // Up: the bridge puts matching publishes into the uplink's queue, in the json format
      // the uplink reads back (topic, QoS, retain, properties).
      cfg_.mqtt_to_queue.push_back({.filter = t.local_prefix + t.filter,
                                    .destination = u.queue,
                                    .format = config::bridge_body_format::json,
                                    .group_level = std::nullopt,
                                    .source_location = t.source_location});
    }
    if (t.direction != config::uplink_direction::out)
      check_filter(t.remote_prefix + t.filter, t.source_location, "uplink.topics", errors);
  }
}

bool bridge::empty() const noexcept {
  return cfg_.mqtt_to_queue.empty() && cfg_.mqtt_to_topic.empty() && cfg_.topic_to_mqtt.empty() &&
         cfg_.events_queue.empty() && !cfg_.uplink;
}

void bridge::commands_for(const core::message& m, std::vector<q::command_body>& out) const {
  for (const auto& b : cfg_.mqtt_to_queue) {
    if (!core::topic_matches(b.filter, m.topic)) continue;
    q::send_messages send;
    send.queue = b.destination;
    send.items.push_back({.body = body_for(m, b.format, b.tenant),
                          .delay_seconds = 0,
                          .dedup_key = std::nullopt,
                          .group = b.group_level ? group_of(m.topic, *b.group_level) : std::nullopt});
    out.emplace_back(std::move(send));
  }
  for (const auto& b : cfg_.mqtt_to_topic) {
    if (!core::topic_matches(b.filter, m.topic)) continue;
    q::publish_messages publish;
    publish.topic = b.destination;
    publish.items.push_back({.body = body_for(m, b.format, b.tenant),
                             .tags = {},
                             .routing_key = routing_key_of(std::string_view(m.topic).substr(mount_length(b.tenant)))});
    out.emplace_back(std::move(publish));
  }
}

std::optional<q::command_body> bridge::event_command(const device_event& e) const {
  if (cfg_.events_queue.empty()) return std::nullopt;
  json::object o;
  o["event"] = event_name(e.what);
  o["clientId"] = e.client_id;
  o["time"] = e.time_unix_ms;
  switch (e.what) {
    case device_event::kind::connected:
      o["remoteAddress"] = e.remote_address;
      o["protocolVersion"] = e.protocol_version;
      o["cleanStart"] = e.clean_start;
      o["sessionPresent"] = e.session_present;
      o["sessionExpiryInterval"] = e.session_expiry_s;
      o["keepAlive"] = e.keep_alive_s;
      break;
    case device_event::kind::disconnected:
      if (e.reason_code) o["reasonCode"] = *e.reason_code;
      o["reason"] = e.reason;
      break;
    case device_event::kind::session_expired: break;
    case device_event::kind::will_published:
      if (e.will) {
        o["topic"] = e.will->topic;
        o["qos"] = e.will->qos;
        o["retain"] = e.will->retain;
        put_payload(o, e.will->payload);
      }
      break;
  }
  q::send_messages send;
  send.queue = cfg_.events_queue;
  send.items.push_back({.body = json::serialize(o), .delay_seconds = 0, .dedup_key = std::nullopt, .group = std::nullopt});
  return q::command_body{std::move(send)};
}

void bridge::provision(q::service& queue_core) const {
  q::queue_attribute_changes queue_attributes;
  queue_attributes.max_msg_size = created_max_msg_size;
  std::set<std::string, std::less<>> queues;
  for (const auto& b : cfg_.mqtt_to_queue) queues.insert(b.destination);
  if (!cfg_.events_queue.empty()) queues.insert(cfg_.events_queue);
  if (cfg_.uplink) {
    // The uplink's queue: bounded as configured (also when it exists already), and a short
    // visibility timeout, so a batch that was in flight when wharf stopped goes up again soon
    // (uplink.h).
    const auto& u = *cfg_.uplink;
    q::queue_attribute_changes uplink_attributes = queue_attributes;
    uplink_attributes.max_msg_heap_num = u.max_queued_messages;
    uplink_attributes.visibility_timeout = uplink_visibility_timeout_s;
    require_created(run(queue_core, q::create_queue{u.queue, uplink_attributes}), "queue", u.queue);
    const auto r = run(queue_core, q::set_queue_attributes{u.queue, uplink_attributes});
    if (!r.outcome.ok())
      throw std::runtime_error(fmt::format("bridge: cannot set up the uplink queue '{}': {}", u.queue, r.outcome.message));
    queues.erase(u.queue);
  }
  // A binding that groups by a topic level needs an ordered queue: created so, and one that
  // exists already must be (orderedQueue is fixed at creation).
  std::set<std::string, std::less<>> ordered;
  for (const auto& b : cfg_.mqtt_to_queue)
    if (b.group_level) ordered.insert(b.destination);
  for (const auto& name : queues) {
    q::queue_attribute_changes attributes = queue_attributes;
    if (ordered.contains(name)) attributes.ordered = true;
    require_created(run(queue_core, q::create_queue{name, attributes}), "queue", name);
  }
  if (!ordered.empty()) {
    std::promise<std::vector<std::string>> listed;
    auto plain_future = listed.get_future();
    queue_core.query([&](const q::engine& e, q::time_ms now) {
      std::vector<std::string> plain;
      for (const auto& name : ordered) {
        const auto info = e.queue(name, now);
        if (info && !info->attributes.ordered) plain.push_back(name);
      }
      listed.set_value(std::move(plain));
    });
    if (const auto plain = plain_future.get(); !plain.empty()) {
      throw std::runtime_error(fmt::format(
          "bridge: mqtt_to_queue with group_level needs an ordered queue, and queue '{}' exists and is not "
          "ordered (orderedQueue is fixed when a queue is created: bind another queue, or delete this one)",
          plain.front()));
    }
  }

  // Routing-key topics: MQTT topic levels are the routing key, so subscriptions can bind
  // patterns like "sensors.*.temperature".
  const q::topic_attributes topic_attributes{.max_msg_size = created_max_msg_size,
                                             .filter = q::filter_type::routing_key};
  std::set<std::string, std::less<>> topics;
  for (const auto& b : cfg_.mqtt_to_topic) topics.insert(b.destination);
  for (const auto& b : cfg_.topic_to_mqtt) topics.insert(b.topic);
  for (const auto& name : topics)
    require_created(run(queue_core, q::create_topic{name, topic_attributes}), "topic", name);

  // The mqtt subscriptions there are now, on every topic.
  std::promise<std::vector<std::pair<std::string, std::string>>> listed;
  auto existing_future = listed.get_future();
  queue_core.query([&listed](const q::engine& e, q::time_ms) {
    std::vector<std::pair<std::string, std::string>> found;
    std::size_t total = 0;
    for (const auto& t : e.list_topics(std::nullopt, "", 0, std::numeric_limits<std::size_t>::max(), total)) {
      std::size_t subs = 0;
      for (const auto& s : e.list_subscriptions(t.name, "", 0, std::numeric_limits<std::size_t>::max(), subs))
        if (s.attributes.protocol == q::sub_protocol::mqtt) found.emplace_back(t.name, s.name);
    }
    listed.set_value(std::move(found));
  });
  const auto existing = existing_future.get();

  // New subscriptions first, stale ones after: a message published in between reaches one
  // or the other (or both), never neither.
  for (const auto& b : cfg_.topic_to_mqtt) {
    q::subscription_attributes a;
    a.protocol = q::sub_protocol::mqtt;
    a.endpoint = b.mqtt_topic;
    a.format = q::notify_format::simplified;
    a.strategy = q::notify_strategy::exponential_decay_retry;
    require_created(run(queue_core, q::subscribe{b.topic, subscription_name(b), a}), "subscription of topic",
                    b.topic);
  }
  std::set<std::pair<std::string, std::string>> wanted;
  for (const auto& b : cfg_.topic_to_mqtt) wanted.emplace(b.topic, subscription_name(b));
  for (const auto& [topic, name] : existing) {
    if (wanted.contains({topic, name})) continue;
    log::bridge().info("bridge: removing the MQTT delivery '{}' of topic '{}' (no longer configured)", name, topic);
    const auto r = run(queue_core, q::unsubscribe{topic, name});
    if (!r.outcome.ok() && r.outcome.value != q::code::not_found)
      throw std::runtime_error(fmt::format("bridge: cannot remove subscription '{}': {}", name, r.outcome.message));
  }
}

void bridge::deliver(const q::push_delivery& d, broker& mqtt_broker, std::function<void(bool)> done) const {
  const auto it = mqtt_by_subscription_.find(d.subscription);
  if (it == mqtt_by_subscription_.end()) {
    // A reload is under way (the core has the new subscription, this runner the old rules):
    // the core tries again later.
    log::bridge().debug("bridge: topic '{}' subscription '{}' is not among the bindings in use yet; message {} retried",
                  d.topic, d.subscription, d.msg_id);
    done(false);
    return;
  }
  const auto& binding = *it->second;
  core::message m;
  m.topic = expand_topic_template(binding.mqtt_topic, d.routing_key);
  if (!core::is_valid_topic_name(m.topic) || !mqtt::is_valid_utf8(m.topic)) {
    log::bridge().warn("bridge: routing key '{}' of message {} gives no valid MQTT topic from '{}'; dropped", d.routing_key,
                 d.msg_id, binding.mqtt_topic);
    done(true);
    return;
  }
  m.payload = d.body;
  m.qos = binding.qos;
  m.retain = binding.retain;
  m.user_properties.emplace_back("msgId", d.msg_id);
  mqtt_broker.publish_from_core(std::move(m), std::move(done));
}

}  // namespace wharf::gateway::bridge
