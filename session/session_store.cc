#include "session/session_store.h"

#include "core/binary.h"

namespace wharf::session {
namespace {

constexpr std::uint8_t record_format = 1;
// Session records gained the username and the client's own ACL rules (the ACL's identity of
// a restored session) in format 2; format 1 records, written before, still load with none.
constexpr std::uint8_t session_record_format = 2;

std::string prefixed(char kind, std::string_view client_id) {
  std::string key;
  key.reserve(3 + client_id.size() + 9);
  key.push_back(kind);
  key.push_back('/');
  key.append(client_id);
  key.push_back('\0');
  return key;
}

// The first key after every key that starts with `prefix`.
std::string prefix_end(std::string prefix) {
  // Prefixes here end in '\0', so bumping the last byte to '\1' bounds them.
  prefix.back() = '\1';
  return prefix;
}

// A stored message inside a record: its own encoding (core/message.h), length-prefixed.
void write_message(core::binary::writer& w, const core::message& m) {
  std::string encoded;
  core::encode_message(m, encoded);
  w.le32_bytes(encoded);
}

bool read_message(core::binary::reader& r, core::message& m) {
  const std::string encoded = r.le32_bytes();
  return r.ok() && core::decode_message(encoded, m);
}

}  // namespace

namespace keys {
std::string session(std::string_view client_id) {
  std::string key = "s/";
  key.append(client_id);
  return key;
}
std::string subscription(std::string_view client_id, std::string_view filter) {
  std::string key = prefixed('u', client_id);
  key.append(filter);
  return key;
}
std::string delivery(std::string_view client_id, std::uint64_t seq) {
  std::string key = prefixed('q', client_id);
  core::append_be64(key, seq);
  return key;
}
std::string inbound_qos2(std::string_view client_id, std::uint16_t packet_id) {
  std::string key = prefixed('i', client_id);
  key.push_back(static_cast<char>(packet_id >> 8));
  key.push_back(static_cast<char>(packet_id & 0xFF));
  return key;
}
}  // namespace keys

// The records' integers are fixed-width little-endian and their strings have a 32-bit
// length (core/binary.h's le* forms): the layout they were first written in.
std::string encode_record(const session_record& r) {
  core::binary::writer w;
  w.u8(session_record_format);
  w.u8(r.protocol_version);
  w.le32(r.expiry_interval_s);
  w.le64(static_cast<std::uint64_t>(r.disconnected_unix_ms));
  w.u8(r.pending_will ? 1 : 0);
  if (r.pending_will) {
    write_message(w, *r.pending_will);
    w.le64(static_cast<std::uint64_t>(r.will_due_unix_ms));
  }
  w.u8(r.username ? 1 : 0);
  if (r.username) w.le32_bytes(*r.username);
  w.le32(static_cast<std::uint32_t>(r.rules.size()));
  for (const auto& rule : r.rules) {
    w.u8(static_cast<std::uint8_t>(rule.permission));
    w.u8(static_cast<std::uint8_t>(rule.action));
    w.le32_bytes(rule.topic);
  }
  return w.take();
}

bool decode_record(std::string_view bytes, session_record& out) {
  core::binary::reader r(bytes);
  const std::uint8_t format = r.u8();
  if (!r.ok() || (format != session_record_format && format != 1)) return false;
  out.protocol_version = r.u8();
  out.expiry_interval_s = r.le32();
  out.disconnected_unix_ms = static_cast<std::int64_t>(r.le64());
  const std::uint8_t has_will = r.u8();
  out.pending_will.reset();
  if (has_will) {
    core::message will;
    if (!read_message(r, will)) return false;
    out.will_due_unix_ms = static_cast<std::int64_t>(r.le64());
    out.pending_will = std::move(will);
  }
  out.username.reset();
  out.rules.clear();
  if (format == session_record_format) {
    const std::uint8_t has_username = r.u8();
    if (has_username > 1) return false;
    if (has_username) out.username = r.le32_bytes();
    const std::uint32_t count = r.le32();
    // Each rule takes at least six bytes: a corrupt count cannot make us loop long.
    if (!r.ok() || count > r.remaining() / 6) return false;
    for (std::uint32_t i = 0; i < count; ++i) {
      config::acl_rule rule;
      const std::uint8_t permission = r.u8();
      const std::uint8_t action = r.u8();
      rule.topic = r.le32_bytes();
      if (!r.ok() || permission > 1 || action > 2) return false;
      rule.permission = static_cast<config::acl_permission>(permission);
      rule.action = static_cast<config::acl_action>(action);
      rule.source_location = "token";
      out.rules.push_back(std::move(rule));
    }
  }
  return r.done();
}

std::string encode_subscription(const stored_subscription& s) {
  core::binary::writer w;
  w.u8(record_format);
  w.le32_bytes(s.filter);
  w.u8(s.max_qos);
  w.u8(static_cast<std::uint8_t>((s.no_local ? 1 : 0) | (s.retain_as_published ? 2 : 0)));
  w.u8(s.retain_handling);
  w.le32(s.subscription_id);
  return w.take();
}

bool decode_subscription(std::string_view bytes, stored_subscription& out) {
  core::binary::reader r(bytes);
  if (r.u8() != record_format) return false;
  out.filter = r.le32_bytes();
  out.max_qos = r.u8();
  const std::uint8_t flags = r.u8();
  out.retain_handling = r.u8();
  out.subscription_id = r.le32();
  out.no_local = flags & 1;
  out.retain_as_published = flags & 2;
  return r.done() && out.max_qos <= 2 && out.retain_handling <= 2;
}

std::string encode_delivery(const stored_delivery& d) {
  core::binary::writer w;
  w.u8(record_format);
  write_message(w, d.msg);
  w.le32(static_cast<std::uint32_t>(d.subscription_ids.size()));
  for (auto id : d.subscription_ids) w.le32(id);
  w.le16(d.packet_id);
  w.u8(d.pubrel_sent ? 1 : 0);
  return w.take();
}

bool decode_delivery(std::string_view bytes, stored_delivery& out) {
  core::binary::reader r(bytes);
  if (r.u8() != record_format || !read_message(r, out.msg)) return false;
  const std::uint32_t ids = r.le32();
  if (!r.ok() || ids > 65536) return false;
  out.subscription_ids.resize(ids);
  for (auto& id : out.subscription_ids) id = r.le32();
  out.packet_id = r.le16();
  out.pubrel_sent = r.u8() != 0;
  return r.done();
}

stored_delivery to_stored(const delivery& d) {
  stored_delivery s{*d.msg, d.subscription_ids, d.packet_id, d.pubrel_sent};
  s.msg.qos = d.qos;
  s.msg.retain = d.retain;
  return s;
}

delivery from_stored(stored_delivery&& s) {
  delivery d;
  d.qos = s.msg.qos;
  d.retain = s.msg.retain;
  d.subscription_ids = std::move(s.subscription_ids);
  d.packet_id = s.packet_id;
  d.pubrel_sent = s.pubrel_sent;
  d.msg = std::make_shared<const core::message>(std::move(s.msg));
  return d;
}

void put_session(core::write_batch& batch, std::string_view client_id, const session_record& record) {
  batch.put(keys::session(client_id), encode_record(record));
}
void put_subscription(core::write_batch& batch, std::string_view client_id, const stored_subscription& sub) {
  batch.put(keys::subscription(client_id, sub.filter), encode_subscription(sub));
}
void erase_subscription(core::write_batch& batch, std::string_view client_id, std::string_view filter) {
  batch.erase(keys::subscription(client_id, filter));
}
void put_delivery(core::write_batch& batch, std::string_view client_id, std::uint64_t seq, const stored_delivery& d) {
  batch.put(keys::delivery(client_id, seq), encode_delivery(d));
}
void erase_delivery(core::write_batch& batch, std::string_view client_id, std::uint64_t seq) {
  batch.erase(keys::delivery(client_id, seq));
}
void put_inbound_qos2(core::write_batch& batch, std::string_view client_id, std::uint16_t packet_id) {
  batch.put(keys::inbound_qos2(client_id, packet_id), {});
}
void erase_inbound_qos2(core::write_batch& batch, std::string_view client_id, std::uint16_t packet_id) {
  batch.erase(keys::inbound_qos2(client_id, packet_id));
}

void erase_session_queue(core::write_batch& batch, std::string_view client_id) {
  for (char kind : {'q', 'i'}) {
    std::string begin = prefixed(kind, client_id);
    std::string end = prefix_end(begin);
    batch.erase_range(begin, end);
  }
}

void erase_session(core::write_batch& batch, std::string_view client_id) {
  batch.erase(keys::session(client_id));
  std::string begin = prefixed('u', client_id);
  std::string end = prefix_end(begin);
  batch.erase_range(begin, end);
  erase_session_queue(batch, client_id);
}

void load_sessions(core::storage& db, const std::function<void(loaded_session&&)>& visit,
                   const std::function<void(std::string_view key)>& corrupt) {
  db.scan_prefix("s/", [&](std::string_view key, std::string_view value) {
    loaded_session s;
    s.client_id.assign(key.substr(2));
    if (!decode_record(value, s.record)) {
      corrupt(key);
      return true;
    }
    const std::string sub_prefix = prefixed('u', s.client_id);
    db.scan_prefix(sub_prefix, [&](std::string_view sub_key, std::string_view sub_value) {
      stored_subscription sub;
      if (decode_subscription(sub_value, sub))
        s.subscriptions.push_back(std::move(sub));
      else
        corrupt(sub_key);
      return true;
    });
    const std::string queue_prefix = prefixed('q', s.client_id);
    db.scan_prefix(queue_prefix, [&](std::string_view queue_key, std::string_view queue_value) {
      s.next_seq = core::read_be64(queue_key.substr(queue_prefix.size())) + 1;
      ++s.queued_count;
      s.queued_bytes += queue_value.size();
      return true;
    });
    visit(std::move(s));
    return true;
  });
}

std::vector<std::pair<std::uint64_t, stored_delivery>> load_queue(core::storage& db, std::string_view client_id) {
  std::vector<std::pair<std::uint64_t, stored_delivery>> queue;
  const std::string prefix = prefixed('q', client_id);
  db.scan_prefix(prefix, [&](std::string_view key, std::string_view value) {
    stored_delivery d;
    if (decode_delivery(value, d)) queue.emplace_back(core::read_be64(key.substr(prefix.size())), std::move(d));
    return true;
  });
  return queue;
}

std::vector<std::uint16_t> load_inbound_qos2(core::storage& db, std::string_view client_id) {
  std::vector<std::uint16_t> ids;
  const std::string prefix = prefixed('i', client_id);
  db.scan_prefix(prefix, [&](std::string_view key, std::string_view) {
    if (key.size() == prefix.size() + 2)
      ids.push_back(static_cast<std::uint16_t>((static_cast<std::uint8_t>(key[prefix.size()]) << 8) |
                                               static_cast<std::uint8_t>(key[prefix.size() + 1])));
    return true;
  });
  return ids;
}

}  // namespace wharf::session
