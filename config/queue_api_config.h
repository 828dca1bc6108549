// The `queue_api:` section's reader (config/ internal, like yaml_reader.h).
#pragma once

#include <cstddef>
#include <optional>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace wharf::config::detail {

// What the file said about credentials, for the check that needs the listeners too (a
// queue-api listener requires at least one credential).
struct credentials_seen {
  std::optional<YAML::Mark> mark;  // where `credentials` is, when given
  std::size_t entries = 0;         // list entries, valid or not
};

// Reads `queue_api:` into `out`, reporting every error to `diag`: ranges, credentials
// (required fields, secret ids given twice) and their scopes.
void read_queue_api(const entry& e, queue_api_config& out, credentials_seen& seen, diagnostics& diag);

}  // namespace wharf::config::detail
