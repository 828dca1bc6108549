#include "app/ctl/ctl.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "app/ctl/ctl_args.h"
#include "app/ctl/ctl_render.h"
#include "app/commands.h"
#include "auth/password.h"
#include "tls/crypto.h"
#include "tls/tls_context.h"

extern char** environ;

namespace wharf::app {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct answer {
  unsigned status = 0;
  std::string body;
};

struct exchange_result {
  std::optional<answer> got;
  std::string error;  // why there is no answer
};

struct endpoint {
  bool tls = false;
  std::string host;
  std::string port;
};

std::optional<endpoint> parse_url(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty()) return std::nullopt;
  endpoint e;
  e.tls = u->scheme() == "https";
  e.host = u->host_address();  // an IPv6 address without its brackets
  e.port = u->has_port() ? std::string(u->port()) : (e.tls ? "443" : "80");
  return e;
}

// One request on a new connection: connect, TLS handshake (https), write, read the answer.
template <class Stream>
asio::awaitable<exchange_result> exchange(Stream& stream, tcp::resolver::results_type addresses, const endpoint& e,
                                          http::request<http::string_body> request) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  if (auto [ec, peer] = co_await tcp_layer.async_connect(addresses, use_tuple); ec)
    co_return exchange_result{std::nullopt, fmt::format("connect to {}:{}: {}", e.host, e.port, ec.message())};
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    tls::set_server_name(stream.native_handle(), e.host);
    stream.set_verify_callback(asio::ssl::host_name_verification(e.host));
    if (auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_tuple); ec)
      co_return exchange_result{std::nullopt, fmt::format("TLS handshake with {}:{}: {}", e.host, e.port, ec.message())};
  }
  if (auto [ec, n] = co_await http::async_write(stream, request, use_tuple); ec)
    co_return exchange_result{std::nullopt, fmt::format("sending the request: {}", ec.message())};
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  if (auto [ec, n] = co_await http::async_read(stream, buffer, response, use_tuple); ec)
    co_return exchange_result{std::nullopt, fmt::format("reading the answer: {}", ec.message())};
  co_return exchange_result{answer{response.result_int(), std::move(response.body())}, {}};
}

// `method target` to the admin listener, within the timeout.
exchange_result request(const ctl::connection_options& c, const std::string& method, const std::string& target,
                        bool with_credentials, std::optional<std::string> body = std::nullopt) {
  const auto e = parse_url(c.url);
  if (!e) return {std::nullopt, fmt::format("--url '{}' is not an http:// or https:// URL with a host", c.url)};
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, e->host);
  req.set(http::field::user_agent, "wharf-ctl");
  if (with_credentials && !c.user.empty()) {
    const std::string pair = c.user + ":" + c.password;
    req.set(http::field::authorization,
            "Basic " + tls::base64_encode({reinterpret_cast<const std::uint8_t*>(pair.data()), pair.size()}));
  }
  if (body) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(*body);
  }
  req.prepare_payload();

  asio::io_context io;
  boost::system::error_code resolve_error;
  const auto addresses = tcp::resolver(io).resolve(e->host, e->port, resolve_error);
  if (resolve_error) return {std::nullopt, fmt::format("resolve {}: {}", e->host, resolve_error.message())};
  std::shared_ptr<asio::ssl::context> tls_context;
  std::variant<beast::tcp_stream, beast::ssl_stream<beast::tcp_stream>> stream{std::in_place_index<0>, io};
  if (e->tls) {
    try {
      tls_context = tls::make_client_context(c.ca_file);
    } catch (const std::exception& error) {
      return {std::nullopt, error.what()};
    }
    stream.emplace<1>(io, *tls_context);
  }
  std::optional<exchange_result> result;
  std::visit(
      [&](auto& s) {
        asio::co_spawn(io, exchange(s, addresses, *e, std::move(req)), [&](std::exception_ptr failed, exchange_result r) {
          result = failed ? exchange_result{std::nullopt, "the request failed"} : std::move(r);
        });
      },
      stream);
  io.run_for(std::chrono::seconds(c.timeout_s));
  if (!result) return {std::nullopt, fmt::format("no answer from {} within {} s (--timeout)", c.url, c.timeout_s)};
  return std::move(*result);
}

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** v = environ; *v != nullptr; ++v) {
    const std::string entry = *v;
    if (const auto eq = entry.find('='); eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

// The credentials file's user and password, unless flags gave them.
bool read_credentials(ctl::connection_options& c, bool user_flag, bool password_flag) {
  if (c.credentials_file.empty()) return true;
  std::ifstream in(c.credentials_file);
  std::string line;
  if (!in || !std::getline(in, line)) {
    std::fprintf(stderr, "wharf ctl: cannot read the credentials file %s\n", c.credentials_file.c_str());
    return false;
  }
  const auto pair = ctl::parse_credentials_line(line);
  if (!pair) {
    std::fprintf(stderr, "wharf ctl: %s: the first line must be NAME:PASSWORD\n", c.credentials_file.c_str());
    return false;
  }
  if (!user_flag) c.user = pair->first;
  if (!password_flag) c.password = pair->second;
  return true;
}

bool names_flag(const std::vector<std::string>& args, std::string_view flag) {
  return std::find(args.begin(), args.end(), flag) != args.end();
}

// The error of a refused request, as the admin API words it.
std::string refusal(const answer& a) {
  boost::system::error_code ec;
  const auto v = json::parse(a.body, ec);
  if (!ec && v.is_object()) {
    std::string out = fmt::format("HTTP {}", a.status);
    if (const auto* error = v.get_object().if_contains("error"); error && error->is_string())
      out += fmt::format(": {}", std::string_view(error->get_string()));
    if (const auto* errors = v.get_object().if_contains("errors"); errors && errors->is_array())
      for (const auto& e : errors->get_array())
        if (e.is_string()) out += fmt::format("\n  {}", std::string_view(e.get_string()));
    return out;
  }
  return fmt::format("HTTP {}: {}", a.status, a.body);
}

int health(const ctl::ctl_invocation& inv) {
  json::object out;
  bool ready = false;
  for (const char* probe : {"/healthz", "/readyz"}) {
    const auto r = request(inv.connection, "GET", probe, false);
    if (!r.got) {
      std::fprintf(stderr, "wharf ctl: %s\n", r.error.c_str());
      return 3;
    }
    const bool ok = r.got->status == 200;
    out[std::string_view(probe + 1)] = ok ? "ok" : fmt::format("HTTP {}", r.got->status);
    if (std::string_view(probe) == "/readyz") ready = ok;
  }
  const std::string text = inv.json ? json::serialize(out) + "\n" : ctl::render(inv.request, out);
  std::fputs(text.c_str(), stdout);
  return ready ? 0 : 1;
}

// The JSON body of `users set` / `roles set`: the password hashed here (PBKDF2, as `wharf
// passwd` does), the roles, and the rules of the ACL file; nullopt with `why` when a file
// cannot be read or the rules are not a JSON array.
std::optional<std::string> store_body(const ctl::ctl_request::store_body& parts, std::string& why) {
  json::object body;
  if (parts.password_file) {
    std::optional<std::string> password;
    if (*parts.password_file == "-") {
      password = read_password_line("Password: ");
    } else {
      std::ifstream in(*parts.password_file);
      std::string line;
      if (std::getline(in, line)) password = line;
    }
    if (!password || password->empty()) {
      why = fmt::format("no password in '{}'", *parts.password_file == "-" ? "stdin" : *parts.password_file);
      return std::nullopt;
    }
    body["passwordHash"] = auth::hash_password(*password, auth::default_password_iterations);
  }
  if (!parts.roles.empty()) {
    json::array roles;
    for (const auto& role : parts.roles) roles.emplace_back(role);
    body["roles"] = std::move(roles);
  }
  if (parts.acl_file) {
    std::ifstream in(*parts.acl_file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      why = fmt::format("cannot read '{}'", *parts.acl_file);
      return std::nullopt;
    }
    boost::system::error_code ec;
    auto rules = json::parse(text.str(), ec);
    if (ec || !rules.is_array()) {
      why = fmt::format("'{}' is not a JSON array of rules", *parts.acl_file);
      return std::nullopt;
    }
    body["acl"] = std::move(rules);
  }
  return json::serialize(body);
}

}  // namespace

int ctl_command(const std::vector<std::string>& args) {
  auto parsed = ctl::parse_ctl_args(args, environment());
  if (!parsed.invocation) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  auto& inv = *parsed.invocation;
  if (!read_credentials(inv.connection, names_flag(args, "--user"), names_flag(args, "--password"))) return 2;
  if (inv.request.health) return health(inv);

  std::optional<std::string> body;
  if (inv.request.body) {
    std::string why;
    body = store_body(*inv.request.body, why);
    if (!body) {
      std::fprintf(stderr, "wharf ctl: %s\n", why.c_str());
      return 2;
    }
  }
  const auto r = request(inv.connection, inv.request.method, inv.request.target, true, std::move(body));
  if (!r.got) {
    std::fprintf(stderr, "wharf ctl: %s\n", r.error.c_str());
    return 3;
  }
  if (r.got->status / 100 != 2) {
    std::fprintf(stderr, "wharf ctl: %s\n", refusal(*r.got).c_str());
    if (r.got->status == 401) std::fputs("(credentials: --user/--password, --credentials FILE or WHARF_ADMIN_USER/"
                                         "WHARF_ADMIN_PASSWORD)\n", stderr);
    return 1;
  }
  if (inv.json) {
    std::fputs(r.got->body.c_str(), stdout);
    return 0;
  }
  boost::system::error_code ec;
  const auto v = json::parse(r.got->body, ec);
  if (ec) {
    std::fprintf(stderr, "wharf ctl: the answer is not JSON: %s\n", r.got->body.substr(0, 200).c_str());
    return 3;
  }
  std::fputs(ctl::render(inv.request, v).c_str(), stdout);
  return 0;
}

}  // namespace wharf::app
