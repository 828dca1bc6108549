// The queue service's inside (service.h), shared by the files that implement it: service.cc
// (construction, stop, the public methods), service_turns.cc (taking commands, each turn's
// entry, applying what commits, the member's host), service_relay.cc (requests relayed to the
// leader, peer frames, snapshots sent and installed) and service_waiting.cc (long polls, the
// housekeeping timer, HTTP pushes). Private to core/queue.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/queue/forwarding.h"
#include "core/queue/service.h"
#include "core/replication/peer_links.h"

namespace wharf::core::queue {
namespace service_internal {

namespace asio = boost::asio;
using replication::entry_type;
using replication::log_entry;
using replication::role;

inline time_ms system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline result failure(code value, std::string message) {
  result r;
  r.outcome = {value, std::move(message)};
  return r;
}

inline constexpr std::uint32_t max_receive_batch = 16;

// A turn's state batch starts with room for what the previous turn wrote, up to these
// bounds (beyond them it grows as needed): under steady load turns are alike, and growing a
// fresh buffer every turn was a fifth of the service thread's apply time.
inline constexpr std::size_t max_reserved_batch_ops = 4096;
inline constexpr std::size_t max_reserved_batch_bytes = 1 << 20;

// The engine's observer while tracing is on: records each event with the origin of the
// command being applied as its actor.
class trace_recorder final : public message_observer {
 public:
  explicit trace_recorder(trace_limits limits) : trace_(limits) {}

  // The origin of the command applied next. REQUIRES: `actor` outlives that apply().
  void set_actor(std::string_view actor) noexcept { actor_ = actor; }

  void observe(std::string_view msg_id, trace_event event) override {
    event.actor = actor_;
    trace_.record(msg_id, std::move(event));
  }

  [[nodiscard]] message_trace& trace() noexcept { return trace_; }

 private:
  message_trace trace_;
  std::string_view actor_;
};

}  // namespace service_internal

struct service::impl final : replication::replica_host {
  // A receive waiting for a message (long polling). Lives in `waiting` until served, and
  // goes back there when what it was served with turned out to be nothing.
  struct waiter {
    receive_messages request;
    time_ms deadline = 0;  // 0: may not wait
    result_callback done;
    std::shared_ptr<const std::atomic<bool>> abandoned;  // may be null
    std::string origin;  // the consumer, for the message trace
    [[nodiscard]] bool is_abandoned() const { return abandoned && abandoned->load(std::memory_order_relaxed); }
  };
  // One command of an entry and who waits for its result: a caller, or a receive that may
  // go on waiting when it finds nothing (its own callback answers it then).
  struct slot {
    result_callback done;           // null for the service's own (tick, push results)
    std::optional<waiter> receive;
  };
  struct proposed_entry {
    std::uint64_t term = 0;
    std::vector<slot> slots;
  };

  impl(storage& store_in, service_options options_in);

  static std::unique_ptr<engine> open_engine(storage& store, engine_limits limits);

  // ---- time ----
  // Command times never go backwards, even when the wall clock does, nor behind the time
  // of a command already applied (another member's clock may run ahead).
  time_ms now();

  // ---- taking commands (the leader) ----
  // REQUIRES: on the service thread (all of the following too).
  void take(command_body body, slot s, std::string_view origin);

  // Receives taken and not yet applied, by queue: the waiters a queue can serve are those
  // its visible messages cover beyond these.
  void count_receive(const command_body& body, int delta);

  // Answers `s` with why the service takes no command now; false when it does.
  bool refusal(slot& s);

  // ---- requests: taken here when leading, relayed to the leader otherwise ----
  // Commands, answered together (submit, submit_all, and the leader's side of a relay).
  void dispatch_commands(std::vector<command_body> bodies, std::vector<std::string> origins,
                         std::function<void(std::vector<result>)> done);

  void dispatch_receive(receive_messages request, std::optional<std::chrono::milliseconds> wait, result_callback done,
                        std::shared_ptr<const std::atomic<bool>> abandoned, std::string origin);

  // A read runs on a state no older than the leader's when it arrived (service::query).
  void dispatch_read(std::function<void(const engine&, time_ms)> run, std::function<void(status)> refused);

  void run_when_applied(std::uint64_t index, std::function<void()> run);

  // Sends `req` to the leader this member knows, or waits (up to leader_wait) for one to be
  // known; a member that becomes the leader meanwhile takes the request itself.
  void to_leader(forwarded_request req, std::function<void(forwarded_answer)> on_answer,
                 std::function<void(status)> refuse);

  // Requests that waited for a leader go where they can now.
  void retry_awaiting_leader();

  // The leader's side of a relayed request: run it as its own and answer through `reply`.
  void serve_relayed(std::uint64_t, forwarded_request req, std::function<void(forwarded_answer)> reply);

  // A frame from peer `from`.
  void on_frame(std::uint64_t from, const replication::frame& f);

  // Relayed requests past their time, and requests that found no leader in leader_wait.
  void expire_requests(time_ms t);

  static void answer(slot& s, result r);

  // Posting the end of the turn puts it behind every handler already queued, so everything
  // that arrived together shares one entry.
  void schedule_turn_end();

  void end_turn();

  void propose_turn();

  // Reads that arrived wait for one barrier entry: once it is applied, the leader knows it
  // still led after they arrived, and its state is at least as new as theirs.
  void propose_read_barrier();

  // ---- the member's host ----
  std::uint64_t now_ms() override;

  void arm_timer(std::uint64_t at_ms) override;

  void send(std::uint64_t to, const std::string&, std::string body) override;

  void send_snapshot(std::uint64_t to, std::uint64_t index, std::string install) override;

  // An InstallSnapshot frame from the leader: the state it stands for, which came before
  // it, goes in first, then the frame to the member. A frame whose state did not arrive
  // whole is dropped: the leader sends both again.
  struct snapshot_install {
    std::uint64_t from = 0;
    std::uint64_t index = 0;
    std::string frame;
  };
  void install_snapshot(snapshot_install install);

  void publish_snapshot_stats();

  void write(write_batch batch, std::function<void(std::error_code)> done) override;

  void apply(std::uint64_t index, const replication::log_entry& entry) override;

  // A command's result reaches its caller; a receive that found nothing and may still wait
  // goes back to waiting instead.
  void finish(slot& s, result r);

  void role_changed(replication::role now_role, std::uint64_t leader_id) override;

  void member_failed(const std::string& why) override;

  // Links to the members a committed configuration names (added ones too), none to those it
  // left out.
  void members_changed(const std::vector<replication::server>& members) override;

  // After every call into the member: the engine's writes go to storage, and the turn ends
  // (answers and waiters) when something was applied.
  void after_member();
  // Tells options.mqtt_auth_changed what the applied commands changed among the MQTT users
  // and roles (everything, after a load), if anything.
  void notify_mqtt_auth();

  // Every so often the engine's state (just handed to storage, behind the entries it comes
  // from) becomes the group's snapshot, and the log is trimmed to queue.log_retain_entries
  // behind it. 0 keeps the whole log.
  void maybe_trim_log();

  void flush_state();

  // Memory may now hold changes the disk lacks: refuse everything from here on rather than
  // answer from a state that a restart would not reproduce.
  void fail(const std::string& why);

  // ---- long polling ----
  void receive(receive_messages request, std::optional<std::chrono::milliseconds> requested_wait, result_callback done,
               std::shared_ptr<const std::atomic<bool>> abandoned, std::string origin);

  // A receive goes into this turn's entry.
  void serve(waiter w);

  void park(waiter w, bool front);

  // Serves waiting receives, oldest first, while their queue has visible messages that
  // receives already proposed will not take; answers the ones whose wait is over. Runs at
  // the end of every turn and on timer.
  void serve_waiters();

  void answer_all_waiters();

  // Bookkeeping of a waiter leaving `waiting` (the caller erases it).
  void forget(const waiter& w);

  // ---- timer: waits ending, messages becoming visible, housekeeping, push retries ----
  void arm_housekeeping_timer();

  void on_timer();

  // ---- HTTP pushes (the leader's) ----
  void start_due_pushes();

  void on_push_done(std::uint64_t id, notify_strategy strategy, std::uint32_t attempts, bool success);

  void release_push(std::uint64_t id);

  // ---- stop ----
  // Ends the waits, proposes what arrived, and lets the proposals that can commit finish
  // (a group of one commits once its own write is done) before the thread ends.
  void begin_stop();

  void maybe_finish_stop();

  storage& store;
  service_options options;
  std::unique_ptr<engine> eng;
  boost::asio::io_context ctx;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
  boost::asio::steady_timer timer;
  boost::asio::steady_timer raft_timer;
  std::thread thread;
  std::mt19937_64 random;
  std::chrono::steady_clock::time_point started_at;
  push_sender push_sender_fn;
  std::unique_ptr<service_internal::trace_recorder> recorder;  // null: tracing off
  std::unique_ptr<replication::replica> member;
  bool single_voter = true;
  std::unique_ptr<replication::peer_links> peers;  // null: a group of one
  std::set<std::uint64_t> linked_peers;             // the members peers links to
  // States sent to members behind the trimmed log (as leader), and received (null: a group of one).
  std::unique_ptr<replication::snapshot_sender> snapshot_out;
  std::unique_ptr<replication::snapshot_receiver> snapshot_in;
  std::optional<snapshot_install> install_waiting;  // its state arrived; the engine's writes have not landed

  // Relaying to the leader (a member that does not lead).
  struct awaiting {
    forwarded_request req;
    std::function<void(forwarded_answer)> on_answer;
    std::function<void(status)> refuse;
    time_ms deadline = 0;
  };
  std::deque<awaiting> awaiting_leader;  // no leader known yet
  struct relayed {
    std::function<void(forwarded_answer)> on_answer;
    std::function<void(status)> refuse;
    time_ms deadline = 0;
    std::uint64_t leader = 0;
  };
  std::map<std::uint64_t, relayed> forwarded;  // by request id
  std::uint64_t next_forward_id = 1;
  std::uint64_t known_leader = 0;
  // Reads (service::query) waiting for their leader to be confirmed.
  struct read {
    std::function<void(std::uint64_t index)> run;
    std::function<void(status)> refuse;
  };
  std::vector<read> reads_waiting;  // for the next barrier
  struct barrier_reads {
    std::uint64_t term = 0;
    std::vector<read> reads;
  };
  std::map<std::uint64_t, barrier_reads> barriers;  // by the barrier's index
  std::multimap<std::uint64_t, std::function<void()>> reads_at;  // run once applied reaches the index

  // Service-thread state.
  time_ms last_now = 0;
  write_batch state;  // the engine's writes since the last flush
  std::vector<origin_command> turn_commands;
  std::vector<slot> turn_slots;
  std::map<std::uint64_t, proposed_entry> proposed;  // by log index
  std::unordered_map<std::string, std::size_t> receives_in_flight;  // proposed, not applied, by queue
  bool turn_end_posted = false;
  bool applied_this_turn = false;
  bool tick_in_flight = false;
  bool was_leader = false;
  std::size_t log_writes_in_flight = 0;
  std::size_t state_writes_in_flight = 0;
  bool failed = false;
  bool stopping = false;
  bool stopped = false;
  bool timer_armed = false;
  time_ms timer_due = 0;
  std::map<std::string, std::deque<waiter>> waiting;  // by queue name
  std::multiset<time_ms> deadlines;  // one per waiter: the earliest arms the timer
  std::set<std::uint64_t> in_flight_pushes;

  // Counters read from any thread.
  std::atomic<std::uint64_t> commands_applied{0};
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> entries_proposed{0};
  std::atomic<std::uint64_t> elections_started{0};
  bool was_candidate = false;
  std::atomic<std::uint64_t> commands_lost{0};
  std::atomic<std::uint64_t> long_polls_waiting{0};
  std::atomic<std::uint64_t> long_polls_refused{0};
  std::atomic<std::uint64_t> abandoned_long_polls{0};
  std::atomic<std::uint64_t> pushes_in_flight{0};
  std::atomic<std::uint64_t> storage_failures{0};
  std::atomic<std::uint64_t> traced_messages{0};
  std::atomic<std::uint64_t> traces_evicted{0};
  mutable std::mutex engine_stats_mutex;
  engine_stats last_engine_stats;
  replication::replica_status last_status;
  replication::snapshot_transfer_stats snapshot_stats;
  std::chrono::steady_clock::time_point status_refreshed{};
  std::once_flag stop_once;
};

}  // namespace wharf::core::queue
