// The wharf-bench modes. Each returns the process exit status: 0 when the run
// completed (even with lost messages, which the report shows), 1 when it could not run.
#pragma once

#include "bench/options.h"

namespace wharf::bench {

[[nodiscard]] int run_conn(const options& o);
[[nodiscard]] int run_pubsub(const options& o);
[[nodiscard]] int run_queue(const options& o);
[[nodiscard]] int run_sessions(const options& o);

}  // namespace wharf::bench
