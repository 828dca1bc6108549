#include "app/ctl/ctl_args.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <set>
#include <string_view>

#include <fmt/format.h>

namespace wharf::app::ctl {
namespace {

// Options that take a value, and where they apply: a connection option everywhere (no
// context), the others to the requests that name one of their contexts.
struct option_spec {
  std::string_view name;
  std::array<std::string_view, 2> contexts;
};

constexpr option_spec value_options[] = {
    {"--url", {}},           {"--user", {}},           {"--password", {}},
    {"--credentials", {}},   {"--ca", {}},             {"--timeout", {}},
    {"--offset", {"list"}},  {"--limit", {"list"}},    {"--state", {"sessions"}},
    {"--client", {"subscriptions"}}, {"--topic", {"retained"}}, {"--search", {"queues", "topics"}},
    {"--source", {"redrive"}}, {"--max", {"redrive"}},
    {"--password-file", {"users set"}}, {"--roles", {"users set"}}, {"--acl-file", {"users set", "roles set"}},
};

const option_spec* find_option(std::string_view name) {
  const auto it = std::find_if(std::begin(value_options), std::end(value_options),
                               [&](const option_spec& o) { return o.name == name; });
  return it == std::end(value_options) ? nullptr : it;
}

// RFC 3986 unreserved characters stay; everything else is %XX (a client id may hold '/').
std::string percent_encoded(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

bool is_whole_number(std::string_view s) {
  unsigned long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

parse_result usage_error(std::string message) {
  return {std::nullopt, fmt::format("wharf ctl: {}\nrun `wharf ctl --help` for the commands\n", message), 2};
}

// The query string of the options given, in the order named, percent-encoded.
using option_params = std::vector<std::pair<std::string_view, std::string_view>>;  // option → parameter

std::string query(const std::map<std::string, std::string>& given, const option_params& option_to_param) {
  std::string q;
  for (const auto& [option, param] : option_to_param) {
    const auto it = given.find(std::string(option));
    if (it == given.end()) continue;
    q += fmt::format("{}{}={}", q.empty() ? "?" : "&", param, percent_encoded(it->second));
  }
  return q;
}

}  // namespace

const std::string& ctl_usage() {
  static const std::string text =
      "usage: wharf ctl [OPTIONS] COMMAND [ACTION] [NAME]\n"
      "\n"
      "A client of wharf's admin API (a listener of type admin; docs/ADMIN.md).\n"
      "\n"
      "Commands:\n"
      "  status                       version, uptime, readiness, clients, sessions, queues\n"
      "  health                       /healthz and /readyz (exit 0 when ready, 1 when not)\n"
      "  clients                      connected clients\n"
      "  clients show CLIENT_ID       one client, with its subscriptions\n"
      "  clients kick CLIENT_ID       disconnect it (MQTT 5: DISCONNECT 0x98); its session stays\n"
      "  sessions [--state online|offline]\n"
      "  sessions show CLIENT_ID      one session, with its subscriptions\n"
      "  sessions delete CLIENT_ID    end and discard it (subscriptions, stored messages, will)\n"
      "  subscriptions [--client CLIENT_ID]\n"
      "  retained [--topic FILTER]    retained messages whose topic matches FILTER (default #)\n"
      "  queues [--search WORD]       queues with their depths\n"
      "  queues show QUEUE\n"
      "  queues purge QUEUE           remove every message of QUEUE\n"
      "  queues redrive DEAD_LETTER_QUEUE [--source QUEUE] [--max N]\n"
      "                               move dead letters back to the queues they came from\n"
      "  topics [--search WORD]\n"
      "  trace MSG_ID                 what happened to a queue or topic message\n"
      "  cluster [status]             the queue core's replication: role, leader, term, indexes,\n"
      "                               members (on the leader: how far each one lags)\n"
      "  cluster transfer [NODE_ID]   on the leader: hand leadership to NODE_ID (default: the\n"
      "                               most up-to-date other voter)\n"
      "  cluster add NODE_ID HOST:PORT  on the leader: add a node (its cluster.bind; it starts with\n"
      "                               cluster.join: true), a voter once it has caught up\n"
      "  cluster remove NODE_ID       on the leader: take a node out of the cluster\n"
      "  reload                       read the config file again (as SIGHUP)\n"
      "  users                        MQTT users kept at runtime (beside the config file's)\n"
      "  users show USERNAME          one, with its roles and rules\n"
      "  users set USERNAME [--password-file FILE|-] [--roles R1,R2] [--acl-file RULES.json]\n"
      "                               create or replace it: the password (the file's first line,\n"
      "                               or stdin with -) is hashed here; RULES.json is an array of\n"
      "                               {permission, action, topic} as auth.acl writes them\n"
      "  users delete USERNAME        its connected clients are disconnected\n"
      "  roles                        roles: rules users hold by name\n"
      "  roles show ROLE\n"
      "  roles set ROLE [--acl-file RULES.json]\n"
      "  roles delete ROLE            refused while a user holds it\n"
      "\n"
      "Options:\n"
      "  --url URL            the admin listener (env WHARF_ADMIN_URL; default http://127.0.0.1:9100)\n"
      "  --user NAME          a user the listener names (env WHARF_ADMIN_USER)\n"
      "  --password PASSWORD  (env WHARF_ADMIN_PASSWORD)\n"
      "  --credentials FILE   a file whose first line is NAME:PASSWORD (env WHARF_ADMIN_CREDENTIALS)\n"
      "  --ca FILE            for an https URL: the CA of the listener's certificate (default: the\n"
      "                       system's trust store)\n"
      "  --timeout SECONDS    for the request (default 10)\n"
      "  --json               print the admin API's JSON answer instead of a table\n"
      "  --offset N, --limit N  page through a list (default 0 and 100)\n"
      "\n"
      "Flags win over a credentials file, which wins over the environment.\n"
      "Exit status: 0 done, 1 the admin API refused (its message on stderr), 2 usage,\n"
      "3 no answer (connection, TLS or timeout).\n";
  return text;
}

std::optional<std::pair<std::string, std::string>> parse_credentials_line(const std::string& line) {
  std::string_view l = line;
  while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.remove_suffix(1);
  const auto colon = l.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  return std::make_pair(std::string(l.substr(0, colon)), std::string(l.substr(colon + 1)));
}

parse_result parse_ctl_args(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  ctl_invocation inv;
  std::map<std::string, std::string> given;  // value options, by name
  std::vector<std::string> words;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return {std::nullopt, ctl_usage(), 0};
    if (a == "--json") {
      inv.json = true;
      continue;
    }
    if (a.starts_with("--")) {
      if (!find_option(a)) return usage_error(fmt::format("unknown option '{}'", a));
      if (i + 1 >= args.size()) return usage_error(fmt::format("{} needs a value", a));
      given[a] = args[++i];
      continue;
    }
    words.push_back(a);
  }
  auto from_env = [&](const char* name) -> std::optional<std::string> {
    const auto it = env.find(name);
    return it == env.end() || it->second.empty() ? std::nullopt : std::optional(it->second);
  };
  auto& c = inv.connection;
  if (auto v = from_env("WHARF_ADMIN_URL")) c.url = *v;
  if (auto v = from_env("WHARF_ADMIN_USER")) c.user = *v;
  if (auto v = from_env("WHARF_ADMIN_PASSWORD")) c.password = *v;
  if (auto v = from_env("WHARF_ADMIN_CREDENTIALS")) c.credentials_file = *v;
  if (given.contains("--url")) c.url = given["--url"];
  if (given.contains("--user")) c.user = given["--user"];
  if (given.contains("--password")) c.password = given["--password"];
  if (given.contains("--credentials")) c.credentials_file = given["--credentials"];
  if (given.contains("--ca")) c.ca_file = given["--ca"];
  if (given.contains("--timeout")) {
    if (!is_whole_number(given["--timeout"]) || given["--timeout"] == "0")
      return usage_error("--timeout takes a whole number of seconds above 0");
    c.timeout_s = static_cast<unsigned>(std::stoul(given["--timeout"]));
  }
  if (!c.url.starts_with("http://") && !c.url.starts_with("https://"))
    return usage_error(fmt::format("--url must start with http:// or https://, got '{}'", c.url));
  for (const char* number : {"--offset", "--limit", "--max"})
    if (given.contains(number) && !is_whole_number(given[number]))
      return usage_error(fmt::format("{} takes a whole number, got '{}'", number, given[number]));
  if (words.empty()) return usage_error("no command");

  const std::string command = words[0];
  const std::string action = words.size() > 1 ? words[1] : "";
  const std::string name = words.size() > 2 ? words[2] : "";
  auto& r = inv.request;
  // The contexts of this request, for the options that apply only to some: a misplaced
  // option is an error, never silently ignored.
  std::set<std::string_view> contexts;
  auto needs = [&](std::size_t n_words) { return words.size() == n_words; };
  auto list = [&](std::string path, std::string key, option_params filters) {
    filters.insert(filters.end(), {{"--offset", "offset"}, {"--limit", "limit"}});
    r.target = "/api/v1/" + path + query(given, filters);
    r.list_key = std::move(key);
    r.shown = view::table;
    contexts = {"list", command};
  };

  if (command == "status" && needs(1)) {
    r.target = "/api/v1/status";
    r.shown = view::status;
  } else if (command == "health" && needs(1)) {
    r.health = true;
    r.shown = view::status;
  } else if ((command == "clients" || command == "sessions") && needs(1)) {
    list(command, command, command == "sessions" ? option_params{{"--state", "state"}} : option_params{});
  } else if ((command == "clients" || command == "sessions") && action == "show" && needs(3)) {
    r.target = fmt::format("/api/v1/{}/{}", command, percent_encoded(name));
    r.shown = view::fields;
  } else if (command == "clients" && action == "kick" && needs(3)) {
    r.method = "POST";
    r.target = fmt::format("/api/v1/clients/{}/disconnect", percent_encoded(name));
    r.shown = view::done;
  } else if (command == "sessions" && action == "delete" && needs(3)) {
    r.method = "DELETE";
    r.target = fmt::format("/api/v1/sessions/{}", percent_encoded(name));
    r.shown = view::done;
  } else if (command == "subscriptions" && needs(1)) {
    list("subscriptions", "subscriptions", {{"--client", "client"}});
  } else if (command == "retained" && needs(1)) {
    list("retained", "retained", {{"--topic", "topic"}});
  } else if ((command == "queues" || command == "topics") && needs(1)) {
    list(command, command, {{"--search", "search"}});
  } else if (command == "queues" && action == "show" && needs(3)) {
    r.target = "/api/v1/queues/" + percent_encoded(name);
    r.shown = view::fields;
  } else if (command == "queues" && action == "purge" && needs(3)) {
    r.method = "POST";
    r.target = fmt::format("/api/v1/queues/{}/purge", percent_encoded(name));
    r.shown = view::done;
  } else if (command == "queues" && action == "redrive" && needs(3)) {
    r.method = "POST";
    r.target = fmt::format("/api/v1/queues/{}/redrive{}", percent_encoded(name),
                           query(given, {{"--source", "source"}, {"--max", "max"}}));
    r.shown = view::done;
    contexts = {"redrive"};
  } else if (command == "trace" && needs(2)) {
    r.target = fmt::format("/api/v1/messages/{}/trace", percent_encoded(action));
    r.shown = view::trace;
  } else if (command == "cluster" && (needs(1) || (action == "status" && needs(2)))) {
    r.target = "/api/v1/cluster";
    r.shown = view::fields;
  } else if (command == "cluster" && action == "transfer" && (needs(2) || needs(3))) {
    if (!name.empty() && !is_whole_number(name))
      return usage_error(fmt::format("cluster transfer takes a node id, got '{}'", name));
    r.method = "POST";
    r.target = "/api/v1/cluster/transfer" + (name.empty() ? std::string() : "?to=" + name);
    r.shown = view::done;
  } else if (command == "cluster" && action == "add" && needs(4)) {
    if (!is_whole_number(name)) return usage_error(fmt::format("cluster add takes a node id, got '{}'", name));
    r.method = "POST";
    r.target = fmt::format("/api/v1/cluster/members?id={}&address={}", name, percent_encoded(words[3]));
    r.shown = view::done;
  } else if (command == "cluster" && action == "remove" && needs(3)) {
    if (!is_whole_number(name)) return usage_error(fmt::format("cluster remove takes a node id, got '{}'", name));
    r.method = "DELETE";
    r.target = "/api/v1/cluster/members/" + name;
    r.shown = view::done;
  } else if ((command == "users" || command == "roles") && needs(1)) {
    list(command, command, {});
  } else if ((command == "users" || command == "roles") && (action == "show" || action == "delete") && needs(3)) {
    r.method = action == "show" ? "GET" : "DELETE";
    r.target = fmt::format("/api/v1/{}/{}", command, percent_encoded(name));
    r.shown = action == "show" ? view::fields : view::done;
  } else if ((command == "users" || command == "roles") && action == "set" && needs(3)) {
    r.method = "PUT";
    r.target = fmt::format("/api/v1/{}/{}", command, percent_encoded(name));
    r.shown = view::done;
    auto& body = r.body.emplace();
    if (given.contains("--password-file")) body.password_file = given["--password-file"];
    if (given.contains("--acl-file")) body.acl_file = given["--acl-file"];
    if (given.contains("--roles")) {
      std::string_view rest = given["--roles"];
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const auto role = rest.substr(0, comma);
        if (role.empty()) return usage_error("--roles takes role names separated by commas");
        body.roles.emplace_back(role);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    }
    contexts = {command == "users" ? "users set" : "roles set"};
  } else if (command == "reload" && needs(1)) {
    r.method = "POST";
    r.target = "/api/v1/reload";
    r.shown = view::done;
  } else {
    std::string said;
    for (const auto& w : words) said += (said.empty() ? "" : " ") + w;
    return usage_error(fmt::format("not a command: '{}'", said));
  }
  for (const auto& [option, value] : given) {
    const auto& where = find_option(option)->contexts;
    if (where[0].empty()) continue;  // a connection option
    if (!contexts.contains(where[0]) && !contexts.contains(where[1]))
      return usage_error(fmt::format("{} does not apply to '{}'", option, command));
  }
  return {std::move(inv), {}, 0};
}

}  // namespace wharf::app::ctl
