// The errors the CMQ request layer (form parsing, parameters, signatures) reports. The codes
// are CMQ's (docs/API.md, "Answers and error codes") and equal to core::queue::code's values
// of the same name, so the dispatch maps one onto the other with a cast; the message is what
// the client reads.
#pragma once

#include <stdexcept>
#include <string>

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

namespace wharf::gateway::http {

enum class cmq_error_code : int {
  invalid_parameter = 4000,  // malformed form data, duplicate or bad parameter, bad array
  auth_failed = 4100,        // unsigned, unknown SecretId, bad signature, stale, replayed
  rate_limited = 4420,       // the SecretId is over queue_api.max_requests_per_second
};

struct cmq_error {
  cmq_error_code code = cmq_error_code::invalid_parameter;
  std::string message;
};

template <class T>
using cmq_result = boost::system::result<T, cmq_error>;

// What result::value() throws on an error (found by argument-dependent lookup). Code that
// checks has_value() first never reaches it.
[[noreturn]] inline void throw_exception_from_error(const cmq_error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

}  // namespace wharf::gateway::http
