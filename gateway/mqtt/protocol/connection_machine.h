// The MQTT rules of one client connection, as the broker applies them. Sans-I/O: bytes
// and the current time go in; what the broker must do comes out as calls on its
// `connection_host` (write these bytes, authenticate this CONNECT, route this PUBLISH,
// acknowledge it once those commits are durable, end the connection for this reason).
//
// The machine owns what the protocol says about one connection: the first packet and
// the CONNECT handshake (client identifier, keep alive, session expiry, the limits each
// side announces), holding input while the CONNECT or the host's questions are pending,
// the client's inbound rate, Receive Maximum and topic aliases on both sides, the QoS 1/2
// flows' packet identifiers towards the broker, acknowledgements in packet order
// [MQTT-4.6.0-2] after the commits they wait for, DISCONNECT, keep alive, and the
// reason code a closing connection is told. The host owns everything that needs the rest
// of the broker: credentials, the ACL, sessions, routing, storage and the window of
// messages towards the client (session/outbound_window).
//
// Single-threaded: every call on the machine, and every call it makes on its host, runs
// on the connection's thread. A host call may call back into the machine (accept a
// CONNECT at once, end the connection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gateway/mqtt/protocol/codec.h"
#include "gateway/mqtt/protocol/framer.h"
#include "gateway/mqtt/protocol/packets.h"

namespace wharf::mqtt {

// The broker's limits the rules apply (the mqtt section of the configuration). The host
// may change them between calls (a reload); a connection's negotiated values keep theirs.
struct connection_limits {
  std::uint32_t max_packet_size = 1048576;        // inbound, and announced in CONNACK
  std::uint16_t receive_maximum = 1024;           // inbound QoS 1/2 publishes unacknowledged at once
  std::uint16_t topic_alias_maximum = 64;         // aliases the client may set
  std::uint16_t max_keep_alive_s = 65535;         // a client asking more (or 0) gets Server Keep Alive
  std::uint32_t max_session_expiry_s = 0xFFFFFFFF;
  std::size_t max_client_id_length = 256;
  std::int64_t connect_timeout_ms = 10000;        // from the first byte to a CONNECT
  std::uint32_t max_publish_rate = 0;             // PUBLISH packets a second; 0: none
  std::uint32_t max_inbound_bytes_rate = 0;       // bytes a second; 0: none
};

// A CONNECT the protocol's rules let through, as negotiated: the host authenticates it and
// begins its session, then answers with accept_connect() or refuse_connect().
struct connect_request {
  protocol_version version = protocol_version::v3_1_1;
  std::string client_id;  // empty: the broker assigns one (the client sent none)
  bool clean_start = true;
  std::uint32_t session_expiry_s = 0;  // capped by the limits; 3.1.1: 0, or the cap for a persistent session
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<will_message> will;
};

// Why the connection ends, for the host: it ends the session (publishing the will when
// `publish_will`), records `reason`, and closes the stream. What the client had to be
// told (CONNACK error, DISCONNECT) is written already.
struct close_cause {
  std::optional<reason_code> reason;  // none: closed without an MQTT reason (before CONNACK, timeout of CONNECT)
  bool publish_will = true;           // false: the client's normal DISCONNECT
  bool protocol_error = false;        // the client broke the protocol (counted)
  std::string_view why;               // for the log
};

// A number the host uses to tell the machine that a commit an acknowledgement waits for is
// done (connection_machine::commit_done).
using ack_ticket = std::uint64_t;

// What a PUBLISH the host routed waits for before its PUBACK / PUBREC.
struct publish_commits {
  std::uint8_t commits = 0;       // commits to wait for, each ending with commit_done(ticket, outcome)
  bool then_store_qos2 = false;   // once they succeeded: store_inbound_qos2(), one commit more
};

// What a SUBSCRIBE or UNSUBSCRIBE the host applied waits for before its SUBACK / UNSUBACK.
struct change_commits {
  std::uint8_t commits = 0;           // as for publish_commits
  bool tell_when_sent = false;        // call acknowledgement_sent(ticket) once it is written
};

class connection_host {
 public:
  virtual ~connection_host() = default;

  // The limits in force now.
  [[nodiscard]] virtual const connection_limits& limits() const = 0;
  // Output. `write` takes one or more whole packets; `write_shared` bytes other
  // connections are sent too (a PUBLISH encoded once).
  virtual void write(std::vector<std::uint8_t> bytes) = 0;
  virtual void write_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes) = 0;
  virtual void set_reading(bool reading) = 0;
  virtual void closing(const close_cause& cause) = 0;
  // The client sent faster than its rate: reading pauses until it is back within it.
  virtual void rate_limited() = 0;

  // A CONNECT: authenticate, admit and begin the session; answer (now or later) with
  // accept_connect() or refuse_connect(). Input is held meanwhile.
  virtual void connect(connect_request request) = 0;
  // True holds `p` (and what follows it) until the host calls release(): it needs to
  // learn something first (the HTTP hook's verdict on its topics).
  virtual bool holds(const packet& p) = 0;

  // PUBLISH, once the protocol's checks passed; the topic is resolved from its alias.
  virtual bool may_publish(std::string_view topic) = 0;
  // Routes and stores `p`. For QoS 1/2, `ticket` names its acknowledgement.
  virtual publish_commits publish(publish_packet& p, ack_ticket ticket) = 0;
  // A persistent session's QoS 2 packet identifier, stored once the rest is durable;
  // ends with commit_done(ticket, success) like the other commits.
  virtual void store_inbound_qos2(std::uint16_t packet_id, ack_ticket ticket) = 0;
  // The QoS 2 flow of `packet_id` ended (PUBREL, or a refusal): its stored id goes.
  virtual void forget_inbound_qos2(std::uint16_t packet_id) = 0;

  // SUBSCRIBE: `reasons` holds one entry per filter, topic_filter_invalid where the filter
  // is not valid and success elsewhere; the host writes the granted QoS or the refusal.
  // `subscription_id` is the packet's Subscription Identifier, 0 when none.
  virtual change_commits subscribe(const subscribe_packet& p, std::uint32_t subscription_id,
                                   std::vector<reason_code>& reasons, ack_ticket ticket) = 0;
  // UNSUBSCRIBE: the host writes one reason per filter.
  virtual change_commits unsubscribe(const unsubscribe_packet& p, std::vector<reason_code>& reasons,
                                     ack_ticket ticket) = 0;
  // An acknowledgement whose change asked for it (tell_when_sent) was written.
  virtual void acknowledgement_sent(ack_ticket ticket) = 0;

  // The client's side of a message the broker sent: PUBACK, PUBCOMP, or a PUBREC with an
  // error code end its flow; a PUBREC says it was received (false: no such packet id).
  virtual void delivery_completed(std::uint16_t packet_id) = 0;
  virtual bool delivery_received(std::uint16_t packet_id) = 0;
};

class connection_machine {
 public:
  enum class phase {
    awaiting_connect,  // nothing but a CONNECT may come
    connecting,        // the host is admitting the CONNECT; input is held
    connected,         // CONNACK sent
    closed,
  };

  connection_machine(connection_host& host, std::int64_t now_ms);

  // Input.
  void receive(std::span<const std::uint8_t> bytes, std::int64_t now_ms);
  // Periodic: the CONNECT timeout, the rate buckets, keep alive ([MQTT-3.1.2-22]: 1.5 x).
  void tick(std::int64_t now_ms);
  // The stream ended under the connection (the peer closed it, or an error): nothing is
  // written or asked any more.
  void stream_closed() noexcept { phase_ = phase::closed; }

  // The host's answers.
  // The CONNECT is admitted: CONNACK goes out. `assigned_client_id`, where the client sent
  // none, is told to a v5 client. Held input stays held until release().
  void accept_connect(bool session_present, std::string_view assigned_client_id);
  // The CONNECT is refused with `code`: CONNACK `code`, then the connection closes.
  void refuse_connect(reason_code code);
  // The host no longer holds input (see holds()): what was held runs, in order.
  void release();
  // A commit acknowledgement `ticket` waited for is done; acknowledgements leave in packet
  // order once all they wait for is done.
  void commit_done(ack_ticket ticket, reason_code outcome);

  // The broker ends the connection: a v5 client that got its CONNACK gets DISCONNECT
  // `reason`, then the host is told (closing) and the will is published.
  void end(reason_code reason, std::string_view why, bool protocol_error = false);

  // Output the host originates. Returns false (nothing sent) when the client's Maximum
  // Packet Size does not allow `p` [MQTT-3.1.2-25]; sets a topic alias where the client
  // accepts them.
  bool send_publish(publish_packet& p);
  // The same for a PUBLISH encoded once for many subscribers, with this one's flags and
  // packet identifier (QoS 1/2: `shared` must have been encoded with one). Sent as it is
  // where those match, else a patched copy. Only for a client that is not set topic aliases
  // (sets_topic_aliases).
  bool send_shared(const shared_publish& shared, bool dup, qos q, bool retain, std::uint16_t packet_id);
  // Whether the client accepts topic aliases, so each PUBLISH it is sent may carry its own.
  [[nodiscard]] bool sets_topic_aliases() const noexcept { return client_topic_alias_max_ > 0; }
  void send(const packet& p);
  void send_ack(packet_type type, std::uint16_t packet_id, reason_code reason);

  [[nodiscard]] phase current_phase() const noexcept { return phase_; }
  // When the connection began (its first byte could arrive), unix ms.
  [[nodiscard]] std::int64_t started_ms() const noexcept { return created_ms_; }
  [[nodiscard]] protocol_version version() const noexcept { return version_; }
  // As negotiated at CONNECT; the session expiry may change at DISCONNECT.
  [[nodiscard]] std::uint32_t session_expiry_s() const noexcept { return session_expiry_s_; }
  [[nodiscard]] std::uint16_t keep_alive_s() const noexcept { return static_cast<std::uint16_t>(keep_alive_ms_ / 1000); }
  // The client's Receive Maximum (65535 when it sent none): its QoS 1/2 messages in flight.
  [[nodiscard]] std::uint16_t client_receive_maximum() const noexcept { return client_receive_maximum_; }
  // QoS 1/2 publishes of the client not acknowledged yet (restored with a session too).
  [[nodiscard]] std::uint32_t inbound_unacked() const noexcept { return inbound_unacked_; }
  // A resumed session's QoS 2 packet ids awaiting PUBREL.
  void restore_inbound_qos2(std::uint16_t packet_id);
  // The topic `p` names, its alias resolved (empty when the alias is unknown).
  [[nodiscard]] std::string_view resolved_topic(const publish_packet& p) const;

 private:
  bool handle_packet(const fixed_header& header, std::span<const std::uint8_t> body);
  void handle_connect(connect_packet& p);
  void handle_publish(publish_packet& p);
  void handle_ack(const ack_packet& p);
  void handle_subscribe(const subscribe_packet& p);
  void handle_unsubscribe(const unsubscribe_packet& p);
  void handle_disconnect(const disconnect_packet& p);

  // Input is held while the CONNECT is pending, the client is over its rate, or the host
  // holds it; reading pauses meanwhile, so this is at most the rest of one read.
  [[nodiscard]] bool holding_input() const noexcept {
    return phase_ == phase::connecting || paused_for_rate_ || held_by_host_;
  }
  void hold(const fixed_header& header, std::span<const std::uint8_t> body);
  void run_held();
  void refill_rate_buckets(std::int64_t now_ms);
  [[nodiscard]] bool over_inbound_rate() const noexcept;
  // Closes without an MQTT reason (the first packet was no CONNECT, the CONNECT timed out).
  void close_silently(bool protocol_error, std::string_view why);
  void refuse_connect_now(reason_code code);

  // Acknowledgements in packet order [MQTT-4.6.0-2]: entries before acks_sent_ are gone;
  // entry i has ticket acks_base_ + i.
  struct pending_ack {
    std::uint8_t commits_pending = 0;
    reason_code outcome = reason_code::success;
    bool publish = false;          // a QoS 1/2 PUBLISH's (qos, packet_id); else `reply`
    bool then_store_qos2 = false;  // a second stage still to run (publish_commits)
    bool tell_when_sent = false;
    std::uint8_t qos = 0;
    std::uint16_t packet_id = 0;
    packet reply;
  };
  // Queues an acknowledgement behind those that wait, or sends it now when none does and
  // it waits for nothing.
  void acknowledge(pending_ack ack);
  [[nodiscard]] ack_ticket next_ticket() const noexcept { return acks_base_ + acks_.size(); }
  void send_acks_ready();
  // Sends an acknowledgement whose commits are all done (`ticket`: its number).
  void send_ready_ack(const pending_ack& ack, ack_ticket ticket);
  void send_publish_ack(const pending_ack& ack);

  connection_host& host_;
  phase phase_ = phase::awaiting_connect;
  protocol_version version_ = protocol_version::v3_1_1;
  framer framer_;
  std::int64_t created_ms_;
  std::int64_t last_rx_ms_;

  // Negotiated at CONNECT.
  std::uint32_t keep_alive_ms_ = 0;
  std::optional<std::uint16_t> server_keep_alive_;
  std::uint32_t session_expiry_s_ = 0;
  std::uint32_t client_max_packet_size_ = 268435460;  // the protocol's maximum when it sent none
  std::uint16_t client_topic_alias_max_ = 0;
  std::uint16_t client_receive_maximum_ = 65535;

  // Held input.
  struct held_packet {
    fixed_header header;
    std::vector<std::uint8_t> body;
  };
  std::vector<held_packet> held_;
  bool held_by_host_ = false;
  bool paused_for_rate_ = false;

  // Inbound rate buckets: may go negative, a debt paid before reading resumes.
  double publish_tokens_ = 0;
  double byte_tokens_ = 0;
  std::int64_t rate_refilled_ms_;

  // QoS 1/2 towards the broker.
  std::uint32_t inbound_unacked_ = 0;
  // What only some clients use (QoS 2 publishes, topic aliases): allocated at first use, so
  // that an idle connection carries no three empty hash tables (docs/PERFORMANCE.md).
  struct sparse_state {
    std::unordered_set<std::uint16_t> inbound_qos2;  // PUBREC sent, awaiting PUBREL
    std::unordered_map<std::uint16_t, std::string> inbound_aliases;
    std::unordered_map<std::string, std::uint16_t> outbound_aliases;
  };
  std::unique_ptr<sparse_state> sparse_;
  [[nodiscard]] sparse_state& sparse() {
    if (!sparse_) sparse_ = std::make_unique<sparse_state>();
    return *sparse_;
  }
  [[nodiscard]] bool awaits_pubrel(std::uint16_t packet_id) const {
    return sparse_ && sparse_->inbound_qos2.contains(packet_id);
  }
  // Ends the QoS 2 flow of `packet_id`; false when it was not awaiting PUBREL.
  bool end_inbound_qos2(std::uint16_t packet_id) { return sparse_ && sparse_->inbound_qos2.erase(packet_id) != 0; }

  std::vector<pending_ack> acks_;
  ack_ticket acks_base_ = 0;
  std::uint32_t acks_sent_ = 0;
};

}  // namespace wharf::mqtt
