#include "core/log.h"

#include <memory>

namespace wharf::log {
namespace {

using logger_set = std::array<std::shared_ptr<spdlog::logger>, module_names.size()>;

const logger_set& loggers() {
  static const logger_set all = [] {
    logger_set made;
    const auto& sinks = spdlog::default_logger()->sinks();
    for (std::size_t i = 0; i < made.size(); ++i)
      made[i] = std::make_shared<spdlog::logger>(std::string(module_names[i]), sinks.begin(), sinks.end());
    return made;
  }();
  return all;
}

}  // namespace

spdlog::logger& get(module m) { return *loggers()[static_cast<std::size_t>(m)]; }

void set_levels(std::string_view level, const std::map<std::string, std::string>& per_module) {
  const auto fallback = spdlog::level::from_str(std::string(level));
  spdlog::set_level(fallback);
  for (std::size_t i = 0; i < module_names.size(); ++i) {
    const auto named = per_module.find(std::string(module_names[i]));
    loggers()[i]->set_level(named == per_module.end() ? fallback : spdlog::level::from_str(named->second));
  }
}

}  // namespace wharf::log
