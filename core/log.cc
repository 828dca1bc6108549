#include "core/log.h"

#include <cstdio>
#include <memory>

#include <spdlog/pattern_formatter.h>

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

// The message as the inside of a JSON string: quote, backslash and control characters
// escaped (bytes of 0x80 and above pass as they are: the text is UTF-8 already).
class json_escaped_message final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto put = [&dest](std::string_view s) { dest.append(s.data(), s.data() + s.size()); };
    for (const char c : msg.payload) {
      switch (c) {
        case '"': put("\\\""); break;
        case '\\': put("\\\\"); break;
        case '\n': put("\\n"); break;
        case '\r': put("\\r"); break;
        case '\t': put("\\t"); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            const int n = std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
            dest.append(escaped, escaped + n);
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_escaped_message>();
  }
};

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

void set_format(std::string_view format) {
  // The formatter belongs to the sinks, which every module logger shares with the default one.
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<json_escaped_message>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","module":"%n","msg":"%*"})");
    spdlog::default_logger()->set_formatter(std::move(formatter));
  } else {
    spdlog::default_logger()->set_formatter(std::make_unique<spdlog::pattern_formatter>());
  }
}

}  // namespace wharf::log
