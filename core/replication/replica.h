// One member of a Raft group: libraft's sans-I/O core (raft_step) driven by wharf's own I/O.
// libraft decides elections, log matching and commits; this class does what libraft leaves
// to its user: it persists term, vote and entries through the node's storage (group
// commit), sends and receives messages through its host, keeps the log that libraft does
// not keep (libraft holds only indexes and terms), applies committed entries in order, and
// tells libraft what became durable.
//
// Contract with libraft (0.22; the reasons are in docs/ARCHITECTURE.md, "Replication"):
// - A new term or vote is durable before any message leaves: while such a write is in
//   flight every outgoing message waits, in order, and goes when it completes.
// - Entries may be sent before they are durable here (the leader writes its log in parallel
//   with its followers); libraft hears of them (RAFT_PERSISTED_ENTRIES) only once they are,
//   and only for entries still in the log (a write that completes after a truncation
//   reports the prefix that survived).
// - Every committed entry is applied once, in index order; a configuration entry also
//   goes back to libraft (RAFT_CONFIGURATION) once committed.
//
// Threading: one owner. Every call, and every host callback, happens on the thread that
// owns the replica (the queue core's thread, or a test's scheduler).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/replication/log_store.h"
#include "core/replication/wire.h"
#include "core/storage.h"

struct raft;
struct raft_update;
struct raft_event;

namespace wharf::core::replication {

struct server {
  std::uint64_t id = 0;
  std::string address;  // where its peer listener is ("host:port")
};

enum class role : std::uint8_t { unavailable, follower, candidate, leader };
[[nodiscard]] const char* to_string(role r) noexcept;

// Entry types, as libraft numbers them.
enum class entry_type : std::uint8_t { command = 1, barrier = 2, configuration = 3 };

struct replica_options {
  std::uint32_t group = 0;
  std::uint64_t id = 0;         // this member, > 0
  std::string address;          // this member's peer address
  // The initial voters, the same list on every member: a member with an empty store that
  // is one of them writes the group's first entry (this configuration) and starts.
  // Empty, or not naming this member: it waits to be added by the leader.
  std::vector<server> bootstrap;
  // libraft's timing: a follower that hears no leader for between 1 and 2 election timeouts
  // stands for election; a leader sends a heartbeat every heartbeat timeout.
  std::uint32_t election_timeout_ms = 1000;
  std::uint32_t heartbeat_timeout_ms = 100;
  std::uint32_t install_snapshot_timeout_ms = 30000;
  // Entries sent to one follower and not yet acknowledged, at most.
  std::uint32_t max_inflight_entries = 16;
  std::uint32_t seed = 0;  // election timer randomness; 0: from std::random_device
  // Applied entries kept in memory for followers that lag a little; older ones are read
  // back from storage when a follower needs them.
  std::size_t applied_entries_in_memory = 1024;
  // ... and fewer while the log in memory holds more bytes than this (large messages).
  std::size_t applied_bytes_in_memory = 64u << 20;
};

// What the replica needs from the node it runs in. Called on the replica's thread.
class replica_host {
 public:
  virtual ~replica_host() = default;
  // Monotonic milliseconds (never going back).
  [[nodiscard]] virtual std::uint64_t now_ms() = 0;
  // Call replica::timeout() at `at_ms` (a later call replaces an earlier one).
  virtual void arm_timer(std::uint64_t at_ms) = 0;
  // Sends a Raft frame body (wire.h, frame_kind::raft) to member `to`. Best effort: a lost
  // message is Raft's to repeat.
  virtual void send(std::uint64_t to, const std::string& address, std::string body) = 0;
  // Makes `batch` durable; `done` runs later on the replica's thread (never inside write).
  virtual void write(write_batch batch, std::function<void(std::error_code)> done) = 0;
  // A committed entry, in index order, once. Barrier and configuration entries come too.
  virtual void apply(std::uint64_t index, const log_entry& entry) = 0;
  // The member's role or the leader it knows changed (leader_id 0: none known).
  virtual void role_changed(role now, std::uint64_t leader_id) = 0;
  // The member stopped for good (its log could not be written, or libraft refused an
  // event; `why` is the error): nothing it was asked to commit after this will be.
  virtual void member_failed(const std::string& why) = 0;
  // A configuration committed: the group's members now (this one among them, or not once
  // it was removed). Where to send is theirs to know from here on.
  virtual void members_changed(const std::vector<server>& members) { (void)members; }
  // As leader: member `to` lacks entries the log no longer holds and needs a snapshot. The
  // host sends it its state machine's state by its own means (a state that covers at least
  // `index`, the last snapshot's), and then `install` as a Raft frame body, as send() would.
  // Until that frame arrives the member waits; libraft asks again (this call repeats, about
  // every heartbeat) while the member has not caught up: a transfer already under way to
  // `to` goes on. On the member, the host puts the state in place before it hands the frame
  // to receive(), and calls state_covers() (snapshot_install_index() tells such a frame).
  virtual void send_snapshot(std::uint64_t to, std::uint64_t index, std::string install) = 0;
};

// How far a member's log matches the leader's (known on the leader only).
struct member_progress {
  std::uint64_t id = 0;
  std::uint64_t match_index = 0;
};

struct replica_status {
  std::uint64_t id = 0;  // this member
  role current = role::unavailable;
  std::uint64_t leader_id = 0;
  std::uint64_t term = 0;
  std::uint64_t commit_index = 0;
  // The highest commit index a leader told this member (the commit index itself on the
  // leader): a member far below it has not caught up, even where its own commit index,
  // which only counts entries it holds, says nothing is left to apply.
  std::uint64_t leader_commit = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t last_index = 0;
  std::vector<server> configuration;  // the members libraft knows now
  std::vector<std::uint64_t> voters;
  std::vector<member_progress> progress;  // on the leader: every other member's match index
  std::uint64_t transferee = 0;           // on the leader: the member leadership goes to, if any
  std::uint64_t joining = 0;              // on the leader: a member being added, not yet a voter
};

class replica {
 public:
  // Prepares a member over `store`; start() loads its state. Throws std::invalid_argument for
  // an id of 0.
  replica(replica_options options, storage& store, replica_host& host);
  ~replica();
  replica(const replica&) = delete;
  replica& operator=(const replica&) = delete;

  // Starts the member. Entries up to `applied_index` (the state machine's own, durable
  // applied index) are not applied again. A member with nothing stored that is one of the
  // bootstrap voters begins the group's log: with the configuration as entry 1, or, when
  // its state machine already holds a state (applied_index > 0: a store from before it was
  // replicated), with that state as the group's first snapshot.
  void start(std::uint64_t applied_index);
  // A Raft frame body from member `from`.
  void receive(std::uint64_t from, std::string_view body);
  // The snapshot index of a frame body that installs a snapshot; nullopt for any other.
  [[nodiscard]] static std::optional<std::uint64_t> snapshot_install_index(std::string_view body);
  // The state machine's state now covers every entry up to `index` (a state received from
  // the leader was put in place): those entries are not applied again.
  void state_covers(std::uint64_t index);
  // The timer armed through replica_host::arm_timer fired.
  void timeout();

  // As leader: appends an entry; returns its index and term, or nullopt when this member
  // is not the leader (or is handing leadership over). The entry is committed when apply()
  // gives that index with that term; another term at that index means it was lost.
  struct proposal {
    std::uint64_t index = 0;
    std::uint64_t term = 0;
  };
  [[nodiscard]] std::optional<proposal> propose(entry_type type, std::string data);

  // As leader: hands leadership to voter `to` (0: the most up-to-date other voter). libraft
  // tells it to stand for election at once when its log matches, else once it has caught
  // up (within an election timeout, or the transfer lapses); proposals are refused
  // meanwhile. Returns why it was refused (not the leader, a transfer under way, `to` not
  // another voter); nothing changes then.
  [[nodiscard]] std::optional<std::string> transfer_leadership(std::uint64_t to);

  // As leader: adds `member` to the group. It joins without a vote and is sent the log
  // (libraft's catch-up rounds); once it has caught up, a second configuration entry makes
  // it a voter (status().joining until then). A member that does not catch up stays without
  // a vote (logged; remove it or add it again). Returns why it was refused (not the leader,
  // already a member, a membership change under way); nothing changes then. A member behind
  // the trimmed log is sent a snapshot first (replica_host::send_snapshot).
  [[nodiscard]] std::optional<std::string> add_member(const server& member);
  // As leader: removes member `id` (this one too: it leads until the change commits, then
  // steps down). Same refusals, and the last voter is never removed.
  [[nodiscard]] std::optional<std::string> remove_member(std::uint64_t id);

  // Tells libraft that the state machine's state at `index` is a snapshot (the host keeps
  // it: its state on disk, written before this call, covers every entry up to `index`), and
  // trims the log to `trailing` entries behind it, in memory and on disk. A member that
  // falls further behind than the trimmed log is sent the state (replica_host::send_snapshot).
  // REQUIRES: index <= the applied index, above the last snapshot's.
  void take_snapshot(std::uint64_t index, std::uint64_t trailing);
  [[nodiscard]] std::uint64_t snapshot_index() const noexcept { return snapshot_index_; }

  [[nodiscard]] replica_status status() const;
  [[nodiscard]] bool is_leader() const;
  // The leader this member knows (0: none), and the last entry it applied.
  [[nodiscard]] std::uint64_t leader_id() const noexcept { return last_leader_; }
  [[nodiscard]] std::uint64_t applied_index() const noexcept { return applied_; }
  [[nodiscard]] std::uint64_t id() const noexcept { return options_.id; }

 private:
  struct write_in_flight;
  void bootstrap_if_empty(std::uint64_t applied_index);
  void step(raft_event& event);
  // Submits one entry as leader; libraft's code (0: appended).
  int submit(entry_type type, const std::string& data);
  // Each member of the current configuration with its role, and `id` given `role` (-1:
  // left out).
  std::optional<std::string> submit_configuration(std::uint64_t id, const std::string& address, int role);
  void advance_join();
  void members_changed(const std::string& encoded_configuration);
  void process(raft_update& update);
  void persist_entries(std::uint64_t first_index, const void* entries, unsigned n, write_batch& batch);
  // A snapshot libraft installs (its state already in place): the log goes, the snapshot's
  // metadata is written, then libraft hears it is persisted.
  void persist_installed_snapshot(void* update_snapshot);
  void offer_snapshot(const void* message);
  void send_or_hold(std::uint64_t to, std::string body);
  void flush_held_messages();
  void on_written(const write_in_flight& w, std::error_code ec);
  void apply_committed();
  void stop_member(const std::string& why, std::string_view what);
  void drain_follow_ups();
  void trim_memory();
  [[nodiscard]] const log_entry* entry_at(std::uint64_t index);
  [[nodiscard]] std::string encode_outgoing(const void* message);
  const std::string& address_of(std::uint64_t id);

  replica_options options_;
  storage& store_;
  replica_host& host_;
  log_store log_;
  std::unique_ptr<::raft> raft_;
  bool started_ = false;
  bool failed_ = false;

  // The log from mem_first_ on (libraft keeps no payloads), and its payloads' bytes.
  std::deque<log_entry> mem_;
  std::uint64_t mem_first_ = 1;
  std::size_t mem_bytes_ = 0;
  void mem_push_back(log_entry e);
  void mem_pop_front();
  void mem_pop_back();
  void mem_clear();
  log_entry read_back_;  // an entry read from storage for entry_at()

  std::uint64_t applied_ = 0;
  // Entries up to here are in the state machine's own state already (it was durable at
  // start, or a snapshot's state was installed): they are not applied again.
  std::uint64_t covered_by_state_ = 0;
  std::uint64_t snapshot_index_ = 0;
  // The group's configurations by the index that set them (the last snapshot's, then every
  // applied configuration entry): a snapshot records the one in force at its index.
  std::map<std::uint64_t, std::string> configurations_;

  // Outgoing messages wait here while a term or vote write is in flight.
  std::deque<std::pair<std::uint64_t, std::string>> held_;
  std::size_t term_writes_in_flight_ = 0;
  // Events to step once the current one is processed (configurations committed).
  std::deque<std::function<void()>> follow_ups_;
  bool stepping_ = false;

  // A member being added: its catch-up started (after the entry adding it committed), and
  // then promoted to voter.
  std::uint64_t joining_ = 0;
  bool catch_up_started_ = false;

  std::uint64_t leader_commit_ = 0;  // replica_status::leader_commit, as followers hear it
  role last_role_ = role::unavailable;
  std::uint64_t last_leader_ = 0;
  std::map<std::uint64_t, std::string> addresses_;
};

}  // namespace wharf::core::replication
