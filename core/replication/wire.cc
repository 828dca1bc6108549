#include "core/replication/wire.h"

#include <limits>

#include "core/binary.h"
#include "core/storage.h"

namespace wharf::core::replication {
namespace {

using binary::reader;
using binary::writer;

constexpr std::uint8_t hello_format = 1;
constexpr std::uint8_t raft_format = 1;

enum : std::uint8_t {
  append_entries = 1,
  append_entries_result = 2,
  request_vote = 3,
  request_vote_result = 4,
  install_snapshot = 5,
  timeout_now = 6,
};

std::uint16_t u16_of(reader& r) {
  const std::uint64_t v = r.varint();
  if (v > std::numeric_limits<std::uint16_t>::max()) r.fail();
  return static_cast<std::uint16_t>(v);
}

std::uint32_t read_be32(std::string_view b) {
  return (std::uint32_t{static_cast<unsigned char>(b[0])} << 24) |
         (std::uint32_t{static_cast<unsigned char>(b[1])} << 16) |
         (std::uint32_t{static_cast<unsigned char>(b[2])} << 8) | std::uint32_t{static_cast<unsigned char>(b[3])};
}

}  // namespace

void append_frame(std::string& out, frame_kind kind, std::uint32_t group, std::string_view body) {
  append_be32(out, static_cast<std::uint32_t>(1 + 4 + body.size()));
  out.push_back(static_cast<char>(kind));
  append_be32(out, group);
  out.append(body);
}

frame_split split_frame(std::string_view in) {
  frame_split s;
  if (in.size() < 4) return s;
  const std::uint32_t length = read_be32(in);
  if (length < 5 || std::size_t{length} + 4 > max_frame_bytes) {
    s.bad = true;
    return s;
  }
  if (in.size() < std::size_t{length} + 4) return s;
  const auto kind = static_cast<std::uint8_t>(in[4]);
  if (kind < static_cast<std::uint8_t>(frame_kind::hello) || kind > static_cast<std::uint8_t>(frame_kind::snapshot_ack)) {
    s.bad = true;
    return s;
  }
  s.got = frame{static_cast<frame_kind>(kind), read_be32(in.substr(5)), in.substr(frame_header_bytes, length - 5)};
  s.consumed = std::size_t{length} + 4;
  return s;
}

std::string encode_hello(const hello& h) {
  writer w;
  w.u8(hello_format);
  w.varint(h.node_id);
  w.bytes(h.cluster);
  return w.take();
}

std::optional<hello> decode_hello(std::string_view body) {
  reader r(body);
  hello h;
  const bool format_ok = r.u8() == hello_format;
  h.node_id = r.varint();
  h.cluster = r.bytes();
  if (!format_ok || !r.done() || h.node_id == 0) return std::nullopt;
  return h;
}

std::string encode_raft(const raft_frame& m) {
  writer w;
  w.u8(raft_format);
  w.u8(m.type);
  w.u8(m.version);
  w.varint(m.term);
  switch (m.type) {
    case request_vote:
      w.varint(m.candidate_id);
      w.varint(m.last_log_index);
      w.varint(m.last_log_term);
      w.boolean(m.disrupt_leader);
      w.boolean(m.pre_vote);
      break;
    case request_vote_result:
      w.boolean(m.vote_granted);
      w.boolean(m.pre_vote);
      w.varint(m.features);
      w.varint(m.capacity);
      break;
    case append_entries:
      w.varint(m.prev_log_index);
      w.varint(m.prev_log_term);
      w.varint(m.leader_commit);
      w.varint(m.entries.size());
      for (const auto& e : m.entries) {
        w.varint(e.term);
        w.u8(e.type);
        w.bytes(e.data);
      }
      break;
    case append_entries_result:
      w.varint(m.rejected);
      w.varint(m.last_log_index);
      w.varint(m.features);
      w.varint(m.capacity);
      break;
    case install_snapshot:
      w.varint(m.snapshot_index);
      w.varint(m.snapshot_term);
      w.bytes(m.configuration);
      w.varint(m.configuration_index);
      w.bytes(m.data);
      break;
    case timeout_now:
      w.varint(m.last_log_index);
      w.varint(m.last_log_term);
      break;
    default:
      break;
  }
  return w.take();
}

std::optional<raft_frame> decode_raft(std::string_view body) {
  reader r(body);
  raft_frame m;
  if (r.u8() != raft_format) return std::nullopt;
  m.type = r.u8();
  m.version = r.u8();
  m.term = r.varint();
  switch (m.type) {
    case request_vote:
      m.candidate_id = r.varint();
      m.last_log_index = r.varint();
      m.last_log_term = r.varint();
      m.disrupt_leader = r.boolean();
      m.pre_vote = r.boolean();
      break;
    case request_vote_result:
      m.vote_granted = r.boolean();
      m.pre_vote = r.boolean();
      m.features = u16_of(r);
      m.capacity = u16_of(r);
      break;
    case append_entries: {
      m.prev_log_index = r.varint();
      m.prev_log_term = r.varint();
      m.leader_commit = r.varint();
      const std::uint64_t n = r.varint();
      // Each entry takes at least three bytes: a count beyond the rest is corrupt.
      if (n > body.size()) return std::nullopt;
      m.entries.reserve(n);
      for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
        wire_entry e;
        e.term = r.varint();
        e.type = r.u8();
        e.data = r.bytes();
        // libraft aborts on an empty configuration entry rather than refusing it.
        if (e.term == 0 || e.type < 1 || e.type > 3 || (e.type == 3 && e.data.empty())) return std::nullopt;
        m.entries.push_back(std::move(e));
      }
      break;
    }
    case append_entries_result:
      m.rejected = r.varint();
      m.last_log_index = r.varint();
      m.features = u16_of(r);
      m.capacity = u16_of(r);
      break;
    case install_snapshot:
      m.snapshot_index = r.varint();
      m.snapshot_term = r.varint();
      m.configuration = r.bytes();
      m.configuration_index = r.varint();
      m.data = r.bytes();
      // libraft aborts on an empty configuration or a zero index or term; a peer that sends
      // one is broken.
      if (m.configuration.empty() || m.snapshot_index == 0 || m.snapshot_term == 0) return std::nullopt;
      break;
    case timeout_now:
      m.last_log_index = r.varint();
      m.last_log_term = r.varint();
      break;
    default:
      return std::nullopt;
  }
  if (!r.done()) return std::nullopt;
  return m;
}

constexpr std::uint8_t snapshot_chunk_format = 1;
constexpr std::uint8_t snapshot_ack_format = 1;

std::string encode_snapshot_chunk(const snapshot_chunk& c) {
  writer w;
  w.u8(snapshot_chunk_format);
  w.varint(c.snapshot_index);
  w.varint(c.state_index);
  w.varint(c.seq);
  w.boolean(c.last);
  w.varint(c.items.size());
  for (const auto& [key, value] : c.items) {
    w.bytes(key);
    w.bytes(value);
  }
  return w.take();
}

std::optional<snapshot_chunk> decode_snapshot_chunk(std::string_view body) {
  reader r(body);
  if (r.u8() != snapshot_chunk_format) return std::nullopt;
  snapshot_chunk c;
  c.snapshot_index = r.varint();
  c.state_index = r.varint();
  c.seq = r.varint();
  c.last = r.boolean();
  const std::uint64_t n = r.varint();
  // Each item takes at least two bytes: a count beyond the rest is corrupt.
  if (!r.ok() || n > body.size()) return std::nullopt;
  c.items.reserve(n);
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
    std::string key = r.bytes();
    std::string value = r.bytes();
    // Keys ascend within a chunk (and from chunk to chunk: the receiver checks that).
    if (key.empty() || (!c.items.empty() && key <= c.items.back().first)) return std::nullopt;
    c.items.emplace_back(std::move(key), std::move(value));
  }
  if (!r.done() || c.snapshot_index == 0 || c.state_index < c.snapshot_index) return std::nullopt;
  return c;
}

std::string encode_snapshot_ack(const snapshot_ack& a) {
  writer w;
  w.u8(snapshot_ack_format);
  w.varint(a.snapshot_index);
  w.varint(a.seq);
  w.boolean(a.accepted);
  return w.take();
}

std::optional<snapshot_ack> decode_snapshot_ack(std::string_view body) {
  reader r(body);
  if (r.u8() != snapshot_ack_format) return std::nullopt;
  snapshot_ack a;
  a.snapshot_index = r.varint();
  a.seq = r.varint();
  a.accepted = r.boolean();
  if (!r.done()) return std::nullopt;
  return a;
}

}  // namespace wharf::core::replication
