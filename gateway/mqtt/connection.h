// One MQTT client connection: the broker's side of it. Owned by its stream; lives on its
// shard's thread. The protocol's rules are the machine's (gateway/mqtt/protocol/
// connection_machine.h: the CONNECT handshake, flow control, topic aliases, QoS flows, keep
// alive, acknowledgements in order); this class is its host and does what they ask of the
// broker: credentials and the ACL, the session's lifecycle and wills, routing, storage,
// and the window of messages towards the client.
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
#include "gateway/mqtt/protocol/connection_machine.h"
#include "gateway/mqtt/protocol/packets.h"
#include "gateway/mqtt/shard.h"
#include "net/stream.h"
#include "session/outbound_window.h"
#include "session/registry.h"

namespace wharf::gateway {

class connection final : public net::stream_handler, private mqtt::connection_host {
 public:
  connection(shard& home, std::shared_ptr<net::stream> s);
  ~connection() override;

  void on_data(std::span<const std::uint8_t> bytes) override;
  void on_closed(std::error_code ec) override;

  // A message for this connection's session (from routing, here or from another shard).
  void enqueue(session::delivery d);
  // Periodic check: connect timeout, rate buckets and keep alive (the machine's tick).
  void tick(std::int64_t now_ms) { machine_.tick(now_ms); }
  // Ends the connection from the broker's side (takeover 0x8E, shutdown 0x8B): v5 clients
  // get DISCONNECT with `reason`, the will is published as for an abnormal close, and the
  // session is offline (persisted) when this returns.
  void kick(mqtt::reason_code reason) { machine_.end(reason, "ended by the broker"); }
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
  // What the protocol's rules (mqtt::connection_machine) ask of the broker.
  [[nodiscard]] const mqtt::connection_limits& limits() const override;
  void write(std::vector<std::uint8_t> bytes) override;
  void write_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes) override;
  void set_reading(bool reading) override { stream_->set_reading(reading); }
  void closing(const mqtt::close_cause& cause) override;
  void rate_limited() override;
  void connect(mqtt::connect_request request) override;
  bool holds(const mqtt::packet& p) override;
  bool may_publish(std::string_view topic) override;
  mqtt::publish_commits publish(mqtt::publish_packet& p, mqtt::ack_ticket ticket) override;
  void store_inbound_qos2(std::uint16_t packet_id, mqtt::ack_ticket ticket) override;
  void forget_inbound_qos2(std::uint16_t packet_id) override;
  mqtt::change_commits subscribe(const mqtt::subscribe_packet& p, std::uint32_t subscription_id,
                                 std::vector<mqtt::reason_code>& reasons, mqtt::ack_ticket ticket) override;
  mqtt::change_commits unsubscribe(const mqtt::unsubscribe_packet& p, std::vector<mqtt::reason_code>& reasons,
                                   mqtt::ack_ticket ticket) override;
  void acknowledgement_sent(mqtt::ack_ticket ticket) override;
  void delivery_completed(std::uint16_t packet_id) override;
  bool delivery_received(std::uint16_t packet_id) override { return window_.received(packet_id); }

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
  void hook_answered(std::string key, bool allowed, std::uint32_t remember_ms);
  // The hook's answer about `topic` for `action` ('p' publish, 's' subscribe), while it holds.
  [[nodiscard]] std::optional<bool> hook_verdict_on(char action, std::string_view topic) const;
  [[nodiscard]] std::function<void(credentials_verdict)> credentials_answer();
  void admit();
  // Answers the CONNECT with `rc` and closes; counted in auth_failures, or in `counter`.
  void refuse_connect(mqtt::reason_code rc, std::string_view why);
  void refuse_connect(mqtt::reason_code rc, std::string_view why, std::atomic<std::uint64_t>& counter);
  // Checks the CONNECT against the broker's admission (connection limits, rate, flapping);
  // refuses it and returns false when it may not go on.
  [[nodiscard]] bool admitted_by_limits();
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
  // Whether the ACL, the HTTP hook and the tenants' tree let this client publish to `topic`.
  [[nodiscard]] bool allowed_to_publish(std::string_view topic) const;
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
  // True while the session is this connection's and has not ended.
  [[nodiscard]] bool session_live() const noexcept { return attached_ && !session_ended_; }

  // Output.
  // How many commits `ops` waits for (the shard's batch, the queue core's commands), each
  // telling the machine commit_done(ticket, outcome) when durable.
  std::uint8_t commit_tickets(durable_ops& ops, mqtt::ack_ticket ticket);
  void send_delivery(const session::delivery& d, bool dup);
  void pump();

  shard& home_;
  broker& broker_;
  std::shared_ptr<net::stream> stream_;
  std::uint64_t id_;
  mqtt::connection_machine machine_;

  // Session.
  // As the broker holds it: the tenant's mount, then what the client sent (tenant.h).
  std::string client_id_;
  std::optional<std::string> username_;  // as authenticated; none: anonymous
  std::vector<config::acl_rule> own_rules_;  // from its token, the HTTP hook or the runtime store, tried before auth.acl
  bool runtime_user_ = false;                // logged in as a user of the runtime store
  bool checking_credentials_ = false;        // a credentials check is out (credentials_checked answers it)
  // The HTTP hook's answers about this client's topics: action ('p', 's') and topic →
  // allowed, until when (unix ms). Bounded: emptied when full. Made at the first answer:
  // most connections never ask (a connection's bytes count: docs/PERFORMANCE.md).
  struct hook_verdict {
    bool allowed = false;
    std::int64_t until_ms = 0;
  };
  std::unique_ptr<std::unordered_map<std::string, hook_verdict>> hook_verdicts_;
  std::uint32_t hook_answers_awaited_ = 0;  // the machine holds input until 0
  bool identity_changed_ = false;      // resuming a session another username left (begin_session)
  std::optional<std::size_t> admitted_listener_;  // counted by the broker's admission until destroyed
  std::shared_ptr<session::session_entry> entry_;
  std::uint64_t generation_ = 0;
  bool clean_start_ = true;
  std::unique_ptr<core::message> will_;  // by pointer: most clients set no will
  std::uint32_t will_delay_s_ = 0;
  bool attached_ = false;  // the session is live on this shard (finish_begin_session)
  bool session_ended_ = false;
  bool session_present_ = false;
  bool assigned_client_id_ = false;
  bool in_tenant_ = false;  // client_id_ begins with its tenant's mount (set at admit())
  std::vector<session::stored_subscription> subscriptions_;
  // Retained messages a SUBSCRIBE matched, sent once its SUBACK is (acknowledgement_sent).
  std::vector<std::pair<mqtt::ack_ticket, std::vector<session::delivery>>> retained_after_suback_;

  // Messages towards the client.
  session::outbound_window window_;
};

}  // namespace wharf::gateway
