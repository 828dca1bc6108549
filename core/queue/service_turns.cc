// queue::service: taking commands, proposing each turn's entry, applying what commits (every
// member), and the replica's host (service_impl.h).
#include "core/queue/service_impl.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/log.h"

namespace wharf::core::queue {

using namespace service_internal;

void service::impl::take(command_body body, slot s, std::string_view origin) {
  if (refusal(s)) return;
  count_receive(body, +1);
  turn_commands.push_back({std::string(origin), command{now(), std::move(body)}});
  turn_slots.push_back(std::move(s));
  schedule_turn_end();
}

void service::impl::count_receive(const command_body& body, int delta) {
  if (const auto* r = std::get_if<receive_messages>(&body)) {
    auto& n = receives_in_flight[r->queue];
    n = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(n) + delta);
  }
}

bool service::impl::refusal(slot& s) {
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

void service::impl::answer(slot& s, result r) {
  if (s.receive) {
    if (s.receive->done) s.receive->done(std::move(r));
  } else if (s.done) {
    s.done(std::move(r));
  }
}

void service::impl::schedule_turn_end() {
  if (turn_end_posted) return;
  turn_end_posted = true;
  asio::post(ctx, [this] { end_turn(); });
}

void service::impl::end_turn() {
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

void service::impl::propose_turn() {
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

void service::impl::propose_read_barrier() {
  if (reads_waiting.empty() || !member->is_leader() || failed) return;
  const auto proposal = member->propose(entry_type::barrier, "r");
  if (!proposal) {
    for (auto& r : std::exchange(reads_waiting, {})) r.refuse({code::internal_error, "leadership moved; retry"});
    return;
  }
  barriers[proposal->index] = {proposal->term, std::exchange(reads_waiting, {})};
  after_member();
}

std::uint64_t service::impl::now_ms() {
  return static_cast<std::uint64_t>(
             std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_at)
                 .count()) +
         1;
}

void service::impl::arm_timer(std::uint64_t at_ms) {
  raft_timer.expires_at(started_at + std::chrono::milliseconds(at_ms - 1));
  raft_timer.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped) return;  // re-armed, or stopped
    member->timeout();
    after_member();
  });
}

void service::impl::write(write_batch batch, std::function<void(std::error_code)> done) {
  ++log_writes_in_flight;
  store.write(std::move(batch), [this, done = std::move(done)](std::error_code ec) mutable {
    asio::post(ctx, [this, done = std::move(done), ec] {
      --log_writes_in_flight;
      done(ec);
      after_member();
    });
  });
}

namespace {

bool changes_mqtt_auth(const command_body& body) {
  return std::holds_alternative<put_mqtt_user>(body) || std::holds_alternative<delete_mqtt_user>(body) ||
         std::holds_alternative<put_mqtt_role>(body) || std::holds_alternative<delete_mqtt_role>(body);
}

}  // namespace

void service::impl::apply(std::uint64_t index, const log_entry& entry) {
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
      // The MQTT side has a user's or role's change before anyone is told it is done: a
      // client logging in right after the answer finds it.
      if (changes_mqtt_auth(c.cmd.body)) notify_mqtt_auth();
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

void service::impl::finish(slot& s, result r) {
  if (s.receive && r.outcome.value == code::no_message && s.receive->deadline > now() && !stopping &&
      member->is_leader()) {
    park(std::move(*s.receive), /*front=*/true);
    return;
  }
  answer(s, std::move(r));
}

void service::impl::role_changed(role now_role, std::uint64_t leader_id) {
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

void service::impl::member_failed(const std::string& why) { fail("queue store write failed: " + why); }

void service::impl::notify_mqtt_auth() {
  if (!options.mqtt_auth_changed) return;
  const auto changes = eng->take_mqtt_auth_changes();
  if (!changes.empty()) options.mqtt_auth_changed(*eng, changes);
}

void service::impl::after_member() {
  flush_state();
  notify_mqtt_auth();
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

void service::impl::maybe_trim_log() {
  const std::uint64_t keep = options.limits.log_retain_entries;
  if (keep == 0 || failed) return;
  const std::uint64_t applied = eng->applied_index();
  if (applied - member->snapshot_index() < std::max<std::uint64_t>(keep / 8, 1)) return;
  member->take_snapshot(applied, keep);
}

void service::impl::flush_state() {
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

void service::impl::fail(const std::string& why) {
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

}  // namespace wharf::core::queue
