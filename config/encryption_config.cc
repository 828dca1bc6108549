// Reading of the `encryption:` section: the keys and which one seals new values.
#include "config/encryption_config.h"

#include <fmt/format.h>

#include <fstream>
#include <set>
#include <sstream>

namespace wharf::config::detail {
namespace {

constexpr std::size_t key_hex_digits = 64;  // 32 bytes

// The 32 key bytes of `text` (64 hex digits, surrounding whitespace allowed), or nullopt.
std::optional<std::string> key_bytes(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.size() != key_hex_digits) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

constexpr std::string_view key_shape = "expected 64 hex digits (32 bytes), as `openssl rand -hex 32` prints";

}  // namespace

void read_encryption(const entry& e, encryption_config& out, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "encryption: expected a map with keys and active");
    return;
  }
  out.source_location = diag.location(e.key.Mark());
  map_reader m(e.value, "encryption", diag);
  std::set<std::string> ids;
  if (auto keys = m.find("keys")) {
    read_map_list(*keys, "id and key_file (or key)", diag, [&](map_reader& k, std::string location) {
      encryption_key_config key;
      key.source_location = std::move(location);
      auto id = required_string(k, "id", diag);
      if (id && id->size() > 64) {
        diag.add(value_mark(*k.find("id")), fmt::format("{}.id: at most 64 characters", k.path()));
        id.reset();
      }
      if (id && !ids.insert(*id).second) {
        diag.add(value_mark(*k.find("id")), fmt::format("{}.id: key '{}' is given twice", k.path(), *id));
        id.reset();
      }
      const auto file_entry = k.find("key_file");
      const auto text_entry = k.find("key");
      std::optional<std::string> bytes;
      if (file_entry && text_entry) {
        diag.add(k.node().Mark(), fmt::format("{}: give key_file or key, not both", k.path()));
      } else if (file_entry) {
        if (auto path = read_file(k, "key_file", true)) {
          std::ifstream in(*path, std::ios::binary);
          std::stringstream content;
          content << in.rdbuf();
          bytes = key_bytes(content.str());
          if (!bytes) diag.add(value_mark(*file_entry), fmt::format("{}.key_file: '{}': {}", k.path(), *path, key_shape));
        }
      } else if (text_entry) {
        if (auto text = read_string(*text_entry, diag)) {
          bytes = key_bytes(*text);
          // The value is a secret: the message does not repeat it.
          if (!bytes) diag.add(value_mark(*text_entry), fmt::format("{}.key: {}", k.path(), key_shape));
        }
      } else {
        diag.add(k.node().Mark(), fmt::format("{}: missing required field 'key_file' (or 'key')", k.path()));
      }
      if (!id || !bytes) return;
      key.id = std::move(*id);
      key.key = std::move(*bytes);
      out.keys.push_back(std::move(key));
    });
  } else {
    diag.add(e.value.Mark(), "encryption: missing required field 'keys', expected a list of {id, key_file}");
  }
  if (auto active = m.find("active")) {
    if (auto v = read_non_empty_string(*active, diag)) {
      out.active = std::move(*v);
      if (!ids.empty() && !ids.contains(out.active)) {
        diag.add(value_mark(*active), fmt::format("encryption.active: '{}' is not the id of one of encryption.keys",
                                                  out.active));
      }
    }
  } else {
    diag.add(e.value.Mark(), "encryption: missing required field 'active', the id of the key that seals new values");
  }
  m.finish();
}

}  // namespace wharf::config::detail
