// Three queue engines replicated by three Raft members over a simulated network, driven by
// one seeded scheduler: messages are dropped, delayed and reordered, links are cut and
// healed, members crash (losing every write not yet durable) and restart. After the faults
// stop, every member must hold the same state (the same applied entries, the same engine
// dump, the same stored queue-core keys), and every command a client saw acknowledged must
// be in it. Everything random comes from the seed: a failing seed reproduces, and the
// failure names it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/queue/engine.h"
#include "core/replication/replica.h"
#include "sim_storage.h"

namespace wharf::core::replication::sim {
namespace {

namespace q = core::queue;

constexpr q::time_ms epoch_ms = 1'700'000'000'000;

// Events in virtual time, in (time, order of scheduling) order: one run is one sequence.
class scheduler {
 public:
  explicit scheduler(std::uint64_t seed) : rng_(seed) {}
  void at(std::uint64_t t, std::function<void()> run) { events_.push({std::max(t, now_), next_seq_++, std::move(run)}); }
  void after(std::uint64_t delay_ms, std::function<void()> run) { at(now_ + delay_ms, std::move(run)); }
  // Runs events up to `until` (virtual ms).
  void run_until(std::uint64_t until) {
    while (!events_.empty() && events_.top().at <= until) {
      auto e = events_.top();
      events_.pop();
      now_ = e.at;
      e.run();
    }
    now_ = std::max(now_, until);
  }
  [[nodiscard]] std::uint64_t now() const { return now_; }
  // A number in [0, n), from the seed (no std distribution: those differ between libraries).
  std::uint64_t below(std::uint64_t n) { return rng_() % n; }
  bool chance(unsigned percent) { return below(100) < percent; }

 private:
  struct event {
    std::uint64_t at;
    std::uint64_t seq;
    std::function<void()> run;
    bool operator>(const event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  std::priority_queue<event, std::vector<event>, std::greater<>> events_;
  std::uint64_t now_ = 0;
  std::uint64_t next_seq_ = 0;
  std::mt19937_64 rng_;
};

// A link is a TCP connection: what it delivers comes in the order it was sent (a dropped
// message is one a broken connection lost). Messages on different links overtake each
// other freely.
struct faults {
  unsigned drop_percent = 0;
  std::uint64_t max_delay_ms = 1;  // each message: 1..max_delay_ms later, but not before the link's previous one
  std::set<std::pair<std::uint64_t, std::uint64_t>> cut;  // links down, both directions listed
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> last_delivery;  // per link
};

class cluster;

// One member: a replica, the queue engine it applies to, and storage that outlives crashes.
class node final : public replica_host {
 public:
  node(cluster& c, std::uint64_t id) : c_(c), id_(id) {}

  void start();
  void crash() {
    up_ = false;
    ++incarnation_;
    storage_.crash();
    replica_.reset();
    engine_.reset();
    state_ = {};
  }
  [[nodiscard]] bool up() const { return up_; }
  [[nodiscard]] replica* member() { return replica_.get(); }
  [[nodiscard]] q::engine& engine() { return *engine_; }
  [[nodiscard]] sim_storage& store() { return storage_; }
  // After every event this member handles: the engine's writes of the turn go to storage,
  // and, when the cluster trims logs, a snapshot is taken every `trim_every` entries.
  void end_turn();
  // Entries applied, by index, over every incarnation (a restart applies again what its
  // state had not made durable: the same entry, necessarily).
  std::map<std::uint64_t, log_entry> applied;
  // Commands this member proposed as leader, by index: (term, payload).
  std::map<std::uint64_t, std::pair<std::uint64_t, std::string>> proposed;

  // replica_host
  std::uint64_t now_ms() override;
  void arm_timer(std::uint64_t at_ms) override;
  void send(std::uint64_t to, const std::string& address, std::string body) override;
  void write(write_batch batch, std::function<void(std::error_code)> done) override;
  void apply(std::uint64_t index, const log_entry& entry) override;
  void role_changed(role, std::uint64_t) override {}
  void member_failed(const std::string& why) override { ADD_FAILURE() << "member " << id_ << " stopped: " << why; }
  void send_snapshot(std::uint64_t to, std::uint64_t index, std::string install) override;
  // A leader's state (at `state_index`) and the frame that installs it reach this member.
  void install_state(std::uint64_t from, storage_view& state, std::uint64_t state_index, const std::string& install);

  std::uint64_t snapshots_installed = 0;
  // The highest state index a snapshot brought: entries up to it this member never applied.
  std::uint64_t covered_through = 0;

 private:
  cluster& c_;
  std::uint64_t id_;
  sim_storage storage_;
  std::unique_ptr<q::engine> engine_;
  std::unique_ptr<replica> replica_;
  write_batch state_;
  bool up_ = false;
  std::uint64_t incarnation_ = 0;
  std::uint64_t timer_generation_ = 0;
};

// The queue core's keys: a snapshot's state.
constexpr std::string_view state_begin = "c";
constexpr std::string_view state_end = "d";

class cluster {
 public:
  explicit cluster(std::uint64_t seed) : sched(seed), seed_(seed) {
    for (std::uint64_t id = 1; id <= 3; ++id) nodes.push_back(std::make_unique<node>(*this, id));
    for (auto& n : nodes) n->start();
  }

  node& at(std::uint64_t id) { return *nodes[id - 1]; }

  void deliver(std::uint64_t from, std::uint64_t to, std::string body) {
    if (net.cut.contains({from, to}) || sched.chance(net.drop_percent)) return;
    auto& last = net.last_delivery[{from, to}];
    last = std::max(last, sched.now() + 1 + sched.below(net.max_delay_ms));
    sched.at(last, [this, from, to, body = std::move(body)] {
      node& n = at(to);
      if (!n.up() || net.cut.contains({from, to})) return;
      n.member()->receive(from, body);
      n.end_turn();
    });
  }

  // A snapshot: the leader's state, frozen now, reaches `to` after a delay, or is lost.
  void deliver_state(std::uint64_t from, std::uint64_t to, std::shared_ptr<storage_view> state,
                     std::uint64_t state_index, std::string install) {
    if (net.cut.contains({from, to}) || sched.chance(net.drop_percent)) return;
    sched.after(1 + sched.below(net.max_delay_ms + 50), [this, from, to, state, state_index, install] {
      node& n = at(to);
      if (!n.up() || net.cut.contains({from, to})) return;
      n.install_state(from, *state, state_index, install);
    });
  }

  // A client's command to whichever member it reaches, which hands it to the leader it
  // knows (as the service forwards); none known, or that one not leading: the command is
  // not taken (a client would try again).
  void client_send() {
    node& reached = at(1 + sched.below(3));
    if (!reached.up()) return;
    const std::uint64_t leader = reached.member()->status().leader_id;
    if (leader == 0) return;
    node& n = at(leader);
    if (!n.up() || !n.member()->is_leader()) return;
    const std::uint64_t k = next_payload_++;
    std::vector<q::origin_command> batch;
    if (!queue_made_) {
      batch.push_back({"sim", q::command{epoch_ms + static_cast<q::time_ms>(sched.now()), q::create_queue{"q", {}}}});
    }
    if (sched.chance(70)) {
      batch.push_back({"sim", q::command{epoch_ms + static_cast<q::time_ms>(sched.now()),
                                         q::send_messages{"q", {{"m" + std::to_string(k), 0, std::nullopt, {}}}}}});
    } else {
      q::receive_messages r;
      r.queue = "q";
      r.max_messages = 2;
      batch.push_back({"sim", q::command{epoch_ms + static_cast<q::time_ms>(sched.now()), r}});
    }
    std::string data = q::encode_command_batch(batch);
    if (auto p = n.member()->propose(entry_type::command, data)) {
      queue_made_ = true;
      n.proposed[p->index] = {p->term, std::move(data)};
    }
    n.end_turn();
  }

  // An acknowledgement: the proposing member applied its entry with the term it proposed it in.
  void on_applied(node& n, std::uint64_t index, const log_entry& e) {
    const auto it = n.proposed.find(index);
    if (it == n.proposed.end()) return;
    if (it->second.first == e.term) {
      EXPECT_EQ(it->second.second, e.data) << "seed " << seed_ << ": an acknowledged index holds another command";
      acked.push_back({index, e.term, e.data});
    }
    n.proposed.erase(it);
  }

  struct ack {
    std::uint64_t index;
    std::uint64_t term;
    std::string data;
  };
  std::vector<ack> acked;
  scheduler sched;
  faults net;
  std::uint64_t trailing = 0;  // entries kept behind a snapshot; 0: no snapshots
  std::uint64_t trim_every = 10;
  std::vector<std::unique_ptr<node>> nodes;

 private:
  std::uint64_t seed_;
  std::uint64_t next_payload_ = 0;
  bool queue_made_ = false;
};

void node::start() {
  q::engine_limits limits;
  limits.keep_command_log = false;  // the Raft log keeps the commands
  engine_ = q::engine::open(storage_, limits);
  replica_options o;
  o.id = id_;
  o.address = "node" + std::to_string(id_);
  o.bootstrap = {{1, "node1"}, {2, "node2"}, {3, "node3"}};
  o.election_timeout_ms = 1000;
  o.heartbeat_timeout_ms = 100;
  o.seed = static_cast<std::uint32_t>(c_.sched.below(1u << 30) + 1);
  replica_ = std::make_unique<replica>(o, storage_, *this);
  up_ = true;
  replica_->start(engine_->applied_index());
  end_turn();
}

void node::end_turn() {
  if (!up_) return;
  engine_->finish_batch(state_);
  if (!state_.empty()) {
    const auto index = engine_->applied_index();
    write(std::exchange(state_, write_batch{}), [this, index](std::error_code) { engine_->committed(index); });
  }
  const auto applied = engine_->applied_index();
  if (c_.trailing > 0 && applied >= replica_->snapshot_index() + c_.trim_every)
    replica_->take_snapshot(applied, c_.trailing);
}

std::uint64_t node::now_ms() { return c_.sched.now(); }

void node::arm_timer(std::uint64_t at_ms) {
  const auto generation = ++timer_generation_;
  const auto incarnation = incarnation_;
  c_.sched.at(at_ms, [this, generation, incarnation] {
    if (!up_ || incarnation != incarnation_ || generation != timer_generation_) return;
    replica_->timeout();
    end_turn();
  });
}

void node::send(std::uint64_t to, const std::string&, std::string body) { c_.deliver(id_, to, std::move(body)); }

void node::write(write_batch batch, std::function<void(std::error_code)> done) {
  storage_.write(std::move(batch), std::move(done));
  // The disk takes 1..3 ms; completions come in order, as from the storage writer.
  const auto incarnation = incarnation_;
  c_.sched.after(1 + c_.sched.below(3), [this, incarnation] {
    if (!up_ || incarnation != incarnation_ || !storage_.has_pending()) return;
    auto done = storage_.complete_oldest();
    if (done) done({});
    end_turn();
  });
}

void node::send_snapshot(std::uint64_t to, std::uint64_t index, std::string install) {
  // As the service does: the durable state, at the index its applied record names, once
  // that covers the snapshot (libraft asks again meanwhile).
  std::shared_ptr<storage_view> state = storage_.view();
  const std::uint64_t state_index = q::stored_applied_index(*state);
  if (state_index >= index) c_.deliver_state(id_, to, std::move(state), state_index, std::move(install));
}

void node::install_state(std::uint64_t from, storage_view& state, std::uint64_t state_index,
                         const std::string& install) {
  if (storage_.has_pending()) {
    // The import replaces the state's keys: no write of them may be in flight. Later.
    const auto incarnation = incarnation_;
    c_.sched.after(5, [this, incarnation, from, &state, state_index, install] {
      if (up_ && incarnation == incarnation_) install_state(from, state, state_index, install);
    });
    return;
  }
  if (state_index > engine_->applied_index()) {
    auto import = storage_.import_range(std::string(state_begin), std::string(state_end));
    state.scan_range(state_begin, state_end, [&](std::string_view k, std::string_view v) {
      EXPECT_FALSE(import->add(k, v));
      return true;
    });
    ASSERT_FALSE(import->commit());
    q::engine_limits limits;
    limits.keep_command_log = false;
    engine_ = q::engine::open(storage_, limits);
    ++snapshots_installed;
    covered_through = std::max(covered_through, engine_->applied_index());
  }
  replica_->state_covers(engine_->applied_index());
  replica_->receive(from, install);
  end_turn();
}

void node::apply(std::uint64_t index, const log_entry& entry) {
  const auto [it, fresh] = applied.emplace(index, entry);
  if (!fresh) {
    EXPECT_EQ(it->second.term, entry.term) << "member " << id_ << " applied two entries at " << index;
    EXPECT_EQ(it->second.data, entry.data);
  }
  engine_->set_entry_index(index);
  if (entry.type == static_cast<std::uint8_t>(entry_type::command)) {
    const auto commands = q::decode_command_batch(entry.data);
    ASSERT_TRUE(commands) << "entry " << index << " does not decode";
    for (const auto& c : *commands) (void)engine_->apply(c.cmd, state_);
  }
  c_.on_applied(*this, index, entry);
}

std::string stored_queue_state(sim_storage& s) {
  std::string out;
  for (const auto& [k, v] : s.durable())
    if (k.starts_with("c")) out += k + "=" + v + "\n";
  return out;
}

// Runs `seconds` of faults, then heals everything and lets the cluster settle.
// `trailing` > 0: members take snapshots and trim their logs to that many entries behind,
// so that one cut off or down for long is sent a snapshot.
void run_with_faults(std::uint64_t seed, std::uint64_t seconds, bool crashes, std::uint64_t trailing = 0) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  cluster c(seed);
  c.trailing = trailing;
  c.net.max_delay_ms = 20;
  c.net.drop_percent = 5;
  std::uint64_t t = 0;
  const std::uint64_t fault_end = seconds * 1000;
  while (t < fault_end) {
    t += 5;
    c.sched.at(t, [&c] { c.client_send(); });
    if (t % 500 == 0) {
      // Now and then: cut a member off, heal, crash one, restart the crashed.
      c.sched.at(t, [&c, crashes] {
        switch (c.sched.below(6)) {
          case 0: {  // isolate one member
            const std::uint64_t x = 1 + c.sched.below(3);
            for (std::uint64_t y = 1; y <= 3; ++y)
              if (y != x) c.net.cut.insert({x, y}), c.net.cut.insert({y, x});
            break;
          }
          case 1: c.net.cut.clear(); break;
          case 2:
            if (crashes) {
              node& n = c.at(1 + c.sched.below(3));
              if (n.up()) n.crash();
            }
            break;
          default:
            for (auto& n : c.nodes)
              if (!n->up()) n->start();
            break;
        }
      });
    }
  }
  c.sched.run_until(fault_end);
  // Heal: every link up, every member up, no more drops; a few sends so that the latest
  // leader commits everything of earlier terms (Raft commits those only with one of its own).
  c.net.cut.clear();
  c.net.drop_percent = 0;
  for (auto& n : c.nodes)
    if (!n->up()) n->start();
  for (std::uint64_t i = 1; i <= 20; ++i) c.sched.at(fault_end + 3000 + i * 100, [&c] { c.client_send(); });
  c.sched.run_until(fault_end + 20000);
  // Let every pending write and message finish.
  c.sched.run_until(fault_end + 30000);

  ASSERT_GT(c.acked.size(), 10u) << "the workload got too little acknowledged to show anything";

  const auto status = c.at(1).member()->status();
  for (auto& n : c.nodes) {
    const auto s = n->member()->status();
    EXPECT_EQ(s.applied_index, status.applied_index) << "a member did not catch up";
    EXPECT_EQ(n->engine().applied_index(), c.at(1).engine().applied_index());
  }
  // The same entries everywhere, and every acknowledged one among them.
  for (std::uint64_t id = 2; id <= 3; ++id) {
    const auto& mine = c.at(id).applied;
    const auto& first = c.at(1).applied;
    for (const auto& [index, e] : first) {
      const auto it = mine.find(index);
      if (it == mine.end() && index <= c.at(id).covered_through) continue;  // in the snapshot it installed
      if (it == mine.end() || it->second != e) {
        ADD_FAILURE() << "member " << id << " differs from member 1 at entry " << index << " (of "
                      << first.rbegin()->first << "): " << (it == mine.end() ? "missing" : "another entry");
        break;
      }
    }
  }
  // Every acknowledged entry is the one applied at its index (by a member that applied it
  // rather than installing a snapshot over it; with snapshots, the acknowledging leader at
  // least applied it).
  for (const auto& a : c.acked) {
    const log_entry* found = nullptr;
    for (auto& n : c.nodes)
      if (const auto it = n->applied.find(a.index); it != n->applied.end()) {
        found = &it->second;
        break;
      }
    ASSERT_NE(found, nullptr) << "acknowledged entry " << a.index << " is missing";
    EXPECT_EQ(found->term, a.term) << "acknowledged entry " << a.index << " was replaced";
    EXPECT_EQ(found->data, a.data);
  }
  // The same state in memory and on disk.
  if (::testing::Test::HasFailure()) return;  // the dumps below would only repeat it, at length
  const std::string dump = c.at(1).engine().dump();
  const std::string stored = stored_queue_state(c.at(1).store());
  EXPECT_FALSE(stored.empty());
  for (std::uint64_t id = 2; id <= 3; ++id) {
    EXPECT_EQ(c.at(id).engine().dump(), dump) << "member " << id;
    EXPECT_EQ(stored_queue_state(c.at(id).store()), stored) << "member " << id;
  }
}

TEST(replication_sim, a_quiet_cluster_elects_one_leader_and_replicates) {
  cluster c(1);
  c.sched.run_until(5000);
  int leaders = 0;
  for (auto& n : c.nodes) leaders += n->member()->is_leader() ? 1 : 0;
  ASSERT_EQ(leaders, 1);
  for (int i = 0; i < 50; ++i) c.sched.at(5000 + i * 10, [&c] { c.client_send(); });
  c.sched.run_until(10000);
  EXPECT_GE(c.acked.size(), 40u);
  EXPECT_EQ(c.at(2).applied, c.at(1).applied);
  EXPECT_EQ(c.at(3).applied, c.at(1).applied);
  EXPECT_EQ(c.at(1).engine().dump(), c.at(2).engine().dump());
}

// Members take snapshots of their engine and trim their logs behind them; crashed members
// restart from a snapshot and the entries after it, and still end up identical.
TEST(replication_sim, members_restart_from_snapshots_of_a_trimmed_log) {
  cluster c(7);
  c.trailing = 40;
  c.trim_every = 10;
  c.sched.run_until(3000);
  std::uint64_t t = 3000;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 40; ++i) c.sched.at(t += 10, [&c] { c.client_send(); });
    // A member crashes and comes back at once: it is never more than the trailing entries
    // behind, and catches up from the log.
    const std::uint64_t victim = 1 + static_cast<std::uint64_t>(round % 3);
    c.sched.at(t += 5, [&c, victim] { c.at(victim).crash(); });
    c.sched.at(t += 50, [&c, victim] { c.at(victim).start(); });
    t += 3000;  // time for an election when the leader was the one that crashed
  }
  for (int i = 0; i < 20; ++i) c.sched.at(t += 10, [&c] { c.client_send(); });
  c.sched.run_until(t + 10000);
  ASSERT_GT(c.acked.size(), 100u);
  for (auto& n : c.nodes) {
    EXPECT_GT(n->member()->snapshot_index(), 0u);
    std::size_t entries = 0;
    for (const auto& [k, v] : n->store().durable()) entries += k.starts_with("gl/") ? 1 : 0;
    EXPECT_LE(entries, c.trailing + c.trim_every + 16) << "the log was not trimmed";
    EXPECT_EQ(n->engine().dump(), c.at(1).engine().dump());
    EXPECT_EQ(stored_queue_state(n->store()), stored_queue_state(c.at(1).store()));
  }
}

node* leader_of(cluster& c) {
  for (auto& n : c.nodes)
    if (n->up() && n->member()->is_leader()) return n.get();
  return nullptr;
}

std::vector<std::uint64_t> voters_of(node& n) {
  auto v = n.member()->status().voters;
  std::sort(v.begin(), v.end());
  return v;
}

// A fourth member joins a running group: it is sent the log, becomes a voter once it has
// caught up, and ends identical to the others. Then a follower is removed: the others go on
// without it (a majority of those left), and it is no voter anywhere.
TEST(replication_sim, a_member_joins_catches_up_and_votes_and_one_leaves) {
  cluster c(11);
  c.sched.run_until(3000);
  std::uint64_t t = 3000;
  for (int i = 0; i < 60; ++i) c.sched.at(t += 10, [&c] { c.client_send(); });
  c.sched.run_until(t += 1000);
  c.nodes.push_back(std::make_unique<node>(c, 4));
  c.at(4).start();  // not one of the bootstrap voters: it waits to be added
  node* leader = leader_of(c);
  ASSERT_NE(leader, nullptr);
  EXPECT_EQ(leader->member()->add_member({4, "node4"}), std::nullopt);
  EXPECT_NE(leader->member()->add_member({4, "node4"}), std::nullopt) << "added twice";
  EXPECT_NE(leader->member()->add_member({5, "node5"}), std::nullopt) << "a second change while one is under way";
  leader->end_turn();
  for (int i = 0; i < 60; ++i) c.sched.at(t += 10, [&c] { c.client_send(); });
  c.sched.run_until(t += 5000);
  leader = leader_of(c);
  ASSERT_NE(leader, nullptr);
  EXPECT_EQ(leader->member()->status().joining, 0u);
  for (auto& n : c.nodes) EXPECT_EQ(voters_of(*n), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(c.at(4).applied, c.at(1).applied);
  EXPECT_EQ(c.at(4).engine().dump(), c.at(1).engine().dump());

  const std::uint64_t gone = leader == &c.at(2) ? 3 : 2;
  EXPECT_EQ(leader->member()->remove_member(gone), std::nullopt);
  leader->end_turn();
  c.sched.run_until(t += 2000);
  c.at(gone).crash();
  const auto acked_before = c.acked.size();
  for (int i = 0; i < 40; ++i) c.sched.at(t += 10, [&c] { c.client_send(); });
  c.sched.run_until(t += 5000);
  EXPECT_GT(c.acked.size(), acked_before) << "the three left did not go on";
  std::vector<std::uint64_t> left;
  for (std::uint64_t id = 1; id <= 4; ++id)
    if (id != gone) left.push_back(id);
  for (const auto id : left) {
    EXPECT_EQ(voters_of(c.at(id)), left) << "member " << id;
    EXPECT_EQ(c.at(id).engine().dump(), c.at(left[0]).engine().dump()) << "member " << id;
  }
  leader = leader_of(c);
  ASSERT_NE(leader, nullptr);
  EXPECT_NE(leader->member()->remove_member(gone), std::nullopt) << "removed twice";
}

// A member down while the others trim their logs far past it comes back to a leader that
// no longer has the entries it lacks: it is sent the leader's state, installs it, and goes on
// from the log. A member added later starts from a snapshot too.
TEST(replication_sim, a_member_behind_the_trimmed_log_catches_up_by_snapshot) {
  cluster c(21);
  c.trailing = 20;
  c.trim_every = 10;
  c.sched.run_until(3000);
  std::uint64_t t = 3000;
  for (int i = 0; i < 30; ++i) c.sched.at(t += 10, [&c] { c.client_send(); });
  c.sched.run_until(t += 500);
  node* leader = leader_of(c);
  ASSERT_NE(leader, nullptr);
  node& behind = leader == &c.at(3) ? c.at(2) : c.at(3);
  behind.crash();
  for (int i = 0; i < 200; ++i) c.sched.at(t += 10, [&c] { c.client_send(); });
  c.sched.run_until(t += 1000);
  leader = leader_of(c);
  ASSERT_NE(leader, nullptr);
  const auto behind_by = leader->member()->snapshot_index();
  ASSERT_GT(behind_by, c.trailing + 100) << "the leader's log was not trimmed far enough to need a snapshot";
  behind.start();
  c.nodes.push_back(std::make_unique<node>(c, 4));
  c.at(4).start();
  EXPECT_EQ(leader->member()->add_member({4, "node4"}), std::nullopt);
  leader->end_turn();
  for (int i = 0; i < 40; ++i) c.sched.at(t += 10, [&c] { c.client_send(); });
  c.sched.run_until(t += 8000);
  leader = leader_of(c);
  ASSERT_NE(leader, nullptr);
  for (node* n : {&behind, &c.at(4)}) {
    EXPECT_GE(n->snapshots_installed, 1u) << "it caught up without a snapshot";
    EXPECT_EQ(n->member()->status().applied_index, leader->member()->status().applied_index);
    EXPECT_EQ(n->engine().dump(), leader->engine().dump());
    EXPECT_EQ(stored_queue_state(n->store()), stored_queue_state(leader->store()));
  }
  EXPECT_EQ(voters_of(*leader), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  // Restarted, it comes back from the installed snapshot and its log.
  behind.crash();
  behind.start();
  c.sched.run_until(t += 3000);
  EXPECT_EQ(behind.engine().dump(), leader->engine().dump());
}

// The seeds a test runs: `first`..`first + count - 1`, or WHARF_SIM_SEED=N alone (to
// reproduce a failure), or WHARF_SIM_SEEDS=COUNT from `first` (to search for one).
std::vector<std::uint64_t> seeds(std::uint64_t first, std::uint64_t count) {
  if (const char* one = std::getenv("WHARF_SIM_SEED")) return {std::strtoull(one, nullptr, 10)};
  if (const char* many = std::getenv("WHARF_SIM_SEEDS")) count = std::strtoull(many, nullptr, 10);
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = first; s < first + count; ++s) out.push_back(s);
  return out;
}

TEST(replication_sim, drops_delays_and_partitions) {
  for (const auto seed : seeds(1, 8)) run_with_faults(seed, 20, false);
}

TEST(replication_sim, drops_delays_partitions_and_crashes) {
  for (const auto seed : seeds(100, 8)) run_with_faults(seed, 20, true);
}

// Short logs: a member cut off or down for a while is sent snapshots, under the same faults.
TEST(replication_sim, drops_delays_partitions_crashes_and_snapshots) {
  for (const auto seed : seeds(200, 8)) run_with_faults(seed, 20, true, 30);
}

}  // namespace
}  // namespace wharf::core::replication::sim
