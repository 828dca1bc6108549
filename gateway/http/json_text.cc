#include "gateway/http/json_text.h"

#include <algorithm>

namespace wharf::gateway::http::json_text {
namespace {

// The byte's escape after the backslash: one character, 'u' for \u00XX, 0 for none.
// The same table as boost::json's serializer.
constexpr char escape_of(unsigned char c) noexcept {
  switch (c) {
    case '\b': return 'b';
    case '\t': return 't';
    case '\n': return 'n';
    case '\f': return 'f';
    case '\r': return 'r';
    case '"': return '"';
    case '\\': return '\\';
    default: return c < 0x20 ? 'u' : 0;
  }
}

}  // namespace

void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  auto p = s.begin();
  while (p != s.end()) {
    // Copy the run that needs no escape in one go: message bodies rarely have any.
    const auto run_end =
        std::find_if(p, s.end(), [](char c) { return escape_of(static_cast<unsigned char>(c)) != 0; });
    out.append(p, run_end);
    if (run_end == s.end()) break;
    const auto c = static_cast<unsigned char>(*run_end);
    const char e = escape_of(c);
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
