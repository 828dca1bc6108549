// A hash map keyed by std::string that is searched with a std::string_view: find() builds no
// key string per lookup (heterogeneous lookup, C++20).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace wharf::core {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class Value>
using string_map = std::unordered_map<std::string, Value, string_hash, std::equal_to<>>;

}  // namespace wharf::core
