// A member that is not the leader serves the API all the same: it hands a client's request
// to the leader over the peer link (frame_kind::request) and relays the leader's answer
// (frame_kind::answer). Sans-I/O: the bodies of those frames, and back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/queue/types.h"

namespace wharf::core::queue {

enum class forwarded_kind : std::uint8_t {
  commands = 1,    // commands to apply, answered with their results
  receive = 2,     // a receive that may wait (long polling), answered with its result
  read_index = 3,  // "confirm you lead": answered with an index the reader waits for
};

struct forwarded_request {
  std::uint64_t id = 0;  // the sender's, echoed by the answer
  forwarded_kind kind = forwarded_kind::commands;
  std::vector<command_body> bodies;  // commands; receive: one receive_messages
  std::vector<std::string> origins;  // one per body
  std::optional<std::uint64_t> wait_ms;  // receive: the polling wait asked for (none: the queue's)
};

struct forwarded_answer {
  std::uint64_t id = 0;
  forwarded_kind kind = forwarded_kind::commands;
  std::vector<result> results;   // commands: one per body; receive: one
  std::uint64_t read_index = 0;  // read_index: the leader's commit to wait for; 0: refused
};

[[nodiscard]] std::string encode_forwarded(const forwarded_request& r);
[[nodiscard]] std::optional<forwarded_request> decode_forwarded_request(std::string_view bytes);
[[nodiscard]] std::string encode_forwarded(const forwarded_answer& a);
[[nodiscard]] std::optional<forwarded_answer> decode_forwarded_answer(std::string_view bytes);

}  // namespace wharf::core::queue
