// What one Raft group keeps on disk: its log, its term and vote, and its last snapshot's
// metadata, in the node's storage (core/storage.h) beside the state they replicate.
//
// Keys (group: big-endian u32, so several groups can share a store later; one runs now):
//   gl/<be32 group><be64 index>   a log entry: term, type, data
//   gm/<be32 group>t              current term and vote
//   gm/<be32 group>s              the last snapshot's index, term and configuration
// Index and group are big-endian so a prefix scan returns the log in order.
//
// Writes go into the caller's write_batch: term, vote and entries reach the disk through
// the storage writer's group commit, with whatever else that sync carries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/storage.h"

namespace wharf::core::replication {

// A log entry. `type` is libraft's raft_entry_type: 1 command, 2 barrier, 3 configuration.
struct log_entry {
  std::uint64_t term = 0;
  std::uint8_t type = 1;
  std::string data;
  bool operator==(const log_entry&) const = default;
};

// What a snapshot stands for: the state after applying every entry up to `index`.
// `configuration` is the group's membership then, as raft_configuration_encode writes it.
struct snapshot_meta {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  std::string configuration;
  std::uint64_t configuration_index = 0;
};

// Everything a restarting member needs (libraft's RAFT_START).
struct persisted_state {
  std::uint64_t term = 0;
  std::uint64_t voted_for = 0;
  std::optional<snapshot_meta> snapshot;
  std::uint64_t start_index = 1;  // index of entries[0]
  std::vector<log_entry> entries;
};

class log_store {
 public:
  explicit log_store(std::uint32_t group);

  // The group's state as stored. Throws std::runtime_error on a record that does not
  // decode, or entries that are not contiguous (startup only).
  [[nodiscard]] persisted_state load(storage& store) const;
  // One entry, read from storage (for a follower further behind than memory keeps).
  [[nodiscard]] std::optional<log_entry> read(storage& store, std::uint64_t index) const;

  void put_term_and_vote(write_batch& batch, std::uint64_t term, std::uint64_t voted_for) const;
  void put_entry(write_batch& batch, std::uint64_t index, const log_entry& entry) const;
  // Erases the entries from `index` on (a follower's log conflicting with the leader's).
  void erase_from(write_batch& batch, std::uint64_t index) const;
  // Erases the entries up to and including `index` (covered by a snapshot).
  void erase_through(write_batch& batch, std::uint64_t index) const;
  void put_snapshot(write_batch& batch, const snapshot_meta& meta) const;

  [[nodiscard]] std::string entry_key(std::uint64_t index) const;

 private:
  std::string entry_prefix_;  // "gl/" + group
  std::string meta_prefix_;   // "gm/" + group
};

// The encodings, for the stored records and for tests.
[[nodiscard]] std::string encode_entry(const log_entry& e);
[[nodiscard]] std::optional<log_entry> decode_entry(std::string_view bytes);

}  // namespace wharf::core::replication
