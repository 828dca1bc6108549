#include "gateway/http/cmq_request.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include <fmt/format.h>

namespace wharf::gateway::http {
namespace {

constexpr std::string_view form_media_type = "application/x-www-form-urlencoded";
// Longer indexes cannot be consecutive within any sane max_count, and 9 digits fit in
// 32 bits without overflow checks.
constexpr std::size_t max_index_digits = 9;

cmq_error invalid(std::string message) {
  return {cmq_error_code::invalid_parameter, std::move(message)};
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Decodes one name or value of a form. `offset` is where `part` starts in the whole
// form, for the error message.
cmq_result<std::string> decode_component(std::string_view part, std::size_t offset) {
  std::string out;
  out.reserve(part.size());
  const auto is_coded = [](char c) { return c == '+' || c == '%'; };
  for (auto p = part.begin(); p != part.end();) {
    // Copy the run of bytes that decode to themselves in one go: most of a message body.
    const auto coded = std::find_if(p, part.end(), is_coded);
    out.append(p, coded);
    p = coded;
    if (p == part.end()) break;
    if (*p == '+') {
      out.push_back(' ');
      ++p;
      continue;
    }
    const int hi = part.end() - p > 1 ? hex_value(p[1]) : -1;
    const int lo = part.end() - p > 2 ? hex_value(p[2]) : -1;
    if (hi < 0 || lo < 0) {
      return invalid(fmt::format("malformed form data: '%' at byte {} is not followed by two hex digits",
                                 offset + static_cast<std::size_t>(p - part.begin())));
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    p += 3;
  }
  return out;
}

// The index of an array element name's suffix ("12" of "msgBody.12"), or nullopt when it
// is not a decimal number without leading zeros.
std::optional<std::uint32_t> parse_index(std::string_view digits) noexcept {
  if (digits.empty() || digits.size() > max_index_digits) return std::nullopt;
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  std::uint32_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return value;
}

bool is_form_content_type(std::string_view content_type) noexcept {
  return iequals(trim(content_type.substr(0, content_type.find(';'))), form_media_type);
}

// Appends the pairs of form `text` to `out`, keeping `out` at most `max_params` long.
std::optional<cmq_error> append_form(std::string_view text, std::size_t max_params,
                                     std::vector<form_param>& out) {
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t end = std::min(text.find('&', pos), text.size());
    const std::string_view pair = text.substr(pos, end - pos);
    if (!pair.empty()) {
      if (out.size() >= max_params) {
        return invalid(fmt::format("too many parameters, at most {} are allowed", max_params));
      }
      const std::size_t eq = pair.find('=');
      const std::string_view raw_name = pair.substr(0, eq);
      if (raw_name.empty()) {
        return invalid(fmt::format("malformed form data: empty parameter name at byte {}", pos));
      }
      auto name = decode_component(raw_name, pos);
      if (!name) return name.error();
      form_param param{std::move(*name), {}};
      if (eq != std::string_view::npos) {
        auto value = decode_component(pair.substr(eq + 1), pos + eq + 1);
        if (!value) return value.error();
        param.value = std::move(*value);
      }
      out.push_back(std::move(param));
    }
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace

cmq_result<std::vector<form_param>> parse_form(std::string_view text, std::size_t max_params) {
  std::vector<form_param> out;
  if (auto error = append_form(text, max_params, out)) return std::move(*error);
  return out;
}

cmq_result<cmq_params> cmq_params::make(std::vector<form_param> params, std::size_t max_params) {
  if (params.size() > max_params) {
    return invalid(fmt::format("too many parameters, at most {} are allowed", max_params));
  }
  std::sort(params.begin(), params.end(),
            [](const form_param& a, const form_param& b) { return a.name < b.name; });
  const auto duplicate = std::adjacent_find(
      params.begin(), params.end(), [](const form_param& a, const form_param& b) { return a.name == b.name; });
  if (duplicate != params.end()) {
    return invalid(fmt::format("parameter '{}' is given more than once", duplicate->name));
  }
  return cmq_params(std::move(params));
}

std::optional<std::string_view> cmq_params::get(std::string_view name) const {
  const auto it = std::lower_bound(params_.begin(), params_.end(), name,
                                   [](const form_param& p, std::string_view n) { return p.name < n; });
  if (it == params_.end() || it->name != name) return std::nullopt;
  return it->value;
}

bool cmq_params::action_is(std::string_view name) const {
  const auto action = get("Action");
  return action && iequals(*action, name);
}

std::optional<std::string> cmq_params::action_lower() const {
  const auto action = get("Action");
  if (!action) return std::nullopt;
  std::string lower(*action);
  std::transform(lower.begin(), lower.end(), lower.begin(), ascii_lower);
  return lower;
}

cmq_result<std::vector<std::string_view>> cmq_params::array(std::string_view base,
                                                            std::size_t max_count) const {
  const std::string prefix = fmt::format("{}.", base);
  // Names with the prefix are adjacent in the sorted list.
  auto it = std::lower_bound(params_.begin(), params_.end(), prefix,
                             [](const form_param& p, const std::string& n) { return p.name < n; });
  std::vector<std::pair<std::uint32_t, std::string_view>> elements;
  for (; it != params_.end() && it->name.starts_with(prefix); ++it) {
    const auto index = parse_index(std::string_view(it->name).substr(prefix.size()));
    if (!index) {
      return invalid(fmt::format("invalid array parameter '{}', expected {}.n with n a decimal index "
                                 "without leading zeros",
                                 it->name, base));
    }
    elements.emplace_back(*index, it->value);
  }
  if (elements.size() > max_count) {
    return invalid(fmt::format("too many {}.n values: {}, at most {} are allowed", base, elements.size(),
                               max_count));
  }
  // Names are unique, so indexes are too; sorted by name they are not in numeric order.
  std::sort(elements.begin(), elements.end());
  std::vector<std::string_view> values;
  values.reserve(elements.size());
  std::uint32_t expected = elements.empty() || elements.front().first == 0 ? 0 : 1;
  for (const auto& [index, value] : elements) {
    if (index != expected) {
      return invalid(fmt::format("{}.n indexes must start at 0 or 1 and be consecutive: {}.{} is missing",
                                 base, base, expected));
    }
    values.push_back(value);
    ++expected;
  }
  return values;
}

request_target split_target(std::string_view target) {
  const std::size_t question = target.find('?');
  if (question == std::string_view::npos) return {target, {}};
  return {target.substr(0, question), target.substr(question + 1)};
}

cmq_result<cmq_params> params_of_request(std::string_view method, std::string_view target,
                                         const std::optional<std::string>& content_type,
                                         std::string_view body, std::size_t max_params) {
  const bool post = method == "POST";
  if (method != "GET" && !post) {
    return invalid(fmt::format("unsupported HTTP method '{}', expected GET or POST", method));
  }
  if (post && content_type && !is_form_content_type(*content_type)) {
    return invalid(fmt::format("unsupported Content-Type '{}', expected {} (or none)", *content_type,
                               form_media_type));
  }
  std::vector<form_param> params;
  if (auto error = append_form(split_target(target).query, max_params, params)) return std::move(*error);
  if (post) {
    if (auto error = append_form(body, max_params, params)) return std::move(*error);
  }
  return cmq_params::make(std::move(params), max_params);
}

}  // namespace wharf::gateway::http
