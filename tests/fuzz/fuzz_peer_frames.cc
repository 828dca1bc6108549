// libFuzzer target over what a peer link carries: frames (split_frame), hellos, Raft
// messages, snapshot chunks and their acknowledgements, relayed requests and answers, the queue core's log entries (command batches) and
// results. Each decoder must refuse or accept arbitrary bytes without crashing; what it
// accepts must re-encode to bytes that decode the same (a relayed request travels twice).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/queue/engine.h"
#include "core/queue/forwarding.h"
#include "core/replication/wire.h"

namespace {

template <class Decode, class Encode>
void round_trip(std::string_view bytes, Decode decode, Encode encode, const char* what) {
  const auto decoded = decode(bytes);
  if (!decoded) return;
  const std::string once = encode(*decoded);
  const auto again = decode(once);
  if (!again || encode(*again) != once) {
    std::fprintf(stderr, "fuzz_peer_frames: %s changed in a round trip\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wharf::core;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // A stream of frames, as a link reads it.
  std::string_view rest = bytes;
  while (true) {
    const auto split = replication::split_frame(rest);
    if (split.bad || !split.got) break;
    rest.remove_prefix(split.consumed);
  }
  // The bodies, each decoder on the whole input.
  round_trip(bytes, replication::decode_hello, replication::encode_hello, "hello");
  round_trip(bytes, replication::decode_raft, replication::encode_raft, "raft message");
  round_trip(bytes, replication::decode_snapshot_chunk, replication::encode_snapshot_chunk, "snapshot chunk");
  round_trip(bytes, replication::decode_snapshot_ack, replication::encode_snapshot_ack, "snapshot ack");
  round_trip(bytes, queue::decode_forwarded_request,
             [](const queue::forwarded_request& r) { return queue::encode_forwarded(r); }, "relayed request");
  round_trip(bytes, queue::decode_forwarded_answer,
             [](const queue::forwarded_answer& a) { return queue::encode_forwarded(a); }, "relayed answer");
  round_trip(bytes, queue::decode_command_batch, queue::encode_command_batch, "command batch");
  round_trip(bytes, queue::decode_result, queue::encode_result, "result");
  return 0;
}
