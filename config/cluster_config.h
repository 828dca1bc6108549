// The `cluster:` section's reader (config/ internal, like yaml_reader.h).
#pragma once

#include "config/config.h"
#include "config/yaml_reader.h"

namespace wharf::config::detail {

// Reads `cluster:` into `out`, reporting every error to `diag`: required fields, ids given
// twice, addresses, this node among the peers, timing that elections can live with, the
// TLS files (through `read_file`).
void read_cluster(const entry& e, cluster_config& out, diagnostics& diag, const file_reader& read_file);

}  // namespace wharf::config::detail
