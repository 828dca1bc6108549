// Reading of the `queue:` section: the queue core's bounds, HTTP push and the message trace.
#include "config/queue_config.h"

namespace wharf::config::detail {
namespace {

void read_message_trace(const entry& e, queue_config& q, diagnostics& diag) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "queue.message_trace: expected a map with retention_s and max_messages");
    return;
  }
  map_reader m(e.value, "queue.message_trace", diag);
  read_uint_into(m, "retention_s", q.trace_retention_s, 0, 604800, diag);
  read_uint_into(m, "max_messages", q.trace_max_messages, 1, 10000000, diag);
  m.finish();
}

void read_push(const entry& e, queue_push_config& p, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "queue.push: expected a map of HTTP push settings");
    return;
  }
  map_reader m(e.value, "queue.push", diag);
  read_uint_into(m, "timeout_ms", p.timeout_ms, 100, 600000, diag);
  read_uint_into(m, "max_in_flight", p.max_in_flight, 1, 100000, diag);
  if (auto ca = m.find("ca_file")) {
    // Empty is allowed here: it names the system trust store.
    if (auto text = read_string(*ca, diag); text && !text->empty()) {
      if (auto resolved = read_file(m, "ca_file", false)) p.ca_file = std::move(*resolved);
    }
  }
  m.finish();
}

}  // namespace

void read_queue(const entry& e, queue_config& q, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "queue: expected a map of queue settings");
    return;
  }
  map_reader m(e.value, "queue", diag);
  read_uint_into(m, "max_queues", q.max_queues, 1, 10000000, diag);
  read_uint_into(m, "max_topics", q.max_topics, 1, 10000000, diag);
  read_uint_into(m, "max_subscriptions_per_topic", q.max_subscriptions_per_topic, 1, 100000, diag);
  read_uint_into(m, "log_retain_entries", q.log_retain_entries, 0, 1000000000, diag);
  read_uint_into(m, "tick_interval_ms", q.tick_interval_ms, 10, 60000, diag);
  if (auto p = m.find("push")) read_push(*p, q.push, diag, read_file);
  if (auto t = m.find("message_trace")) read_message_trace(*t, q, diag);
  m.finish();
}

}  // namespace wharf::config::detail
