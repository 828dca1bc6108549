// `wharf ctl`: the command line of the admin API's client, turned into one HTTP request.
// Sans-I/O: parse_ctl_args reads the arguments and the environment it is given, and
// decides the request; nothing here opens a socket or a file.
//
//   wharf ctl [OPTIONS] COMMAND [ACTION] [NAME]
//
// Commands map onto the admin API's routes (docs/ADMIN.md); `wharf ctl --help` lists them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wharf::app::ctl {

// How to reach the admin listener, and as whom.
struct connection_options {
  std::string url = "http://127.0.0.1:9100";  // its scheme, host and port
  std::string user;
  std::string password;
  std::string credentials_file;  // "USER:PASSWORD" on its first line; read by the caller
  std::string ca_file;           // for https: the CA that signed the listener's certificate
  unsigned timeout_s = 10;
};

// How an answer is shown.
enum class view {
  table,       // a list: one row per item, in columns
  fields,      // one object: "name  value" lines
  status,      // /api/v1/status and the probes
  done,        // an action: one line saying what it did
  trace,       // a message's history: one row per event
};

// One request of the admin API, and how to show its answer.
struct ctl_request {
  std::string method = "GET";
  std::string target;  // "/api/v1/...", query included, percent-encoded
  view shown = view::table;
  std::string list_key;  // table: the answer's array ("clients", "queues", ...)
  bool health = false;   // `health`: /healthz and /readyz, no credentials
  // `users set` / `roles set`: what the JSON body holds. The caller builds it: it reads the
  // files and hashes the password (nothing here does I/O).
  struct store_body {
    std::optional<std::string> password_file;  // "-": stdin (prompted on a terminal)
    std::vector<std::string> roles;            // users only
    std::optional<std::string> acl_file;       // a JSON array of rules
  };
  std::optional<store_body> body;
};

struct ctl_invocation {
  connection_options connection;
  bool json = false;  // print the API's JSON as it came
  ctl_request request;
};

// What parse_ctl_args made of the arguments: an invocation, or the text to print (help,
// with `exit_code` 0) or an error (2).
struct parse_result {
  std::optional<ctl_invocation> invocation;
  std::string message;
  int exit_code = 0;
};

// `args` are the arguments after "ctl"; `env` the environment variables that apply
// (WHARF_ADMIN_URL, WHARF_ADMIN_USER, WHARF_ADMIN_PASSWORD, WHARF_ADMIN_CREDENTIALS).
// Flags win over the environment.
[[nodiscard]] parse_result parse_ctl_args(const std::vector<std::string>& args,
                                          const std::map<std::string, std::string>& env);

// The help text of `wharf ctl`.
[[nodiscard]] const std::string& ctl_usage();

// "USER:PASSWORD" (the first line of a credentials file) into its parts; nullopt when it
// has no ':' or no user.
[[nodiscard]] std::optional<std::pair<std::string, std::string>> parse_credentials_line(const std::string& line);

}  // namespace wharf::app::ctl
