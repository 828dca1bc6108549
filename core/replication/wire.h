// The peer links' wire format (sans-I/O: bytes in, structs out, and back). A link carries
// frames:
//
//   frame   := u32 length (big-endian, of what follows) | u8 kind | u32 group (big-endian) | body
//
// `group` names the Raft group a frame belongs to (one runs now; the field leaves room for
// more). Bodies are core/binary.h encodings: varints and length-prefixed strings. A decoder
// returns nullopt for anything malformed: a peer link closes on it and reconnects.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::core::replication {

enum class frame_kind : std::uint8_t {
  hello = 1,    // the first frame each side sends: who it is
  raft = 2,     // a Raft message (raft_frame)
  request = 3,  // a follower hands a client's request to the leader (forwarded_request)
  answer = 4,   // the leader's answer to a forwarded request
  snapshot_chunk = 5,  // the leader sends part of its state to a member behind the log
  snapshot_ack = 6,    // the member took (or refused) a chunk: the next may come
};

// A frame's header and its undecoded body.
struct frame {
  frame_kind kind = frame_kind::raft;
  std::uint32_t group = 0;
  std::string_view body;
};

// Frames bigger than this (header included) are refused: a peer that sends one is broken.
inline constexpr std::size_t max_frame_bytes = 256u << 20;
inline constexpr std::size_t frame_header_bytes = 4 + 1 + 4;

// Appends a frame to `out`.
void append_frame(std::string& out, frame_kind kind, std::uint32_t group, std::string_view body);

// Splits complete frames off the front of `in`. Returns the first one and how many bytes it
// took (0: incomplete, wait for more); nullopt with `bad` set when the bytes are not a frame
// (unknown kind, or longer than max_frame_bytes).
struct frame_split {
  std::optional<frame> got;
  std::size_t consumed = 0;
  bool bad = false;
};
[[nodiscard]] frame_split split_frame(std::string_view in);

// hello: the sender's node id and its cluster's name (both sides must agree on it).
struct hello {
  std::uint64_t node_id = 0;
  std::string cluster;
};
[[nodiscard]] std::string encode_hello(const hello& h);
[[nodiscard]] std::optional<hello> decode_hello(std::string_view body);

// One log entry on the wire.
struct wire_entry {
  std::uint64_t term = 0;
  std::uint8_t type = 1;  // raft_entry_type
  std::string data;
};

// A Raft message as libraft's struct raft_message has it, flattened: `type` says which
// fields mean something (raft_message_type: 1 AppendEntries, 2 its result, 3 RequestVote,
// 4 its result, 5 InstallSnapshot, 6 TimeoutNow).
struct raft_frame {
  std::uint8_t type = 0;
  std::uint8_t version = 0;
  std::uint64_t term = 0;
  // RequestVote
  std::uint64_t candidate_id = 0;
  std::uint64_t last_log_index = 0;  // also AppendEntries result, TimeoutNow
  std::uint64_t last_log_term = 0;   // also TimeoutNow
  bool disrupt_leader = false;
  bool pre_vote = false;             // also RequestVote result
  // RequestVote result
  bool vote_granted = false;
  std::uint16_t features = 0;  // also AppendEntries result
  std::uint16_t capacity = 0;  // also AppendEntries result
  // AppendEntries
  std::uint64_t prev_log_index = 0;
  std::uint64_t prev_log_term = 0;
  std::uint64_t leader_commit = 0;
  std::vector<wire_entry> entries;
  // AppendEntries result
  std::uint64_t rejected = 0;
  // InstallSnapshot
  std::uint64_t snapshot_index = 0;
  std::uint64_t snapshot_term = 0;
  std::string configuration;  // raft_configuration_encode'd
  std::uint64_t configuration_index = 0;
  std::string data;
};
[[nodiscard]] std::string encode_raft(const raft_frame& m);
[[nodiscard]] std::optional<raft_frame> decode_raft(std::string_view body);

// Part of a state sent to a member that needs a snapshot: keys in ascending order, chunk
// after chunk (`seq` from 0), the last one marked. `snapshot_index` is the Raft snapshot it
// stands for; `state_index` the applied index the state is at (at least the former).
struct snapshot_chunk {
  std::uint64_t snapshot_index = 0;
  std::uint64_t state_index = 0;
  std::uint64_t seq = 0;
  bool last = false;
  std::vector<std::pair<std::string, std::string>> items;
};
[[nodiscard]] std::string encode_snapshot_chunk(const snapshot_chunk& c);
[[nodiscard]] std::optional<snapshot_chunk> decode_snapshot_chunk(std::string_view body);

struct snapshot_ack {
  std::uint64_t snapshot_index = 0;
  std::uint64_t seq = 0;
  bool accepted = false;  // false: the member gave the transfer up (the leader stops it)
};
[[nodiscard]] std::string encode_snapshot_ack(const snapshot_ack& a);
[[nodiscard]] std::optional<snapshot_ack> decode_snapshot_ack(std::string_view body);

}  // namespace wharf::core::replication
