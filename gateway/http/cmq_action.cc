#include "gateway/http/cmq_action.h"

#include <fmt/format.h>

#include <charconv>

namespace wharf::gateway::http::action {

std::string answer_text(int code, std::string_view message, std::string_view request_id) {
  return answer_text(code, message, request_id, [](std::string&) {});
}

void answer(const call_ptr& c, q::code code, std::string message, json::object fields) {
  boost::asio::post(*c->home, [c, code, message = std::move(message), fields = std::move(fields)] {
    c->respond(answer_text(static_cast<int>(code), message, c->request_id, [&](std::string& out) {
      for (const auto& [name, value] : fields) {
        json_text::append_key(out, ',', name);
        out += json::serialize(value);
      }
    }));
  });
}

std::string required(const call& c, std::string_view name) {
  auto v = c.params.get(name);
  if (!v || v->empty()) throw bad_parameter{fmt::format("missing parameter {}", name)};
  return std::string(*v);
}

std::string name_param(const call& c, std::string_view name) {
  std::string value = required(c, name);
  if (value.find(q::tenant_separator) != std::string::npos)
    throw bad_parameter{fmt::format("{} must be 1..64 characters: a letter, then letters, digits, '_' or '-'", name)};
  return q::engine_name(c.tenant, value);
}

std::optional<std::string> optional_string(const call& c, std::string_view name) {
  auto v = c.params.get(name);
  if (!v) return std::nullopt;
  return std::string(*v);
}

std::optional<std::uint64_t> optional_uint(const call& c, std::string_view name, std::uint64_t max) {
  auto v = c.params.get(name);
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  const auto* end = v->data() + v->size();
  auto [ptr, ec] = std::from_chars(v->data(), end, n);
  if (v->empty() || ec == std::errc::invalid_argument || ptr != end)
    throw bad_parameter{fmt::format("{} must be a non-negative integer, got '{}'", name, *v)};
  if (ec == std::errc::result_out_of_range || n > max)
    throw bad_parameter{fmt::format("{} is out of range (at most {}), got {}", name, max, *v)};
  return n;
}

std::optional<std::uint32_t> optional_u32(const call& c, std::string_view name) {
  auto v = optional_uint(c, name);
  if (!v) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

std::vector<std::string_view> array_views(const call& c, std::string_view base, std::size_t max_count) {
  auto values = c.params.array(base, max_count);
  if (!values) throw bad_parameter{values.error().message};
  return std::move(*values);
}

std::vector<std::string> array(const call& c, std::string_view base, std::size_t max_count) {
  const auto values = array_views(c, base, max_count);
  return {values.begin(), values.end()};
}

page page_params(const call& c) {
  page p;
  p.search_word = optional_string(c, "searchWord").value_or("");
  p.offset = optional_uint(c, "offset").value_or(0);
  p.limit = optional_uint(c, "limit").value_or(default_list_limit);
  return p;
}


json::array strings(const std::vector<std::string>& values) {
  json::array out;
  for (const auto& v : values) out.emplace_back(v);
  return out;
}

void write_msg_list(const q::result& r, std::string& out) {
  json_text::append_array(out, ',', "msgList", r.msg_ids, [](std::string& o, const std::string& id) {
    json_text::append_member(o, '{', "msgId", id);
    o.push_back('}');
  });
}

std::function<void(q::status)> refused(const call_ptr& c) {
  return [c](q::status why) { answer(c, why.value, why.message); };
}

}  // namespace wharf::gateway::http::action
