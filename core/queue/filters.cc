#include "core/queue/filters.h"

#include <algorithm>

namespace wharf::core::queue {
namespace {

std::vector<std::string_view> split_words(std::string_view key) {
  std::vector<std::string_view> words;
  if (key.empty()) return words;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t dot = key.find('.', begin);
    words.push_back(key.substr(begin, dot - begin));
    if (dot == std::string_view::npos) return words;
    begin = dot + 1;
  }
}

}  // namespace

bool tags_match(const std::vector<std::string>& filter_tags, const std::vector<std::string>& message_tags) {
  if (filter_tags.empty()) return true;
  return std::any_of(message_tags.begin(), message_tags.end(), [&](const std::string& tag) {
    return std::find(filter_tags.begin(), filter_tags.end(), tag) != filter_tags.end();
  });
}

bool binding_key_matches(std::string_view binding_key, std::string_view routing_key) {
  const auto pattern = split_words(binding_key);
  const auto words = split_words(routing_key);
  // Wildcard matching over words, with `#` as the any-length wildcard: on a mismatch,
  // go back to the last `#` seen and let it swallow one more word. Each `#` restarts the
  // search from itself, so this is O(pattern × words) at worst (both ≤ 16 words here).
  std::size_t p = 0;
  std::size_t w = 0;
  std::size_t last_hash = std::string_view::npos;  // pattern index of the last `#`
  std::size_t hash_resume = 0;                     // word index that `#` would resume at
  while (w < words.size()) {
    if (p < pattern.size() && pattern[p] == "#") {
      last_hash = p++;
      hash_resume = w;
    } else if (p < pattern.size() && (pattern[p] == "*" || pattern[p] == words[w])) {
      ++p;
      ++w;
    } else if (last_hash != std::string_view::npos) {
      p = last_hash + 1;
      w = ++hash_resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == "#") ++p;
  return p == pattern.size();
}

bool routing_key_matches(const std::vector<std::string>& binding_keys, std::string_view routing_key) {
  if (binding_keys.empty()) return true;
  return std::any_of(binding_keys.begin(), binding_keys.end(),
                     [&](const std::string& key) { return binding_key_matches(key, routing_key); });
}

}  // namespace wharf::core::queue
