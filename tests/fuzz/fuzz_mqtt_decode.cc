// libFuzzer target over the codec: parse_fixed_header + decode on arbitrary bytes, and for
// every packet that decodes, encode it again and require decode(encode(p)) == p and
// encoded_size(p) == encode(p).size().
//
// Input layout: byte 0 picks the connection's negotiated version (for every packet but
// CONNECT, which carries its own); the rest is a stream of packets, decoded back to back as
// a connection would, until one is incomplete or fails.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <variant>
#include <vector>

#include "gateway/mqtt/protocol/codec.h"

namespace {

using namespace wharf::mqtt;

[[noreturn]] void fail(const char* what, const std::vector<std::uint8_t>& wire) {
  std::fprintf(stderr, "fuzz_mqtt_decode: %s; re-encoded bytes:", what);
  for (const std::uint8_t b : wire) std::fprintf(stderr, " %02X", b);
  std::fprintf(stderr, "\n");
  std::abort();
}

void check_round_trip(const packet& p, protocol_version version) {
  std::vector<std::uint8_t> wire;
  encode(p, version, wire);
  if (wire.size() != encoded_size(p, version)) fail("encoded_size differs from encode", wire);
  fixed_header header;
  if (parse_fixed_header(wire, header) != header_status::complete ||
      header.size + std::size_t{header.remaining_length} != wire.size()) {
    fail("re-encoded fixed header does not parse", wire);
  }
  const decode_result again =
      decode(header, std::span(wire).subspan(header.size), version);
  if (!again.ok()) fail(again.detail.c_str(), wire);
  if (!(again.value == p)) fail("decode(encode(p)) != p", wire);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr protocol_version versions[] = {protocol_version::v3_1, protocol_version::v3_1_1,
                                           protocol_version::v5};
  const protocol_version version = versions[data[0] % 3];
  std::span<const std::uint8_t> input(data + 1, size - 1);
  while (!input.empty()) {
    fixed_header header;
    if (parse_fixed_header(input, header) != header_status::complete) break;
    if (input.size() - header.size < header.remaining_length) break;
    const auto body = input.subspan(header.size, header.remaining_length);
    const decode_result result = decode(header, body, version);
    if (!result.ok()) break;
    const auto* connect = std::get_if<connect_packet>(&result.value);
    check_round_trip(result.value, connect != nullptr ? connect->version : version);
    input = input.subspan(header.size + header.remaining_length);
  }
  return 0;
}
