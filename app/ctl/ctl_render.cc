#include "app/ctl/ctl_render.h"

#include <algorithm>
#include <ctime>
#include <functional>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace wharf::app::ctl {
namespace {

namespace json = boost::json;

// A scalar as people read it: strings bare, true/false as yes/no, null as "-".
std::string text_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: return std::string(v.get_string());
    case json::kind::bool_: return v.get_bool() ? "yes" : "no";
    case json::kind::null: return "-";
    case json::kind::int64: return std::to_string(v.get_int64());
    case json::kind::uint64: return std::to_string(v.get_uint64());
    case json::kind::double_: return fmt::format("{}", v.get_double());
    default: return json::serialize(v);
  }
}

std::string field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? text_of(*v) : "-";
}

// An array of strings as "a, b"; "-" when empty or absent.
std::string joined(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_array() || v->get_array().empty()) return "-";
  std::string out;
  for (const auto& item : v->get_array()) out += (out.empty() ? "" : ", ") + text_of(item);
  return out;
}

// Unix milliseconds as UTC, to the millisecond.
std::string utc_time(std::int64_t unix_ms) {
  const std::time_t s = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, unix_ms % 1000);
}

std::string mqtt_version(const json::object& o) {
  const auto v = field(o, "protocolVersion");
  return v == "5" ? "5" : v == "4" ? "3.1.1" : v == "3" ? "3.1" : v;
}

// At most `n` characters of a payload, on one line.
std::string preview(std::string_view s, std::size_t n = 40) {
  std::string out;
  for (const char c : s.substr(0, n)) out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  if (s.size() > n) out += "...";
  return out;
}

struct column {
  std::string_view header;
  std::function<std::string(const json::object&)> cell;
};

column key(std::string_view header, std::string_view name) {
  return {header, [name](const json::object& o) { return field(o, name); }};
}

const std::vector<column>& columns_of(std::string_view list) {
  static const std::vector<column> sessions = {
      key("CLIENT ID", "clientId"),
      {"STATE", [](const json::object& o) { return field(o, "online") == "yes" ? "online" : "offline"; }},
      {"MQTT", mqtt_version},
      key("PERSISTENT", "persistent"),
      key("SUBS", "subscriptionCount"),
      key("INFLIGHT", "inflight"),
      key("QUEUED", "queued"),
      key("PEER", "peer"),
  };
  // A session's own (`show`) leave the client id out.
  static const std::vector<column> session_subscriptions = {
      key("FILTER", "filter"),
      key("QOS", "qos"),
      key("NO LOCAL", "noLocal"),
      key("RETAIN AS PUBLISHED", "retainAsPublished"),
      key("RETAIN HANDLING", "retainHandling"),
      key("SUB ID", "subscriptionId"),
  };
  static const std::vector<column> subscriptions = [] {
    std::vector<column> c{key("CLIENT ID", "clientId")};
    c.insert(c.end(), session_subscriptions.begin(), session_subscriptions.end());
    return c;
  }();
  static const std::vector<column> retained = {
      key("TOPIC", "topic"),
      key("QOS", "qos"),
      {"PAYLOAD", [](const json::object& o) {
         const auto text = preview(field(o, "payload"));
         return field(o, "payloadEncoding") == "base64" ? "base64:" + text : text;
       }},
      {"EXPIRES", [](const json::object& o) {
         const auto* at = o.if_contains("expiresAt");
         return at && at->is_int64() ? utc_time(at->get_int64()) : std::string("never");
       }},
  };
  static const std::vector<column> queues = {
      key("QUEUE", "queueName"), key("VISIBLE", "visible"), key("INFLIGHT", "inflight"),
      key("DELAYED", "delayed"), key("MAX", "maxMsgHeapNum"), key("DEAD LETTER QUEUE", "deadLetterQueue"),
  };
  static const std::vector<column> topics = {
      key("TOPIC", "topicName"), key("MESSAGES", "msgCount"), key("SUBSCRIPTIONS", "subscriptionCount"),
  };
  static const std::vector<column> events = {
      {"TIME", [](const json::object& o) {
         const auto* t = o.if_contains("time");
         return t && t->is_int64() ? utc_time(t->get_int64()) : field(o, "time");
       }},
      key("EVENT", "event"), key("QUEUE", "queue"), key("BY", "by"), key("DEQUEUES", "dequeueCount"),
      key("DETAIL", "detail"),
  };
  static const std::vector<column> members = {
      key("ID", "id"), key("ADDRESS", "address"), key("VOTER", "voter"),
      {"NOTE", [](const json::object& o) {
         std::string marks = field(o, "leader") == "yes" ? "leader" : "";
         if (field(o, "self") == "yes") marks += marks.empty() ? "this node" : ", this node";
         return marks;
       }},
      key("MATCH INDEX", "matchIndex"), key("LAG", "lag"),
  };
  static const std::vector<column> users = {
      key("USERNAME", "username"), key("PASSWORD", "hasPassword"),
      {"ROLES", [](const json::object& o) { return joined(o, "roles"); }},
      key("RULES", "ruleCount"),
  };
  static const std::vector<column> roles = {key("ROLE", "name"), key("RULES", "ruleCount")};
  static const std::vector<column> rules = {key("PERMISSION", "permission"), key("ACTION", "action"),
                                            key("TOPIC", "topic")};
  static const std::vector<column> none;
  if (list == "users") return users;
  if (list == "roles") return roles;
  if (list == "acl") return rules;
  if (list == "clients" || list == "sessions") return sessions;
  if (list == "subscriptions") return subscriptions;
  if (list == "session subscriptions") return session_subscriptions;
  if (list == "retained") return retained;
  if (list == "queues") return queues;
  if (list == "topics") return topics;
  if (list == "events") return events;
  if (list == "members") return members;
  return none;
}

// Rows under a header line, each column as wide as its widest cell; the last column is not
// padded.
std::string table(const std::vector<column>& columns, const json::array& items) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> width;
  for (const auto& c : columns) width.push_back(c.header.size());
  for (const auto& item : items) {
    if (!item.is_object()) continue;
    auto& row = rows.emplace_back();
    for (std::size_t i = 0; i < columns.size(); ++i) {
      row.push_back(columns[i].cell(item.get_object()));
      width[i] = std::max(width[i], row.back().size());
    }
  }
  auto line = [&](auto&& cell_at) {
    std::string out;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const std::string cell = cell_at(i);
      out += i + 1 < columns.size() ? fmt::format("{:<{}}  ", cell, width[i]) : cell;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line([&](std::size_t i) { return std::string(columns[i].header); });
  for (const auto& row : rows) out += line([&](std::size_t i) { return row[i]; });
  return out;
}

// "name  value" lines of an object's scalars, names aligned; arrays of objects follow as
// tables under their name.
std::string fields(const json::object& o) {
  std::size_t width = 0;
  for (const auto& [k, v] : o)
    if (!v.is_array()) width = std::max(width, k.size());
  std::string out;
  for (const auto& [k, v] : o)
    if (!v.is_array()) out += fmt::format("{:<{}}  {}\n", std::string_view(k), width, text_of(v));
  for (const auto& [k, v] : o) {
    if (!v.is_array()) continue;
    out += fmt::format("\n{}:\n", std::string_view(k));
    const auto& cols = columns_of(k == "subscriptions" ? "session subscriptions" : k == "members" ? "members"
                                  : k == "acl"                                     ? "acl"
                                                                                   : "");
    if (!v.get_array().empty() && v.get_array().front().is_string()) {
      out += "  " + joined(o, k) + "\n";
    } else if (cols.empty() || v.get_array().empty()) {
      out += v.get_array().empty() ? "  (none)\n" : json::serialize(v) + "\n";
    } else {
      out += table(cols, v.get_array());
    }
  }
  return out;
}

}  // namespace

std::string render(const ctl_request& request, const json::value& answer) {
  if (!answer.is_object()) return json::serialize(answer) + "\n";
  const auto& o = answer.get_object();
  switch (request.shown) {
    case view::table: {
      const auto* items = o.if_contains(request.list_key);
      if (!items || !items->is_array()) return fields(o);
      std::string out = table(columns_of(request.list_key), items->get_array());
      const auto* total = o.if_contains("total");
      if (total && total->is_number() && total->to_number<std::size_t>() > items->get_array().size())
        out += fmt::format("({} of {}: --offset and --limit page through them)\n", items->get_array().size(),
                           total->to_number<std::size_t>());
      return out;
    }
    case view::trace: {
      std::string out = fmt::format("message {} ({})\n", field(o, "msgId"),
                                    o.contains("topicName") ? "topic " + field(o, "topicName")
                                                            : "queue " + field(o, "queueName"));
      if (const auto* events = o.if_contains("events"); events && events->is_array())
        out += table(columns_of("events"), events->get_array());
      if (field(o, "truncated") == "yes") out += "(older events were dropped: queue.message_trace bounds)\n";
      return out;
    }
    case view::done: {
      std::string out;
      for (const auto& [k, v] : o) out += fmt::format("{} {}\n", std::string_view(k), text_of(v));
      return out;
    }
    case view::fields:
    case view::status: return fields(o);
  }
  return fields(o);
}

}  // namespace wharf::app::ctl
