// `wharf ctl ...`: a command-line client of the admin API (docs/ADMIN.md) for operators:
// tables for people, --json for scripts. ctl_args.h has the command line; ctl_render.h
// the tables; this runs the request.
#pragma once

#include <string>
#include <vector>

namespace wharf::app {

// Runs `wharf ctl` with `args` (those after "ctl"); returns the exit status (0 done, 1 the
// admin API refused, 2 usage, 3 no answer).
int ctl_command(const std::vector<std::string>& args);

}  // namespace wharf::app
