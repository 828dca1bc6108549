// libFuzzer target over the queue core's log codec: decode_command on arbitrary bytes must
// refuse or accept without crashing, and an accepted command must re-encode to bytes that
// decode to a command with the same encoding (the log format is stable under a round trip).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/queue/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wharf::core::queue;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto decoded = decode_command(bytes);
  if (!decoded) return 0;
  const std::string encoded = encode_command(*decoded);
  const auto again = decode_command(encoded);
  if (!again || encode_command(*again) != encoded) {
    std::fprintf(stderr, "fuzz_queue_command: round trip changed the command\n");
    std::abort();
  }
  return 0;
}
