// What the files implementing replica (replica.cc, replica_membership.cc,
// replica_snapshots.cc) share beyond replica.h. Private to core/replication. Include
// libraft.h first.
#pragma once

#include <string>
#include <string_view>

#include "core/replication/replica.h"

namespace wharf::core::replication {

// An encoded configuration as libraft's struct (its heap), for events that take it over.
// Throws std::runtime_error when `encoded` does not decode.
[[nodiscard]] raft_configuration decode_configuration(std::string_view encoded);
[[nodiscard]] std::string encode_configuration(const raft_configuration& conf);

}  // namespace wharf::core::replication
