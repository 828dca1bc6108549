// One MQTT client connection: the protocol behaviour of the broker towards one client.
// Owned by its stream; lives on its shard's thread. Packet syntax is the codec's
// (gateway/mqtt/protocol); this class applies the rules that need connection and session
// state: the CONNECT handshake, flow control, topic aliases, QoS flows, keep alive,
// subscriptions, wills and the session's lifecycle.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "auth/access_policy.h"
#include "core/message.h"
#include "core/queue/tenant.h"
#include "gateway/mqtt/protocol/framer.h"
#include "gateway/mqtt/protocol/packets.h"
#include "gateway/mqtt/shard.h"
#include "net/stream.h"
#include "session/outbound_window.h"
#include "session/registry.h"

namespace wharf::gateway {

class connection final : public net::stream_handler {
 public:
  connection(shard& home, std::shared_ptr<net::stream> s);
  ~connection() override;

  void on_data(std::span<const std::uint8_t> bytes) override;
  void on_closed(std::error_code ec) override;

  // A message for this connection's session (from routing, here or from another shard).
  void enqueue(session::delivery d);
  // Periodic check: connect timeout and keep alive ([MQTT-3.1.2-22]: 1.5 x keep alive).
  void tick(std::int64_t now_ms);
  // Ends the connection from the broker's side (takeover 0x8E, shutdown 0x8B): v5 clients
  // get DISCONNECT with `reason`, the will is published as for an abnormal close, and the
  // session is offline (persisted) when this returns.
  void kick(mqtt::reason_code reason);
  // Fills what only the live connection knows of its session (admin API): identity, peer,
  // window, subscriptions (when `with_subscriptions`).
  void describe(session_view& view, bool with_subscriptions) const;
  // The answer of a credentials check made off the I/O thread (a password, a token, the
  // HTTP hook) for this connection's CONNECT:
  struct admitted_as {  // go on as this client
    std::optional<std::string> username;
    std::vector<config::acl_rule> rules;  // its own ACL rules, tried before auth.acl
    bool runtime_user = false;            // a user of the runtime store: its changes reach it
  };
  struct refused_because {  // answer the CONNECT with `code`, logging `why`
    mqtt::reason_code code;
    std::string why;
  };
  struct passed_on {  // the source leaves the client to the next one in auth.order
    std::size_t next_source;
    std::optional<std::string> username;
    std::optional<std::string> password;
  };
  using credentials_verdict = std::variant<admitted_as, refused_because, passed_on>;
  void credentials_checked(credentials_verdict verdict);

  // The runtime users `changed` (or everyone) changed: a client logged in as one of them
  // takes its rules as they are now, or is disconnected (0x87) when it was deleted.
  void refresh_runtime_user(const std::unordered_set<std::string>& changed, bool everyone);

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }

 private:
  // authenticating: CONNECT was read and its password is being checked off this thread;
  // what the client sends meanwhile is held (held_packets_) with reading paused.
  enum class state { awaiting_connect, authenticating, restoring, connected, closed };

  bool handle_packet(const mqtt::fixed_header& header, std::span<const std::uint8_t> body);
  void handle_connect(mqtt::connect_packet& p);
  void handle_publish(mqtt::publish_packet& p);
  void handle_ack(const mqtt::ack_packet& p);
  void handle_subscribe(const mqtt::subscribe_packet& p);
  void handle_unsubscribe(const mqtt::unsubscribe_packet& p);
  void handle_disconnect(const mqtt::disconnect_packet& p);

  // Authentication and authorization (connection_auth.cc). authenticate() decides who the
  // client is (a certificate, or the sources of auth.order: the file's users and their
  // passwords, a JSON Web Token, the HTTP hook; else anonymous) and goes on to admit() or
  // refuses the CONNECT. A password not checked before, every token and every question to
  // the hook are answered off this thread, the connection paused meanwhile, and the answer
  // comes back through credentials_answer(). try_sources() goes on from source `next`.
  void authenticate(std::optional<std::string> username, std::optional<std::string> password);
  void try_sources(std::size_t next, std::optional<std::string> username, std::optional<std::string> password);
  void ask_hook(std::size_t source, std::optional<std::string> username, std::optional<std::string> password);
  // A user of the file or the runtime store: `password` against `stored` (remembered in the
  // policy's cache under `account`), then admitted as `username` with `rules`.
  void check_password(std::string account, const std::string& username, const auth::stored_password& stored,
                      std::optional<std::string> password, std::vector<config::acl_rule> rules, bool runtime_user);
  void credentials_checked_now(admitted_as who);
  // What the HTTP hook is told of this client (a CONNECT's credentials, or none later).
  [[nodiscard]] auth::hook_request hook_request_for(auth::hook_request::kind action, std::string topic,
                                                    std::optional<std::string> username,
                                                    std::optional<std::string> password) const;
  // With auth.http.authorize_publish / authorize_subscribe: when `packet` publishes to a
  // topic, or subscribes to a filter, the hook has not answered about yet, asks it, holds
  // the packet (reading paused) and returns true; handle_packet runs it again once every
  // answer is in (hook_answered).
  [[nodiscard]] bool awaits_hook_answers(const mqtt::packet& packet);
  void hook_answered(std::string key, bool allowed, std::uint32_t remember_ms);
  // The hook's answer about `topic` for `action` ('p' publish, 's' subscribe), while it holds.
  [[nodiscard]] std::optional<bool> hook_verdict_on(char action, std::string_view topic) const;
  void pause_for_credentials_check();
  [[nodiscard]] std::function<void(credentials_verdict)> credentials_answer();
  void admit();
  // Answers the CONNECT with `rc` and closes; counted in auth_failures, or in `counter`.
  void refuse_connect(mqtt::reason_code rc, std::string_view why);
  void refuse_connect(mqtt::reason_code rc, std::string_view why, std::atomic<std::uint64_t>& counter);
  // Checks the CONNECT against the broker's admission (connection limits, rate, flapping);
  // refuses it and returns false when it may not go on.
  [[nodiscard]] bool admitted_by_limits();
  // Per-client inbound rates (mqtt.max_publish_rate, max_inbound_bytes_rate): reading
  // pauses while a bucket is in debt and resumes at the tick that refills it.
  void refill_rate_buckets(std::int64_t now_ms);
  [[nodiscard]] bool over_inbound_rate() const noexcept;
  // Runs the packets held (while authenticating, or over the inbound rate), then reads on.
  void release_held_packets();
  [[nodiscard]] auth::client_identity identity() const noexcept;
  // The client id as the client knows it (without its tenant's mount).
  [[nodiscard]] std::string_view device_client_id() const noexcept;
  // "$tenant/<name>/" for a client of a tenant, "" for the default tenant's: the prefix of
  // its client id, topics and filters as the broker holds them. Read from client_id_, not
  // kept beside it (a connection's bytes count: docs/PERFORMANCE.md).
  [[nodiscard]] std::string_view mount() const noexcept {
    return in_tenant_ ? core::queue::mqtt_mount_of(client_id_) : std::string_view{};
  }
  // Puts the client in its username's tenant: its client id and will under the tenant's
  // mount. False (refused, CONNACK sent) for a default-tenant client id in the tenants' tree.
  [[nodiscard]] bool enter_tenant();
  [[nodiscard]] bool may_publish(std::string_view topic) const;
  // Who this client is, for the queue core's message trace: "mqtt client <id>".
  [[nodiscard]] std::string trace_origin() const;

  // Session lifecycle (connection_session.cc).
  void begin_session();
  void take_session_locked(std::vector<session::stored_subscription>& discarded, bool& present);
  void finish_begin_session(std::vector<session::stored_subscription> discarded, bool present);
  void request_takeover(int owner_shard, std::uint64_t owner_generation);
  void restore_session();
  void finish_connect(bool session_present);
  // `reason`: the MQTT reason code the connection ended with, if it had one (a dropped
  // socket has none); recorded in the disconnected event.
  void end_session(bool publish_will, std::optional<mqtt::reason_code> reason);
  // Drains the window, passing shared-subscription deliveries on to other group members.
  [[nodiscard]] std::vector<session::delivery> take_held_deliveries();

  // Output.
  void send(const mqtt::packet& p);
  void send_connack_error(mqtt::reason_code rc);
  void send_ack(mqtt::packet_type type, std::uint16_t packet_id, mqtt::reason_code rc);
  // Sends an acknowledgement: `send_ack(c, outcome)` runs now, or, when the packet wrote to
  // this turn's storage batch (ops.added), handed commands to the queue core
  // (ops.core_commands) or an earlier ack still waits, once all of that is durable (if the
  // connection is still open then). `outcome` is success, or the reason code for what the
  // queue core refused. Acks go out in packet order [MQTT-4.6.0-2].
  using ack_sender = std::function<void(connection&, mqtt::reason_code outcome)>;
  // `then_store`, if given, writes to the shard's batch once everything else is durable
  // and successful; the ack then waits for that commit as well.
  void ack_when_durable(durable_ops& ops, ack_sender send_ack, std::function<void(connection&)> then_store = {});
  void ack_when_durable(bool wrote, std::function<void(connection&)> send_ack);
  // One of the commits the waiting ack `seq` depends on is done, with `outcome`.
  void ack_condition_met(std::uint64_t seq, mqtt::reason_code outcome);
  // What a QoS 1/2 PUBLISH whose bridged copy the queue core refused gets: v5, the ack with
  // `outcome` (the flow ends there); v3, which has no negative ack, the connection closes so
  // the client sends it again later.
  void refuse_publish(std::uint8_t qos, std::uint16_t packet_id, mqtt::reason_code outcome);
  void send_delivery(const session::delivery& d, bool dup);
  void pump();
  // Protocol violation or broker-side close: DISCONNECT (v5, once connected), then close.
  void fail(mqtt::reason_code rc, std::string_view why);
  // The same without counting a protocol error: the broker ends the connection for `why`.
  void disconnect(mqtt::reason_code rc, std::string_view why);
  void close_stream();

  shard& home_;
  broker& broker_;
  std::shared_ptr<net::stream> stream_;
  std::uint64_t id_;
  state state_ = state::awaiting_connect;
  mqtt::framer framer_;
  mqtt::protocol_version version_ = mqtt::protocol_version::v3_1_1;
  std::int64_t created_ms_;
  std::int64_t last_rx_ms_;
  std::uint32_t keep_alive_ms_ = 0;

  // Session.
  // As the broker holds it: the tenant's mount, then what the client sent (tenant.h).
  std::string client_id_;
  std::optional<std::string> username_;  // as authenticated; none: anonymous
  std::vector<config::acl_rule> own_rules_;  // from its token, the HTTP hook or the runtime store, tried before auth.acl
  bool runtime_user_ = false;                // logged in as a user of the runtime store
  // The HTTP hook's answers about this client's topics: action ('p', 's') and topic →
  // allowed, until when (unix ms). Bounded: emptied when full.
  struct hook_verdict {
    bool allowed = false;
    std::int64_t until_ms = 0;
  };
  std::unordered_map<std::string, hook_verdict> hook_verdicts_;
  std::uint32_t hook_answers_awaited_ = 0;  // reading paused and packets held until 0
  struct held_packet {
    mqtt::fixed_header header;
    std::vector<std::uint8_t> body;
  };
  std::vector<held_packet> held_packets_;
  bool resume_after_connect_ = false;  // reading was paused for a password check
  bool identity_changed_ = false;      // resuming a session another username left (begin_session)
  std::optional<std::size_t> admitted_listener_;  // counted by the broker's admission until destroyed
  std::shared_ptr<session::session_entry> entry_;
  std::uint64_t generation_ = 0;
  bool clean_start_ = true;
  std::uint32_t session_expiry_s_ = 0;  // 0: the session ends with the connection
  std::unique_ptr<core::message> will_;  // by pointer: most clients set no will
  std::uint32_t will_delay_s_ = 0;
  bool will_cleared_ = false;           // normal DISCONNECT
  bool session_ended_ = false;
  bool session_present_ = false;
  bool assigned_client_id_ = false;
  bool in_tenant_ = false;  // client_id_ begins with its tenant's mount (set at admit())
  std::optional<std::uint16_t> server_keep_alive_;
  std::vector<session::stored_subscription> subscriptions_;

  // Flow control and QoS state.
  session::outbound_window window_;
  std::unordered_set<std::uint16_t> inbound_qos2_;  // PUBREC sent, awaiting PUBREL
  std::uint32_t inbound_unacked_ = 0;               // QoS 1/2 received, not yet fully acked
  // Acks waiting for storage, in packet order [MQTT-4.6.0-2]: entries before
  // waiting_acks_sent_ are gone; entry i has sequence number waiting_acks_base_ + i.
  struct waiting_ack {
    std::uint8_t commits_pending = 0;  // the shard's batch, the queue core's commands
    mqtt::reason_code outcome = mqtt::reason_code::success;
    ack_sender send;
    std::function<void(connection&)> then_store;  // a second stage (see ack_when_durable)
  };
  std::vector<waiting_ack> waiting_acks_;
  std::uint64_t waiting_acks_base_ = 0;
  std::uint32_t waiting_acks_sent_ = 0;
  std::uint32_t client_max_packet_size_ = 268435460;
  std::uint16_t client_topic_alias_max_ = 0;
  std::unordered_map<std::uint16_t, std::string> inbound_aliases_;
  std::unordered_map<std::string, std::uint16_t> outbound_aliases_;

  // Inbound rate buckets (refill_rate_buckets).
  double publish_tokens_ = 0;  // may go negative: a debt paid before reading resumes
  double byte_tokens_ = 0;
  std::int64_t rate_refilled_ms_ = 0;
  bool paused_for_rate_ = false;
};

}  // namespace wharf::gateway
