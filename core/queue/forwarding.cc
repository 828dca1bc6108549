#include "core/queue/forwarding.h"

#include "core/binary.h"
#include "core/queue/engine.h"

namespace wharf::core::queue {
namespace {

using core::binary::reader;
using core::binary::writer;

constexpr std::uint8_t format_version = 1;

bool valid_kind(std::uint8_t k) { return k >= 1 && k <= 3; }

}  // namespace

std::string encode_forwarded(const forwarded_request& r) {
  writer w;
  w.u8(format_version);
  w.varint(r.id);
  w.u8(static_cast<std::uint8_t>(r.kind));
  w.varint(r.bodies.size());
  for (std::size_t i = 0; i < r.bodies.size(); ++i) {
    w.bytes(i < r.origins.size() ? r.origins[i] : std::string());
    // The leader stamps the time: the command's own is not sent.
    w.bytes(encode_command(command{0, r.bodies[i]}));
  }
  w.varint(r.wait_ms ? *r.wait_ms + 1 : 0);
  return w.take();
}

std::optional<forwarded_request> decode_forwarded_request(std::string_view bytes) {
  reader r(bytes);
  if (r.u8() != format_version) return std::nullopt;
  forwarded_request out;
  out.id = r.varint();
  const std::uint8_t kind = r.u8();
  if (!valid_kind(kind)) return std::nullopt;
  out.kind = static_cast<forwarded_kind>(kind);
  const std::uint64_t n = r.varint();
  if (!r.ok() || n > bytes.size()) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    out.origins.push_back(r.bytes());
    auto cmd = decode_command(r.bytes_view());
    if (!r.ok() || !cmd) return std::nullopt;
    out.bodies.push_back(std::move(cmd->body));
  }
  const std::uint64_t wait = r.varint();
  if (wait > 0) out.wait_ms = wait - 1;
  if (!r.done()) return std::nullopt;
  if (out.kind == forwarded_kind::receive &&
      (out.bodies.size() != 1 || !std::holds_alternative<receive_messages>(out.bodies[0])))
    return std::nullopt;
  return out;
}

std::string encode_forwarded(const forwarded_answer& a) {
  writer w;
  w.u8(format_version);
  w.varint(a.id);
  w.u8(static_cast<std::uint8_t>(a.kind));
  w.varint(a.results.size());
  for (const auto& r : a.results) w.bytes(encode_result(r));
  w.varint(a.read_index);
  return w.take();
}

std::optional<forwarded_answer> decode_forwarded_answer(std::string_view bytes) {
  reader r(bytes);
  if (r.u8() != format_version) return std::nullopt;
  forwarded_answer out;
  out.id = r.varint();
  const std::uint8_t kind = r.u8();
  if (!valid_kind(kind)) return std::nullopt;
  out.kind = static_cast<forwarded_kind>(kind);
  const std::uint64_t n = r.varint();
  if (!r.ok() || n > bytes.size()) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto result = decode_result(r.bytes_view());
    if (!r.ok() || !result) return std::nullopt;
    out.results.push_back(std::move(*result));
  }
  out.read_index = r.varint();
  if (!r.done()) return std::nullopt;
  return out;
}

}  // namespace wharf::core::queue
