#include "core/topic.h"

#include <cstddef>

namespace wharf::core {
namespace {

constexpr std::size_t topic_max_bytes = 65535;
constexpr std::string_view share_prefix = "$share/";

// Checks the plain (non-shared) filter rules of [MQTT-4.7.1].
bool is_valid_plain_filter(std::string_view filter) noexcept {
  if (filter.empty() || filter.size() > topic_max_bytes) return false;
  const std::size_t n = filter.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char c = filter[i];
    if (c == '+') {
      // [MQTT-4.7.1-2] '+' occupies an entire level.
      if ((i > 0 && filter[i - 1] != '/') || (i + 1 < n && filter[i + 1] != '/')) return false;
    } else if (c == '#') {
      // [MQTT-4.7.1-1] '#' is the whole last level.
      if ((i > 0 && filter[i - 1] != '/') || i + 1 != n) return false;
    }
  }
  return true;
}

}  // namespace

bool is_valid_topic_name(std::string_view topic) noexcept {
  if (topic.empty() || topic.size() > topic_max_bytes) return false;
  // [MQTT-4.7.1-1] wildcards are not allowed in topic names.
  return topic.find_first_of("+#") == std::string_view::npos;
}

bool is_valid_topic_filter(std::string_view filter) noexcept {
  if (filter.size() > topic_max_bytes) return false;
  if (filter.starts_with(share_prefix)) {
    // [MQTT-4.8.2-1], [MQTT-4.8.2-2]: the share name is non-empty, without '/', '+', '#'.
    const auto parsed = parse_shared_filter(filter);
    if (!parsed) return false;
    if (parsed->group.empty() || parsed->group.find_first_of("+#") != std::string_view::npos) {
      return false;
    }
    return is_valid_plain_filter(parsed->filter);
  }
  return is_valid_plain_filter(filter);
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
  // [MQTT-4.7.2-1] '$' topics are not matched by a filter starting with a wildcard.
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  std::size_t fpos = 0;
  std::size_t tpos = 0;
  bool topic_done = false;  // every level of `topic` has been consumed
  for (;;) {
    std::size_t fend = filter.find('/', fpos);
    if (fend == std::string_view::npos) fend = filter.size();
    const std::string_view flevel = filter.substr(fpos, fend - fpos);
    // '#' matches the remaining levels, including none: "a/#" matches "a" [MQTT-4.7.1-1].
    if (flevel == "#") return true;
    if (topic_done) return false;
    std::size_t tend = topic.find('/', tpos);
    if (tend == std::string_view::npos) tend = topic.size();
    const std::string_view tlevel = topic.substr(tpos, tend - tpos);
    if (flevel != "+" && flevel != tlevel) return false;
    const bool filter_last = fend == filter.size();
    const bool topic_last = tend == topic.size();
    if (filter_last) return topic_last;
    fpos = fend + 1;
    if (topic_last) {
      topic_done = true;
    } else {
      tpos = tend + 1;
    }
  }
}

std::optional<shared_filter> parse_shared_filter(std::string_view filter) noexcept {
  if (!filter.starts_with(share_prefix)) return std::nullopt;
  const std::string_view rest = filter.substr(share_prefix.size());
  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  return shared_filter{rest.substr(0, slash), rest.substr(slash + 1)};
}

}  // namespace wharf::core
