// The `bridge:` section's reader (config/ internal, like yaml_reader.h).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace wharf::config::detail {

// Reads `bridge:` into `out`, reporting every shape error to `diag`.
void read_bridge(const entry& e, bridge_config& out, diagnostics& diag, const file_reader& read_file);

}  // namespace wharf::config::detail
