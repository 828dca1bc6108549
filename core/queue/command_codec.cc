// Log entry format of a command (engine.h: encode_command / decode_command).
//
//   u8 format version (2) | u8 command tag | svarint now | the command's fields
//
// Fields are written in declaration order (binary.h: varints, length-prefixed strings);
// an optional is a presence byte then the value; enums are one byte. Tags are fixed per
// command type below and never reused: the log outlives any one build. Decoding rejects
// an unknown version or tag, an out-of-range enum, truncation and trailing bytes.
//
// Version 2 added the queue attribute `ordered` and each send item's `group` (ordered
// queues). Entries and results of version 1 still decode, with those fields absent; a
// build that knows only version 1 refuses version 2 (a cluster is upgraded node by node
// before its leader writes them).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/binary.h"
#include "core/queue/engine.h"
#include "core/queue/engine_impl.h"

namespace wharf::core::queue {
namespace {

constexpr std::uint8_t format_version = 2;
constexpr std::uint8_t batch_format_version = 1;
constexpr std::uint8_t result_format_version = 2;
// The oldest format version each still decodes.
constexpr std::uint8_t oldest_format_version = 1;
constexpr std::uint8_t oldest_result_format_version = 1;

template <class T>
struct tag_of;
#define WHARF_COMMAND_TAG(type, value) \
  template <>                          \
  struct tag_of<type> : std::integral_constant<std::uint8_t, value> {}
WHARF_COMMAND_TAG(create_queue, 1);
WHARF_COMMAND_TAG(set_queue_attributes, 2);
WHARF_COMMAND_TAG(delete_queue, 3);
WHARF_COMMAND_TAG(rewind_queue, 4);
WHARF_COMMAND_TAG(send_messages, 5);
WHARF_COMMAND_TAG(receive_messages, 6);
WHARF_COMMAND_TAG(delete_messages, 7);
WHARF_COMMAND_TAG(redrive_dead_letters, 8);
WHARF_COMMAND_TAG(create_topic, 9);
WHARF_COMMAND_TAG(set_topic_attributes, 10);
WHARF_COMMAND_TAG(delete_topic, 11);
WHARF_COMMAND_TAG(publish_messages, 12);
WHARF_COMMAND_TAG(subscribe, 13);
WHARF_COMMAND_TAG(set_subscription_attributes, 14);
WHARF_COMMAND_TAG(clear_subscription_filter_tags, 15);
WHARF_COMMAND_TAG(unsubscribe, 16);
WHARF_COMMAND_TAG(push_result, 17);
WHARF_COMMAND_TAG(tick, 18);
WHARF_COMMAND_TAG(purge_queue, 19);
WHARF_COMMAND_TAG(put_mqtt_user, 20);
WHARF_COMMAND_TAG(delete_mqtt_user, 21);
WHARF_COMMAND_TAG(put_mqtt_role, 22);
WHARF_COMMAND_TAG(delete_mqtt_role, 23);
#undef WHARF_COMMAND_TAG

using core::binary::reader;
using core::binary::writer;

// A reader that knows the format version of what it reads (fields came with versions).
class versioned_reader : public reader {
 public:
  versioned_reader(std::string_view in, std::uint8_t version) noexcept : reader(in), version_(version) {}
  [[nodiscard]] bool has_version_2_fields() const noexcept { return version_ >= 2; }

  // A reader past the version byte of `bytes` when that version is oldest..newest.
  static std::optional<versioned_reader> open(std::string_view bytes, std::uint8_t oldest, std::uint8_t newest) {
    if (bytes.empty()) return std::nullopt;
    const auto version = static_cast<std::uint8_t>(bytes.front());
    if (version < oldest || version > newest) return std::nullopt;
    return versioned_reader(bytes.substr(1), version);
  }

 private:
  std::uint8_t version_;
};

// ---- field helpers ----------------------------------------------------------------------

template <class Enum>
void put_enum(writer& w, Enum e) {
  w.u8(static_cast<std::uint8_t>(e));
}

// Reads an enum whose valid values are first..last.
template <class Enum>
Enum get_enum(reader& r, Enum first, Enum last) {
  const std::uint8_t v = r.u8();
  if (v < static_cast<std::uint8_t>(first) || v > static_cast<std::uint8_t>(last)) r.fail();
  return r.ok() ? static_cast<Enum>(v) : first;
}

template <class T, class Put>
void put_optional(writer& w, const std::optional<T>& v, Put put) {
  w.boolean(v.has_value());
  if (v) put(*v);
}

template <class T, class Get>
std::optional<T> get_optional(reader& r, Get get) {
  if (!r.boolean()) return std::nullopt;
  return get();
}

void put_u32(writer& w, const std::optional<std::uint32_t>& v) {
  put_optional(w, v, [&](std::uint32_t x) { w.varint(x); });
}
std::optional<std::uint32_t> get_u32(reader& r) {
  return get_optional<std::uint32_t>(r, [&] { return r.u32(); });
}

// ---- per command: put(writer, command) and get(reader, command&) --------------------------

void put(writer& w, const queue_attribute_changes& a) {
  put_optional(w, a.max_msg_heap_num, [&](std::uint64_t x) { w.varint(x); });
  put_u32(w, a.polling_wait_seconds);
  put_u32(w, a.visibility_timeout);
  put_u32(w, a.max_msg_size);
  put_u32(w, a.msg_retention_seconds);
  put_u32(w, a.rewind_seconds);
  put_optional(w, a.dead_letter_queue, [&](const std::string& x) { w.bytes(x); });
  put_optional(w, a.policy, [&](dead_letter_policy x) { put_enum(w, x); });
  put_u32(w, a.max_receive_count);
  put_u32(w, a.max_time_to_live);
  put_u32(w, a.dedup_window_seconds);
  put_optional(w, a.ordered, [&](bool x) { w.boolean(x); });
}
void get(versioned_reader& r, queue_attribute_changes& a) {
  a.max_msg_heap_num = get_optional<std::uint64_t>(r, [&] { return r.varint(); });
  a.polling_wait_seconds = get_u32(r);
  a.visibility_timeout = get_u32(r);
  a.max_msg_size = get_u32(r);
  a.msg_retention_seconds = get_u32(r);
  a.rewind_seconds = get_u32(r);
  a.dead_letter_queue = get_optional<std::string>(r, [&] { return r.bytes(); });
  a.policy = get_optional<dead_letter_policy>(r, [&] {
    return get_enum(r, dead_letter_policy::max_receive_count, dead_letter_policy::max_time_to_live);
  });
  a.max_receive_count = get_u32(r);
  a.max_time_to_live = get_u32(r);
  a.dedup_window_seconds = get_u32(r);
  if (r.has_version_2_fields()) a.ordered = get_optional<bool>(r, [&] { return r.boolean(); });
}

void put(writer& w, const create_queue& c) {
  w.bytes(c.name);
  put(w, c.attributes);
}
void get(versioned_reader& r, create_queue& c) {
  c.name = r.bytes();
  get(r, c.attributes);
}

void put(writer& w, const set_queue_attributes& c) {
  w.bytes(c.name);
  put(w, c.attributes);
}
void get(versioned_reader& r, set_queue_attributes& c) {
  c.name = r.bytes();
  get(r, c.attributes);
}

void put(writer& w, const delete_queue& c) { w.bytes(c.name); }
void get(reader& r, delete_queue& c) { c.name = r.bytes(); }

void put(writer& w, const purge_queue& c) { w.bytes(c.name); }
void get(reader& r, purge_queue& c) { c.name = r.bytes(); }

void put(writer& w, const std::vector<access_rule>& rules) {
  w.varint(rules.size());
  for (const auto& rule : rules) {
    w.boolean(rule.allow);
    put_enum(w, rule.action);
    w.bytes(rule.topic);
  }
}
void get(reader& r, std::vector<access_rule>& rules) {
  const std::uint64_t n = r.varint();
  // Each rule takes at least three bytes: a count beyond the rest is corrupt.
  if (!r.ok() || n > r.remaining()) {
    r.fail();
    return;
  }
  rules.resize(n);
  for (auto& rule : rules) {
    if (!r.ok()) return;
    rule.allow = r.boolean();
    rule.action = get_enum(r, rule_action::publish, rule_action::all);
    rule.topic = r.bytes();
  }
}

void put(writer& w, const mqtt_user& u) {
  w.bytes(u.password_hash);
  w.strings(u.roles);
  put(w, u.rules);
}
void get(reader& r, mqtt_user& u) {
  u.password_hash = r.bytes();
  u.roles = r.strings();
  get(r, u.rules);
}
void put(writer& w, const mqtt_role& role) { put(w, role.rules); }
void get(reader& r, mqtt_role& role) { get(r, role.rules); }

void put(writer& w, const put_mqtt_user& c) {
  w.bytes(c.username);
  put(w, c.user);
}
void get(reader& r, put_mqtt_user& c) {
  c.username = r.bytes();
  get(r, c.user);
}
void put(writer& w, const delete_mqtt_user& c) { w.bytes(c.username); }
void get(reader& r, delete_mqtt_user& c) { c.username = r.bytes(); }
void put(writer& w, const put_mqtt_role& c) {
  w.bytes(c.name);
  put(w, c.role);
}
void get(reader& r, put_mqtt_role& c) {
  c.name = r.bytes();
  get(r, c.role);
}
void put(writer& w, const delete_mqtt_role& c) { w.bytes(c.name); }
void get(reader& r, delete_mqtt_role& c) { c.name = r.bytes(); }

void put(writer& w, const rewind_queue& c) {
  w.bytes(c.name);
  w.svarint(c.start_time_s);
}
void get(reader& r, rewind_queue& c) {
  c.name = r.bytes();
  c.start_time_s = r.svarint();
}

void put(writer& w, const send_messages& c) {
  w.bytes(c.queue);
  w.varint(c.items.size());
  for (const auto& item : c.items) {
    w.bytes(item.body);
    w.varint(item.delay_seconds);
    put_optional(w, item.dedup_key, [&](const std::string& x) { w.bytes(x); });
    put_optional(w, item.group, [&](const std::string& x) { w.bytes(x); });
  }
}
void get(versioned_reader& r, send_messages& c) {
  c.queue = r.bytes();
  const std::uint64_t n = r.varint();
  // Items are decoded one by one; a count larger than the input fails on the way.
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
    send_item item;
    item.body = r.bytes();
    item.delay_seconds = r.u32();
    item.dedup_key = get_optional<std::string>(r, [&] { return r.bytes(); });
    if (r.has_version_2_fields()) item.group = get_optional<std::string>(r, [&] { return r.bytes(); });
    c.items.push_back(std::move(item));
  }
}

void put(writer& w, const receive_messages& c) {
  w.bytes(c.queue);
  w.varint(c.max_messages);
}
void get(reader& r, receive_messages& c) {
  c.queue = r.bytes();
  c.max_messages = r.u32();
}

void put(writer& w, const delete_messages& c) {
  w.bytes(c.queue);
  w.strings(c.receipt_handles);
}
void get(reader& r, delete_messages& c) {
  c.queue = r.bytes();
  c.receipt_handles = r.strings();
}

void put(writer& w, const redrive_dead_letters& c) {
  w.bytes(c.dead_letter_queue);
  w.bytes(c.source_queue);
  w.varint(c.max_messages);
}
void get(reader& r, redrive_dead_letters& c) {
  c.dead_letter_queue = r.bytes();
  c.source_queue = r.bytes();
  c.max_messages = r.u32();
}

void put(writer& w, const create_topic& c) {
  w.bytes(c.name);
  w.varint(c.attributes.max_msg_size);
  put_enum(w, c.attributes.filter);
}
void get(reader& r, create_topic& c) {
  c.name = r.bytes();
  c.attributes.max_msg_size = r.u32();
  c.attributes.filter = get_enum(r, filter_type::tag, filter_type::routing_key);
}

void put(writer& w, const set_topic_attributes& c) {
  w.bytes(c.name);
  put_u32(w, c.max_msg_size);
}
void get(reader& r, set_topic_attributes& c) {
  c.name = r.bytes();
  c.max_msg_size = get_u32(r);
}

void put(writer& w, const delete_topic& c) { w.bytes(c.name); }
void get(reader& r, delete_topic& c) { c.name = r.bytes(); }

void put(writer& w, const publish_messages& c) {
  w.bytes(c.topic);
  w.varint(c.items.size());
  for (const auto& item : c.items) {
    w.bytes(item.body);
    w.strings(item.tags);
    w.bytes(item.routing_key);
  }
}
void get(reader& r, publish_messages& c) {
  c.topic = r.bytes();
  const std::uint64_t n = r.varint();
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
    publish_item item;
    item.body = r.bytes();
    item.tags = r.strings();
    item.routing_key = r.bytes();
    c.items.push_back(std::move(item));
  }
}

void put(writer& w, const subscribe& c) {
  w.bytes(c.topic);
  w.bytes(c.subscription);
  const auto& a = c.attributes;
  put_enum(w, a.protocol);
  w.bytes(a.endpoint);
  put_enum(w, a.strategy);
  put_enum(w, a.format);
  w.strings(a.filter_tags);
  w.strings(a.binding_keys);
}
void get(reader& r, subscribe& c) {
  c.topic = r.bytes();
  c.subscription = r.bytes();
  auto& a = c.attributes;
  a.protocol = get_enum(r, sub_protocol::http, sub_protocol::mqtt);
  a.endpoint = r.bytes();
  a.strategy = get_enum(r, notify_strategy::backoff_retry, notify_strategy::exponential_decay_retry);
  a.format = get_enum(r, notify_format::json, notify_format::simplified);
  a.filter_tags = r.strings();
  a.binding_keys = r.strings();
}

void put(writer& w, const set_subscription_attributes& c) {
  w.bytes(c.topic);
  w.bytes(c.subscription);
  put_optional(w, c.strategy, [&](notify_strategy x) { put_enum(w, x); });
  put_optional(w, c.format, [&](notify_format x) { put_enum(w, x); });
  put_optional(w, c.filter_tags, [&](const std::vector<std::string>& x) { w.strings(x); });
  put_optional(w, c.binding_keys, [&](const std::vector<std::string>& x) { w.strings(x); });
}
void get(reader& r, set_subscription_attributes& c) {
  c.topic = r.bytes();
  c.subscription = r.bytes();
  c.strategy = get_optional<notify_strategy>(r, [&] {
    return get_enum(r, notify_strategy::backoff_retry, notify_strategy::exponential_decay_retry);
  });
  c.format = get_optional<notify_format>(
      r, [&] { return get_enum(r, notify_format::json, notify_format::simplified); });
  c.filter_tags = get_optional<std::vector<std::string>>(r, [&] { return r.strings(); });
  c.binding_keys = get_optional<std::vector<std::string>>(r, [&] { return r.strings(); });
}

void put(writer& w, const clear_subscription_filter_tags& c) {
  w.bytes(c.topic);
  w.bytes(c.subscription);
}
void get(reader& r, clear_subscription_filter_tags& c) {
  c.topic = r.bytes();
  c.subscription = r.bytes();
}

void put(writer& w, const unsubscribe& c) {
  w.bytes(c.topic);
  w.bytes(c.subscription);
}
void get(reader& r, unsubscribe& c) {
  c.topic = r.bytes();
  c.subscription = r.bytes();
}

void put(writer& w, const push_result& c) {
  w.varint(c.delivery_id);
  w.boolean(c.success);
  w.boolean(c.give_up);
  w.svarint(c.retry_delay_ms);
}
void get(reader& r, push_result& c) {
  c.delivery_id = r.varint();
  c.success = r.boolean();
  c.give_up = r.boolean();
  c.retry_delay_ms = r.svarint();
}

void put(writer&, const tick&) {}
void get(reader&, tick&) {}

template <class T>
std::optional<command> decode_body(versioned_reader& r, time_ms now) {
  T body;
  get(r, body);
  if (!r.done()) return std::nullopt;
  return command{now, std::move(body)};
}

template <class T>
std::string encode_value(const T& value) {
  writer w;
  put(w, value);
  return w.take();
}

template <class T>
std::optional<T> decode_value(std::string_view bytes) {
  reader r(bytes);
  T value;
  get(r, value);
  if (!r.done()) return std::nullopt;
  return value;
}

}  // namespace

namespace detail {
std::string encode_mqtt_user(const mqtt_user& user) { return encode_value(user); }
std::optional<mqtt_user> decode_mqtt_user(std::string_view bytes) { return decode_value<mqtt_user>(bytes); }
std::string encode_mqtt_role(const mqtt_role& role) { return encode_value(role); }
std::optional<mqtt_role> decode_mqtt_role(std::string_view bytes) { return decode_value<mqtt_role>(bytes); }
}  // namespace detail

std::string encode_command(const command& cmd) {
  writer w;
  w.u8(format_version);
  std::visit(
      [&](const auto& body) {
        w.u8(tag_of<std::decay_t<decltype(body)>>::value);
        w.svarint(cmd.now);
        put(w, body);
      },
      cmd.body);
  return w.take();
}

std::optional<command> decode_command(std::string_view bytes) {
  auto opened = versioned_reader::open(bytes, oldest_format_version, format_version);
  if (!opened) return std::nullopt;
  versioned_reader& r = *opened;
  const std::uint8_t tag = r.u8();
  const time_ms now = r.svarint();
  if (!r.ok()) return std::nullopt;
  switch (tag) {
    case tag_of<create_queue>::value: return decode_body<create_queue>(r, now);
    case tag_of<set_queue_attributes>::value: return decode_body<set_queue_attributes>(r, now);
    case tag_of<delete_queue>::value: return decode_body<delete_queue>(r, now);
    case tag_of<rewind_queue>::value: return decode_body<rewind_queue>(r, now);
    case tag_of<send_messages>::value: return decode_body<send_messages>(r, now);
    case tag_of<receive_messages>::value: return decode_body<receive_messages>(r, now);
    case tag_of<delete_messages>::value: return decode_body<delete_messages>(r, now);
    case tag_of<redrive_dead_letters>::value: return decode_body<redrive_dead_letters>(r, now);
    case tag_of<create_topic>::value: return decode_body<create_topic>(r, now);
    case tag_of<set_topic_attributes>::value: return decode_body<set_topic_attributes>(r, now);
    case tag_of<delete_topic>::value: return decode_body<delete_topic>(r, now);
    case tag_of<publish_messages>::value: return decode_body<publish_messages>(r, now);
    case tag_of<subscribe>::value: return decode_body<subscribe>(r, now);
    case tag_of<set_subscription_attributes>::value: return decode_body<set_subscription_attributes>(r, now);
    case tag_of<clear_subscription_filter_tags>::value:
      return decode_body<clear_subscription_filter_tags>(r, now);
    case tag_of<unsubscribe>::value: return decode_body<unsubscribe>(r, now);
    case tag_of<push_result>::value: return decode_body<push_result>(r, now);
    case tag_of<tick>::value: return decode_body<tick>(r, now);
    case tag_of<purge_queue>::value: return decode_body<purge_queue>(r, now);
    case tag_of<put_mqtt_user>::value: return decode_body<put_mqtt_user>(r, now);
    case tag_of<delete_mqtt_user>::value: return decode_body<delete_mqtt_user>(r, now);
    case tag_of<put_mqtt_role>::value: return decode_body<put_mqtt_role>(r, now);
    case tag_of<delete_mqtt_role>::value: return decode_body<delete_mqtt_role>(r, now);
    default: return std::nullopt;
  }
}

// A batch: its own format byte, the count, then each command's origin and its encoding
// (encode_command) as length-prefixed strings.
std::string encode_command_batch(const std::vector<origin_command>& commands) {
  writer w;
  w.u8(batch_format_version);
  w.varint(commands.size());
  for (const auto& c : commands) {
    w.bytes(c.origin);
    w.bytes(encode_command(c.cmd));
  }
  return w.take();
}

std::optional<std::vector<origin_command>> decode_command_batch(std::string_view bytes) {
  reader r(bytes);
  if (r.u8() != batch_format_version) return std::nullopt;
  const std::uint64_t n = r.varint();
  // Each command takes at least two bytes: a count beyond the rest is corrupt.
  if (!r.ok() || n > bytes.size()) return std::nullopt;
  std::vector<origin_command> out;
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string origin = r.bytes();
    auto cmd = decode_command(r.bytes_view());
    if (!r.ok() || !cmd) return std::nullopt;
    out.push_back({std::move(origin), std::move(*cmd)});
  }
  if (!r.done()) return std::nullopt;
  return out;
}

std::string encode_result(const result& r) {
  writer w;
  w.u8(result_format_version);
  w.svarint(static_cast<std::int64_t>(r.outcome.value));
  w.bytes(r.outcome.message);
  w.bytes(r.id);
  w.strings(r.msg_ids);
  w.varint(r.messages.size());
  for (const auto& m : r.messages) {
    w.bytes(m.msg_id);
    w.bytes(m.receipt_handle);
    w.bytes(m.body);
    w.svarint(m.enqueue_time_s);
    w.svarint(m.first_dequeue_time_s);
    w.svarint(m.next_visible_time_s);
    w.varint(m.dequeue_count);
    w.bytes(m.group);
  }
  w.varint(r.errors.size());
  for (const auto& e : r.errors) {
    w.svarint(static_cast<std::int64_t>(e.value));
    w.bytes(e.message);
    w.bytes(e.receipt_handle);
  }
  w.varint(r.count);
  return w.take();
}

std::optional<result> decode_result(std::string_view bytes) {
  auto opened = versioned_reader::open(bytes, oldest_result_format_version, result_format_version);
  if (!opened) return std::nullopt;
  versioned_reader& r = *opened;
  result out;
  out.outcome.value = static_cast<code>(r.svarint());
  out.outcome.message = r.bytes();
  out.id = r.bytes();
  out.msg_ids = r.strings();
  const std::uint64_t messages = r.varint();
  // Each message takes at least seven bytes: a count beyond the rest is corrupt.
  if (!r.ok() || messages > bytes.size()) return std::nullopt;
  for (std::uint64_t i = 0; i < messages && r.ok(); ++i) {
    received_message m;
    m.msg_id = r.bytes();
    m.receipt_handle = r.bytes();
    m.body = r.bytes();
    m.enqueue_time_s = r.svarint();
    m.first_dequeue_time_s = r.svarint();
    m.next_visible_time_s = r.svarint();
    m.dequeue_count = r.u32();
    if (r.has_version_2_fields()) m.group = r.bytes();
    out.messages.push_back(std::move(m));
  }
  const std::uint64_t errors = r.varint();
  if (!r.ok() || errors > bytes.size()) return std::nullopt;
  for (std::uint64_t i = 0; i < errors && r.ok(); ++i) {
    item_error e;
    e.value = static_cast<code>(r.svarint());
    e.message = r.bytes();
    e.receipt_handle = r.bytes();
    out.errors.push_back(std::move(e));
  }
  out.count = r.varint();
  if (!r.done()) return std::nullopt;
  return out;
}

}  // namespace wharf::core::queue
