#include "app/commands.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "auth/password.h"

namespace wharf::app {
namespace {

// Runs `build` and adds the config errors it throws to `errors`.
template <class F>
void collect(std::vector<config::config_error>& errors, F&& build) {
  try {
    build();
  } catch (const config::config_errors& e) {
    errors.insert(errors.end(), e.errors().begin(), e.errors().end());
  }
}


// `text` as a YAML double-quoted scalar.
std::string yaml_quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

constexpr const char* passwd_usage =
    "usage: wharf passwd [--iterations N] USERNAME\n"
    "  Reads the password from the terminal (twice) or the first line of stdin, and prints\n"
    "  the entry to add under auth.users in the config file (a salted PBKDF2-SHA256 hash).\n"
    "  --iterations N   PBKDF2 iterations (default 100000): more is slower to check and to guess\n";

}  // namespace

std::optional<std::string> read_password_line(const char* prompt) {
  const bool terminal = ::isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (terminal) {
    std::fputs(prompt, stderr);
    ::tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (terminal) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::fputs("\n", stderr);
  }
  if (!got) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

checked_config load_checked_config(const std::string& file) {
  checked_config out;
  // The values' meaning is checked even when the file has other errors, so one run shows
  // them all (entries with errors are left out of what is checked).
  auto read = file.empty() ? config::read_config_text(config::embedded_default_yaml(), "<embedded>")
                           : config::read_config_file(file);
  out.cfg = std::move(read.cfg);
  std::vector<config::config_error> errors = std::move(read.errors);
  collect(errors, [&] { out.bridge_rules = std::make_shared<const gateway::bridge::bridge>(out.cfg.bridge); });
  collect(errors, [&] { out.access = std::make_shared<const auth::access_policy>(out.cfg.auth); });
  if (!errors.empty()) {
    std::stable_sort(errors.begin(), errors.end(),
                     [](const auto& a, const auto& b) { return std::pair(a.line, a.column) < std::pair(b.line, b.column); });
    throw config::config_errors(std::move(errors));
  }
  return out;
}

int check_config_command(const std::string& file) {
  try {
    (void)load_checked_config(file);
  } catch (const config::config_errors& e) {
    for (const auto& err : e.errors()) std::fprintf(stderr, "%s\n", err.to_string().c_str());
    return 1;
  }
  std::printf("%s: ok\n", file.c_str());
  return 0;
}

int passwd_command(const std::vector<std::string>& args) {
  std::uint32_t iterations = auth::default_password_iterations;
  std::string username;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(passwd_usage, stdout);
      return 0;
    }
    if (args[i] == "--iterations" && i + 1 < args.size()) {
      const std::string& text = args[++i];
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), iterations);
      if (ec != std::errc{} || end != text.data() + text.size() || iterations < auth::min_password_iterations ||
          iterations > auth::max_password_iterations) {
        std::fprintf(stderr, "wharf passwd: --iterations '%s' is not a number in %u..%u\n", text.c_str(),
                     auth::min_password_iterations, auth::max_password_iterations);
        return 2;
      }
    } else if (username.empty() && !args[i].starts_with("-")) {
      username = args[i];
    } else {
      std::fprintf(stderr, "wharf passwd: unexpected argument '%s'\n%s", args[i].c_str(), passwd_usage);
      return 2;
    }
  }
  if (username.empty()) {
    std::fputs(passwd_usage, stderr);
    return 2;
  }
  if (std::any_of(username.begin(), username.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    std::fputs("wharf passwd: the username contains control characters\n", stderr);
    return 2;
  }
  const auto password = read_password_line("Password: ");
  if (!password || password->empty()) {
    std::fputs("wharf passwd: no password given\n", stderr);
    return 1;
  }
  if (::isatty(STDIN_FILENO) == 1 && read_password_line("Again: ") != password) {
    std::fputs("wharf passwd: the passwords differ\n", stderr);
    return 1;
  }
  std::printf("- {username: %s, password_hash: %s}\n", yaml_quoted(username).c_str(),
              yaml_quoted(auth::hash_password(*password, iterations)).c_str());
  return 0;
}

}  // namespace wharf::app
