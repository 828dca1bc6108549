// Schema-agnostic helpers for reading YAML into structs while collecting every error with
// its position. Internal to config/: nothing outside this folder includes it (it is the
// only header that exposes yaml-cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <type_traits>

#include <yaml-cpp/yaml.h>

#include "config/config.h"

namespace wharf::config::detail {

// Collects errors for one file. Positions come from yaml-cpp marks (0-based) and are
// stored 1-based; a null mark is stored as 0:0.
class diagnostics {
 public:
  explicit diagnostics(std::string file) : file_(std::move(file)) {}

  void add(const YAML::Mark& mark, std::string message);
  // At a source_location ("file:line:col") recorded while reading, for checks across sections.
  void add_at(const std::string& location, std::string message);
  [[nodiscard]] bool empty() const noexcept { return errors_.empty(); }
  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  // "file:line:col" of `mark`, for source_location fields.
  [[nodiscard]] std::string location(const YAML::Mark& mark) const;
  // The errors ordered by position (stable, so errors at one position keep their order).
  [[nodiscard]] std::vector<config_error> take_sorted();

 private:
  std::string file_;
  std::vector<config_error> errors_;
};

// One `key: value` pair of a map. `path` names the value in messages ("mqtt.max_inflight",
// "listeners[1].tls.cert_file").
struct entry {
  YAML::Node key;
  YAML::Node value;
  std::string path;
};

// "a.b" from parent "a" and key "b"; just "b" at the top level.
[[nodiscard]] std::string join_path(std::string_view parent, std::string_view key);

// Position of a value; its key's position for an empty value.
[[nodiscard]] YAML::Mark value_mark(const entry& e);

// Reads one map. Every key looked up through find() becomes known; finish() reports the
// keys never looked up as unknown (suggesting the closest known key) and keys that occur
// twice. REQUIRES: node.IsMap().
class map_reader {
 public:
  map_reader(YAML::Node node, std::string path, diagnostics& diag);
  map_reader(const map_reader&) = delete;
  map_reader& operator=(const map_reader&) = delete;

  // The first entry with `key`, or nullopt when absent.
  [[nodiscard]] std::optional<entry> find(std::string_view key);
  // Reports unknown and duplicate keys. Call once after all find() calls.
  void finish();

  [[nodiscard]] const YAML::Node& node() const noexcept { return node_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  YAML::Node node_;
  std::string path_;
  diagnostics& diag_;
  std::vector<std::string> known_;
};

// Value conversions. Each reports its own error (with the value's position) and returns
// nullopt on failure. Scalars go through environment substitution first.
[[nodiscard]] std::optional<std::string> read_string(const entry& e, diagnostics& diag);
[[nodiscard]] std::optional<std::uint64_t> read_uint(const entry& e, std::uint64_t min,
                                                     std::uint64_t max, diagnostics& diag);
[[nodiscard]] std::optional<bool> read_bool(const entry& e, diagnostics& diag);
// One of `allowed`; the message lists them all.
[[nodiscard]] std::optional<std::string> read_enum(const entry& e,
                                                   std::span<const std::string_view> allowed,
                                                   diagnostics& diag);

// A string that must not be empty when its key is given; reports it and returns nullopt
// otherwise.
[[nodiscard]] std::optional<std::string> read_non_empty_string(const entry& e, diagnostics& diag);
// A required non-empty string of map `m`; reports it missing or empty and returns nullopt.
[[nodiscard]] std::optional<std::string> required_string(map_reader& m, std::string_view key, diagnostics& diag);

// Sets `out` from `m`'s `key` when it is given and an integer in [min, max].
template <class T>
void read_uint_into(map_reader& m, std::string_view key, T& out, std::uint64_t min, std::uint64_t max,
                    diagnostics& diag) {
  static_assert(std::is_unsigned_v<T>);
  if (auto e = m.find(key)) {
    if (auto v = read_uint(*e, min, max, diag)) out = static_cast<T>(*v);
  }
}

// Reads a list of maps (`what` says what each holds, for messages), calling `read_one`
// with each map's reader and its "file:line:col", then finishing the reader.
void read_map_list(const entry& e, std::string_view what, diagnostics& diag,
                   const std::function<void(map_reader&, std::string location)>& read_one);

// Reads a file path setting of map `m`: resolved against the config file's directory and
// checked readable (errors reported by the reader); nullopt when absent or bad.
using file_reader = std::function<std::optional<std::string>(map_reader& m, std::string_view key, bool required)>;

// Replaces every `${ENV:NAME}` in `text` with the variable's value. Returns the error
// message (without path) when a variable is unset or a reference is malformed.
struct substitution {
  std::string text;
  std::optional<std::string> error;
};
[[nodiscard]] substitution substitute_env(std::string_view text);

// Levenshtein distance, used to suggest the intended key for a misspelled one.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);
// The closest of `candidates` to `word`, or nullopt when none is close enough to be a
// plausible typo.
[[nodiscard]] std::optional<std::string> closest_match(std::string_view word,
                                                       std::span<const std::string> candidates);

}  // namespace wharf::config::detail
