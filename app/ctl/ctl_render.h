// `wharf ctl`: the admin API's JSON answers as text for people (tables, "name value"
// lines). Sans-I/O: a JSON value in, text out.
#pragma once

#include <string>

#include <boost/json/value.hpp>

#include "app/ctl/ctl_args.h"

namespace wharf::app::ctl {

// The answer to `request` (status 2xx), as `request.shown` says.
[[nodiscard]] std::string render(const ctl_request& request, const boost::json::value& answer);

}  // namespace wharf::app::ctl
