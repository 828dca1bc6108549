// The queue core's executor: owns the engine and the Raft group member that replicates it
// on one thread. The leader turns requests from any thread into commands, proposes each
// turn's commands as one log entry, and answers each command with the result of applying
// it once the entry is committed (a majority has it on disk: a one-member group, on this
// node's disk). Every member applies committed entries to its own engine. The leader also
// keeps long-polling receives waiting without a thread each, runs housekeeping ticks and
// hands due HTTP pushes to a push sender; every member keeps the message trace of what it
// applies (message_trace.h).
//
// Threading: all public methods are thread-safe (they post to the service's own
// io_context). Callbacks run on the service thread: they must be short (typically a post to
// the caller's executor) and must not call back into the service synchronously.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/queue/engine.h"
#include "core/queue/message_trace.h"
#include "core/queue/types.h"
#include "core/replication/replica.h"
#include "core/replication/snapshot_transfer.h"
#include "core/storage.h"

namespace boost::asio::ssl {
class context;
}

namespace wharf::core::queue {

// The Raft group the queue core runs in. Default: this node alone (a group of one voter,
// which commits what its own disk holds).
struct replication_options {
  std::uint64_t node_id = 1;
  std::string address;                           // this member's peer address (the others reach it there)
  std::string bind;                              // where it listens for them; empty: `address`
  std::string cluster = "wharf";                 // the group's name; members of another are refused
  std::vector<replication::server> voters;       // the initial voters; empty: this node alone
  std::uint32_t election_timeout_ms = 1000;      // Default: 1 s.
  std::uint32_t heartbeat_timeout_ms = 100;      // Default: 100 ms.
  // A request that finds no leader waits this long for one, then gets code 6000 ("no
  // leader; retry"). Default: 5 s.
  std::chrono::milliseconds leader_wait{5000};
  // A request relayed to the leader that gets no answer in this long (beyond a receive's
  // polling wait) gets code 6000 ("no answer from the leader; retry"). Default: 10 s.
  std::chrono::milliseconds forward_timeout{10000};
  // Mutual TLS on the peer links (replication::peer_links_options), both or neither.
  std::shared_ptr<boost::asio::ssl::context> tls_server;
  std::shared_ptr<boost::asio::ssl::context> tls_client;
};

struct service_options {
  engine_limits limits;
  // Waiting long-poll receives, all queues together. Beyond → code::rate_limited (4420).
  // Default: 100000.
  std::size_t max_long_polls = 100000;
  // Period of the housekeeping tick (retention, time to live, dedup pruning) when nothing
  // is due sooner. Default: 1 s.
  std::chrono::milliseconds tick_interval{1000};
  // HTTP pushes in flight at once. Default: 256.
  std::size_t max_pushes_in_flight = 256;
  // Clock for command times (unix ms). Default: the system clock. Tests inject their own.
  std::function<time_ms()> clock;
  // Message trace (trace()): a message's history is kept this long after its last event;
  // 0 turns tracing off (nothing recorded, trace() answers nullopt). Memory only.
  // Default: 1 hour.
  std::chrono::milliseconds trace_retention{std::chrono::hours(1)};
  // Messages traced at most; beyond, the histories whose last event is oldest are dropped
  // (service_stats::traces_evicted). Default: 100000.
  std::size_t trace_max_messages = 100000;
  // Events kept per message; beyond, the oldest but the first are dropped and the history
  // is marked truncated. Default: 64.
  std::size_t trace_max_events_per_message = 64;
  replication_options replication;
  // Called on the service thread with the engine and what changed among its MQTT users and
  // roles, once the commands that changed them are applied (their log entries durable): at
  // start with everything, after each turn that changed something, and with everything again
  // after a snapshot replaced the state. For the MQTT side's copy (auth/runtime_users.h); it
  // must not block. Default: none.
  std::function<void(const engine&, const mqtt_auth_changes&)> mqtt_auth_changed;
};

struct service_stats {
  engine_stats engine;
  std::uint64_t commands = 0;
  std::uint64_t commits = 0;          // storage batches written (each one group-commit member)
  std::uint64_t long_polls_waiting = 0;
  std::uint64_t long_polls_refused = 0;  // max_long_polls hit
  std::uint64_t long_polls_abandoned = 0;  // dropped unanswered: their client had gone
  std::uint64_t pushes_in_flight = 0;
  std::uint64_t storage_failures = 0;
  std::uint64_t traced_messages = 0;  // histories held by the message trace
  std::uint64_t traces_evicted = 0;   // histories dropped because trace_max_messages were held
  replication::replica_status replication;  // role, term, commit and applied index, members
  std::uint64_t entries_proposed = 0;       // log entries this member proposed as leader
  std::uint64_t elections_started = 0;      // times this member stood for election
  std::uint64_t commands_lost = 0;          // proposed commands another leader's entries replaced
  replication::snapshot_transfer_stats snapshots;  // states sent to members behind the log, and received
  std::uint64_t peer_tls_refused = 0;       // peer links that failed the TLS handshake, both ways
};

class service {
 public:
  using result_callback = std::function<void(result)>;
  // Sends one push; calls `done(success)` exactly once, on any thread.
  using push_sender = std::function<void(push_delivery, std::function<void(bool success)> done)>;

  // Opens the engine on `store` and starts the service thread.
  // Throws std::runtime_error when the stored state cannot be loaded.
  service(storage& store, service_options options);
  // Stops the thread; answers waiting long polls with code::no_message first.
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // Where due HTTP pushes go. Without one, pushes stay pending. Call before traffic.
  void set_push_sender(push_sender sender);

  // Applies `body` as a command at the clock's now; `done` gets the result after the
  // command is durable (or code::internal_error when the commit failed). `origin` says who
  // sent it (e.g. "SecretId AKID... from 127.0.0.1", "mqtt client dev-1"): the message
  // trace records it as the actor of what the command does; it changes nothing else.
  void submit(command_body body, result_callback done, std::string origin = {});
  // Applies `bodies` in order, in one turn (one post here, one answer back): `done` gets
  // their results, in the same order, once they are all durable. For callers that batch
  // commands of many sources, such as the MQTT bridge's shards. `origins`: empty, or the
  // origin of each body (origins[i] for bodies[i]); a body without one has none.
  void submit_all(std::vector<command_body> bodies, std::function<void(std::vector<result>)> done,
                  std::vector<std::string> origins = {});

  // A receive that waits up to `wait` for a message when none is visible: answered as soon
  // as one becomes visible (a send, a delay or a visibility timeout ending, a rewind), or
  // with code::no_message when the wait ends. `wait` absent: the queue's pollingWaitSeconds.
  // `abandoned`, when given, is set by the caller once nobody is waiting for the answer any
  // more (the client closed its connection): a waiting receive whose flag is set takes no
  // message, so none turns invisible for a consumer that is gone. `origin`: the consumer,
  // for the message trace (as in submit).
  void receive(receive_messages request, std::optional<std::chrono::milliseconds> wait, result_callback done,
               std::shared_ptr<const std::atomic<bool>> abandoned = nullptr, std::string origin = {});

  // The message trace's history of msg_id, given to `done` on the service thread; nullopt
  // when tracing is off or the message is unknown to it (never traced, dropped after
  // trace_retention, or evicted). Events of a command appear once it is applied, which may
  // be just before its answer (the answer waits for the commit).
  void trace(std::string msg_id, std::function<void(std::optional<message_history>)> done);

  // Runs `query` on the service thread with the engine and the current time (read-only use),
  // with a state no older than the leader's when the query arrived: a group of one answers
  // at once; a larger group confirms its leader first (an entry committed after the query
  // arrived), so a deposed leader never answers a read. `refused` gets why when that cannot
  // be done (no leader within leader_wait); without it, the query runs on this member's own
  // state then (for callers to whom a slightly older state is as good).
  void query(std::function<void(const engine&, time_ms now)> query, std::function<void(status)> refused = {});

  // The queue core's Raft member as it is now (role, leader, term, indexes, members; on the
  // leader every other member's match index), given to `done` on the service thread.
  void cluster_status(std::function<void(replication::replica_status)> done);
  // On the leader: hands leadership to member `to` (0: the most up-to-date other voter).
  // `done` gets nullopt once the hand-over has begun (the member stands for election as
  // soon as its log matches, within an election timeout), or why it cannot: this member is
  // not the leader (the message names the one it knows), a hand-over is under way, `to` is
  // not another voter. Commands arriving during the hand-over are answered
  // code::internal_error "retry", as when leadership moves on its own.
  void transfer_leadership(std::uint64_t to, std::function<void(std::optional<std::string> refused)> done);
  // On the leader: adds `member` (it joins without a vote, catches up, then becomes a
  // voter; cluster_status().joining until then), or removes member `id`. `done` gets nullopt
  // once the change is proposed, or why not: this member does not lead, a change is under
  // way, the member is (not) in the group, no cluster section here.
  void add_member(replication::server member, std::function<void(std::optional<std::string> refused)> done);
  void remove_member(std::uint64_t id, std::function<void(std::optional<std::string> refused)> done);

  [[nodiscard]] service_stats stats() const;

  // Answers waiting long polls with no_message, drains in-flight commits and stops the
  // thread. Idempotent. The destructor calls it.
  void stop();

 private:
  void on_leader(std::function<std::optional<std::string>(replication::replica&)> change,
                 std::function<void(std::optional<std::string> refused)> done);

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wharf::core::queue
