#include "core/replication/snapshot_transfer.h"

#include <utility>

#include "core/log.h"

namespace wharf::core::replication {

snapshot_sender::snapshot_sender(snapshot_transfer_options options, frame_sender send)
    : options_(std::move(options)), send_(std::move(send)) {}

bool snapshot_sender::sending(std::uint64_t to, std::uint64_t index, std::chrono::steady_clock::time_point now) {
  const auto it = transfers_.find(to);
  if (it == transfers_.end()) return false;
  if (now - it->second.last_progress >= options_.stall_timeout) {
    log::queue().warn("replication: the snapshot sent to member {} stalled (no acknowledgement in {} ms); "
                      "it starts again", to, options_.stall_timeout.count());
    ++stats_.abandoned;
    transfers_.erase(it);
    return false;
  }
  return it->second.index >= index;
}

void snapshot_sender::start(std::uint64_t to, std::uint64_t index, std::unique_ptr<storage_view> state,
                            std::uint64_t state_index, std::string install, std::chrono::steady_clock::time_point now) {
  transfer t;
  t.index = index;
  t.state_index = state_index;
  t.view = std::move(state);
  t.next_key = options_.range_begin;
  t.install = std::move(install);
  t.last_progress = now;
  log::queue().info("replication: sending member {} the state at {} (snapshot {})", to, state_index, index);
  auto& placed = transfers_[to] = std::move(t);
  send_chunk(to, placed);
}

void snapshot_sender::send_chunk(std::uint64_t to, transfer& t) {
  snapshot_chunk c;
  c.snapshot_index = t.index;
  c.state_index = t.state_index;
  c.seq = t.seq;
  std::size_t bytes = 0;
  bool full = false;
  t.view->scan_range(t.next_key, options_.range_end, [&](std::string_view key, std::string_view value) {
    if (bytes > 0 && bytes + key.size() + value.size() > options_.chunk_bytes) {
      full = true;
      return false;
    }
    bytes += key.size() + value.size();
    c.items.emplace_back(key, value);
    return true;
  });
  c.last = !full;
  // The next chunk starts right after this one's last key.
  if (!c.items.empty()) t.next_key = c.items.back().first + '\0';
  t.last_sent = c.last;
  stats_.bytes_sent += bytes;
  send_(to, frame_kind::snapshot_chunk, encode_snapshot_chunk(c));
}

void snapshot_sender::on_ack(std::uint64_t from, std::string_view body, std::chrono::steady_clock::time_point now) {
  const auto ack = decode_snapshot_ack(body);
  const auto it = transfers_.find(from);
  if (!ack || it == transfers_.end()) return;
  auto& t = it->second;
  if (ack->snapshot_index != t.index || ack->seq != t.seq) return;  // of a transfer given up since
  if (!ack->accepted) {
    log::queue().warn("replication: member {} refused the snapshot at {}", from, t.index);
    ++stats_.abandoned;
    transfers_.erase(it);
    return;
  }
  t.last_progress = now;
  if (t.last_sent) {
    send_(from, frame_kind::raft, std::move(t.install));
    ++stats_.sent;
    log::queue().info("replication: member {} has the state at {} whole", from, t.state_index);
    transfers_.erase(it);
    return;
  }
  ++t.seq;
  send_chunk(from, t);
}

void snapshot_sender::stop_all() {
  stats_.abandoned += transfers_.size();
  transfers_.clear();
}

snapshot_receiver::snapshot_receiver(storage& store, snapshot_transfer_options options, frame_sender send)
    : store_(store), options_(std::move(options)), send_(std::move(send)) {}

void snapshot_receiver::refuse(std::uint64_t from, std::uint64_t index, std::uint64_t seq, std::string_view why) {
  log::queue().warn("replication: a snapshot chunk from member {} refused: {}", from, why);
  send_(from, frame_kind::snapshot_ack, encode_snapshot_ack({index, seq, false}));
}

void snapshot_receiver::on_chunk(std::uint64_t from, std::string_view body, std::uint64_t own_state_index) {
  auto c = decode_snapshot_chunk(body);
  if (!c) {
    log::queue().warn("replication: member {} sent a snapshot chunk that does not decode; dropped", from);
    return;
  }
  if (c->seq == 0) {
    // A new transfer replaces whatever came before (a leader that went, a transfer that
    // stalled and started again).
    in_.reset();
    incoming next;
    next.from = from;
    next.index = c->snapshot_index;
    next.state_index = c->state_index;
    if (c->state_index > own_state_index) next.import = store_.import_range(options_.range_begin, options_.range_end);
    in_ = std::move(next);
  }
  if (!in_ || in_->from != from || in_->index != c->snapshot_index || in_->next_seq != c->seq || in_->done)
    return refuse(from, c->snapshot_index, c->seq, "out of sequence");
  for (const auto& [key, value] : c->items) {
    if (key < options_.range_begin || key >= options_.range_end || (!in_->last_key.empty() && key <= in_->last_key)) {
      in_.reset();
      return refuse(from, c->snapshot_index, c->seq, "a key out of order or outside the state");
    }
    if (in_->import) {
      if (const auto ec = in_->import->add(key, value)) {
        in_.reset();
        return refuse(from, c->snapshot_index, c->seq, "cannot write it: " + ec.message());
      }
    }
    in_->last_key = key;
    stats_.bytes_received += key.size() + value.size();
  }
  ++in_->next_seq;
  in_->done = c->last;
  send_(from, frame_kind::snapshot_ack, encode_snapshot_ack({c->snapshot_index, c->seq, true}));
}

bool snapshot_receiver::complete(std::uint64_t from, std::uint64_t index) const {
  return in_ && in_->done && in_->from == from && in_->index == index;
}

std::uint64_t snapshot_receiver::swap_in(std::error_code& ec) {
  ec.clear();
  auto in = std::move(*in_);
  in_.reset();
  if (!in.import) return 0;
  ec = in.import->commit();
  if (ec) return 0;
  ++stats_.received;
  return in.state_index;
}

}  // namespace wharf::core::replication
