#include "config/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

namespace wharf::config::detail {
namespace {

// How a node looks to the user, for "expected X, got Y".
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// Scalar text after ${ENV:...} substitution; reports and returns nullopt for non-scalars
// (saying what was `expected`) and for failed substitutions.
std::optional<std::string> scalar_text(const entry& e, std::string_view expected,
                                       diagnostics& diag) {
  if (!e.value.IsScalar()) {
    diag.add(value_mark(e),
             fmt::format("{}: expected {}, got {}", e.path, expected, describe(e.value)));
    return std::nullopt;
  }
  auto sub = substitute_env(e.value.Scalar());
  if (sub.error) {
    diag.add(value_mark(e), fmt::format("{}: {}", e.path, *sub.error));
    return std::nullopt;
  }
  return std::move(sub.text);
}

bool is_env_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

void diagnostics::add_at(const std::string& location, std::string message) {
  errors_.push_back(error_at(location, std::move(message)));
}

void diagnostics::add(const YAML::Mark& mark, std::string message) {
  config_error err;
  err.file = file_;
  err.line = mark.is_null() ? 0 : mark.line + 1;
  err.column = mark.is_null() ? 0 : mark.column + 1;
  err.message = std::move(message);
  errors_.push_back(std::move(err));
}

std::string diagnostics::location(const YAML::Mark& mark) const {
  if (mark.is_null()) return file_;
  return fmt::format("{}:{}:{}", file_, mark.line + 1, mark.column + 1);
}

std::vector<config_error> diagnostics::take_sorted() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  return std::move(errors_);
}

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

YAML::Mark value_mark(const entry& e) {
  // yaml-cpp marks an empty value at the token after it (often the next line's key), so
  // point at the key instead.
  if (e.value.IsNull()) return e.key.Mark();
  YAML::Mark m = e.value.Mark();
  return m.is_null() ? e.key.Mark() : m;
}

map_reader::map_reader(YAML::Node node, std::string path, diagnostics& diag)
    : node_(std::move(node)), path_(std::move(path)), diag_(diag) {}

std::optional<entry> map_reader::find(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
  // Range-for keeps each key/value pair alive for the iteration; `it->first` on yaml-cpp's
  // proxy iterator trips GCC 12's -Wdangling-pointer.
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) {
      return entry{kv.first, kv.second, join_path(path_, key)};
    }
  }
  return std::nullopt;
}

void map_reader::finish() {
  const std::string where = path_.empty() ? "" : fmt::format(" in {}", path_);
  std::map<std::string, int, std::less<>> first_line;  // key -> 1-based line
  for (const auto& kv : node_) {
    const YAML::Node& key = kv.first;
    if (!key.IsScalar()) {
      diag_.add(key.Mark(), fmt::format("expected a key name{}, got {}", where, describe(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    auto [pos, inserted] = first_line.emplace(name, key.Mark().line + 1);
    if (!inserted) {
      diag_.add(key.Mark(),
                fmt::format("duplicate key '{}'{}, first at line {}", name, where, pos->second));
      continue;
    }
    if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
    if (auto suggestion = closest_match(name, known_)) {
      diag_.add(key.Mark(),
                fmt::format("unknown key '{}'{}, did you mean '{}'?", name, where, *suggestion));
    } else {
      diag_.add(key.Mark(), fmt::format("unknown key '{}'{}, expected one of: {}", name, where,
                                        fmt::join(known_, ", ")));
    }
  }
}

std::optional<std::string> read_string(const entry& e, diagnostics& diag) {
  return scalar_text(e, "a string", diag);
}

std::optional<std::uint64_t> read_uint(const entry& e, std::uint64_t min, std::uint64_t max,
                                       diagnostics& diag) {
  auto text = scalar_text(e, "an integer", diag);
  if (!text) return std::nullopt;
  std::string_view digits = *text;
  const bool negative = !digits.empty() && digits.front() == '-';
  if (negative) digits.remove_prefix(1);
  const bool all_digits = !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  if (!all_digits) {
    diag.add(value_mark(e), fmt::format("{}: expected an integer, got '{}'", e.path, *text));
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  const bool is_zero = ec == std::errc{} && value == 0;
  if (ec != std::errc{} || (negative && !is_zero) || value < min || value > max) {
    diag.add(value_mark(e),
             fmt::format("{}: {} is out of range, expected {}..{}", e.path, *text, min, max));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> read_bool(const entry& e, diagnostics& diag) {
  auto text = scalar_text(e, "true or false", diag);
  if (!text) return std::nullopt;
  // YAML 1.2 core schema booleans only: "yes"/"on" are strings there, so refuse them rather
  // than guess.
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  diag.add(value_mark(e), fmt::format("{}: expected true or false, got '{}'", e.path, *text));
  return std::nullopt;
}

std::optional<std::string> read_enum(const entry& e, std::span<const std::string_view> allowed,
                                     diagnostics& diag) {
  auto text = scalar_text(e, "a string", diag);
  if (!text) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), *text) != allowed.end()) return text;
  diag.add(value_mark(e), fmt::format("{}: invalid value '{}', expected one of: {}", e.path, *text,
                                      fmt::join(allowed, ", ")));
  return std::nullopt;
}

std::optional<std::string> read_non_empty_string(const entry& e, diagnostics& diag) {
  auto v = read_string(e, diag);
  if (v && v->empty()) {
    diag.add(value_mark(e), fmt::format("{}: expected a non-empty string", e.path));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> required_string(map_reader& m, std::string_view key, diagnostics& diag) {
  auto e = m.find(key);
  if (!e) {
    diag.add(m.node().Mark(), fmt::format("{}: missing required field '{}'", m.path(), key));
    return std::nullopt;
  }
  return read_non_empty_string(*e, diag);
}

void read_map_list(const entry& e, std::string_view what, diagnostics& diag,
               const std::function<void(map_reader&, std::string location)>& read_one) {
  if (!e.value.IsSequence()) {
    diag.add(value_mark(e), fmt::format("{}: expected a list of {} maps", e.path, what));
    return;
  }
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    const YAML::Node node = e.value[i];
    const std::string path = fmt::format("{}[{}]", e.path, i);
    if (!node.IsMap()) {
      diag.add(node.Mark(), fmt::format("{}: expected a map with {}", path, what));
      continue;
    }
    map_reader m(node, path, diag);
    read_one(m, diag.location(node.Mark()));
    m.finish();
  }
}

substitution substitute_env(std::string_view text) {
  static constexpr std::string_view open = "${ENV:";
  substitution out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = text.find(open, pos);
    if (start == std::string_view::npos) {
      out.text.append(text.substr(pos));
      break;
    }
    out.text.append(text.substr(pos, start - pos));
    const std::size_t name_begin = start + open.size();
    const std::size_t close = text.find('}', name_begin);
    if (close == std::string_view::npos) {
      out.error = "unterminated '${ENV:' reference, expected '${ENV:NAME}'";
      return out;
    }
    const std::string name(text.substr(name_begin, close - name_begin));
    if (!is_env_name(name)) {
      out.error = fmt::format(
          "invalid environment variable name '{}', expected letters, digits and '_'", name);
      return out;
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      out.error = fmt::format("environment variable '{}' is not set", name);
      return out;
    }
    out.text.append(value);
    pos = close + 1;
  }
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Two-row dynamic programme over insertions, deletions and substitutions.
  std::vector<std::size_t> prev(b.size() + 1);
  std::vector<std::size_t> cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitute = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string> candidates) {
  // A plausible typo: at most a third of the word wrong (but always allow 2 edits), and not
  // a complete rewrite of a short word.
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance && d < std::max(word.size(), candidate.size())) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

}  // namespace wharf::config::detail
