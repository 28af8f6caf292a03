// Hostile-client input (issue 10): deep nesting, invalid UTF-8 smuggled through \u escapes,
// duplicate members, versions far ahead of the wall clock. Unit tests drive the Parser
// directly; end-to-end tests drive the built node (tests/node_process.h) and check that it
// survives, answers as README's "Limits and errors" says, and never emits invalid UTF-8.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "gossip_kv/codec.h"
#include "gossip_kv/limits.h"
#include "node_process.h"
#include "runtime/shared.h"

namespace gossip_kv {
namespace {

using test::RunResult;

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. Written
// here independently of the node's own check, so that the tests do not grade it with itself.
bool strict_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                  : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
    for (std::size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

std::string line(std::string_view src, std::string_view body) {
  return R"({"src":")" + std::string(src) + R"(","dest":"n1","body":)" + std::string(body) + "}";
}

struct Parsed {
  ParseStatus status;
  Request req;
  std::string problem;
};

Parsed parse(std::string_view text) {
  Parser p;
  Parsed out;
  out.status = p.parse(text, &out.req, &out.problem);
  return out;
}

// `depth` nested arrays around 0: "[[...[0]...]]".
std::string nested(std::size_t depth) {
  return std::string(depth, '[') + "0" + std::string(depth, ']');
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string seconds_text(double s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", s);
  return buf;
}

// ---- Parser: nesting --------------------------------------------------------------------------

TEST(Hardening, HundredThousandOpenBracketsAreUnanswerableNotACrash) {
  Parsed p = parse(std::string(100000, '['));
  EXPECT_EQ(p.status, ParseStatus::kUnanswerable);
  Parsed q = parse(line("c1", R"({"type":"write","msg_id":1,"key":"k","value":)" +
                                   std::string(100000, '[')));
  EXPECT_EQ(q.status, ParseStatus::kUnanswerable);
}

TEST(Hardening, ValueNestedDeeperThanTheLimitIs12) {
  // About 64 KiB of nesting: a value under the byte limit that a recursive parser dies on.
  std::size_t deep = limits::kValueBytesMax / 2 - 1;
  for (std::string_view type : {"write", "cas"}) {
    std::string body = std::string(R"({"type":")") + std::string(type) +
                       R"(","msg_id":1,"key":"k","value":)" + nested(deep) + R"(,"from":1,"to":)" +
                       nested(deep) + "}";
    Parsed p = parse(line("c1", body));
    ASSERT_EQ(p.status, ParseStatus::kOk) << p.problem;
    EXPECT_EQ(p.req.error, ErrorCode::kMalformedRequest) << type;
  }
  Parsed at = parse(line("c1", R"({"type":"write","msg_id":1,"key":"k","value":)" +
                                    nested(limits::kValueDepthMax) + "}"));
  ASSERT_EQ(at.status, ParseStatus::kOk);
  EXPECT_EQ(at.req.error, ErrorCode::kNone) << at.req.error_text;
  Parsed over = parse(line("c1", R"({"type":"write","msg_id":1,"key":"k","value":)" +
                                      nested(limits::kValueDepthMax + 1) + "}"));
  ASSERT_EQ(over.status, ParseStatus::kOk);
  EXPECT_EQ(over.req.error, ErrorCode::kMalformedRequest);
  // Ignored members and kv_merge values count too: no part of a line nests deeper.
  Parsed ignored = parse(line("c1", R"({"type":"read","msg_id":1,"key":"k","x":)" +
                                         nested(deep) + "}"));
  ASSERT_EQ(ignored.status, ParseStatus::kOk);
  EXPECT_EQ(ignored.req.error, ErrorCode::kMalformedRequest);
  Parsed merge = parse(line("c1", R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"ts":1,"value":)" +
                                       nested(deep) + "}}}"));
  ASSERT_EQ(merge.status, ParseStatus::kOk);
  EXPECT_EQ(merge.req.error, ErrorCode::kMalformedRequest);
}

// ---- Parser: UTF-8 ------------------------------------------------------------------------------

TEST(Hardening, LoneSurrogatesAreRejectedWherever) {
  const std::string lone = R"(\udc00)";
  const std::vector<std::string> bodies = {
      R"({"type":"write","msg_id":1,"key":")" + lone + R"(","value":1})",
      R"({"type":"write","msg_id":1,"key":"k","value":")" + lone + R"("})",
      R"({"type":"write","msg_id":1,"key":"k","value":{")" + lone + R"(":1}})",
      R"({"type":"cas","msg_id":1,"key":"k","from":")" + lone + R"(","to":1})",
      R"({"type":"wr)" + lone + R"(","msg_id":1})",
      R"({"type":"init","msg_id":1,"node_id":"n)" + lone + R"(","node_ids":["n1"]})",
      R"({"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n)" + lone + R"("]})",
      R"({"type":"kv_merge","msg_id":1,"entries":{")" + lone + R"(":{"value":1,"ts":1}}})",
      R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"ts":1,"node":"n)" + lone +
          R"("}}})",
      R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"ts":1,"key":")" + lone +
          R"("}}})",
      R"({"type":"read","msg_id":1,"key":"k","ignored":")" + lone + R"("})",
      R"({"type":"read","msg_id":1,"key":"k",")" + lone + R"(":0})",
  };
  for (const std::string& body : bodies) {
    Parsed p = parse(line("c1", body));
    ASSERT_EQ(p.status, ParseStatus::kOk) << body << ": " << p.problem;
    EXPECT_EQ(p.req.error, ErrorCode::kMalformedRequest) << body;
  }
  // A high surrogate followed by a lone low one, and an unpaired high one.
  for (std::string_view key : {R"(\ud800\ud800)", R"(\udbff)", R"(a\udfffb)"}) {
    Parsed p = parse(line("c1", R"({"type":"read","msg_id":1,"key":")" + std::string(key) +
                                    R"("})"));
    EXPECT_TRUE(p.status == ParseStatus::kUnanswerable ||
                p.req.error == ErrorCode::kMalformedRequest) << key;
  }
  // A proper pair is fine.
  Parsed pair = parse(line("c1", R"({"type":"read","msg_id":1,"key":"\ud83d\ude00"})"));
  ASSERT_EQ(pair.status, ParseStatus::kOk);
  EXPECT_EQ(pair.req.error, ErrorCode::kNone);
  // In src nothing can be answered; in dest the error reply must not echo it.
  EXPECT_EQ(parse(line("c" + lone, R"({"type":"read","msg_id":1,"key":"k"})")).status,
            ParseStatus::kUnanswerable);
  Parsed dest = parse(R"({"src":"c1","dest":"n)" + lone +
                      R"(","body":{"type":"read","msg_id":1,"key":"k"}})");
  ASSERT_EQ(dest.status, ParseStatus::kOk);
  EXPECT_EQ(dest.req.error, ErrorCode::kMalformedRequest);
  EXPECT_TRUE(strict_utf8(dest.req.dest));
}

// ---- Parser: duplicate members -----------------------------------------------------------------

TEST(Hardening, DuplicateMembersAre12OrUnanswerable) {
  // The issue's hijack: a second body must not turn a read into a write.
  Parsed hijack = parse(
      R"({"src":"c1","dest":"n1","body":{"type":"read","msg_id":55,"key":"k"},)"
      R"("body":{"type":"write","key":"k","value":"HIJACK"}})");
  ASSERT_EQ(hijack.status, ParseStatus::kOk) << hijack.problem;
  EXPECT_EQ(hijack.req.error, ErrorCode::kMalformedRequest);
  EXPECT_EQ(hijack.req.msg_id, "55");

  const std::vector<std::string> twelve = {
      R"({"src":"c1","dest":"n1","dest":"n2","body":{"type":"read","msg_id":1,"key":"k"}})",
      line("c1", R"({"type":"read","type":"write","msg_id":1,"key":"k","value":1})"),
      line("c1", R"({"type":"write","msg_id":1,"key":"k","key":"j","value":1})"),
      line("c1", R"({"type":"write","msg_id":1,"key":"k","value":1,"value":2})"),
      line("c1", R"({"type":"cas","msg_id":1,"key":"k","from":1,"from":2,"to":3})"),
      line("c1", R"({"type":"cas","msg_id":1,"key":"k","from":1,"to":2,"to":3})"),
      line("c1", R"({"type":"init","msg_id":1,"node_id":"n1","node_id":"n2","node_ids":["n1","n2"]})"),
      line("c1", R"({"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"],"node_ids":["n2"]})"),
      line("c1", R"({"type":"kv_merge","msg_id":1,"entries":{},"entries":{"k":{"value":1,"ts":1}}})"),
      line("c1", R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"value":2,"ts":1}}})"),
      line("c1", R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"ts":1,"ts":2}}})"),
      line("c1", R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"ts":1,"node":"a","node":"b"}}})"),
      line("c1", R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"ts":1,"key":1,"key":2}}})"),
  };
  for (const std::string& l : twelve) {
    Parsed p = parse(l);
    ASSERT_EQ(p.status, ParseStatus::kOk) << l << ": " << p.problem;
    EXPECT_EQ(p.req.error, ErrorCode::kMalformedRequest) << l;
  }
  // Whom or what to answer is ambiguous: nothing is answered.
  EXPECT_EQ(parse(R"({"src":"c1","src":"c2","dest":"n1","body":{"type":"read","msg_id":1,"key":"k"}})")
                .status,
            ParseStatus::kUnanswerable);
  EXPECT_EQ(parse(line("c1", R"({"type":"read","msg_id":1,"msg_id":2,"key":"k"})")).status,
            ParseStatus::kUnanswerable);
  // Members the node does not read may repeat, and so may members inside a value. A kv_merge
  // may carry several versions of one key: each entry is merged on its own.
  Parsed versions = parse(line("c1", R"({"type":"kv_merge","msg_id":1,"entries":)"
                                         R"({"k":{"value":1,"ts":1},"k":{"value":2,"ts":2}}})"));
  ASSERT_EQ(versions.status, ParseStatus::kOk);
  EXPECT_EQ(versions.req.error, ErrorCode::kNone) << versions.req.error_text;
  EXPECT_EQ(versions.req.entry_count, 2u);
  Parsed ok = parse(line("c1", R"({"type":"write","msg_id":1,"key":"k","x":1,"x":2,)"
                                   R"("value":{"a":1,"a":2}})"));
  ASSERT_EQ(ok.status, ParseStatus::kOk);
  EXPECT_EQ(ok.req.error, ErrorCode::kNone) << ok.req.error_text;
}

// ---- Parser: versions ahead of the clock ------------------------------------------------------

TEST(Hardening, MergeEntryFarAheadOfTheClockIs12) {
  double window_s = static_cast<double>(limits::kVersionAheadMaxUs) / 1e6;
  for (double ts : {1e11, now_seconds() + 2 * window_s}) {
    Parsed p = parse(line("c1", R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"ts":)" +
                                    seconds_text(ts) + "}}}"));
    ASSERT_EQ(p.status, ParseStatus::kOk);
    EXPECT_EQ(p.req.error, ErrorCode::kMalformedRequest) << seconds_text(ts);
  }
  Parsed near = parse(line("c1", R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"ts":)" +
                                      seconds_text(now_seconds() + window_s / 2) + "}}}"));
  ASSERT_EQ(near.status, ParseStatus::kOk);
  EXPECT_EQ(near.req.error, ErrorCode::kNone) << near.req.error_text;
}

// Found by the merge_entries fuzz target: RapidJSON's full-precision strtod turns "0e55" into
// 7.9e28 (GCC build) or 1.5e113 (clang build), so an entry with ts 0e55 was rejected by one
// build and could have been stored with a garbage version by another.
TEST(Hardening, MergeTsIsDecodedExactlyFromItsText) {
  struct Case {
    const char* ts;
    std::int64_t us;
  };
  for (Case c : {Case{"0e55", 0}, Case{"0E+262", 0}, Case{"0.0e-400", 0}, Case{"1.5e0", 1'500'000},
                 Case{"1700000000.123456", 1'700'000'000'123'456}, Case{"1700000000", 1'700'000'000'000'000}}) {
    Parsed p = parse(line("c1", std::string(R"({"type":"kv_merge","msg_id":1,"entries":{"k":{"value":1,"ts":)") +
                                    c.ts + "}}}"));
    ASSERT_EQ(p.status, ParseStatus::kOk) << c.ts;
    ASSERT_EQ(p.req.error, ErrorCode::kNone) << c.ts << ": " << p.req.error_text;
    ASSERT_EQ(p.req.entry_count, 1u);
    EXPECT_EQ(p.req.entries[0].version.ts_us, c.us) << c.ts;
  }
}

// ---- Memory: buffers given back above a size ---------------------------------------------------

TEST(HardeningMemory, SlotGivesBackBuffersAboveTheRetainedBound) {
  rt::Slot slot;
  Parser parser;
  std::string problem;
  std::string big = line("c1", R"({"type":"write","msg_id":1,"key":"k","value":")" +
                                   std::string(limits::kValueBytesMax - 2, 'v') + R"("})");
  ASSERT_EQ(parser.parse(big, &slot.req, &problem), ParseStatus::kOk);
  ASSERT_EQ(slot.req.error, ErrorCode::kNone);
  slot.charged_bytes = slot.req.capacity_bytes();  // as the reader charges it
  ReplyRenderer renderer;
  ReplyRenderer::Writer& w = renderer.begin(&slot.out, "n1", slot.req, "read_ok");
  w.Key("value");
  w.RawValue(slot.req.value.data(), slot.req.value.size(), rapidjson::kStringType);
  std::size_t held = slot.capacity_bytes();
  EXPECT_GE(held, 2 * (limits::kValueBytesMax - 2)) << "the value and the reply that echoes it";
  EXPECT_EQ(slot.trim(), held);
  EXPECT_LE(slot.capacity_bytes(), limits::kSlotRetainedBytesMax);
  EXPECT_EQ(slot.req.capacity_bytes(), 0u);
  // The slot still works after giving everything back.
  ASSERT_EQ(parser.parse(line("c1", R"({"type":"read","msg_id":2,"key":"k"})"), &slot.req, &problem),
            ParseStatus::kOk);
  EXPECT_EQ(slot.req.key, "sk");
  slot.charged_bytes = slot.req.capacity_bytes();
  renderer.begin(&slot.out, "n1", slot.req, "read_ok");
  // Small requests keep their buffers: the steady path stays allocation-free.
  std::size_t small = slot.capacity_bytes();
  EXPECT_LE(small, limits::kSlotRetainedBytesMax);
  EXPECT_EQ(slot.trim(), 0u);
  EXPECT_EQ(slot.capacity_bytes(), small);
}

TEST(HardeningMemory, MergeAndInitVectorsAreCountedAndGivenBack) {
  Request req;
  Parser parser;
  std::string problem;
  std::string entries = "{";
  for (std::size_t i = 0; i < limits::kMergeEntriesMax; ++i) {
    entries += (i ? "," : "") + std::string(R"("k)") + std::to_string(i) + R"(":{"value":1,"ts":1})";
  }
  ASSERT_EQ(parser.parse(line("c1", R"({"type":"kv_merge","msg_id":1,"entries":)" + entries + "}}"),
                         &req, &problem),
            ParseStatus::kOk);
  ASSERT_EQ(req.entry_count, limits::kMergeEntriesMax) << req.error_text;
  EXPECT_GE(req.capacity_bytes(), limits::kMergeEntriesMax * sizeof(MergeEntry));
  req.release_buffers();
  EXPECT_EQ(req.capacity_bytes(), 0u);
  EXPECT_EQ(req.entry_count, 0u);
  std::string ids = "[";
  for (std::size_t i = 0; i < limits::kNodeIdsMax; ++i) {
    ids += (i ? "," : "") + std::string("\"n") + std::string(58, 'x') + std::to_string(i) + "\"";
  }
  ASSERT_EQ(parser.parse(line("c1", R"({"type":"init","msg_id":1,"node_id":"n1","node_ids":)" + ids + "]}"),
                         &req, &problem),
            ParseStatus::kOk);
  ASSERT_EQ(req.node_ids.size(), limits::kNodeIdsMax) << req.error_text;
  EXPECT_GE(req.capacity_bytes(), limits::kNodeIdsMax * 60);
  req.release_buffers();
  EXPECT_EQ(req.capacity_bytes(), 0u);
}

TEST(HardeningMemory, PeerBufferGivesBackAboveItsBound) {
  rt::PeerItem item;
  item.body.assign(1u << 20, 'x');
  item.src = "n2";
  item.trim();
  EXPECT_LE(item.body.capacity(), limits::kPeerBufferRetainedBytesMax);
  EXPECT_EQ(item.src, "n2") << "small buffers are kept";
  item.body.assign(100, 'y');
  std::size_t cap = item.body.capacity();
  item.trim();
  EXPECT_EQ(item.body.capacity(), cap);
}

// ---- The node binary --------------------------------------------------------------------------

RunResult run(const std::vector<std::string>& in) {
  RunResult res = test::run_node(in);
  EXPECT_TRUE(res.start_error.empty()) << res.start_error;
  EXPECT_EQ(res.status, 0) << "the node died or hung; stderr:\n" << res.stderr_text.substr(0, 2000);
  for (const std::string& l : res.lines) EXPECT_TRUE(strict_utf8(l)) << "invalid UTF-8 out: " << l;
  return res;
}

const std::string kInit = line("c0", R"({"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]})");

// The reply to msg_id `irt`, or "".
std::string reply_to(const RunResult& res, int irt) {
  std::string needle = "\"in_reply_to\":" + std::to_string(irt) + ",";
  for (const std::string& l : res.lines) {
    if (l.find(needle) != std::string::npos) return l;
  }
  return "";
}

bool is_error(const std::string& reply, int code) {
  return reply.find("\"type\":\"error\"") != std::string::npos &&
         reply.find("\"code\":" + std::to_string(code) + ",") != std::string::npos;
}

TEST(HardeningNode, DeepNestingDoesNotKillTheNode) {
  std::size_t deep = limits::kValueBytesMax / 2 - 1;
  RunResult res = run({
      kInit,
      std::string(100000, '['),
      line("c1", R"({"type":"write","msg_id":2,"key":"k","value":)" + nested(deep) + "}"),
      line("c1", R"({"type":"write","msg_id":3,"key":"k","value":)" + std::string(100000, '[') +
                     "}"),
      line("c1", R"({"type":"write","msg_id":4,"key":"k","value":"alive"})"),
      line("c1", R"({"type":"read","msg_id":5,"key":"k"})"),
  });
  EXPECT_TRUE(is_error(reply_to(res, 2), 12)) << reply_to(res, 2);
  EXPECT_EQ(reply_to(res, 3), "") << "invalid JSON is not answered";
  EXPECT_NE(reply_to(res, 5).find(R"("value":"alive")"), std::string::npos) << reply_to(res, 5);
}

TEST(HardeningNode, LoneSurrogateNeverReachesTheOutput) {
  RunResult res = run({
      kInit,
      line("c1", R"({"type":"write","msg_id":2,"key":"\udc00","value":1})"),
      line("c1", R"({"type":"kv_read","msg_id":3,"key":"\udc00"})"),
      line("c\\udc00", R"({"type":"write","msg_id":4,"key":"k","value":1})"),
      line("c1", R"({"type":"kv_merge","msg_id":5,"entries":{"\udc00":{"value":1,"ts":1}}})"),
      line("c1", R"({"type":"frob\udc00","msg_id":6})"),
  });
  EXPECT_TRUE(is_error(reply_to(res, 2), 12)) << reply_to(res, 2);
  EXPECT_TRUE(is_error(reply_to(res, 3), 12)) << reply_to(res, 3);
  EXPECT_EQ(reply_to(res, 4), "") << "a src that is not valid UTF-8 cannot be answered";
  EXPECT_TRUE(is_error(reply_to(res, 5), 12)) << reply_to(res, 5);
  EXPECT_TRUE(is_error(reply_to(res, 6), 12)) << reply_to(res, 6);
}

TEST(HardeningNode, DuplicateBodyCannotHijackARead) {
  RunResult res = run({
      kInit,
      R"({"src":"c1","dest":"n1","body":{"type":"read","msg_id":55,"key":"k"},)"
      R"("body":{"type":"write","key":"k","value":"HIJACK"}})",
      line("c1", R"({"type":"read","msg_id":56,"key":"k"})"),
  });
  EXPECT_TRUE(is_error(reply_to(res, 55), 12)) << reply_to(res, 55);
  EXPECT_TRUE(is_error(reply_to(res, 56), 20)) << "nothing was written: " << reply_to(res, 56);
}

TEST(HardeningNode, MergeFarAheadDoesNotDragTheClock) {
  double window_s = static_cast<double>(limits::kVersionAheadMaxUs) / 1e6;
  RunResult res = run({
      kInit,
      line("c1", R"({"type":"kv_merge","msg_id":2,"entries":{"k":{"value":1,"ts":1e11}}})"),
      line("c1", R"({"type":"write","msg_id":3,"key":"other","value":1})"),
  });
  EXPECT_TRUE(is_error(reply_to(res, 2), 12)) << reply_to(res, 2);
  std::string w = reply_to(res, 3);
  std::size_t at = w.find("\"ts\":");
  ASSERT_NE(at, std::string::npos) << w;
  double ts = std::stod(w.substr(at + 5));
  EXPECT_LT(ts, now_seconds() + window_s) << w;
}

}  // namespace
}  // namespace gossip_kv
