// libFuzzer target over the CMQ request layer: parameters from a request (query string,
// form body, arrays) and the string to sign, on arbitrary input. Nothing may crash, and a
// parameter set that parses must give the same string to sign twice.
//
// Input layout: byte 0 selects the method and whether a Content-Type header is present;
// the rest is "target\nbody".
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/http/cmq_request.h"
#include "gateway/http/cmq_signature.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace wharf::gateway::http;
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto newline = rest.find('\n');
  const std::string_view target = rest.substr(0, newline);
  const std::string_view body = newline == std::string_view::npos ? std::string_view{} : rest.substr(newline + 1);
  const std::string_view method = (selector & 1) != 0 ? "POST" : "GET";
  const std::optional<std::string> content_type =
      (selector & 2) != 0 ? std::optional<std::string>("application/x-www-form-urlencoded") : std::nullopt;

  auto params = params_of_request(method, target, content_type, body, 256);
  if (!params) return 0;
  for (const std::string_view base : {"msgBody", "receiptHandle", "msgTag", "filterTag", "bindingKey"})
    (void)params->array(base, 16);
  (void)params->action_lower();
  const request_line line{method, "127.0.0.1:8080", split_target(target).path};
  const auto at = (selector & 4) != 0 ? at_values::leave_out : at_values::keep;
  if (string_to_sign(line, *params, at) != string_to_sign(line, *params, at)) {
    std::fprintf(stderr, "fuzz_cmq_request: string to sign is not deterministic\n");
    std::abort();
  }
  return 0;
}
