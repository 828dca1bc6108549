// The outgoing QoS 1/2 flow of one live session: deliveries waiting for a slot, and
// deliveries sent and not yet acknowledged. Sans-I/O and single-threaded (lives on the
// session's I/O thread).
//
// Bounds: at most `inflight_max` unacknowledged (the client's Receive Maximum capped by
// our max_inflight [MQTT-4.9.0-2]); at most `queued_max` / `queued_bytes_max` waiting.
// A push beyond the queue bound is refused; the caller counts and logs the drop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "session/fifo.h"
#include "session/session_store.h"

namespace wharf::session {

class outbound_window {
 public:
  outbound_window(std::size_t inflight_max, std::size_t queued_max, std::size_t queued_bytes_max);

  // Queues a QoS 1/2 delivery behind those already waiting. False when the queue is full.
  [[nodiscard]] bool push(delivery d);
  // Puts deliveries restored from storage (possibly already sent: packet_id != 0) in front,
  // in order, ignoring the queue bound (they were accepted before).
  void restore(std::vector<delivery> ds);

  // The next delivery to send, with its packet id assigned and recorded as in flight;
  // nullopt when nothing waits or the window is full. A delivery restored as already
  // sent comes out first with dup = true (or as a PUBREL when pubrel_sent).
  // QoS 0 deliveries queued behind others (while the session is being restored) come out
  // in order without taking a slot.
  struct send_item {
    session::delivery delivery;  // a copy; the message itself is shared
    bool dup;
  };
  [[nodiscard]] std::optional<send_item> next();

  // PUBACK (QoS 1) or PUBCOMP (QoS 2): frees the slot. False for an unknown id.
  // `stored_seq` receives the delivery's stored-queue key (0: not stored).
  bool complete(std::uint16_t packet_id, std::uint64_t* stored_seq = nullptr);
  // PUBREC: the delivery now waits for PUBCOMP. False for an unknown id or not QoS 2.
  bool received(std::uint16_t packet_id);

  // Everything held, in flight first (in send order) then waiting, for persistence.
  [[nodiscard]] std::vector<delivery> drain();

  [[nodiscard]] std::size_t inflight() const noexcept { return inflight_.size(); }
  [[nodiscard]] std::size_t waiting() const noexcept { return waiting_.size(); }
  [[nodiscard]] std::size_t waiting_bytes() const noexcept { return waiting_bytes_; }
  [[nodiscard]] bool is_inflight(std::uint16_t packet_id) const { return inflight_.count(packet_id) != 0; }
  void set_inflight_max(std::size_t n) noexcept { inflight_max_ = n == 0 ? 1 : n; }

 private:
  std::uint16_t allocate_packet_id();

  std::size_t inflight_max_;
  std::size_t queued_max_;
  std::size_t queued_bytes_max_;
  std::size_t waiting_bytes_ = 0;
  std::uint16_t last_packet_id_ = 0;
  std::uint64_t send_counter_ = 0;
  fifo<delivery> waiting_;
  struct inflight_entry {
    session::delivery item;
    std::uint64_t send_order;
  };
  std::unordered_map<std::uint16_t, inflight_entry> inflight_;
  // Restored deliveries that were already sent before: resent first, keeping their ids.
  fifo<delivery> resend_;
};

}  // namespace wharf::session
