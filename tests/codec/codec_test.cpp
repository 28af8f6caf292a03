// Parser and ReplyRenderer: one line in, one Request out; replies that are valid JSON once the
// writer closes them.
#include <utility>

#include <rapidjson/document.h>

#include <gtest/gtest.h>

#include "gossip_kv/codec.h"
#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "replication/content_sync_codec.h"
#include "replication/peer_wire.h"

namespace gossip_kv {
namespace {

struct Parsed {
  ParseStatus status;
  Request req;
  std::string problem;
};

Parsed parse(std::string_view line) {
  Parser p;
  Parsed out;
  out.status = p.parse(line, &out.req, &out.problem);
  return out;
}

std::string line_with(std::string_view body) {
  return std::string(R"({"src":"c1","dest":"n1","body":{)") + std::string(body) + "}}";
}

TEST(Parser, EnvelopeAndBodyFields) {
  Parsed p = parse(line_with(R"("type":"write","msg_id":7,"key":"k","value":[1, {"a" : 2}])"));
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.req.src, "c1");
  EXPECT_EQ(p.req.dest, "n1");
  EXPECT_EQ(p.req.type, MsgType::kWrite);
  EXPECT_EQ(p.req.msg_id, "7");
  EXPECT_EQ(p.req.key, "sk");
  EXPECT_EQ(p.req.value, R"([1, {"a" : 2}])") << "values are kept as their exact JSON text";
  EXPECT_EQ(p.req.error, ErrorCode::kNone);
}

TEST(Parser, ValuesKeepTheirBytes) {
  for (std::string v : std::vector<std::string>{"1e2", "-0.0", "1.50", R"("\u00e9\n")", "null", "true", "[ ]",
                        R"({ "b" : [ 1 , "x" ] , "a" : null })", "123456789012345678901234"}) {
    Parsed p = parse(line_with(R"("type":"write","msg_id":1,"key":1,"value": )" + v + " "));
    ASSERT_EQ(p.status, ParseStatus::kOk) << v;
    EXPECT_EQ(p.req.value, v);
  }
}

// A value with a raw CR between its tokens is refused with error 12 (it would come back as
// written and split the reply line for a reader that breaks lines at CR); a tab is kept.
TEST(Parser, AValueWithARawCarriageReturnIsMalformed) {
  Parsed p = parse(line_with("\"type\":\"write\",\"msg_id\":1,\"key\":1,\"value\":[1,\r2]"));
  EXPECT_EQ(p.req.error, ErrorCode::kMalformedRequest);
  Parsed c = parse(line_with("\"type\":\"cas\",\"msg_id\":1,\"key\":1,\"from\":[1,\r2],\"to\":1"));
  EXPECT_EQ(c.req.error, ErrorCode::kMalformedRequest);
  Parsed m = parse(line_with("\"type\":\"kv_merge\",\"msg_id\":1,\"entries\":{\"a\":{\"value\":[1,\r2],\"ts\":1}}"));
  EXPECT_EQ(m.req.error, ErrorCode::kMalformedRequest);
  Parsed t = parse(line_with("\"type\":\"write\",\"msg_id\":1,\"key\":1,\"value\":[1,\t2]"));
  EXPECT_EQ(t.req.error, ErrorCode::kNone);
  EXPECT_EQ(t.req.value, "[1,\t2]");
}

TEST(Parser, IntegerAndStringKeysDiffer) {
  Parsed a = parse(line_with(R"("type":"read","msg_id":1,"key":1)"));
  Parsed b = parse(line_with(R"("type":"read","msg_id":1,"key":"1")"));
  EXPECT_EQ(a.req.key, "i1");
  EXPECT_EQ(b.req.key, "s1");
  EXPECT_NE(a.req.key, b.req.key);
  Parsed neg = parse(line_with(R"("type":"read","msg_id":1,"key":-42)"));
  EXPECT_EQ(neg.req.key, "i-42");
}

TEST(Parser, BadKeysAreMalformed) {
  std::string too_long = "\"" + std::string(limits::kKeyBytesMax + 1, 'x') + "\"";
  for (std::string k : std::vector<std::string>{"1.5", "true", "null", "[1]", "{}",
                                                "18446744073709551615", too_long}) {
    Parsed p = parse(line_with(R"("type":"read","msg_id":1,"key":)" + k));
    ASSERT_EQ(p.status, ParseStatus::kOk) << k;
    EXPECT_EQ(p.req.error, ErrorCode::kMalformedRequest) << k;
  }
  std::string longest(limits::kKeyBytesMax, 'x');
  Parsed ok = parse(line_with(R"("type":"read","msg_id":1,"key":")" + longest + "\""));
  EXPECT_EQ(ok.req.error, ErrorCode::kNone);
}

TEST(Parser, MissingFieldsAreMalformed) {
  for (std::string body : std::vector<std::string>{R"("type":"write","msg_id":1,"key":1)",
                           R"("type":"write","msg_id":1,"value":1)",
                           R"("type":"cas","msg_id":1,"key":1,"from":1)",
                           R"("type":"kv_merge","msg_id":1,"entries":[])",
                           R"("type":"init","msg_id":1,"node_ids":["n1"])",
                           R"("type":"init","msg_id":1,"node_id":"n1","node_ids":["n1",2])",
                           R"("type":5,"msg_id":1)", R"("msg_id":1)"}) {
    Parsed p = parse(line_with(body));
    ASSERT_EQ(p.status, ParseStatus::kOk) << body;
    EXPECT_EQ(p.req.error, ErrorCode::kMalformedRequest) << body;
    EXPECT_FALSE(p.req.error_text.empty()) << body;
  }
}

TEST(Parser, ValueOverTheLimitIsMalformed) {
  std::string big = "\"" + std::string(limits::kValueBytesMax, 'v') + "\"";
  Parsed p = parse(line_with(R"("type":"write","msg_id":1,"key":1,"value":)" + big));
  EXPECT_EQ(p.req.error, ErrorCode::kMalformedRequest);
  std::string fits = "\"" + std::string(limits::kValueBytesMax - 2, 'v') + "\"";
  Parsed q = parse(line_with(R"("type":"write","msg_id":1,"key":1,"value":)" + fits));
  EXPECT_EQ(q.req.error, ErrorCode::kNone);
}

TEST(Parser, UnanswerableLines) {
  for (std::string line : {std::string("not json"), std::string(R"({"src":"c1","body":{}})"),
                           std::string(R"({"src":"c1","body":[1]})"),
                           std::string(R"({"dest":"n1","body":{"type":"read","msg_id":1}})"),
                           std::string(R"({"src":"c1","body":{"type":"read","msg_id":1.5}})"),
                           std::string(R"({"src":"c1","body":{"type":"read","msg_id":1}} x)"),
                           std::string(R"({"src":"c1","body":{"type":"read","msg_id":1})")}) {
    Parsed p = parse(line);
    EXPECT_EQ(p.status, ParseStatus::kUnanswerable) << line;
    EXPECT_FALSE(p.problem.empty()) << line;
  }
}

TEST(Parser, Classification) {
  struct Case {
    const char* src;
    const char* type;
    MsgType want;
  };
  for (const Case& c : {Case{"c1", "init", MsgType::kInit}, Case{"c1", "kv_read", MsgType::kKvRead},
                        Case{"c1", "bench_stats", MsgType::kBenchStats},
                        Case{"c1", "bench_figures", MsgType::kBenchFigures},
                        Case{"c1", "read_ok", MsgType::kReply}, Case{"n2", "error", MsgType::kReply},
                        Case{"n2", "gossip", MsgType::kPeer}, Case{"c1", "gossip", MsgType::kUnknown}}) {
    std::string line = std::string(R"({"src":")") + c.src + R"(","dest":"n1","body":{"type":")" +
                       c.type + R"(","msg_id":3,"x":{"y":1}}})";
    Parsed p = parse(line);
    ASSERT_EQ(p.status, ParseStatus::kOk) << line;
    EXPECT_EQ(p.req.type, c.want) << line;
    if (c.want == MsgType::kPeer) {
      EXPECT_EQ(p.req.value, std::string(R"({"type":")") + c.type + R"(","msg_id":3,"x":{"y":1}})")
          << "a peer message hands its whole body on";
    }
  }
}

TEST(Parser, MergeEntries) {
  Parsed p = parse(line_with(
      R"("type":"kv_merge","msg_id":1,"entries":{"a":{"value":{"z":[1]},"ts":1.25},)"
      R"("b":{"ts":2,"value":"s","node":"n2","key":9}})"));
  ASSERT_EQ(p.req.error, ErrorCode::kNone) << p.req.error_text;
  ASSERT_EQ(p.req.entry_count, 2u);
  EXPECT_EQ(p.req.entries[0].key, "sa");
  EXPECT_EQ(p.req.entries[0].value, R"({"z":[1]})");
  EXPECT_EQ(p.req.entries[0].version.ts_us, 1250000);
  EXPECT_EQ(p.req.entries[1].key, "i9") << "an entry's key member names integer keys";
  EXPECT_EQ(p.req.entries[1].node, "n2");
  for (std::string bad : std::vector<std::string>{R"({"a":1})", R"({"a":{"value":1}})", R"({"a":{"ts":1}})",
                          R"({"a":{"value":1,"ts":"x"}})", R"({"a":{"value":1,"ts":1,"key":1.5}})",
                          R"({"a":{"value":1,"ts":1,"node":5}})"}) {
    Parsed q = parse(line_with(R"("type":"kv_merge","msg_id":1,"entries":)" + bad));
    EXPECT_EQ(q.req.error, ErrorCode::kMalformedRequest) << bad;
  }
}

TEST(Parser, ReusedRequestKeepsNoStaleFields) {
  Parser parser;
  Request req;
  std::string problem;
  parser.parse(line_with(R"("type":"write","msg_id":1,"key":"k","value":1)"), &req, &problem);
  ASSERT_EQ(req.key, "sk");
  parser.parse(line_with(R"("type":"read","msg_id":2)"), &req, &problem);
  EXPECT_EQ(req.type, MsgType::kRead);
  EXPECT_EQ(req.error, ErrorCode::kMalformedRequest) << "the earlier key must not leak in";
  parser.parse(R"({"src":"c2","body":{"type":"bench_report","msg_id":3}})", &req, &problem);
  EXPECT_EQ(req.dest, "");
  EXPECT_EQ(req.error, ErrorCode::kNone);
}

// ---- The fast path (flat_line.cpp) against the general parse -----------------------------------

// Every field a request carries after a parse, for comparing two parses of one line.
std::string fields(ParseStatus status, const Request& r) {
  std::string out = status == ParseStatus::kOk ? "ok" : "unanswerable";
  if (status != ParseStatus::kOk) return out;
  out += "|src=" + r.src + "|dest=" + r.dest + "|type=" + std::to_string(static_cast<int>(r.type)) +
         "|type_name=" + r.type_name + "|msg_id=" + r.msg_id +
         "|error=" + std::to_string(static_cast<int>(r.error));
  if (r.error != ErrorCode::kNone) return out;
  if (r.type == MsgType::kPeer) return out + "|body=" + r.value;  // its key means nothing
  out += "|key=" + r.key;
  if (r.type == MsgType::kWrite || r.type == MsgType::kBenchWrite || r.type == MsgType::kCas) {
    out += "|value=" + r.value;
  }
  if (r.type == MsgType::kCas) out += "|from=" + r.from;
  return out;
}

// The fast path's verdict on line, and whether it agrees with the general parse.
bool takes_fast_path(std::string_view line) {
  Parser general;
  Request slow;
  Request fast;
  std::string problem;
  ParseStatus status = general.parse_general(line, &slow, &problem);
  if (!parse_flat_line(line, &fast)) return false;
  EXPECT_EQ(fields(ParseStatus::kOk, fast), fields(status, slow)) << line;
  if (fast.type == MsgType::kPeer) {
    EXPECT_EQ(fast.value, slow.value) << line;
  }
  return true;
}

std::string peer_line(std::string_view body) {
  return std::string(R"({"src":"n2","dest":"n1","body":)") + std::string(body) + "}";
}

TEST(FlatLine, TakesThePlainFormsAndDecodesThemAsTheGeneralParse) {
  for (std::string line : std::vector<std::string>{
           line_with(R"("type":"write","msg_id":7,"key":"k","value":1)"),
           line_with(R"("type":"write","msg_id":7,"key":-12,"value":"v é 日本")"),
           line_with(R"("type":"bench_write","msg_id":0,"key":123456789012345678,"value":"v1")"),
           line_with(R"("type":"kv_read","msg_id":-3,"key":"")"),
           line_with(R"("type":"read","msg_id":1,"key":0,"value":[1])") /* a nested member of a read */,
           line_with(R"("type":"cas","msg_id":1,"key":1,"from":null,"to":true)"),
           line_with(R"("type":"write","msg_id":1,"key":1,"value":false,"extra":"x","n":5)"),
           // Maelstrom's "id", members in any order, a reply's fields it does not read.
           R"({"id":12,"body":{"key":3,"msg_id":4,"type":"kv_read"},"dest":"n1","src":"c9"})",
           // Whitespace between tokens, as Python's json.dumps writes.
           R"( { "src": "c1", "dest": "n1", "body": { "type": "write", "msg_id": 1, "key": 2, "value": 3 } } )",
           R"({"src":"c1","body":{"type":"read","msg_id":1,"key":2}})" /* no dest */}) {
    // The nested value makes the read's line go the general way: it is in the list to show the
    // fast path declining a container anywhere.
    bool nested = line.find('[') != std::string::npos;
    EXPECT_EQ(takes_fast_path(line), !nested) << line;
  }
}

// Member names in the usual order are taken by comparing whole words (16 bytes at a time, or
// byte by byte near the end of the line); a name that only resembles the expected one, or has
// whitespace before its colon, goes through the general scan, with the same result.
TEST(FlatLine, NamesInTheUsualOrderOrCloseToItDecodeAsTheGeneralParse) {
  for (std::string line : std::vector<std::string>{
           R"({"src":"c1","dest":"n1","body":{"type":"kv_read","msg_id":1,"key":5}})" /* short tail */,
           R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":1,"key":5,"value":7}})",
           R"({"src":"c1","dest":"n1","body":{"typ":"x","type":"kv_read","msg_id":1,"key":5}})",
           R"({"src":"c1","dest":"n1","body":{"type":"kv_read","msg_idx":2,"msg_id":1,"key":5}})",
           R"({"src":"c1","dest":"n1","body":{"type":"kv_read","msg_id":1,"ke":0,"key":5}})",
           R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":1,"key":5,"valu":0,"value":1}})",
           R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":1,"key":5,"values":0,"value":1}})",
           R"({"src" :"c1","dest":"n1","body":{"type" :"kv_read","msg_id" :1,"key" :5}})",
           R"({"src":"c1","dst":"x","dest":"n1","body":{"type":"kv_read","msg_id":1,"key":5}})",
           R"({"sr":"c","src":"c1","dest":"n1","body":{"type":"kv_read","msg_id":1,"key":5}})",
           R"({"src":"c1","dest":"n1","bod":1,"body":{"type":"kv_read","msg_id":1,"key":5}})"}) {
    EXPECT_TRUE(takes_fast_path(line)) << line;
  }
  // In the usual slots, but not what the fast path decodes: still refused.
  for (std::string line : std::vector<std::string>{
           R"({"src":"c1","dest":"n1","body":{"type":"kv_read","msg_id":1,"key":5,"key":6}})",
           R"({"src":"c1","src":"c2","body":{"type":"kv_read","msg_id":1,"key":5}})",
           R"({"src":"c1","dest":"n1","body":{"type":"kv_read","msg_id":1,"key":5})",
           R"({"src":"c1","dest":"n1","body":{"type":"kv_read","msg_id":1,"key")",
           R"({"src":"c1","dest":"n1","body":{"type":"kv_read","msg_id":1,"key)"}) {
    EXPECT_FALSE(takes_fast_path(line)) << line;
  }
}

TEST(FlatLine, LeavesEverythingElseToTheGeneralParse) {
  for (std::string line : std::vector<std::string>{
           line_with(R"("type":"write","msg_id":1,"key":"k","value":"a\"b")") /* an escape */,
           line_with(R"("type":"write","msg_id":1,"key":"\u006b","value":1)"),
           R"({"src":"c\u0031","dest":"n1","body":{"type":"read","msg_id":1,"key":1}})",
           line_with(R"("type":"write","msg_id":1,"key":"k","value":{"a":1})"),
           line_with(R"("type":"write","msg_id":1,"key":"k","value":1.5)"),
           line_with(R"("type":"write","msg_id":1,"key":"k","value":1e2)"),
           line_with(R"("type":"write","msg_id":1,"key":"k","value":-0)"),
           line_with(R"("type":"write","msg_id":1,"key":"k","value":1234567890123456789)"),
           line_with(R"("type":"write","msg_id":1,"key":"k","value":01)"),
           line_with(R"("type":"write","msg_id":1.0,"key":"k","value":1)"),
           line_with(R"("type":"write","msg_id":1,"key":"k")") /* no value */,
           line_with(R"("type":"write","msg_id":1,"key":true,"value":1)"),
           line_with(R"("type":"read","msg_id":1)") /* no key */,
           line_with(R"("type":"read","msg_id":1,"key":1,"key":2)") /* a duplicate */,
           line_with(R"("type":"read","msg_id":1,"msg_id":2,"key":1)"),
           R"({"src":"c1","src":"c2","body":{"type":"read","msg_id":1,"key":1}})",
           line_with(R"("type":"cas","msg_id":1,"key":1,"from":1)") /* no to */,
           line_with(R"("type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]})"),
           line_with(R"("type":"bench_report","msg_id":1)"),
           line_with(R"("type":"read_ok","msg_id":1,"key":1)"),
           line_with(R"("type":"write","msg_id":1,"key":1,"value":tru)"),
           line_with(R"("type":"write","msg_id":1,"key":1,"value":truex)"),
           line_with(R"("type":"write","msg_id":1,"key":1,"value":1,})"),
           std::string(R"({"src":"","dest":"n1","body":{"type":"read","msg_id":1,"key":1}})"),
           std::string(R"({"src":"c1","dest":"n1","body":{"type":"read","msg_id":1,"key":1}} x)"),
           std::string(R"({"src":"c1","dest":"n1","body":{"type":"read","msg_id":1,"key":1})"),
           std::string(R"({"src":"c1","dest":"n1","body":{"type":"read","msg_id":1,"key":1}})") +
               std::string(1, '\0') + "}",
           std::string(R"({"src":"c1","dest":"n1","body":{"type":"read","msg_id":1,"key":")") +
               std::string(1, '\x01') + R"("}})",
           line_with(R"("type":"write","msg_id":1,"key":")" + std::string(limits::kKeyBytesMax + 1, 'k') +
                     R"(","value":1)"),
           line_with(R"("type":"write","msg_id":1,"key":1,"value":")" +
                     std::string(limits::kValueBytesMax, 'v') + R"(")"),
           std::string(R"({"src":")") + std::string(limits::kIdBytesMax + 1, 'c') +
               R"(","body":{"type":"read","msg_id":1,"key":1}})"}) {
    EXPECT_FALSE(takes_fast_path(line)) << line;
  }
}

TEST(FlatLine, DelimitsAPeersBodyAndHandsItOnWhole) {
  std::string deep_ok = std::string(limits::kValueDepthMax, '[') + std::string(limits::kValueDepthMax, ']');
  for (std::string body : std::vector<std::string>{
           R"({"type":"gossip","from":1,"to":2,"e":[["sk",17,2,"\"v\""],["i5",18,2,"{\"a\":[1]}"]],"a":[[0,1,2]],"msg_id":9})",
           R"({"type":"sync_tree","b":[[1,2,3]],"x":{"y":[{},[]],"z":"a\"}b"},"n":1.5e3,"msg_id":0})",
           R"( { "type" : "digest" , "wm" : [ 1 , 2 ] , "msg_id" : 4 } )",
           R"({"type":"ack","deep":)" + deep_ok + R"(,"msg_id":1})"}) {
    EXPECT_TRUE(takes_fast_path(peer_line(body))) << body;
    Request fast;
    ASSERT_TRUE(parse_flat_line(peer_line(body), &fast));
    EXPECT_EQ(fast.type, MsgType::kPeer);
    EXPECT_EQ(fast.value, body.substr(body.find('{'), body.rfind('}') - body.find('{') + 1));
  }
  std::string too_deep = "[" + deep_ok + "]";
  for (std::string line : std::vector<std::string>{
           peer_line(R"({"type":"gossip","k":"\udc00","msg_id":1})") /* a \u escape */,
           peer_line(R"({"type":"gossip","deep":)" + too_deep + R"(,"msg_id":1})"),
           peer_line(R"({"type":"gossip","from":1,"from":2,"msg_id":1})"),
           peer_line(R"({"type":"gossip","entries":[],"msg_id":1})"),
           peer_line(R"({"type":"gossip","e":[1],"msg_id":1.5})"),
           peer_line(R"({"type":"read_ok","e":[1],"msg_id":1})") /* a reply */,
           peer_line(R"({"type":"kv_merge","e":[1],"msg_id":1})"),
           R"({"src":"c1","dest":"n1","body":{"type":"gossip","e":[1],"msg_id":1}})" /* a client */,
           line_with(R"("type":"write","msg_id":1,"key":1,"value":1,"x":[1])") /* not a peer */}) {
    EXPECT_FALSE(takes_fast_path(line)) << line;
  }
}

// A peer's body that is not JSON is delimited and handed on: the engine's decoder refuses it, as
// the general parse refuses the line.
TEST(FlatLine, APeersBodyThatIsNotJsonIsLeftToItsDecoder) {
  // Each is refused for its syntax, found where the decoder has to parse: in a member it reads,
  // and (content sync skips members it does not know, parsing them) in one it does not.
  for (std::string body : {std::string(R"({"type":"gossip","e":[["sk",1,2,"1"],,],"msg_id":1})"),
                           std::string(R"({"type":"gossip","a":[tru],"msg_id":1})"),
                           std::string(R"({"type":"sync_entries","x":[1,,2],"e":[],"msg_id":1})"),
                           std::string(R"({"type":"sync_tree","x":{"a"},"msg_id":1})")}) {
    std::string line = peer_line(body);
    Request fast;
    ASSERT_TRUE(parse_flat_line(line, &fast)) << line;
    EXPECT_EQ(fast.value, body);
    Parser general;
    Request slow;
    std::string problem;
    EXPECT_EQ(general.parse_general(line, &slow, &problem), ParseStatus::kUnanswerable) << line;
    // As wire.cpp decodes a peer's body: the engine's decoder, then content sync's for a type
    // the first does not know.
    PeerDecoder decoder;
    PeerMessage m;
    PeerDecodeResult r = decoder.decode(fast.value, PeerBounds::for_cluster(3, 0, INT64_MAX), &m);
    if (r.status == PeerStatus::kUnknownType) {
      sync::Message sm;
      EXPECT_FALSE(sync::decode(fast.value, sync::DecodeLimits{3, INT64_MAX}, &sm).empty()) << body;
    } else {
      EXPECT_EQ(r.status, PeerStatus::kNotJson) << body;
    }
  }
}

TEST(FlatLine, ALineWithANulOrInvalidUtf8IsUnanswerable) {
  std::string nul = std::string(R"({"src":"c1","dest":"n1","body":{"type":"read","msg_id":1,"key":1}})") +
                    std::string(1, '\0') + "garbage";
  Parsed p = parse(nul);
  EXPECT_EQ(p.status, ParseStatus::kUnanswerable) << "what follows a NUL byte is not JSON";
  Parsed q = parse(line_with("\"type\":\"write\",\"msg_id\":1,\"key\":1,\"value\":\"\xc3\x28\""));
  EXPECT_EQ(q.status, ParseStatus::kUnanswerable);
  EXPECT_EQ(q.problem, "invalid UTF-8");
  Parsed r = parse(line_with("\"type\":\"write\",\"msg_id\":1,\"key\":1,\"value\":\"\xed\xa0\x80\""));
  EXPECT_EQ(r.status, ParseStatus::kUnanswerable) << "an encoded surrogate is not UTF-8";
}

// ---- Replies --------------------------------------------------------------------------------------

Request from_c1(std::string msg_id) {
  Request req;
  req.src = "c1";
  req.msg_id = std::move(msg_id);
  return req;
}

// The text of ts in a write_ok that r renders; the line must be valid JSON.
std::string render_ts(ReplyRenderer& r, std::int64_t ts_us) {
  static const Request req = from_c1("1");
  rapidjson::StringBuffer buf;
  r.ts_member(r.begin(&buf, "n1", req, "write_ok"), ts_us);
  std::string text(buf.GetString(), buf.GetSize());
  rapidjson::Document d;
  d.Parse((text + "}}").c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return text.substr(text.find("\"ts\":") + 5);
}

TEST(Renderer, TimestampsAreTheExactDecimalOfTheirMicroseconds) {
  ReplyRenderer r;
  EXPECT_EQ(render_ts(r, 1764659400123456), "1764659400.123456");
  EXPECT_EQ(render_ts(r, 1764659400500000), "1764659400.5");
  EXPECT_EQ(render_ts(r, 1764659400000000), "1764659400.0");
  EXPECT_EQ(render_ts(r, 1764659400000001), "1764659400.000001");
  EXPECT_EQ(render_ts(r, 1764659400010200), "1764659400.0102");
  EXPECT_EQ(render_ts(r, 0), "0.0");
  EXPECT_EQ(render_ts(r, 999999), "0.999999");
  // One renderer across changes of second, either way: the cached seconds follow.
  EXPECT_EQ(render_ts(r, 1999999), "1.999999");
  EXPECT_EQ(render_ts(r, 2000001), "2.000001");
  EXPECT_EQ(render_ts(r, 1000000), "1.0");
}

// Before init the reader answers from the request's dest, which may be missing: a reply from
// an empty id is still a whole line.
TEST(Renderer, AReplyFromAnEmptyIdIsWhole) {
  Request req = from_c1("201");
  ReplyRenderer r;
  rapidjson::StringBuffer buf;
  for (std::string_view self : {"", "n1", ""}) {
    r.error(&buf, self, req, ErrorCode::kTemporarilyUnavailable, "node not initialized");
    std::string line;
    close_line(line, std::string_view(buf.GetString(), buf.GetSize()), 1);
    rapidjson::Document d;
    d.Parse(line.c_str());
    ASSERT_FALSE(d.HasParseError()) << line;
    EXPECT_EQ(std::string_view(d["src"].GetString()), self);
    EXPECT_STREQ(d["dest"].GetString(), "c1");
  }
}

TEST(Renderer, IdsThatNeedEscapingAreEscaped) {
  Request req;
  req.src = "c\"1\\\x01";
  req.msg_id = "5";
  ReplyRenderer r;
  rapidjson::StringBuffer buf;
  ReplyRenderer::Writer& w = r.begin(&buf, "n\"1", req, "kv_read_ok");
  ReplyRenderer::key_member(w, "sk\"ey");
  w.raw_member("value", "[1]");
  w.string_member("text", "tab\there");
  std::string line;
  close_line(line, std::string_view(buf.GetString(), buf.GetSize()), 3);
  rapidjson::Document d;
  d.Parse(line.c_str());
  ASSERT_FALSE(d.HasParseError()) << line;
  EXPECT_STREQ(d["src"].GetString(), "n\"1");
  EXPECT_STREQ(d["dest"].GetString(), "c\"1\\\x01");
  EXPECT_STREQ(d["body"]["key"].GetString(), "k\"ey");
  EXPECT_STREQ(d["body"]["text"].GetString(), "tab\there");
  EXPECT_EQ(d["body"]["in_reply_to"].GetInt(), 5);
  EXPECT_EQ(d["body"]["msg_id"].GetInt(), 3);
  EXPECT_EQ(d["body"]["value"][0].GetInt(), 1);
}

TEST(Renderer, ClosedLinesAreJsonWithMsgId) {
  Parsed p = parse(line_with(R"("type":"kv_read","msg_id":9223372036854775807,"key":12)"));
  ReplyRenderer r;
  rapidjson::StringBuffer buf;
  r.read_ok(&buf, "n1", p.req, true, p.req.key, R"({"x" : [1,2]})", 1500000);
  std::string line;
  close_line(line, std::string_view(buf.GetString(), buf.GetSize()), 41);
  ASSERT_EQ(line.back(), '\n');
  rapidjson::Document d;
  d.Parse(line.c_str());
  ASSERT_FALSE(d.HasParseError()) << line;
  EXPECT_STREQ(d["src"].GetString(), "n1");
  EXPECT_STREQ(d["dest"].GetString(), "c1");
  const auto& b = d["body"];
  EXPECT_EQ(b["msg_id"].GetUint64(), 41u);
  EXPECT_EQ(b["in_reply_to"].GetInt64(), 9223372036854775807);
  EXPECT_EQ(b["key"].GetInt(), 12);
  EXPECT_NE(line.find(R"({"x" : [1,2]})"), std::string::npos) << "raw values go out verbatim";
}

TEST(Renderer, PeerMessageWrapsABody) {
  rapidjson::StringBuffer buf;
  ReplyRenderer::peer_message(&buf, "n1", "n2", R"({"type":"gossip","d":[1]})");
  std::string line;
  close_line(line, std::string_view(buf.GetString(), buf.GetSize()), 0);
  rapidjson::Document d;
  d.Parse(line.c_str());
  ASSERT_FALSE(d.HasParseError()) << line;
  EXPECT_STREQ(d["dest"].GetString(), "n2");
  EXPECT_STREQ(d["body"]["type"].GetString(), "gossip");
  EXPECT_EQ(d["body"]["msg_id"].GetInt(), 0);
}

}  // namespace
}  // namespace gossip_kv
