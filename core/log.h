// Module loggers: each part of wharf logs through its own spdlog logger, named after it
// (the name appears in each line: "[mqtt]"), so an operator can turn one part's level up
// or down (log_levels in the config, reloadable) without flooding the log with the rest.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace wharf::log {

enum class module : std::size_t { app, mqtt, bridge, http, queue, count };

// The config's names for the modules (config/config.cc checks against the same list).
inline constexpr std::array<std::string_view, static_cast<std::size_t>(module::count)> module_names = {
    "app", "mqtt", "bridge", "http", "queue"};

// The module's logger; it writes where the default logger writes. Thread-safe.
[[nodiscard]] spdlog::logger& get(module m);
inline spdlog::logger& app() { return get(module::app); }
inline spdlog::logger& mqtt() { return get(module::mqtt); }
inline spdlog::logger& bridge() { return get(module::bridge); }
inline spdlog::logger& http() { return get(module::http); }
inline spdlog::logger& queue() { return get(module::queue); }

// Every module at `level`, except those `per_module` names (module name → level name).
// Level names are spdlog's: trace, debug, info, warn, error, critical, off. Thread-safe.
void set_levels(std::string_view level, const std::map<std::string, std::string>& per_module);

// "text": "[time] [module] [level] message" lines; "json": one JSON object a line, for log
// collectors: {"time": ISO 8601 with zone, "level", "module", "msg"}. Thread-safe.
void set_format(std::string_view format);

}  // namespace wharf::log
