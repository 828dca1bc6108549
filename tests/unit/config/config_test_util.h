// Helpers shared by the config tests.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace wharf::config::test {

// The errors parse_config reports for `yaml`, as "file:line:col: message" lines; empty when
// it parses.
inline std::vector<std::string> errors_of(const std::string& yaml, const std::string& file = "test.yaml") {
  try {
    (void)parse_config(yaml, file);
  } catch (const config_errors& e) {
    std::vector<std::string> out;
    for (const auto& err : e.errors()) out.push_back(err.to_string());
    return out;
  }
  return {};
}

}  // namespace wharf::config::test
