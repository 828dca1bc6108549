// The queue core engine (engine.h): apply() and the log, the body cache, open(), helpers.
//
// Storage keys (RocksDB, default column family). `be64` numbers sort numerically, so a
// prefix scan returns a queue's messages in enqueue order. Values are binary records
// (binary.h) starting with a format byte (engine_store.cc).
//
// | key | value | written |
// |---|---|---|
// | `cl/<be64 index>` | the command (encode_command) | every apply; trimmed to engine_limits.log_retain_entries |
// | `cm/applied` | applied index, latest command time | once per batch (finish_batch) |
// | `cm/counters` | id counters (queue, topic, subscription, msg number, seq, delivery), engine_stats | once per batch, when one changed |
// | `cq/<be64 queue id>` | name, attributes, create/modify time, time-to-live cursor | create/set queue, TTL expiry |
// | `cs/<be64 queue id><be64 seq>` | message metadata: msg number, enqueue/visible/first-dequeue time, dequeue count, generation, state (waiting, received, deleted-kept-for-rewind), dead-letter source, group, body size | enqueue, receive, delete, rewind |
// | `cb/<be64 queue id><be64 seq>` | message body | once, at enqueue |
// | `cd/<be64 queue id><be64 first ms><dedup key>` | msg number of the key's first message | send with a new key; erased when its window ends |
// | `ct/<be64 topic id>` | name, attributes, create/modify time, msg count | create/set topic, publish |
// | `cu/<be64 subscription id>` | topic id, name, attributes, create/modify time | subscribe, set/clear attributes |
// | `cp/<be64 subscription id><be64 delivery id>` | pending HTTP push: msg number, tags, publish time, attempts, due time | publish, failed attempt |
// | `cpb/<be64 subscription id><be64 delivery id>` | the push's body | once, at publish |
//
// Deleting a queue erases its `cs/`, `cb/` and `cd/` ranges; removing a subscription its
// `cp/` and `cpb/` ranges. Message sequence numbers come from one engine-wide counter and
// are never reused. Memory holds every message's metadata, never a body once committed.
#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "core/queue/engine_impl.h"

namespace wharf::core::queue {

namespace detail {
namespace {

// Commands carry unix milliseconds; a time outside this range is a caller bug, answered
// without a change. The bound (year 287,000) keeps every time sum far from overflow.
constexpr time_ms max_command_time = time_ms{1} << 53;

// The log is trimmed once per this many entries, not on every command.
constexpr std::uint64_t log_trim_interval = 1024;

// Appends the low `digits` hex digits of `value`, lower case, zero-padded: fmt's "{:0Nx}"
// for a value that fits. Every message sent and received formats ids and a receipt handle,
// and parsing a format string cost several times the formatting.
void append_hex(std::string& out, std::uint64_t value, std::size_t digits) {
  static constexpr char hex[] = "0123456789abcdef";
  out.resize(out.size() + digits);
  for (auto it = out.rbegin(); digits > 0; --digits, ++it, value >>= 4) *it = hex[value & 15];
}

}  // namespace

std::size_t utf8_length(std::string_view s) noexcept {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

result failure(code value, std::string message) {
  result r;
  r.outcome = status{value, std::move(message)};
  return r;
}

status invalid(std::string message) { return status{code::invalid_parameter, std::move(message)}; }

std::string format_queue_id(std::uint64_t id) { return fmt::format("queue-{}", id); }
std::string format_topic_id(std::uint64_t id) { return fmt::format("topic-{}", id); }
std::string format_subscription_id(std::uint64_t id) { return fmt::format("subscription-{}", id); }

std::string format_msg_id(std::uint64_t msg_number) {
  std::string out = "msg-";
  append_hex(out, msg_number, 16);
  return out;
}

std::string format_receipt_handle(const receipt& r) {
  std::string out;
  out.reserve(40);
  append_hex(out, r.queue_id, 16);
  append_hex(out, r.seq, 16);
  append_hex(out, r.generation, 8);
  return out;
}

std::optional<receipt> parse_receipt_handle(std::string_view handle) noexcept {
  if (handle.size() != 40) return std::nullopt;
  // Lower-case hex only, so one handle has one spelling.
  const bool hex = std::all_of(handle.begin(), handle.end(),
                               [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!hex) return std::nullopt;
  receipt r;
  const char* p = handle.data();
  std::from_chars(p, p + 16, r.queue_id, 16);
  std::from_chars(p + 16, p + 32, r.seq, 16);
  std::from_chars(p + 32, p + 40, r.generation, 16);
  return r;
}

engine_impl::engine_impl(storage& store, engine_limits limits) : store_(store), limits_(limits) {}

void engine_impl::set_entry_index(std::uint64_t index) {
  applied_index_ = index;
  index_from_log_ = true;
}

result engine_impl::apply(const command& cmd, write_batch& batch) {
  batch_ = &batch;
  if (!index_from_log_) ++applied_index_;
  result r;
  if (cmd.now < 0 || cmd.now > max_command_time) {
    r = failure(code::invalid_parameter, "command time out of range");
  } else {
    // The service never goes back in time; should a clock step back anyway, the engine
    // keeps its own time monotonic (every expiry index relies on it).
    now_ = std::max(cmd.now, last_now_);
    last_now_ = now_;
    r = std::visit([this](const auto& body) { return on(body); }, cmd.body);
  }
  if (limits_.keep_command_log) {
    put(keys::log_entry(applied_index_), encode_command(cmd));
    trim_log();
  }
  batch_ = nullptr;
  return r;
}

void engine_impl::finish_batch(write_batch& batch) {
  if (finished_index_ == applied_index_) return;  // nothing applied since the last batch
  finished_index_ = applied_index_;
  if (counters_dirty_) {
    batch.put(keys::counters, encode_counters(counters_));
    counters_dirty_ = false;
  }
  batch.put(keys::applied, encode_applied(applied_index_, last_now_));
}

void engine_impl::committed(std::uint64_t index) {
  while (!uncommitted_order_.empty() && uncommitted_order_.front().first <= index) {
    uncommitted_bodies_.erase(uncommitted_order_.front().second);
    uncommitted_order_.pop_front();
  }
}

void engine_impl::trim_log() {
  const std::uint64_t retain = limits_.log_retain_entries;
  if (retain == 0 || applied_index_ % log_trim_interval != 0 || applied_index_ <= retain) return;
  erase_range(keys::log_entry(0), keys::log_entry(applied_index_ - retain + 1));
}

void engine_impl::put(std::string_view key, std::string_view value) { batch_->put(key, value); }

void engine_impl::erase(std::string_view key) { batch_->erase(key); }

void engine_impl::erase_range(std::string_view begin, std::string_view end) { batch_->erase_range(begin, end); }

void engine_impl::put_body(std::string key, std::string_view body) {
  batch_->put(key, body);
  uncommitted_bodies_.emplace(key, body);
  uncommitted_order_.emplace_back(applied_index_, std::move(key));
}

std::string engine_impl::read_body(const std::string& key) const {
  if (const auto it = uncommitted_bodies_.find(key); it != uncommitted_bodies_.end()) return it->second;
  auto body = store_.get(key);
  // Bodies are written with their metadata in one batch: a missing one is corruption.
  if (!body) throw std::runtime_error("queue core storage: missing body for a stored message");
  return std::move(*body);
}

result engine_impl::on(const tick&) {
  // Queues may reschedule one another (dead-lettering): collect the due ones first.
  std::vector<std::uint64_t> due;
  for (auto it = housekeeping_.begin(); it != housekeeping_.end() && it->first <= now_; ++it) {
    due.push_back(it->second);
  }
  for (const std::uint64_t id : due) {
    if (const auto it = queue_by_id_.find(id); it != queue_by_id_.end()) expire(*it->second);
  }
  return {};
}

}  // namespace detail

std::unique_ptr<engine> engine::open(storage& store, engine_limits limits) {
  auto e = std::make_unique<detail::engine_impl>(store, limits);
  e->load();
  return e;
}

}  // namespace wharf::core::queue
