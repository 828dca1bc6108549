// queue::service: requests that reach a member which does not lead go to the leader over the
// peer links and its answers come back; the peer frames; snapshots sent to members behind
// the log, and installed from the leader (service_impl.h).
#include "core/queue/service_impl.h"

#include <boost/asio/post.hpp>

#include <exception>
#include <utility>

#include <fmt/format.h>

#include "core/log.h"

namespace wharf::core::queue {

using namespace service_internal;

void service::impl::dispatch_commands(std::vector<command_body> bodies, std::vector<std::string> origins,
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

void service::impl::dispatch_receive(receive_messages request, std::optional<std::chrono::milliseconds> wait,
                                     result_callback done, std::shared_ptr<const std::atomic<bool>> abandoned,
                                     std::string origin) {
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

void service::impl::dispatch_read(std::function<void(const engine&, time_ms)> run, std::function<void(status)> refused) {
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

void service::impl::run_when_applied(std::uint64_t index, std::function<void()> run) {
  if (member->applied_index() >= index) return run();
  reads_at.emplace(index, std::move(run));
}

void service::impl::to_leader(forwarded_request req, std::function<void(forwarded_answer)> on_answer,
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

void service::impl::retry_awaiting_leader() {
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

void service::impl::serve_relayed(std::uint64_t, forwarded_request req, std::function<void(forwarded_answer)> reply) {
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

void service::impl::on_frame(std::uint64_t from, const replication::frame& f) {
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

void service::impl::expire_requests(time_ms t) {
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

void service::impl::send(std::uint64_t to, const std::string&, std::string body) {
  if (peers) peers->send(to, replication::frame_kind::raft, 0, body);
}

void service::impl::send_snapshot(std::uint64_t to, std::uint64_t index, std::string install) {
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

void service::impl::install_snapshot(snapshot_install install) {
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

void service::impl::publish_snapshot_stats() {
  const std::lock_guard lock(engine_stats_mutex);
  if (snapshot_out) snapshot_stats = snapshot_out->stats();
  if (snapshot_in) {
    const auto& in = snapshot_in->stats();
    snapshot_stats.received = in.received;
    snapshot_stats.bytes_received = in.bytes_received;
  }
}

void service::impl::members_changed(const std::vector<replication::server>& members) {
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

}  // namespace wharf::core::queue
