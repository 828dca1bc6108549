// JSON text written straight into a string, for CMQ answers. The answers to send, receive
// and delete carry up to 16 messages; building a boost::json tree for them and then
// serializing it cost more allocations and instructions than the rest of the request's
// handling. Strings are escaped as boost::json::serialize escapes them (`"`, `\` and the
// control characters below 0x20; every other byte as it is), and integers are written as it
// writes them, so the text is byte for byte the serialization of the same boost::json value.
#pragma once

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>

namespace wharf::gateway::http::json_text {

// Appends `s` as a JSON string, quotes included.
void append_string(std::string& out, std::string_view s);

// Appends `separator` and `"name":`. The separator is '{' for the first member of an
// object, ',' for the others.
inline void append_key(std::string& out, char separator, std::string_view name) {
  out.push_back(separator);
  append_string(out, name);
  out.push_back(':');
}

inline void append_member(std::string& out, char separator, std::string_view name, std::string_view value) {
  append_key(out, separator, name);
  append_string(out, value);
}

template <std::integral T>
void append_member(std::string& out, char separator, std::string_view name, T value) {
  append_key(out, separator, name);
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

// Appends `separator`, `"name":` and an array of `items`, each written whole by
// `write_item(out, item)`.
template <class Items, class WriteItem>
void append_array(std::string& out, char separator, std::string_view name, const Items& items,
                  WriteItem&& write_item) {
  append_key(out, separator, name);
  char item_separator = '[';
  for (const auto& item : items) {
    out.push_back(item_separator);
    write_item(out, item);
    item_separator = ',';
  }
  if (item_separator == '[') out.push_back('[');
  out.push_back(']');
}

}  // namespace wharf::gateway::http::json_text
