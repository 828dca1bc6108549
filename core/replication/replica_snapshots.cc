// replica: snapshots taken of the state machine's state (and the log trimmed behind them),
// offered to members behind the trimmed log, and installed from the leader.
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

std::optional<std::uint64_t> replica::snapshot_install_index(std::string_view body) {
  const auto m = decode_raft(body);
  if (!m || m->type != RAFT_INSTALL_SNAPSHOT) return std::nullopt;
  return m->snapshot_index;
}

void replica::state_covers(std::uint64_t index) { covered_by_state_ = std::max(covered_by_state_, index); }

void replica::persist_installed_snapshot(void* update_snapshot) {
  auto& u = *static_cast<decltype(raft_update::snapshot)*>(update_snapshot);
  raft_free(u.chunk.base);  // the data went by the host's transfer: libraft's chunk is empty
  const snapshot_meta meta{u.metadata.index, u.metadata.term, encode_configuration(u.metadata.configuration),
                           u.metadata.configuration_index};
  // libraft discarded its log: ours goes too, on disk (in the same write as the metadata)
  // and in memory; the next entry is the one after the snapshot.
  write_batch batch;
  log_.erase_from(batch, 0);
  log_.put_snapshot(batch, meta);
  mem_clear();
  mem_first_ = meta.index + 1;
  // libraft takes the configuration over again with RAFT_PERSISTED_SNAPSHOT.
  auto metadata = std::make_shared<raft_snapshot_metadata>(u.metadata);
  host_.write(std::move(batch), [this, meta, metadata](std::error_code ec) {
    if (failed_) return;
    if (ec) {
      stop_member(ec.message(), "an installed snapshot could not be written");
      return;
    }
    // Before libraft moves its commit index to the snapshot's: nothing up to it is applied.
    applied_ = std::max(applied_, meta.index);
    snapshot_index_ = meta.index;
    configurations_.clear();
    configurations_[meta.configuration_index] = meta.configuration;
    members_changed(meta.configuration);
    log::queue().info("replication: member {} installed the snapshot at {} (term {})", options_.id, meta.index,
                      meta.term);
    raft_event event{};
    event.type = RAFT_PERSISTED_SNAPSHOT;
    event.persisted_snapshot.metadata = *metadata;
    event.persisted_snapshot.offset = 0;
    event.persisted_snapshot.last = true;
    step(event);
    drain_follow_ups();
  });
}

void replica::offer_snapshot(const void* message) {
  const auto& m = *static_cast<const raft_message*>(message);
  const auto& a = m.install_snapshot;
  // libraft leaves the configuration and the data to us: the configuration is the one in
  // force at the snapshot, the data is the host's to send.
  const auto conf = configurations_.find(a.conf_index);
  if (conf == configurations_.end()) {
    log::queue().warn("replication: no configuration at {} for the snapshot at {}; member {} waits", a.conf_index,
                      a.last_index, m.server_id);
    return;
  }
  raft_frame f;
  f.type = RAFT_INSTALL_SNAPSHOT;
  f.version = a.version;
  f.term = a.term;
  f.snapshot_index = a.last_index;
  f.snapshot_term = a.last_term;
  f.configuration = conf->second;
  f.configuration_index = a.conf_index;
  host_.send_snapshot(m.server_id, a.last_index, encode_raft(f));
}

void replica::take_snapshot(std::uint64_t index, std::uint64_t trailing) {
  if (!started_ || failed_ || index > applied_ || index <= snapshot_index_ || raft_->snapshot.installing) return;
  const log_entry* e = entry_at(index);
  auto conf = configurations_.upper_bound(index);
  if (e == nullptr || conf == configurations_.begin()) return;
  --conf;
  snapshot_meta meta{index, e->term, conf->second, conf->first};
  raft_event event{};
  event.type = RAFT_SNAPSHOT;
  event.snapshot.metadata.index = meta.index;
  event.snapshot.metadata.term = meta.term;
  event.snapshot.metadata.configuration = decode_configuration(meta.configuration);  // libraft takes it over
  event.snapshot.metadata.configuration_index = meta.configuration_index;
  event.snapshot.trailing = static_cast<unsigned>(std::min<std::uint64_t>(trailing, index));
  step(event);
  if (failed_) return;
  snapshot_index_ = index;
  // Configurations older than the snapshot's are no longer needed.
  configurations_.erase(configurations_.begin(), conf);
  write_batch batch;
  log_.put_snapshot(batch, meta);
  if (index > trailing) {
    const std::uint64_t trim_through = index - trailing;
    log_.erase_through(batch, trim_through);
    while (!mem_.empty() && mem_first_ <= trim_through) mem_pop_front();
    if (mem_.empty()) mem_first_ = std::max(mem_first_, trim_through + 1);
  }
  // Nothing waits on it: a lost trim only leaves more log, and it lands after the state it
  // relies on (the host wrote that first, into the same write-ahead log).
  host_.write(std::move(batch), [](std::error_code) {});
  drain_follow_ups();
}

}  // namespace wharf::core::replication
