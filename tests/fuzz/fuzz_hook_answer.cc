// libFuzzer target over the HTTP authentication hook's answers (auth/http_hook.h): whatever an
// operator's service (or whatever sits at its address) answers with. The first input byte
// picks the status (200, 204, 401, 403 or 500), the rest is the body. An answer must be one
// of the outcomes with a reason when it is a failure, and an allowed client's rules must be
// few and valid topic filters.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/access_policy.h"
#include "auth/http_hook.h"
#include "auth/rules_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr unsigned statuses[] = {200, 204, 401, 403, 500};
  const unsigned status = statuses[data[0] % std::size(statuses)];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  using outcome = wharf::auth::hook_answer::outcome;
  const auto answer = wharf::auth::answer_of(status, body, (data[0] & 0x80) == 0, "no answer");
  if (answer.result == outcome::failed && answer.why.empty()) std::abort();
  if (answer.result != outcome::allow && !answer.rules.empty()) std::abort();
  if (answer.rules.size() > wharf::auth::max_client_rules + 1) std::abort();  // + the superuser's $SYS rule
  for (const auto& rule : answer.rules) {
    if (!wharf::auth::is_valid_rule_topic(rule.topic)) std::abort();
  }
  return 0;
}
