// Topic names, topic filters and matching ([MQTT-4.7]). Used by routing, retained
// messages and the codec's validation.
#pragma once

#include <optional>
#include <string_view>

namespace wharf::core {

// A topic name: 1..65535 bytes, no '+' or '#'. (UTF-8 checks are the codec's.)
[[nodiscard]] bool is_valid_topic_name(std::string_view topic) noexcept;

// A topic filter: 1..65535 bytes; '#' only as the whole last level; '+' only as a whole level.
// A "$share/{group}/{filter}" filter is valid when group is non-empty without '+', '#' or '/'
// and filter is valid.
[[nodiscard]] bool is_valid_topic_filter(std::string_view filter) noexcept;

// True when `filter` (not a $share filter) matches `topic`. Topics starting with '$' are not
// matched by a filter whose first level is '+' or '#' ([MQTT-4.7.2-1]).
[[nodiscard]] bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

struct shared_filter {
  std::string_view group;
  std::string_view filter;
};
// Splits "$share/group/filter"; nullopt when `filter` is not a shared-subscription filter
// (it does not start with "$share/", or has no '/' after the group). Does not validate the
// group or the filter: call is_valid_topic_filter first. The views point into `filter`.
[[nodiscard]] std::optional<shared_filter> parse_shared_filter(std::string_view filter) noexcept;

}  // namespace wharf::core
