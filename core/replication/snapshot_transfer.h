// Sending a state machine's state to a member behind the trimmed log, and receiving it.
//
// libraft decides when a member needs a snapshot and tells the leader (an InstallSnapshot
// message naming the snapshot's index, term and configuration); the state itself is ours to
// move. The leader freezes its store (storage_view) and sends one key range of it in chunks
// of about chunk_bytes, one at a time: the member acknowledges each before the next leaves,
// so neither side ever holds more than a chunk, whatever the state's size. The member writes
// the chunks into a range_import (files, not memory). After the last chunk the leader sends
// the InstallSnapshot frame; the member swaps the imported state in (commit) and only then
// hands that frame to its replica, which replaces its log with the snapshot.
//
// The state sent is the leader's whole range as it is when the transfer starts: at an
// applied index M at least the snapshot's N (the caller starts a transfer only when its
// state on disk is that far). Entries N+1..M, which the member also receives from the log,
// are in that state already: the member's replica skips them (replica::state_covers).
//
// A transfer that stalls (no acknowledgement for stall_timeout: the member went away, the
// link dropped a chunk) is dropped; libraft asks again, and a new one starts from the
// beginning. Threading: one owner thread, like the replica.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "core/replication/wire.h"
#include "core/storage.h"

namespace wharf::core::replication {

// Sends a frame body of `kind` to member `to` (best effort).
using frame_sender = std::function<void(std::uint64_t to, frame_kind kind, std::string body)>;

struct snapshot_transfer_options {
  std::string range_begin;  // the state: keys in [range_begin, range_end)
  std::string range_end;
  // A chunk holds keys up to about this many bytes (at least one key). Default: 1 MiB.
  std::size_t chunk_bytes = 1u << 20;
  // A transfer with no acknowledgement for this long is dropped. Default: 10 s.
  std::chrono::milliseconds stall_timeout{10000};
};

struct snapshot_transfer_stats {
  std::uint64_t sent = 0;        // states sent whole (the InstallSnapshot frame followed)
  std::uint64_t bytes_sent = 0;  // keys and values, chunk after chunk
  std::uint64_t abandoned = 0;   // transfers dropped: stalled, refused, or leadership lost
  std::uint64_t received = 0;    // states swapped in
  std::uint64_t bytes_received = 0;
};

// The leader's side: one transfer per member at a time.
class snapshot_sender {
 public:
  snapshot_sender(snapshot_transfer_options options, frame_sender send);

  // Whether a transfer to `to` of a state that covers snapshot `index` goes on (and has not
  // stalled): then another request for it is already being served.
  [[nodiscard]] bool sending(std::uint64_t to, std::uint64_t index, std::chrono::steady_clock::time_point now);
  // Starts sending the state in `state` (a frozen view of the store), at applied index
  // `state_index` (>= `index`), to `to`, then `install` (a Raft frame body). Replaces a
  // transfer to `to`.
  void start(std::uint64_t to, std::uint64_t index, std::unique_ptr<storage_view> state, std::uint64_t state_index,
             std::string install, std::chrono::steady_clock::time_point now);
  // A snapshot_ack frame from `from`.
  void on_ack(std::uint64_t from, std::string_view body, std::chrono::steady_clock::time_point now);
  // Drops every transfer (this member stopped leading).
  void stop_all();

  [[nodiscard]] const snapshot_transfer_stats& stats() const noexcept { return stats_; }

 private:
  struct transfer {
    std::uint64_t index = 0;
    std::uint64_t state_index = 0;
    std::unique_ptr<storage_view> view;
    std::string next_key;  // where the next chunk starts
    std::uint64_t seq = 0;  // of the chunk awaiting its acknowledgement
    bool last_sent = false;
    std::string install;
    std::chrono::steady_clock::time_point last_progress;
  };
  void send_chunk(std::uint64_t to, transfer& t);

  snapshot_transfer_options options_;
  frame_sender send_;
  std::map<std::uint64_t, transfer> transfers_;  // by member
  snapshot_transfer_stats stats_;
};

// A member's side: the one state coming in.
class snapshot_receiver {
 public:
  snapshot_receiver(storage& store, snapshot_transfer_options options, frame_sender send);

  // A snapshot_chunk frame from `from`. `own_state_index`: the applied index of the state
  // this member holds; a state that is not ahead of it is acknowledged but not kept.
  void on_chunk(std::uint64_t from, std::string_view body, std::uint64_t own_state_index);

  // The InstallSnapshot frame for snapshot `index` came from `from`: whether the state for
  // it arrived whole.
  [[nodiscard]] bool complete(std::uint64_t from, std::uint64_t index) const;
  // Swaps the state that arrived whole in (when it was kept). Returns its state index (0:
  // none was kept), or the error: after one, what the range holds is unknown until a
  // restart (which finishes a swap that had begun) and the caller must stop.
  // REQUIRES: complete(), and no write into the range queued or in flight.
  [[nodiscard]] std::uint64_t swap_in(std::error_code& ec);

  [[nodiscard]] const snapshot_transfer_stats& stats() const noexcept { return stats_; }

 private:
  struct incoming {
    std::uint64_t from = 0;
    std::uint64_t index = 0;
    std::uint64_t state_index = 0;
    std::uint64_t next_seq = 0;
    bool done = false;
    std::string last_key;
    std::unique_ptr<range_import> import;  // null: the state is not ahead of ours
  };
  void refuse(std::uint64_t from, std::uint64_t index, std::uint64_t seq, std::string_view why);

  storage& store_;
  snapshot_transfer_options options_;
  frame_sender send_;
  std::optional<incoming> in_;
  snapshot_transfer_stats stats_;
};

}  // namespace wharf::core::replication
