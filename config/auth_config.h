// The `auth:` section's reader (config/ internal, like yaml_reader.h).
#pragma once

#include "config/config.h"
#include "config/yaml_reader.h"

namespace wharf::config::detail {

// Reads `auth:` into `out`, reporting every shape error to `diag`: maps, required strings,
// enums, duplicate usernames, a missing or unreadable JWT keys file. What the values mean
// (password hash encodings, topic patterns, the keys) is checked by auth::access_policy, at
// each entry's source_location.
void read_auth(const entry& e, auth_config& out, diagnostics& diag, const file_reader& read_file);

}  // namespace wharf::config::detail
