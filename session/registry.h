// The client-id index: one entry per session, live or offline. Lookups happen on CONNECT
// and when a publish is routed to a session (through the pointer the routing trie holds),
// never by name on the publish path. The map is sharded by client-id hash, each shard
// behind its own mutex; an entry's mutable state has its own small mutex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/message.h"
#include "config/config.h"
#include "session/session_store.h"

namespace wharf::session {

struct session_entry {
  explicit session_entry(std::string id) : client_id(std::move(id)) {}
  const std::string client_id;

  mutable std::mutex mu;
  // ---- guarded by mu ----
  int owner_shard = -1;            // I/O shard of the live connection; -1 while offline
  std::uint64_t generation = 0;    // bumped by each connection that takes the session over
  bool persistent = false;         // outlives its connection (state in RocksDB)
  bool ended = false;              // removed from the registry; routes still holding it skip it
  std::uint8_t protocol_version = 4;
  // The username its connection authenticated with (none: anonymous): the ACL's identity
  // for what its subscriptions are sent, while offline too.
  std::optional<std::string> username;
  // Its connection's own ACL rules (a token's claim); null for almost every session.
  std::unique_ptr<const std::vector<config::acl_rule>> rules;
  std::uint32_t expiry_interval_s = 0;
  std::int64_t expires_at_ms = 0;  // offline: when it ends; 0 = never
  std::uint64_t next_seq = 1;      // next offline-queue sequence number
  std::size_t queued_count = 0;    // offline queue, bounded like the live one
  std::size_t queued_bytes = 0;
  // Offline-queue writes submitted and not yet durable. A connection resuming the session
  // reads the queue only once this is 0, so no message lands behind its read.
  int writes_in_flight = 0;
  std::vector<stored_subscription> subscriptions;  // so routes can be removed when it ends
  // A will waiting for its delay. Held by pointer: almost no session has one, and a
  // message in place would add ~280 bytes to every entry (a million stored sessions).
  std::unique_ptr<core::message> pending_will;
  std::int64_t will_due_ms = 0;
};

class registry {
 public:
  // The entry for `client_id`, created (offline, empty) if absent.
  [[nodiscard]] std::shared_ptr<session_entry> get_or_create(std::string_view client_id);
  [[nodiscard]] std::shared_ptr<session_entry> find(std::string_view client_id) const;
  // Removes `entry` if it is still the one registered under its id.
  void erase(const std::shared_ptr<session_entry>& entry);
  [[nodiscard]] std::size_t size() const;
  void for_each(const std::function<void(const std::shared_ptr<session_entry>&)>& visit) const;

 private:
  static constexpr std::size_t shard_count = 64;
  struct shard {
    mutable std::mutex mu;
    std::unordered_map<std::string_view, std::shared_ptr<session_entry>> by_id;  // keys view entry->client_id
  };
  shard& shard_for(std::string_view id) const;
  mutable std::array<shard, shard_count> shards_;
};

}  // namespace wharf::session
