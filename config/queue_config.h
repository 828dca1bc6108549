// The `queue:` section's reader (config/ internal, like yaml_reader.h).
#pragma once

#include "config/config.h"
#include "config/yaml_reader.h"

namespace wharf::config::detail {

// Reads `queue:` into `out`: the core's bounds, its tick, HTTP push (its CA file through
// `read_file`; empty names the system trust store) and the message trace.
void read_queue(const entry& e, queue_config& out, diagnostics& diag, const file_reader& read_file);

}  // namespace wharf::config::detail
