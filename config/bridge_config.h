// The `bridge:` section's reader (config/ internal, like yaml_reader.h).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace wharf::config::detail {

// Reads a file path setting of map `m`: resolved against the config file's directory and
// checked readable (errors reported by the reader); nullopt when absent or bad.
using file_reader = std::function<std::optional<std::string>(map_reader& m, std::string_view key, bool required)>;

// Reads `bridge:` into `out`, reporting every shape error to `diag`.
void read_bridge(const entry& e, bridge_config& out, diagnostics& diag, const file_reader& read_file);

}  // namespace wharf::config::detail
