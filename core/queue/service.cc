// queue::service: one thread owns the engine and the group member that replicates it.
//
// A request becomes a command stamped with the leader's time. Each loop turn, the leader
// proposes the turn's commands as one log entry (the Raft cost is paid per turn) and keeps
// the callbacks that wait for their results. The replica applies committed entries in
// order, on every member; the member that proposed an entry answers its commands with the
// results of applying them. The engine's writes of a turn go to storage after the entries
// that caused them, so a state on disk is never ahead of the log it came from; after a
// crash the log replays what the state lacks.
//
// With tracing on, the engine reports its message events to a trace_recorder, which adds
// the origin carried by the command being applied.
#include "core/queue/service.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/log.h"
#include "core/queue/forwarding.h"
#include "core/queue/push_retry.h"
#include "core/replication/peer_links.h"

namespace wharf::core::queue {
namespace {

namespace asio = boost::asio;
using replication::entry_type;
using replication::log_entry;
using replication::role;

time_ms system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

result failure(code value, std::string message) {
  result r;
  r.outcome = {value, std::move(message)};
  return r;
}

constexpr std::uint32_t max_receive_batch = 16;

// A turn's state batch starts with room for what the previous turn wrote, up to these
// bounds (beyond them it grows as needed): under steady load turns are alike, and growing a
// fresh buffer every turn was a fifth of the service thread's apply time.
constexpr std::size_t max_reserved_batch_ops = 4096;
constexpr std::size_t max_reserved_batch_bytes = 1 << 20;

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

}  // namespace

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

  impl(storage& store_in, service_options options_in)
      : store(store_in),
        options(std::move(options_in)),
        eng(open_engine(store, options.limits)),
        work(asio::make_work_guard(ctx)),
        timer(ctx),
        raft_timer(ctx),
        random(std::random_device{}()),
        started_at(std::chrono::steady_clock::now()) {
    if (!options.clock) options.clock = system_clock_ms;
    if (options.trace_retention.count() > 0) {
      recorder = std::make_unique<trace_recorder>(
          trace_limits{options.trace_retention, options.trace_max_messages, options.trace_max_events_per_message});
      eng->set_observer(recorder.get());
    }
    const auto& r = options.replication;
    replication::replica_options ro;
    ro.id = r.node_id;
    ro.address = r.address;
    ro.bootstrap = r.voters.empty() ? std::vector<replication::server>{{r.node_id, r.address}} : r.voters;
    ro.election_timeout_ms = r.election_timeout_ms;
    ro.heartbeat_timeout_ms = r.heartbeat_timeout_ms;
    member = std::make_unique<replication::replica>(ro, store, *this);
    single_voter = r.voters.empty() || (r.voters.size() == 1 && r.voters[0].id == r.node_id);
    if (!single_voter) {
      replication::peer_links_options po;
      po.self_id = r.node_id;
      po.cluster = r.cluster;
      po.bind = r.bind.empty() ? r.address : r.bind;
      po.tls_server = r.tls_server;
      po.tls_client = r.tls_client;
      for (const auto& v : r.voters) {
        if (v.id == r.node_id) continue;
        po.peers.push_back(v);
        linked_peers.insert(v.id);
      }
      peers = std::make_unique<replication::peer_links>(
          ctx, po, [this](std::uint64_t from, const replication::frame& f) { on_frame(from, f); });
      const replication::snapshot_transfer_options so{std::string(state_keys_begin), std::string(state_keys_end)};
      auto send_frame = [this](std::uint64_t to, replication::frame_kind kind, std::string body) {
        if (peers) peers->send(to, kind, 0, body);
      };
      snapshot_out = std::make_unique<replication::snapshot_sender>(so, send_frame);
      snapshot_in = std::make_unique<replication::snapshot_receiver>(store, so, send_frame);
    }
    // Started on the service thread, like everything the member does.
    asio::post(ctx, [this] {
      member->start(eng->applied_index());
      after_member();
      end_turn();  // the first status, and the housekeeping timer
    });
    thread = std::thread([this] { ctx.run(); });
  }

  static std::unique_ptr<engine> open_engine(storage& store, engine_limits limits) {
    limits.keep_command_log = false;  // the Raft log keeps the commands
    return engine::open(store, limits);
  }

  // ---- time ----
  // Command times never go backwards, even when the wall clock does, nor behind the time
  // of a command already applied (another member's clock may run ahead).
  time_ms now() {
    last_now = std::max(last_now, options.clock());
    return last_now;
  }

  // ---- taking commands (the leader) ----
  // REQUIRES: on the service thread (all of the following too).
  void take(command_body body, slot s, std::string_view origin) {
    if (refusal(s)) return;
    count_receive(body, +1);
    turn_commands.push_back({std::string(origin), command{now(), std::move(body)}});
    turn_slots.push_back(std::move(s));
    schedule_turn_end();
  }

  // Receives taken and not yet applied, by queue: the waiters a queue can serve are those
  // its visible messages cover beyond these.
  void count_receive(const command_body& body, int delta) {
    if (const auto* r = std::get_if<receive_messages>(&body)) {
      auto& n = receives_in_flight[r->queue];
      n = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(n) + delta);
    }
  }

  // Answers `s` with why the service takes no command now; false when it does.
  bool refusal(slot& s) {
    if (failed) {
      answer(s, failure(code::internal_error, "the queue store failed; see the broker log"));
      return true;
    }
    if (stopping) {
      answer(s, failure(code::internal_error, "the queue service is stopping"));
      return true;
    }
    if (!member->is_leader()) {
      // Requests reach take() only on the leader (dispatch() relays the others); this one
      // came as leadership moved.
      answer(s, failure(code::internal_error, "this node stopped being the queue core's leader; retry"));
      return true;
    }
    return false;
  }

  // ---- requests: taken here when leading, relayed to the leader otherwise ----
  // Commands, answered together (submit, submit_all, and the leader's side of a relay).
  void dispatch_commands(std::vector<command_body> bodies, std::vector<std::string> origins,
                         std::function<void(std::vector<result>)> done) {
    if (bodies.empty()) return done({});
    if (member->is_leader() || failed || stopping) {
      // Every command of one turn is answered from one entry, in order: the last answer
      // completes the set.
      struct collected {
        std::vector<result> results;
        std::function<void(std::vector<result>)> done;
      };
      auto all = std::make_shared<collected>(collected{std::vector<result>(bodies.size()), std::move(done)});
      for (std::size_t i = 0; i < bodies.size(); ++i) {
        const bool last = i + 1 == bodies.size();
        const std::string_view origin = i < origins.size() ? std::string_view(origins[i]) : std::string_view();
        take(std::move(bodies[i]),
             slot{[all, i, last](result r) {
                    all->results[i] = std::move(r);
                    if (last) all->done(std::move(all->results));
                  },
                  std::nullopt},
             origin);
      }
      return;
    }
    const std::size_t n = bodies.size();
    forwarded_request req{0, forwarded_kind::commands, std::move(bodies), std::move(origins), std::nullopt};
    to_leader(std::move(req),
              [done, n](forwarded_answer a) {
                a.results.resize(n, failure(code::internal_error, "the leader's answer was incomplete; retry"));
                done(std::move(a.results));
              },
              [done, n](status why) { done(std::vector<result>(n, result{why, {}, {}, {}, {}, 0})); });
  }

  void dispatch_receive(receive_messages request, std::optional<std::chrono::milliseconds> wait,
                        result_callback done, std::shared_ptr<const std::atomic<bool>> abandoned, std::string origin) {
    if (member->is_leader() || failed || stopping) {
      receive(std::move(request), wait, std::move(done), std::move(abandoned), std::move(origin));
      return;
    }
    forwarded_request req{0, forwarded_kind::receive, {std::move(request)}, {std::move(origin)},
                          wait ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(wait->count())) : std::nullopt};
    to_leader(std::move(req),
              [done](forwarded_answer a) {
                if (done)
                  done(a.results.empty() ? failure(code::internal_error, "the leader's answer was incomplete; retry")
                                         : std::move(a.results[0]));
              },
              [done](status why) {
                if (done) done(result{why, {}, {}, {}, {}, 0});
              });
  }

  // A read runs on a state no older than the leader's when it arrived (service::query).
  void dispatch_read(std::function<void(const engine&, time_ms)> run, std::function<void(status)> refused) {
    if (single_voter) return run(*eng, now());
    auto on_refused = [this, run, refused](status why) {
      if (refused) return refused(why);
      run(*eng, now());  // the caller takes this member's own state
    };
    if (member->is_leader()) {
      reads_waiting.push_back({[this, run](std::uint64_t) { run(*eng, now()); }, on_refused});
      schedule_turn_end();
      return;
    }
    forwarded_request req{0, forwarded_kind::read_index, {}, {}, std::nullopt};
    to_leader(std::move(req),
              [this, run, on_refused](forwarded_answer a) {
                if (a.read_index == 0) return on_refused({code::internal_error, "the leader could not confirm it leads; retry"});
                run_when_applied(a.read_index, [this, run] { run(*eng, now()); });
              },
              on_refused);
  }

  void run_when_applied(std::uint64_t index, std::function<void()> run) {
    if (member->applied_index() >= index) return run();
    reads_at.emplace(index, std::move(run));
  }

  // Sends `req` to the leader this member knows, or waits (up to leader_wait) for one to be
  // known; a member that becomes the leader meanwhile takes the request itself.
  void to_leader(forwarded_request req, std::function<void(forwarded_answer)> on_answer,
                 std::function<void(status)> refuse) {
    const std::uint64_t leader = member->leader_id();
    if (leader == 0 || leader == options.replication.node_id || !peers) {
      const auto deadline = now() + options.replication.leader_wait.count();
      awaiting_leader.push_back({std::move(req), std::move(on_answer), std::move(refuse), deadline});
      arm_housekeeping_timer();
      return;
    }
    req.id = next_forward_id++;
    const auto extra = req.kind == forwarded_kind::receive && req.wait_ms ? static_cast<time_ms>(*req.wait_ms) : 30000;
    forwarded[req.id] = {std::move(on_answer), std::move(refuse), now() + options.replication.forward_timeout.count() + extra,
                         leader};
    peers->send(leader, replication::frame_kind::request, 0, encode_forwarded(req));
    arm_housekeeping_timer();
  }

  // Requests that waited for a leader go where they can now.
  void retry_awaiting_leader() {
    if (member->leader_id() == 0) return;
    auto waiting_now = std::exchange(awaiting_leader, {});
    for (auto& w : waiting_now) {
      if (member->is_leader()) {
        // Taken here, as the leader takes a relayed request.
        serve_relayed(options.replication.node_id, std::move(w.req), std::move(w.on_answer));
      } else {
        to_leader(std::move(w.req), std::move(w.on_answer), std::move(w.refuse));
      }
    }
  }

  // The leader's side of a relayed request: run it as its own and answer through `reply`.
  void serve_relayed(std::uint64_t, forwarded_request req, std::function<void(forwarded_answer)> reply) {
    const auto id = req.id;
    const auto kind = req.kind;
    switch (kind) {
      case forwarded_kind::commands:
        dispatch_commands(std::move(req.bodies), std::move(req.origins), [reply, id, kind](std::vector<result> rs) {
          reply(forwarded_answer{id, kind, std::move(rs), 0});
        });
        break;
      case forwarded_kind::receive: {
        std::optional<std::chrono::milliseconds> wait;
        if (req.wait_ms) wait.emplace(static_cast<std::chrono::milliseconds::rep>(*req.wait_ms));
        receive(std::get<receive_messages>(std::move(req.bodies[0])), wait,
                [reply, id, kind](result r) { reply(forwarded_answer{id, kind, {std::move(r)}, 0}); }, nullptr,
                req.origins.empty() ? std::string() : std::move(req.origins[0]));
        break;
      }
      case forwarded_kind::read_index:
        if (!member->is_leader()) return reply(forwarded_answer{id, kind, {}, 0});
        reads_waiting.push_back({[reply, id, kind](std::uint64_t index) { reply(forwarded_answer{id, kind, {}, index}); },
                                 [reply, id, kind](status) { reply(forwarded_answer{id, kind, {}, 0}); }});
        schedule_turn_end();
        break;
    }
  }

  // A frame from peer `from`.
  void on_frame(std::uint64_t from, const replication::frame& f) {
    switch (f.kind) {
      case replication::frame_kind::raft:
        if (const auto index = replication::replica::snapshot_install_index(f.body)) {
          install_snapshot({from, *index, std::string(f.body)});
          break;
        }
        member->receive(from, f.body);
        after_member();
        break;
      case replication::frame_kind::snapshot_chunk:
        if (snapshot_in && !failed) snapshot_in->on_chunk(from, f.body, eng->applied_index());
        publish_snapshot_stats();
        break;
      case replication::frame_kind::snapshot_ack:
        if (snapshot_out) snapshot_out->on_ack(from, f.body, std::chrono::steady_clock::now());
        publish_snapshot_stats();
        break;
      case replication::frame_kind::request: {
        auto req = decode_forwarded_request(f.body);
        if (!req) {
          log::queue().warn("cluster: member {} relayed a request that does not decode; dropped", from);
          return;
        }
        if (!member->is_leader() || failed || stopping) {
          // Not (or no longer) the leader: the sender finds the leader again and retries.
          forwarded_answer no{req->id, req->kind, {}, 0};
          const std::size_t n = req->kind == forwarded_kind::read_index ? 0 : std::max<std::size_t>(req->bodies.size(), 1);
          no.results.assign(n, failure(code::internal_error, "this node is not the queue core's leader; retry"));
          peers->send(from, replication::frame_kind::answer, 0, encode_forwarded(no));
          return;
        }
        serve_relayed(from, std::move(*req), [this, from](forwarded_answer a) {
          if (peers) peers->send(from, replication::frame_kind::answer, 0, encode_forwarded(a));
        });
        break;
      }
      case replication::frame_kind::answer: {
        auto a = decode_forwarded_answer(f.body);
        if (!a) {
          log::queue().warn("cluster: member {} sent an answer that does not decode; dropped", from);
          return;
        }
        auto it = forwarded.find(a->id);
        if (it == forwarded.end()) return;  // answered already (timed out)
        auto on_answer = std::move(it->second.on_answer);
        forwarded.erase(it);
        on_answer(std::move(*a));
        break;
      }
      case replication::frame_kind::hello: break;
    }
  }

  // Relayed requests past their time, and requests that found no leader in leader_wait.
  void expire_requests(time_ms t) {
    for (auto it = forwarded.begin(); it != forwarded.end();) {
      if (it->second.deadline > t) {
        ++it;
        continue;
      }
      auto refuse = std::move(it->second.refuse);
      it = forwarded.erase(it);
      refuse({code::internal_error, "no answer from the queue core's leader in time; retry"});
    }
    while (!awaiting_leader.empty() && awaiting_leader.front().deadline <= t) {
      auto refuse = std::move(awaiting_leader.front().refuse);
      awaiting_leader.pop_front();
      refuse({code::internal_error, "the queue core has no leader now (cluster.leader_wait_ms passed); retry"});
    }
  }

  static void answer(slot& s, result r) {
    if (s.receive) {
      if (s.receive->done) s.receive->done(std::move(r));
    } else if (s.done) {
      s.done(std::move(r));
    }
  }

  // Posting the end of the turn puts it behind every handler already queued, so everything
  // that arrived together shares one entry.
  void schedule_turn_end() {
    if (turn_end_posted) return;
    turn_end_posted = true;
    asio::post(ctx, [this] { end_turn(); });
  }

  void end_turn() {
    turn_end_posted = false;
    serve_waiters();
    propose_turn();
    propose_read_barrier();
    start_due_pushes();
    arm_housekeeping_timer();
    if (recorder) {
      message_trace& trace = recorder->trace();
      trace.expire(now());
      traced_messages.store(trace.size(), std::memory_order_relaxed);
      traces_evicted.store(trace.evicted(), std::memory_order_relaxed);
    }
    const std::lock_guard lock(engine_stats_mutex);
    last_engine_stats = eng->stats();
    // The member's status (with its membership) is read for metrics: ten times a second
    // is enough, and not on every turn.
    if (const auto t = std::chrono::steady_clock::now(); t - status_refreshed >= std::chrono::milliseconds(100)) {
      last_status = member->status();
      status_refreshed = t;
    }
  }

  void propose_turn() {
    if (turn_commands.empty()) return;
    auto commands = std::exchange(turn_commands, {});
    auto slots = std::exchange(turn_slots, {});
    const auto proposal = member->propose(entry_type::command, encode_command_batch(commands));
    if (!proposal) {
      for (std::size_t i = 0; i < commands.size(); ++i) {
        count_receive(commands[i].cmd.body, -1);
        answer(slots[i], failure(code::internal_error, "this node stopped being the queue core's leader; retry"));
      }
      return;
    }
    entries_proposed.fetch_add(1, std::memory_order_relaxed);
    proposed[proposal->index] = {proposal->term, std::move(slots)};
    after_member();
  }

  // Reads that arrived wait for one barrier entry: once it is applied, the leader knows it
  // still led after they arrived, and its state is at least as new as theirs.
  void propose_read_barrier() {
    if (reads_waiting.empty() || !member->is_leader() || failed) return;
    const auto proposal = member->propose(entry_type::barrier, "r");
    if (!proposal) {
      for (auto& r : std::exchange(reads_waiting, {})) r.refuse({code::internal_error, "leadership moved; retry"});
      return;
    }
    barriers[proposal->index] = {proposal->term, std::exchange(reads_waiting, {})};
    after_member();
  }

  // ---- the member's host ----
  std::uint64_t now_ms() override {
    return static_cast<std::uint64_t>(
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_at)
                   .count()) +
           1;
  }

  void arm_timer(std::uint64_t at_ms) override {
    raft_timer.expires_at(started_at + std::chrono::milliseconds(at_ms - 1));
    raft_timer.async_wait([this](boost::system::error_code ec) {
      if (ec || stopped) return;  // re-armed, or stopped
      member->timeout();
      after_member();
    });
  }

  void send(std::uint64_t to, const std::string&, std::string body) override {
    if (peers) peers->send(to, replication::frame_kind::raft, 0, body);
  }

  void send_snapshot(std::uint64_t to, std::uint64_t index, std::string install) override {
    if (!snapshot_out || failed) return;
    const auto now = std::chrono::steady_clock::now();
    if (snapshot_out->sending(to, index, now)) return;
    // The store as it is now, at the index its applied record names (the engine's writes go
    // on behind the view). The state sent must cover the snapshot: when the snapshot's own
    // state has not landed yet, libraft asks again about a heartbeat later.
    auto view = store.view();
    std::uint64_t state_index = 0;
    try {
      state_index = stored_applied_index(*view);
    } catch (const std::exception& e) {
      return fail(fmt::format("the stored state does not read for a snapshot: {}", e.what()));
    }
    if (state_index < index) return;
    snapshot_out->start(to, index, std::move(view), state_index, std::move(install), now);
    publish_snapshot_stats();
  }

  // An InstallSnapshot frame from the leader: the state it stands for, which came before
  // it, goes in first, then the frame to the member. A frame whose state did not arrive
  // whole is dropped: the leader sends both again.
  struct snapshot_install {
    std::uint64_t from = 0;
    std::uint64_t index = 0;
    std::string frame;
  };
  void install_snapshot(snapshot_install install) {
    if (!snapshot_in || failed) return;
    if (!snapshot_in->complete(install.from, install.index)) {
      log::queue().debug("cluster: a snapshot at {} from member {} without its state; dropped", install.index,
                         install.from);
      return;
    }
    if (!state.empty() || state_writes_in_flight > 0) {
      // The swap must not race the engine's own writes: once they have landed.
      install_waiting = std::move(install);
      return;
    }
    std::error_code ec;
    const std::uint64_t state_index = snapshot_in->swap_in(ec);
    publish_snapshot_stats();
    if (ec) return fail(fmt::format("installing a snapshot's state failed: {}", ec.message()));
    if (state_index > 0) {
      try {
        eng = open_engine(store, options.limits);
      } catch (const std::exception& e) {
        return fail(fmt::format("the state of an installed snapshot does not load: {}", e.what()));
      }
      if (recorder) eng->set_observer(recorder.get());
      log::queue().info("cluster: member {} installed the leader's state at {}", options.replication.node_id,
                        state_index);
    }
    member->state_covers(eng->applied_index());
    member->receive(install.from, install.frame);
    after_member();
  }

  void publish_snapshot_stats() {
    const std::lock_guard lock(engine_stats_mutex);
    if (snapshot_out) snapshot_stats = snapshot_out->stats();
    if (snapshot_in) {
      const auto& in = snapshot_in->stats();
      snapshot_stats.received = in.received;
      snapshot_stats.bytes_received = in.bytes_received;
    }
  }

  void write(write_batch batch, std::function<void(std::error_code)> done) override {
    ++log_writes_in_flight;
    store.write(std::move(batch), [this, done = std::move(done)](std::error_code ec) mutable {
      asio::post(ctx, [this, done = std::move(done), ec] {
        --log_writes_in_flight;
        done(ec);
        after_member();
      });
    });
  }

  void apply(std::uint64_t index, const log_entry& entry) override {
    eng->set_entry_index(index);
    auto mine = proposed.extract(index);
    const bool own = !mine.empty() && mine.mapped().term == entry.term;
    if (entry.type == static_cast<std::uint8_t>(entry_type::command)) {
      auto commands = decode_command_batch(entry.data);
      if (!commands) {
        // Every member would fail here alike: the state machine cannot go on past it.
        fail(fmt::format("log entry {} does not decode as queue commands", index));
        return;
      }
      for (std::size_t i = 0; i < commands->size(); ++i) {
        auto& c = (*commands)[i];
        last_now = std::max(last_now, c.cmd.now);
        if (recorder) recorder->set_actor(c.origin);
        result r = eng->apply(c.cmd, state);
        if (recorder) recorder->set_actor({});
        commands_applied.fetch_add(1, std::memory_order_relaxed);
        if (own) count_receive(c.cmd.body, -1);
        if (own && i < mine.mapped().slots.size()) finish(mine.mapped().slots[i], std::move(r));
      }
    }
    if (auto b = barriers.extract(index); !b.empty()) {
      for (auto& r : b.mapped().reads) {
        if (b.mapped().term == entry.term) {
          r.run(index);
        } else {
          r.refuse({code::internal_error, "leadership moved before the read was confirmed; retry"});
        }
      }
    }
    if (!mine.empty() && !own) {
      // Another leader's entry took this index: what was proposed here is lost.
      for (auto& s : mine.mapped().slots) {
        commands_lost.fetch_add(1, std::memory_order_relaxed);
        if (s.receive) count_receive(s.receive->request, -1);
        answer(s, failure(code::internal_error, "the command was lost in a change of the queue core's leader; retry"));
      }
    }
    applied_this_turn = true;
  }

  // A command's result reaches its caller; a receive that found nothing and may still wait
  // goes back to waiting instead.
  void finish(slot& s, result r) {
    if (s.receive && r.outcome.value == code::no_message && s.receive->deadline > now() && !stopping &&
        member->is_leader()) {
      park(std::move(*s.receive), /*front=*/true);
      return;
    }
    answer(s, std::move(r));
  }

  void role_changed(role now_role, std::uint64_t leader_id) override {
    {
      const std::lock_guard lock(engine_stats_mutex);
      last_status = member->status();
      status_refreshed = std::chrono::steady_clock::now();
    }
    if (leader_id != known_leader) {
      // What was relayed to the leader that went has an unknown outcome: its callers retry.
      for (auto it = forwarded.begin(); it != forwarded.end();) {
        if (it->second.leader == known_leader) {
          auto refuse = std::move(it->second.refuse);
          it = forwarded.erase(it);
          refuse({code::internal_error, "the queue core's leader changed while the request was with it; retry"});
        } else {
          ++it;
        }
      }
      known_leader = leader_id;
      if (leader_id != 0) asio::post(ctx, [this] { retry_awaiting_leader(); });
    }
    if (now_role == role::candidate && !was_candidate) elections_started.fetch_add(1, std::memory_order_relaxed);
    was_candidate = now_role == role::candidate;
    if (now_role == role::leader) {
      log::queue().info("queue core: member {} leads (term {})", options.replication.node_id, member->status().term);
    } else if (was_leader) {
      log::queue().info("queue core: member {} no longer leads (leader now: {})", options.replication.node_id,
                        leader_id == 0 ? std::string("none") : std::to_string(leader_id));
      // Only a leader hands out messages: waiting receives end (empty), their clients retry.
      answer_all_waiters();
      if (snapshot_out) snapshot_out->stop_all();
      for (std::size_t i = 0; i < turn_slots.size(); ++i) {
        count_receive(turn_commands[i].cmd.body, -1);
        answer(turn_slots[i], failure(code::internal_error, "this node stopped being the queue core's leader; retry"));
      }
      turn_commands.clear();
      turn_slots.clear();
      for (auto& r : std::exchange(reads_waiting, {})) r.refuse({code::internal_error, "leadership moved; retry"});
      // What it proposed may still commit under the next leader, or may not: the callers
      // learn that the outcome is unknown now, rather than wait for a majority that may not
      // come back. (A send retried after this may be there twice: CMQ delivers at least once.)
      for (auto& [index, entry] : std::exchange(proposed, {}))
        for (auto& s : entry.slots) {
          if (s.receive) count_receive(s.receive->request, -1);
          answer(s, failure(code::internal_error,
                            "this node stopped leading the queue core before the command committed; it may or may "
                            "not have been applied; retry"));
        }
      for (auto& [index, b] : std::exchange(barriers, {}))
        for (auto& r : b.reads) r.refuse({code::internal_error, "leadership moved; retry"});
    }
    was_leader = now_role == role::leader;
  }

  void member_failed(const std::string& why) override { fail("queue store write failed: " + why); }

  // Links to the members a committed configuration names (added ones too), none to those it
  // left out.
  void members_changed(const std::vector<replication::server>& members) override {
    if (!peers) return;
    std::set<std::uint64_t> now;
    for (const auto& m : members) {
      if (m.id == options.replication.node_id) continue;
      peers->set_peer(m);
      now.insert(m.id);
    }
    for (const auto id : linked_peers)
      if (!now.contains(id)) peers->remove_peer(id);
    linked_peers = std::move(now);
  }

  // After every call into the member: the engine's writes go to storage, and the turn ends
  // (answers and waiters) when something was applied.
  void after_member() {
    flush_state();
    maybe_trim_log();
    while (!reads_at.empty() && reads_at.begin()->first <= member->applied_index()) {
      auto run = std::move(reads_at.begin()->second);
      reads_at.erase(reads_at.begin());
      run();
    }
    if (applied_this_turn) {
      applied_this_turn = false;
      schedule_turn_end();
    }
    if (stopping) maybe_finish_stop();
  }

  // Every so often the engine's state (just handed to storage, behind the entries it comes
  // from) becomes the group's snapshot, and the log is trimmed to queue.log_retain_entries
  // behind it. 0 keeps the whole log.
  void maybe_trim_log() {
    const std::uint64_t keep = options.limits.log_retain_entries;
    if (keep == 0 || failed) return;
    const std::uint64_t applied = eng->applied_index();
    if (applied - member->snapshot_index() < std::max<std::uint64_t>(keep / 8, 1)) return;
    member->take_snapshot(applied, keep);
  }

  void flush_state() {
    eng->finish_batch(state);
    if (state.empty()) return;
    const std::uint64_t index = eng->applied_index();
    const std::size_t ops = state.size();
    const std::size_t bytes = state.bytes();
    ++state_writes_in_flight;
    // Buffered: the log it comes from is synced already (or will be before anything it
    // answers is acknowledged), and replays it after a crash; a sync of its own would only
    // delay the next log write behind it.
    store.write(std::exchange(state, write_batch{}), [this, index](std::error_code ec) {
      // Storage writer thread: hop back to the service thread, one post per batch.
      asio::post(ctx, [this, index, ec] {
        --state_writes_in_flight;
        commits.fetch_add(1, std::memory_order_relaxed);
        if (ec) {
          fail(fmt::format("queue store write failed: {}", ec.message()));
        } else {
          eng->committed(index);
        }
        if (install_waiting && state_writes_in_flight == 0) {
          auto install = std::move(*install_waiting);
          install_waiting.reset();
          install_snapshot(std::move(install));
        }
        if (stopping) maybe_finish_stop();
      });
    }, durability::buffered);
    state.reserve(std::min(ops, max_reserved_batch_ops), std::min(bytes, max_reserved_batch_bytes));
  }

  // Memory may now hold changes the disk lacks: refuse everything from here on rather than
  // answer from a state that a restart would not reproduce.
  void fail(const std::string& why) {
    if (!failed) log::queue().critical("{}; the queue core stops accepting commands", why);
    failed = true;
    storage_failures.fetch_add(1, std::memory_order_relaxed);
    const result refused = failure(code::internal_error, "the message store failed to write: " + why);
    for (auto& [index, entry] : proposed)
      for (auto& s : entry.slots) answer(s, refused);
    proposed.clear();
    for (auto& s : turn_slots) answer(s, refused);
    turn_commands.clear();
    turn_slots.clear();
    answer_all_waiters();
  }

  // ---- long polling ----
  void receive(receive_messages request, std::optional<std::chrono::milliseconds> requested_wait,
               result_callback done, std::shared_ptr<const std::atomic<bool>> abandoned, std::string origin) {
    const time_ms t = now();
    const bool valid_batch = request.max_messages >= 1 && request.max_messages <= max_receive_batch;
    const auto info = failed || !valid_batch ? std::nullopt : eng->queue(request.queue, t);
    if (!info) {
      // Let the engine answer (invalid parameter, missing queue, failed store).
      take(std::move(request), slot{std::move(done), std::nullopt}, origin);
      return;
    }
    const std::chrono::milliseconds wait =
        requested_wait.value_or(std::chrono::seconds(info->attributes.polling_wait_seconds));
    const bool may_wait = wait.count() > 0 && !stopping;
    // `t` is the current millisecond rounded down, so the deadline is one more: a wait is
    // never shorter than asked (a client timing its own long poll must not see it end early).
    waiter w{std::move(request), may_wait ? t + wait.count() + 1 : 0, std::move(done), std::move(abandoned),
             std::move(origin)};
    if (eng->has_visible(w.request.queue, t)) {
      serve(std::move(w));
      return;
    }
    if (!may_wait) {
      // Nothing to take: answered without a command (an empty receive changes nothing).
      if (w.done) w.done(failure(code::no_message, "no message in the queue"));
      return;
    }
    if (deadlines.size() >= options.max_long_polls) {
      long_polls_refused.fetch_add(1, std::memory_order_relaxed);
      if (w.done) w.done(failure(code::rate_limited, "too many receives are waiting (queue_api.max_long_polls)"));
      return;
    }
    park(std::move(w), /*front=*/false);
  }

  // A receive goes into this turn's entry.
  void serve(waiter w) {
    command_body body = w.request;
    const std::string origin = w.origin;
    take(std::move(body), slot{nullptr, std::move(w)}, origin);
  }

  void park(waiter w, bool front) {
    deadlines.insert(w.deadline);
    auto& queue_waiters = waiting[w.request.queue];
    if (front) {
      queue_waiters.push_front(std::move(w));
    } else {
      queue_waiters.push_back(std::move(w));
    }
    long_polls_waiting.store(deadlines.size(), std::memory_order_relaxed);
    arm_housekeeping_timer();
  }

  // Serves waiting receives, oldest first, while their queue has visible messages that
  // receives already proposed will not take; answers the ones whose wait is over. Runs at
  // the end of every turn and on timer.
  void serve_waiters() {
    if (waiting.empty()) return;
    const time_ms t = now();
    const bool leading = member->is_leader() && !failed;
    for (auto it = waiting.begin(); it != waiting.end();) {
      auto& queue_waiters = it->second;
      std::size_t& in_flight = receives_in_flight[it->first];
      while (leading && !queue_waiters.empty() && eng->visible_messages(it->first, t, in_flight + 1) > in_flight) {
        waiter w = std::move(queue_waiters.front());
        queue_waiters.pop_front();
        forget(w);
        if (w.is_abandoned()) {  // its client is gone: take nothing for it
          abandoned_long_polls.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        serve(std::move(w));
      }
      // Deadlines of one queue's waiters are not ordered (waits differ), so ending waits
      // takes a sweep; it runs only when some wait is over (or the queue is gone, or the
      // service stops), not on every turn.
      const bool queue_exists = eng->queue(it->first, t).has_value();
      const bool sweep = !queue_exists || stopping || failed || (!deadlines.empty() && *deadlines.begin() <= t);
      for (auto w = queue_waiters.begin(); sweep && w != queue_waiters.end();) {
        if (w->deadline > t && queue_exists && !stopping && !failed && !w->is_abandoned()) {
          ++w;
          continue;
        }
        if (w->done)
          w->done(queue_exists ? failure(code::no_message, "no message in the queue")
                               : failure(code::not_found, "the queue was deleted while the receive waited"));
        forget(*w);
        w = queue_waiters.erase(w);
      }
      it = queue_waiters.empty() ? waiting.erase(it) : std::next(it);
    }
    long_polls_waiting.store(deadlines.size(), std::memory_order_relaxed);
  }

  void answer_all_waiters() {
    for (auto& [queue, queue_waiters] : waiting)
      for (auto& w : queue_waiters)
        if (w.done) w.done(failure(code::no_message, "no message in the queue"));
    waiting.clear();
    deadlines.clear();
    long_polls_waiting.store(0, std::memory_order_relaxed);
  }

  // Bookkeeping of a waiter leaving `waiting` (the caller erases it).
  void forget(const waiter& w) {
    const auto it = deadlines.find(w.deadline);
    if (it != deadlines.end()) deadlines.erase(it);
  }

  // ---- timer: waits ending, messages becoming visible, housekeeping, push retries ----
  void arm_housekeeping_timer() {
    if (stopping) return;
    const time_ms t = now();
    time_ms next = t + options.tick_interval.count();
    if (!deadlines.empty()) next = std::min(next, *deadlines.begin());
    if (!awaiting_leader.empty()) next = std::min(next, awaiting_leader.front().deadline);
    for (const auto& [id, f] : forwarded) next = std::min(next, f.deadline);
    for (const auto& entry : waiting)
      if (auto v = eng->next_visible_time(entry.first, t)) next = std::min(next, *v);
    if (auto v = eng->next_tick_time()) next = std::min(next, std::max(*v, t));
    if (push_sender_fn)
      if (auto v = eng->next_push_time()) next = std::min(next, std::max(*v, t));
    if (timer_armed && next >= timer_due) return;
    timer_armed = true;
    timer_due = next;
    timer.expires_after(std::chrono::milliseconds(std::max<time_ms>(next - t, 0)));
    timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;  // cancelled by a re-arm or stop
      timer_armed = false;
      on_timer();
    });
  }

  void on_timer() {
    const time_ms t = now();
    expire_requests(t);
    // Housekeeping is the leader's: its effects reach every member through the log.
    if (auto due = eng->next_tick_time(); due && *due <= t && !failed && member->is_leader() && !tick_in_flight) {
      tick_in_flight = true;
      // No origin: trace events without an actor.
      take(tick{}, slot{[this](result) { tick_in_flight = false; }, std::nullopt}, {});
    }
    end_turn();
  }

  // ---- HTTP pushes (the leader's) ----
  void start_due_pushes() {
    if (!push_sender_fn || stopping || failed || !member->is_leader() ||
        in_flight_pushes.size() >= options.max_pushes_in_flight)
      return;
    const std::vector<std::uint64_t> in_flight(in_flight_pushes.begin(), in_flight_pushes.end());
    auto due = eng->due_pushes(now(), options.max_pushes_in_flight - in_flight_pushes.size(), in_flight);
    for (auto& delivery : due) {
      in_flight_pushes.insert(delivery.delivery_id);
      const auto id = delivery.delivery_id;
      const auto strategy = delivery.strategy;
      const auto attempts = delivery.attempts;
      push_sender_fn(std::move(delivery), [this, id, strategy, attempts](bool success) {
        asio::post(ctx, [this, id, strategy, attempts, success] { on_push_done(id, strategy, attempts, success); });
      });
    }
    pushes_in_flight.store(in_flight_pushes.size(), std::memory_order_relaxed);
  }

  void on_push_done(std::uint64_t id, notify_strategy strategy, std::uint32_t attempts, bool success) {
    push_result outcome{.delivery_id = id, .success = success};
    if (!success) {
      // The retry delay is chosen here, not in apply(), so that the engine stays deterministic.
      const auto delay = next_retry_delay_ms(strategy, attempts + 1, random());
      outcome.give_up = !delay;
      outcome.retry_delay_ms = delay.value_or(0);
    }
    // The push stays in flight until its result is applied: otherwise a turn in between
    // would hand the same delivery out again. No origin either.
    if (!member->is_leader() || failed || stopping) {
      release_push(id);
      return;
    }
    take(outcome, slot{[this, id](result) { release_push(id); }, std::nullopt}, {});
  }

  void release_push(std::uint64_t id) {
    in_flight_pushes.erase(id);
    pushes_in_flight.store(in_flight_pushes.size(), std::memory_order_relaxed);
  }

  // ---- stop ----
  // Ends the waits, proposes what arrived, and lets the proposals that can commit finish
  // (a group of one commits once its own write is done) before the thread ends.
  void begin_stop() {
    stopping = true;
    timer.cancel();
    serve_waiters();  // answers every waiter: stopping ends their wait
    propose_turn();
    flush_state();
    maybe_finish_stop();
  }

  void maybe_finish_stop() {
    const bool settled = (proposed.empty() || failed || !member->is_leader()) && log_writes_in_flight == 0 &&
                         state_writes_in_flight == 0;
    if (!settled || stopped) return;
    stopped = true;
    for (auto& [index, entry] : proposed)
      for (auto& s : entry.slots) answer(s, failure(code::internal_error, "the queue service stopped; retry"));
    proposed.clear();
    raft_timer.cancel();
    expire_requests(std::numeric_limits<time_ms>::max());
    if (peers) peers->stop();
    work.reset();
  }

  storage& store;
  service_options options;
  std::unique_ptr<engine> eng;
  asio::io_context ctx;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::steady_timer timer;
  asio::steady_timer raft_timer;
  std::thread thread;
  std::mt19937_64 random;
  std::chrono::steady_clock::time_point started_at;
  push_sender push_sender_fn;
  std::unique_ptr<trace_recorder> recorder;  // null: tracing off
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

service::service(storage& store, service_options options)
    : impl_(std::make_unique<impl>(store, std::move(options))) {}

service::~service() { stop(); }

void service::set_push_sender(push_sender sender) {
  asio::post(impl_->ctx, [this, sender = std::move(sender)]() mutable {
    impl_->push_sender_fn = std::move(sender);
    impl_->end_turn();
  });
}

void service::submit(command_body body, result_callback done, std::string origin) {
  asio::post(impl_->ctx,
             [this, body = std::move(body), done = std::move(done), origin = std::move(origin)]() mutable {
               std::vector<command_body> bodies;
               bodies.push_back(std::move(body));
               impl_->dispatch_commands(std::move(bodies), {std::move(origin)}, [done](std::vector<result> rs) {
                 if (done) done(std::move(rs.at(0)));
               });
             });
}

void service::submit_all(std::vector<command_body> bodies, std::function<void(std::vector<result>)> done,
                         std::vector<std::string> origins) {
  asio::post(impl_->ctx, [this, bodies = std::move(bodies), done = std::move(done),
                          origins = std::move(origins)]() mutable {
    impl_->dispatch_commands(std::move(bodies), std::move(origins), std::move(done));
  });
}

void service::receive(receive_messages request, std::optional<std::chrono::milliseconds> wait,
                      result_callback done, std::shared_ptr<const std::atomic<bool>> abandoned,
                      std::string origin) {
  asio::post(impl_->ctx, [this, request = std::move(request), wait, done = std::move(done),
                          abandoned = std::move(abandoned), origin = std::move(origin)]() mutable {
    impl_->dispatch_receive(std::move(request), wait, std::move(done), std::move(abandoned), std::move(origin));
  });
}

void service::trace(std::string msg_id, std::function<void(std::optional<message_history>)> done) {
  asio::post(impl_->ctx, [this, msg_id = std::move(msg_id), done = std::move(done)] {
    std::optional<message_history> history;
    if (impl_->recorder) history = impl_->recorder->trace().find(msg_id, impl_->now());
    done(std::move(history));
  });
}

void service::query(std::function<void(const engine&, time_ms now)> run_query, std::function<void(status)> refused) {
  asio::post(impl_->ctx, [this, run_query = std::move(run_query), refused = std::move(refused)]() mutable {
    impl_->dispatch_read(std::move(run_query), std::move(refused));
  });
}

void service::cluster_status(std::function<void(replication::replica_status)> done) {
  asio::post(impl_->ctx, [this, done = std::move(done)] { done(impl_->member->status()); });
}

// Runs `change` on the member if it leads; `done` gets what it answers, or why this member
// cannot (it does not lead: the message names the leader it knows).
void service::on_leader(std::function<std::optional<std::string>(replication::replica&)> change,
                        std::function<void(std::optional<std::string> refused)> done) {
  asio::post(impl_->ctx, [this, change = std::move(change), done = std::move(done)] {
    auto& member = *impl_->member;
    if (!member.is_leader()) {
      const auto leader = member.leader_id();
      done(leader == 0 ? "the queue core has no leader now; retry"
                       : fmt::format("this node is not the queue core's leader; node {} is: ask its admin API", leader));
      return;
    }
    done(change(member));
  });
}

void service::transfer_leadership(std::uint64_t to, std::function<void(std::optional<std::string>)> done) {
  on_leader([to](replication::replica& member) {
    auto refused = member.transfer_leadership(to);
    if (!refused) log::queue().info("queue core: member {} hands leadership to {}", member.id(),
                                    to == 0 ? std::string("the most up-to-date voter") : fmt::format("member {}", to));
    return refused;
  }, std::move(done));
}

void service::add_member(replication::server member, std::function<void(std::optional<std::string>)> done) {
  if (!impl_->peers) {
    asio::post(impl_->ctx, [done = std::move(done)] {
      done("this node runs without a cluster section: it has no peer listener for members to join");
    });
    return;
  }
  on_leader([member = std::move(member)](replication::replica& m) { return m.add_member(member); }, std::move(done));
}

void service::remove_member(std::uint64_t id, std::function<void(std::optional<std::string>)> done) {
  on_leader([id](replication::replica& m) { return m.remove_member(id); }, std::move(done));
}

service_stats service::stats() const {
  service_stats s;
  {
    const std::lock_guard lock(impl_->engine_stats_mutex);
    s.engine = impl_->last_engine_stats;
    s.replication = impl_->last_status;
    s.snapshots = impl_->snapshot_stats;
  }
  s.peer_tls_refused = impl_->peers ? impl_->peers->tls_refused() : 0;
  s.commands = impl_->commands_applied.load(std::memory_order_relaxed);
  s.commits = impl_->commits.load(std::memory_order_relaxed);
  s.entries_proposed = impl_->entries_proposed.load(std::memory_order_relaxed);
  s.elections_started = impl_->elections_started.load(std::memory_order_relaxed);
  s.commands_lost = impl_->commands_lost.load(std::memory_order_relaxed);
  s.long_polls_waiting = impl_->long_polls_waiting.load(std::memory_order_relaxed);
  s.long_polls_refused = impl_->long_polls_refused.load(std::memory_order_relaxed);
  s.long_polls_abandoned = impl_->abandoned_long_polls.load(std::memory_order_relaxed);
  s.pushes_in_flight = impl_->pushes_in_flight.load(std::memory_order_relaxed);
  s.storage_failures = impl_->storage_failures.load(std::memory_order_relaxed);
  s.traced_messages = impl_->traced_messages.load(std::memory_order_relaxed);
  s.traces_evicted = impl_->traces_evicted.load(std::memory_order_relaxed);
  return s;
}

void service::stop() {
  std::call_once(impl_->stop_once, [this] {
    asio::post(impl_->ctx, [this] { impl_->begin_stop(); });
    impl_->thread.join();
  });
}

}  // namespace wharf::core::queue
