// The `tenants:` section's reader (config/ internal, like yaml_reader.h).
#pragma once

#include "config/config.h"
#include "config/yaml_reader.h"

namespace wharf::config::detail {

// Reads `tenants:` into `out`: names valid and unique, quotas in range, no MQTT username
// pattern matching two tenants.
void read_tenants(const entry& e, std::vector<tenant_config>& out, diagnostics& diag);

// The tenants the rest of `cfg` names (credentials, bridge bindings) are declared; each
// error at the naming field.
void check_tenant_references(const config& cfg, diagnostics& diag);

}  // namespace wharf::config::detail
