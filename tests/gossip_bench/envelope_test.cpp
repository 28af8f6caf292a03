// The router's envelope scanner.
#include <gtest/gtest.h>

#include "envelope.h"

namespace gossip_bench {
namespace {

TEST(Envelope, FindsDestWhereverItIs) {
  EXPECT_EQ(top_level_string(R"({"src":"n1","dest":"n2","body":{}})", "dest"), "n2");
  EXPECT_EQ(top_level_string(R"({ "body" : {"dest":"x","a":[1,{"b":"}"}]}, "src": "n1", "dest" : "c7" })", "dest"), "c7")
      << "nested members and braces inside strings are skipped";
  EXPECT_EQ(top_level_string(R"({"src":"n\"1","dest":"n3"})", "dest"), "n3") << "escaped quotes";
  EXPECT_EQ(top_level_string(R"({"n":12.5e3,"t":true,"u":null,"dest":"n4"})", "dest"), "n4");
}

TEST(Envelope, MalformedOrMissingGivesNothing) {
  for (const char* line : {"", "[]", "{", R"({"dest":5})", R"({"src":"n1"})", R"({"dest":"n1)", "not json",
                           R"({"body":{"x":"unterminated},"dest":"n2"})"}) {
    EXPECT_FALSE(top_level_string(line, "dest").has_value()) << line;
  }
}

TEST(Envelope, FindsTheBodyType) {
  EXPECT_EQ(body_type(R"({"src":"n1","dest":"n2","body":{"e":[{"type":"x"}],"type":"gossip"}})"), "gossip")
      << "a nested `type` is not the body's";
  EXPECT_EQ(body_type(R"({"type":"top","body":{"type":"ack"}})"), "ack");
  for (const char* line : {R"({"src":"n1","dest":"n2"})", R"({"body":{"type":3}})", R"({"body":"gossip"})",
                           R"({"body":{"x":{"type":"y"}}})"}) {
    EXPECT_FALSE(body_type(line).has_value()) << line;
  }
}

TEST(Envelope, NodeNumbers) {
  EXPECT_EQ(node_number("n1"), 1);
  EXPECT_EQ(node_number("n25"), 25);
  for (const char* id : {"c1", "n", "n0", "nx", "n1x", "", "n-1"}) EXPECT_EQ(node_number(id), 0) << id;
}

}  // namespace
}  // namespace gossip_bench
