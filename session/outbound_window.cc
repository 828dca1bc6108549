#include "session/outbound_window.h"

#include <algorithm>

namespace wharf::session {

outbound_window::outbound_window(std::size_t inflight_max, std::size_t queued_max, std::size_t queued_bytes_max)
    : inflight_max_(inflight_max == 0 ? 1 : inflight_max), queued_max_(queued_max), queued_bytes_max_(queued_bytes_max) {}

bool outbound_window::push(delivery d) {
  const std::size_t bytes = d.msg->payload.size() + d.msg->topic.size();
  if (waiting_.size() >= queued_max_ || waiting_bytes_ + bytes > queued_bytes_max_) return false;
  waiting_bytes_ += bytes;
  waiting_.push_back(std::move(d));
  return true;
}

void outbound_window::restore(std::vector<delivery> ds) {
  // Already-sent ones keep their packet ids and go first [MQTT-4.4.0-1]; the rest go in
  // front of anything that arrived while the session was being restored.
  std::vector<delivery> unsent;
  for (auto& d : ds) {
    if (d.packet_id != 0 && !is_inflight(d.packet_id))
      resend_.push_back(std::move(d));
    else {
      d.packet_id = 0;
      d.pubrel_sent = false;
      unsent.push_back(std::move(d));
    }
  }
  for (const auto& d : unsent) waiting_bytes_ += d.msg->payload.size() + d.msg->topic.size();
  waiting_.prepend(std::move(unsent));
}

std::uint16_t outbound_window::allocate_packet_id() {
  // Ids in use are at most inflight_max_ < 65535, so this loop ends.
  do {
    last_packet_id_ = static_cast<std::uint16_t>(last_packet_id_ == 65535 ? 1 : last_packet_id_ + 1);
  } while (inflight_.count(last_packet_id_) != 0);
  return last_packet_id_;
}

std::optional<outbound_window::send_item> outbound_window::next() {
  if (!resend_.empty()) {
    delivery d = std::move(resend_.front());
    resend_.pop_front();
    const auto id = d.packet_id;
    auto [it, inserted] = inflight_.emplace(id, inflight_entry{std::move(d), send_counter_++});
    (void)inserted;
    return send_item{it->second.item, true};
  }
  if (waiting_.empty()) return std::nullopt;
  if (waiting_.front().qos != 0 && inflight_.size() >= inflight_max_) return std::nullopt;
  delivery d = std::move(waiting_.front());
  waiting_.pop_front();
  waiting_bytes_ -= std::min(waiting_bytes_, d.msg->payload.size() + d.msg->topic.size());
  if (d.qos == 0) return send_item{std::move(d), false};
  d.packet_id = allocate_packet_id();
  auto [it, inserted] = inflight_.emplace(d.packet_id, inflight_entry{std::move(d), send_counter_++});
  (void)inserted;
  return send_item{it->second.item, false};
}

bool outbound_window::complete(std::uint16_t packet_id, std::uint64_t* stored_seq) {
  auto it = inflight_.find(packet_id);
  if (it == inflight_.end()) return false;
  if (stored_seq) *stored_seq = it->second.item.stored_seq;
  inflight_.erase(it);
  return true;
}

bool outbound_window::received(std::uint16_t packet_id) {
  auto it = inflight_.find(packet_id);
  if (it == inflight_.end() || it->second.item.qos != 2) return false;
  it->second.item.pubrel_sent = true;
  return true;
}

std::vector<delivery> outbound_window::drain() {
  std::vector<inflight_entry*> sent;
  sent.reserve(inflight_.size());
  for (auto& [id, e] : inflight_) sent.push_back(&e);
  std::sort(sent.begin(), sent.end(), [](auto* a, auto* b) { return a->send_order < b->send_order; });
  std::vector<delivery> all;
  all.reserve(sent.size() + resend_.size() + waiting_.size());
  for (auto* e : sent) all.push_back(std::move(e->item));
  for (auto& d : resend_) all.push_back(std::move(d));
  for (auto& d : waiting_) all.push_back(std::move(d));
  inflight_.clear();
  resend_.clear();
  waiting_.clear();
  waiting_bytes_ = 0;
  return all;
}

}  // namespace wharf::session
