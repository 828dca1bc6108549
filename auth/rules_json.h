// ACL rules a client is given by its credentials (a token's ACL claim, the HTTP hook's
// answer), written as JSON in the shape of the config's auth.acl entries:
//   [{"permission": "allow"|"deny", "action": "publish"|"subscribe"|"all" (default all),
//     "topic": FILTER}, ...]
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/value.hpp>

#include "config/config.h"

namespace wharf::auth {

// The most rules one client may be given.
inline constexpr std::size_t max_client_rules = 256;

// `o`'s member `name` when it is a string; null otherwise.
[[nodiscard]] const boost::json::string* string_member(const boost::json::object& o, std::string_view name);

// The rules in `list`, each with `source` as its source_location (for the log); or why not.
[[nodiscard]] std::variant<std::vector<config::acl_rule>, std::string> rules_from_json(const boost::json::value& list,
                                                                                     std::string_view source);

}  // namespace wharf::auth
