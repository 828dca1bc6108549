// Which topic subscriptions a published message reaches (CMQ's two filter kinds).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wharf::core::queue {

// Tag filter (filterType 1): a subscription without filter tags gets every message; one
// with filter tags gets a message only when the message carries at least one of them, so
// an untagged message does not reach it.
[[nodiscard]] bool tags_match(const std::vector<std::string>& filter_tags,
                              const std::vector<std::string>& message_tags);

// Routing-key filter (filterType 2) for one binding key. Both are dot-separated words; in
// the binding key `*` matches exactly one word and `#` zero or more words (`#` alone
// matches every routing key). An empty routing key has no words.
[[nodiscard]] bool binding_key_matches(std::string_view binding_key, std::string_view routing_key);

// A subscription without binding keys gets every message; otherwise a message whose
// routing key matches at least one binding key.
[[nodiscard]] bool routing_key_matches(const std::vector<std::string>& binding_keys,
                                       std::string_view routing_key);

}  // namespace wharf::core::queue
