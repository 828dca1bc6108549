// wharf's subcommands besides running the broker, and the config loading they share with it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/access_policy.h"
#include "config/config.h"
#include "gateway/bridge/bridge.h"

namespace wharf::app {

// A config whose meaning is checked too: the bridge's bindings and the auth section's
// hashes and patterns, built once here so a bad value is reported with the file's others.
struct checked_config {
  config::config cfg;
  std::shared_ptr<const gateway::bridge::bridge> bridge_rules;
  std::shared_ptr<const auth::access_policy> access;
};

// Loads `file` (empty: the embedded default) and checks it whole. Throws
// config::config_errors with every error found, in file order.
[[nodiscard]] checked_config load_checked_config(const std::string& file);

// `wharf check-config FILE`: "FILE: ok" on stdout and 0, or every error on stderr
// ("FILE:LINE:COL: message") and 1.
int check_config_command(const std::string& file);

// `wharf passwd [--iterations N] USERNAME`: reads a password (twice, without echo, from a
// terminal; otherwise the first line of stdin) and prints the auth.users entry for it.
int passwd_command(const std::vector<std::string>& args);

// One line from stdin, without its line end; `prompt` and echo off while a terminal types
// it. nullopt at the end of input.
[[nodiscard]] std::optional<std::string> read_password_line(const char* prompt);

}  // namespace wharf::app
