// wharf-bench: load generator for wharf (MQTT, for any broker; and the CMQ queue API). See `wharf-bench --help`.
#include <sys/resource.h>

#include <cstdio>
#include <exception>
#include <string>

#include <fmt/format.h>

#include "bench/modes.h"
#include "bench/options.h"

namespace {

// Many connections need many descriptors: take the hard limit.
void raise_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  bool help = false;
  const auto opts = wharf::bench::parse_options(argc, argv, error, help);
  if (help) {
    fmt::print("{}", wharf::bench::usage());
    return 0;
  }
  if (!opts) {
    fmt::print(stderr, "wharf-bench: {}\n\n{}", error, wharf::bench::usage());
    return 2;
  }
  raise_file_limit();
  try {
    switch (opts->mode) {
      case wharf::bench::mode::conn: return wharf::bench::run_conn(*opts);
      case wharf::bench::mode::pubsub: return wharf::bench::run_pubsub(*opts);
      case wharf::bench::mode::queue: return wharf::bench::run_queue(*opts);
      case wharf::bench::mode::sessions: return wharf::bench::run_sessions(*opts);
    }
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "wharf-bench: {}\n", e.what());
    return 1;
  }
}
