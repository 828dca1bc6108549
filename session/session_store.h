// Persistent session state in RocksDB: the key layout and (de)serialisation of session
// records, subscriptions and queued deliveries. See docs/ARCHITECTURE.md "Storage keys".
//
//   s/<client id>                  session_record
//   u/<client id>\0<filter>        stored_subscription   (filter as subscribed, $share/ included)
//   q/<client id>\0<be64 seq>      stored_delivery       (offline queue and in-flight, in order)
//   i/<client id>\0<be16 id>       (empty)               inbound QoS 2 ids awaiting PUBREL
//   r/<topic>                      core::message         (retained; core/retained_store)
//
// U+0000 may not appear in a client id or topic filter ([MQTT-1.5.4-2]), so '\0' separates.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/message.h"
#include "core/storage.h"

namespace wharf::session {

struct stored_subscription {
  std::string filter;
  std::uint8_t max_qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint8_t retain_handling = 0;
  std::uint32_t subscription_id = 0;  // 0: none
  friend bool operator==(const stored_subscription&, const stored_subscription&) = default;
};

struct session_record {
  std::uint8_t protocol_version = 4;
  std::uint32_t expiry_interval_s = 0;
  std::int64_t disconnected_unix_ms = 0;  // when it went offline; 0 = still online at the crash
  std::optional<core::message> pending_will;  // a will waiting for its delay
  std::int64_t will_due_unix_ms = 0;
  std::optional<std::string> username;  // as its last connection authenticated; none: anonymous
  std::vector<config::acl_rule> rules;   // that connection's own ACL rules (a token's claim)
  friend bool operator==(const session_record&, const session_record&) = default;
};

// One message for one session: waiting to be sent, or sent and not yet acknowledged.
struct stored_delivery {
  core::message msg;  // msg.qos is the granted QoS: min(publish QoS, subscription QoS)
  std::vector<std::uint32_t> subscription_ids;
  std::uint16_t packet_id = 0;  // != 0: sent once; resend with DUP, or PUBREL if pubrel_sent
  bool pubrel_sent = false;
  friend bool operator==(const stored_delivery&, const stored_delivery&) = default;
};

// The same for a live session: the message is shared between all its subscribers
// (fan-out copies a pointer, not the payload).
struct delivery {
  std::shared_ptr<const core::message> msg;
  std::uint8_t qos = 0;      // granted QoS
  bool retain = false;       // the RETAIN flag to send
  std::vector<std::uint32_t> subscription_ids;
  std::uint16_t packet_id = 0;
  bool pubrel_sent = false;
  std::uint64_t stored_seq = 0;  // its key in the stored queue when restored from it; 0: none
  // "group/filter" when it came through a shared subscription: if the member leaves before
  // acknowledging it, it goes to another member of that group.
  std::string shared_group;
};
[[nodiscard]] stored_delivery to_stored(const delivery& d);
[[nodiscard]] delivery from_stored(stored_delivery&& d);

namespace keys {
[[nodiscard]] std::string session(std::string_view client_id);
[[nodiscard]] std::string subscription(std::string_view client_id, std::string_view filter);
[[nodiscard]] std::string delivery(std::string_view client_id, std::uint64_t seq);
[[nodiscard]] std::string inbound_qos2(std::string_view client_id, std::uint16_t packet_id);
}  // namespace keys

void put_session(core::write_batch& batch, std::string_view client_id, const session_record& record);
void put_subscription(core::write_batch& batch, std::string_view client_id, const stored_subscription& sub);
void erase_subscription(core::write_batch& batch, std::string_view client_id, std::string_view filter);
void put_delivery(core::write_batch& batch, std::string_view client_id, std::uint64_t seq, const stored_delivery& d);
void erase_delivery(core::write_batch& batch, std::string_view client_id, std::uint64_t seq);
void put_inbound_qos2(core::write_batch& batch, std::string_view client_id, std::uint16_t packet_id);
void erase_inbound_qos2(core::write_batch& batch, std::string_view client_id, std::uint16_t packet_id);
// Every key of the session (record, subscriptions, queue, inbound ids).
void erase_session(core::write_batch& batch, std::string_view client_id);
// Only the queue and inbound ids (a resumed session re-writes what it still holds).
void erase_session_queue(core::write_batch& batch, std::string_view client_id);

[[nodiscard]] std::string encode_record(const session_record& r);
[[nodiscard]] bool decode_record(std::string_view bytes, session_record& out);
[[nodiscard]] std::string encode_subscription(const stored_subscription& s);
[[nodiscard]] bool decode_subscription(std::string_view bytes, stored_subscription& out);
[[nodiscard]] std::string encode_delivery(const stored_delivery& d);
[[nodiscard]] bool decode_delivery(std::string_view bytes, stored_delivery& out);

struct loaded_session {
  std::string client_id;
  session_record record;
  std::vector<stored_subscription> subscriptions;
  std::uint64_t next_seq = 1;        // one past the highest stored queue sequence
  std::size_t queued_count = 0;
  std::size_t queued_bytes = 0;
};

// Visits every stored session with its subscriptions and queue size (startup).
// Records that fail to decode are reported through `corrupt` and skipped.
void load_sessions(core::storage& db, const std::function<void(loaded_session&&)>& visit,
                   const std::function<void(std::string_view key)>& corrupt);

// The session's queue in sequence order.
[[nodiscard]] std::vector<std::pair<std::uint64_t, stored_delivery>> load_queue(core::storage& db, std::string_view client_id);
[[nodiscard]] std::vector<std::uint16_t> load_inbound_qos2(core::storage& db, std::string_view client_id);

}  // namespace wharf::session
