// JSON text of CMQ answers: the same bytes boost::json::serialize gives for the same value
// (the wire format did not change when answers stopped being built as trees).
#include "gateway/http/json_text.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace wharf::gateway::http {
namespace {

namespace json = boost::json;

TEST(json_text, every_byte_is_escaped_as_boost_json_escapes_it) {
  for (int byte = 0; byte < 256; ++byte) {
    const std::string s = std::string("a") + static_cast<char>(byte) + "b";
    std::string out;
    json_text::append_string(out, s);
    EXPECT_EQ(out, json::serialize(json::string_view(s))) << "byte " << byte;
  }
}

TEST(json_text, escapes_in_runs_and_at_the_ends) {
  const std::string s = "\"quoted\"\\ tab\there\nline\x01\x1f\x7f caf\xc3\xa9 </script>\r\f\b";
  std::string out;
  json_text::append_string(out, s);
  EXPECT_EQ(out, json::serialize(json::string_view(s)));
  out.clear();
  json_text::append_string(out, "");
  EXPECT_EQ(out, "\"\"");
}

TEST(json_text, an_object_written_member_by_member_equals_its_serialization) {
  std::string out;
  json_text::append_member(out, '{', "code", 6010);
  json_text::append_member(out, ',', "message", "some \"handles\"");
  json_text::append_member(out, ',', "min", std::numeric_limits<std::int64_t>::min());
  json_text::append_member(out, ',', "max", std::numeric_limits<std::uint64_t>::max());
  json_text::append_member(out, ',', "count", std::uint32_t{0});
  json_text::append_array(out, ',', "na\tme", std::vector<int>{}, [](std::string&, int) {});
  json_text::append_array(out, ',', "list", std::vector<std::string>{"a", "b\""},
                          [](std::string& o, const std::string& v) {
                            json_text::append_member(o, '{', "v", v);
                            o.push_back('}');
                          });
  out.push_back('}');
  const json::object expected{{"code", 6010},
                              {"message", "some \"handles\""},
                              {"min", std::numeric_limits<std::int64_t>::min()},
                              {"max", std::numeric_limits<std::uint64_t>::max()},
                              {"count", std::uint32_t{0}},
                              {"na\tme", json::array{}},
                              {"list", json::array{json::object{{"v", "a"}}, json::object{{"v", "b\""}}}}};
  EXPECT_EQ(out, json::serialize(expected));
}

}  // namespace
}  // namespace wharf::gateway::http
