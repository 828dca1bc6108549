// The `encryption:` section's reader (config/ internal, like yaml_reader.h).
#pragma once

#include "config/config.h"
#include "config/yaml_reader.h"

namespace wharf::config::detail {

// Reads `encryption:` into `out`: the keys (each from key_file or key, 64 hex digits: 32
// bytes), ids unique, the active one among them. Errors go to `diag` with their position.
void read_encryption(const entry& e, encryption_config& out, diagnostics& diag, const file_reader& read_file);

}  // namespace wharf::config::detail
