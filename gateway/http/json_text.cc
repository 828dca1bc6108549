#include "gateway/http/json_text.h"

#include <algorithm>
#include <array>
#include <cstddef>

namespace wharf::gateway::http::json_text {
namespace {

// Each byte's escape after the backslash: one character, 'u' for \u00XX, 0 for none. The
// same table as boost::json's serializer; a table, because every byte of a body is looked up.
constexpr std::array<char, 256> escapes = [] {
  std::array<char, 256> table{};
  for (std::size_t c = 0; c < 0x20; ++c) table[c] = 'u';
  table['\b'] = 'b';
  table['\t'] = 't';
  table['\n'] = 'n';
  table['\f'] = 'f';
  table['\r'] = 'r';
  table['"'] = '"';
  table['\\'] = '\\';
  return table;
}();

char escape_of(char c) noexcept { return escapes[static_cast<unsigned char>(c)]; }

}  // namespace

void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  auto p = s.begin();
  while (p != s.end()) {
    // Copy the run that needs no escape in one go: message bodies rarely have any.
    const auto run_end = std::find_if(p, s.end(), [](char c) { return escape_of(c) != 0; });
    out.append(p, run_end);
    if (run_end == s.end()) break;
    const auto c = static_cast<unsigned char>(*run_end);
    const char e = escape_of(*run_end);
    out.push_back('\\');
    out.push_back(e);
    if (e == 'u') {
      static constexpr char hex[] = "0123456789abcdef";
      out.append("00");
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
    p = run_end + 1;
  }
  out.push_back('"');
}

}  // namespace wharf::gateway::http::json_text
