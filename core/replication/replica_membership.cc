// replica: membership changes (one configuration entry at a time, a member added as a spare
// that catches up before it votes) and leadership transfer.
// libraft's include comes first: see libraft.h.
#include "core/replication/libraft.h"

#include "core/replication/replica_internal.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "core/log.h"

namespace wharf::core::replication {

std::optional<std::string> replica::submit_configuration(std::uint64_t id, const std::string& address, int role) {
  const raft_configuration& now = raft_->configuration;
  raft_configuration conf;
  raft_configuration_init(&conf);
  bool listed = false;
  for (unsigned i = 0; i < now.n; ++i) {
    const auto& srv = now.servers[i];
    const bool that = srv.id == id;
    listed = listed || that;
    if (that && role < 0) continue;
    if (raft_configuration_add(&conf, srv.id, srv.address, that ? role : srv.role) != 0) {
      raft_configuration_close(&conf);
      throw std::bad_alloc();
    }
  }
  if (!listed && role >= 0 && raft_configuration_add(&conf, id, address.c_str(), role) != 0) {
    raft_configuration_close(&conf);
    return fmt::format("member {} at '{}' cannot be added", id, address);
  }
  const std::string encoded = encode_configuration(conf);
  raft_configuration_close(&conf);
  const int rv = submit(entry_type::configuration, encoded);
  if (rv == RAFT_CANTCHANGE) return std::string("a membership change is under way; retry once it has committed");
  if (rv != 0) return std::string(raft_strerror(rv));
  return std::nullopt;
}

std::optional<std::string> replica::add_member(const server& member) {
  if (!started_ || failed_ || raft_state(raft_.get()) != RAFT_LEADER) return "this member is not the leader";
  if (member.id == 0 || member.address.empty()) return std::string("a member needs an id above 0 and an address");
  for (const auto& m : status().configuration)
    if (m.id == member.id) return fmt::format("member {} is in the group already", member.id);
  if (joining_ != 0) return fmt::format("member {} is still joining; retry once it has", joining_);
  if (auto refused = submit_configuration(member.id, member.address, RAFT_SPARE)) return refused;
  joining_ = member.id;
  catch_up_started_ = false;
  log::queue().info("replication: member {} joins the group (at {}); it gets a vote once it has caught up",
                    member.id, member.address);
  return std::nullopt;
}

std::optional<std::string> replica::remove_member(std::uint64_t id) {
  if (!started_ || failed_ || raft_state(raft_.get()) != RAFT_LEADER) return "this member is not the leader";
  const auto s = status();
  if (std::none_of(s.configuration.begin(), s.configuration.end(), [&](const server& m) { return m.id == id; }))
    return fmt::format("member {} is not in the group", id);
  if (s.voters.size() == 1 && s.voters[0] == id) return std::string("the group's last voter cannot be removed");
  if (auto refused = submit_configuration(id, {}, -1)) return refused;
  if (joining_ == id) joining_ = 0;
  log::queue().info("replication: member {} leaves the group", id);
  return std::nullopt;
}

// The member being added: once the entry adding it is committed, libraft's catch-up rounds
// send it the log; once they finish, it becomes a voter. Checked on every timeout (a
// leader's come every heartbeat).
void replica::advance_join() {
  if (joining_ == 0) return;
  ::raft* r = raft_.get();
  if (raft_state(r) != RAFT_LEADER) {
    log::queue().warn("replication: member {} was still joining when this member stopped leading; it has no vote "
                      "(add it again through the leader)", std::exchange(joining_, 0));
    return;
  }
  if (r->configuration_uncommitted_index != 0) return;  // the entry adding it is not committed yet
  if (!catch_up_started_) {
    catch_up_started_ = true;
    raft_event event{};
    event.type = RAFT_CATCH_UP;
    event.catch_up.server_id = joining_;
    step(event);
    return;
  }
  int progress = RAFT_CATCH_UP_NONE;
  if (raft_catch_up(r, joining_, &progress) != 0 || progress == RAFT_CATCH_UP_RUNNING) return;
  const std::uint64_t id = std::exchange(joining_, 0);
  if (progress != RAFT_CATCH_UP_FINISHED) {
    log::queue().warn("replication: member {} did not catch up; it stays without a vote (remove it, or add it "
                      "again once it is reachable)", id);
    return;
  }
  if (auto refused = submit_configuration(id, {}, RAFT_VOTER)) {
    log::queue().warn("replication: member {} caught up but could not be made a voter: {}", id, *refused);
    return;
  }
  log::queue().info("replication: member {} caught up and becomes a voter", id);
}

std::optional<std::string> replica::transfer_leadership(std::uint64_t to) {
  if (!started_ || failed_ || raft_state(raft_.get()) != RAFT_LEADER) return "this member is not the leader";
  if (raft_transferee(raft_.get()) != 0)
    return fmt::format("leadership is already being handed to member {}", raft_transferee(raft_.get()));
  raft_event event{};
  event.type = RAFT_TRANSFER;
  event.transfer.server_id = to;
  event.time = host_.now_ms();
  raft_update update{};
  // Refusals (no other voter, not a voter) change nothing: unlike step(), they do not stop
  // the member.
  if (const int rv = raft_step(raft_.get(), &event, &update); rv != 0)
    return rv == RAFT_BADID ? fmt::format("member {} is not another voter of the group", to)
                            : std::string(raft_errmsg(raft_.get()));
  stepping_ = true;
  process(update);
  stepping_ = false;
  drain_follow_ups();
  return std::nullopt;
}

}  // namespace wharf::core::replication
