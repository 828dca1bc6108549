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
#include "core/queue/service_impl.h"

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include "core/log.h"

namespace wharf::core::queue {

using namespace service_internal;

service::impl::impl(storage& store_in, service_options options_in)
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
  asio::post(ctx, [this] { notify_mqtt_auth(); });  // the users and roles loaded
  thread = std::thread([this] { ctx.run(); });
}

std::unique_ptr<engine> service::impl::open_engine(storage& store, engine_limits limits) {
  limits.keep_command_log = false;  // the Raft log keeps the commands
  return engine::open(store, limits);
}

time_ms service::impl::now() {
  last_now = std::max(last_now, options.clock());
  return last_now;
}

void service::impl::begin_stop() {
  stopping = true;
  timer.cancel();
  serve_waiters();  // answers every waiter: stopping ends their wait
  propose_turn();
  flush_state();
  maybe_finish_stop();
}

void service::impl::maybe_finish_stop() {
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
