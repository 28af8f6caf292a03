// End-to-end conformance of the node binary with its wire contract (docs: PROTOCOL.md).
// Each test feeds input lines to a fresh node process, closes stdin, and compares the output
// lines as JSON values (numbers by value) with what the contract specifies. Where the contract
// says a value comes back "exactly as written", the raw text is compared byte for byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "node_process.h"

// GCC 12 reports a false -Wrestrict inside std::string's operator+ ("literal" + std::string&&)
// at -O2 and above (GCC bug 105651); this file builds its input lines that way.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

namespace gossip_kv::test {
namespace {

using namespace std::string_literals;

constexpr std::size_t kLineBytesMax = 1u << 20;
constexpr std::size_t kKeyBytesMax = 1024;
constexpr std::size_t kValueBytesMax = 64 * 1024;
constexpr std::size_t kMergeEntriesMax = 4096;

// ---- Building input lines -------------------------------------------------------------------

std::string msg(std::string_view src, std::string_view body) {
  return R"({"src":")"s + std::string(src) + R"(","dest":"n1","body":)" + std::string(body) + "}";
}

std::string init_line(std::string_view node_ids = R"(["n1"])", int msg_id = 1,
                      std::string_view src = "c0") {
  return msg(src, R"({"type":"init","msg_id":)" + std::to_string(msg_id) +
                      R"(,"node_id":"n1","node_ids":)" + std::string(node_ids) + "}");
}

// A string as a JSON string literal.
std::string q(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

std::string id(std::int64_t msg_id) { return std::to_string(msg_id); }

// Body builders; `key` and values are raw JSON text.
std::string write_b(std::int64_t m, std::string_view key, std::string_view value,
                    std::string_view type = "write") {
  return R"({"type":")"s + std::string(type) + R"(","msg_id":)" + id(m) + R"(,"key":)" +
         std::string(key) + R"(,"value":)" + std::string(value) + "}";
}
std::string read_b(std::int64_t m, std::string_view key, std::string_view type = "kv_read") {
  return R"({"type":")"s + std::string(type) + R"(","msg_id":)" + id(m) + R"(,"key":)" +
         std::string(key) + "}";
}
std::string cas_b(std::int64_t m, std::string_view key, std::string_view from,
                  std::string_view to) {
  return R"({"type":"cas","msg_id":)" + id(m) + R"(,"key":)" + std::string(key) +
         R"(,"from":)" + std::string(from) + R"(,"to":)" + std::string(to) + "}";
}
std::string merge_b(std::int64_t m, std::string_view entries) {
  return R"({"type":"kv_merge","msg_id":)" + id(m) + R"(,"entries":)" + std::string(entries) +
         "}";
}
// One kv_merge entry: "name": {"value": v, "ts": ts [, "node": node] [, "key": key]}.
std::string entry(std::string_view name, std::string_view value, std::string_view ts,
                  std::string_view node = "", std::string_view key = "") {
  std::string e = q(name) + R"(:{"value":)" + std::string(value) + R"(,"ts":)" + std::string(ts);
  if (!node.empty()) e += R"(,"node":)" + q(node);
  if (!key.empty()) e += R"(,"key":)" + std::string(key);
  return e + "}";
}
std::string simple_b(std::int64_t m, std::string_view type) {
  return R"({"type":")"s + std::string(type) + R"(","msg_id":)" + id(m) + "}";
}

// ---- Reading output -------------------------------------------------------------------------

// The node's replies, parsed and indexed by (dest, in_reply_to).
class Replies {
 public:
  explicit Replies(const std::vector<std::string>& lines) : lines_(lines) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
      auto doc = std::make_unique<rapidjson::Document>();
      if (!parse_json(lines[i], doc.get()) || !doc->IsObject() || !doc->HasMember("body") ||
          !(*doc)["body"].IsObject() || !doc->HasMember("dest") || !(*doc)["dest"].IsString()) {
        ADD_FAILURE() << "output line " << i << " is not a message: " << lines[i];
        docs_.push_back(std::move(doc));
        continue;
      }
      const auto& body = (*doc)["body"];
      if (body.HasMember("in_reply_to") && body["in_reply_to"].IsInt64()) {
        auto k = std::make_pair(std::string((*doc)["dest"].GetString()),
                                body["in_reply_to"].GetInt64());
        if (!index_.emplace(k, i).second) {
          ADD_FAILURE() << "two replies to " << k.first << " for msg_id " << k.second;
        }
      }
      docs_.push_back(std::move(doc));
    }
  }

  // Replies (lines with in_reply_to). A node whose init names peers also gossips to them: those
  // lines are output too, but no reply.
  [[nodiscard]] std::size_t size() const { return index_.size(); }
  // Every output line, replies and gossip alike.
  [[nodiscard]] std::size_t line_count() const { return lines_.size(); }
  [[nodiscard]] const rapidjson::Document& doc(std::size_t i) const { return *docs_[i]; }
  [[nodiscard]] const std::string& line(std::size_t i) const { return lines_[i]; }

  // Index of the reply to (dest, in_reply_to), or -1.
  [[nodiscard]] std::ptrdiff_t find(std::string_view dest, std::int64_t irt) const {
    auto it = index_.find({std::string(dest), irt});
    return it == index_.end() ? -1 : static_cast<std::ptrdiff_t>(it->second);
  }
  [[nodiscard]] const rapidjson::Value* body(std::string_view dest, std::int64_t irt) const {
    std::ptrdiff_t i = find(dest, irt);
    return i < 0 ? nullptr : &(*docs_[static_cast<std::size_t>(i)])["body"];
  }
  [[nodiscard]] std::string line_of(std::string_view dest, std::int64_t irt) const {
    std::ptrdiff_t i = find(dest, irt);
    return i < 0 ? std::string() : lines_[static_cast<std::size_t>(i)];
  }

 private:
  std::vector<std::string> lines_;
  std::vector<std::unique_ptr<rapidjson::Document>> docs_;
  std::map<std::pair<std::string, std::int64_t>, std::size_t> index_;
};

// A line cut to a readable length for failure messages.
std::string shorten(const std::string& line) {
  return line.size() <= 400 ? line : line.substr(0, 400) + "...(" + std::to_string(line.size()) + " bytes)";
}

std::string all_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += "  " + shorten(l) + "\n";
  return s;
}

// The reply to (dest, irt) has exactly `expected`'s members plus in_reply_to = irt and a msg_id.
testing::AssertionResult BodyIs(const Replies& r, std::string_view dest, std::int64_t irt,
                                std::string_view expected) {
  const rapidjson::Value* body = r.body(dest, irt);
  if (body == nullptr) {
    return testing::AssertionFailure() << "no reply to " << dest << " for msg_id " << irt;
  }
  rapidjson::Document want;
  if (!parse_json(expected, &want)) {
    return testing::AssertionFailure() << "bad expected JSON " << expected;
  }
  want.AddMember("in_reply_to", rapidjson::Value(irt), want.GetAllocator());
  rapidjson::Document got;
  got.CopyFrom(*body, got.GetAllocator());
  if (!got.HasMember("msg_id") || !got["msg_id"].IsUint64()) {
    return testing::AssertionFailure() << "reply without an integer msg_id: "
                                       << shorten(r.line_of(dest, irt));
  }
  got.RemoveMember("msg_id");
  if (!json_equal(got, want)) {
    return testing::AssertionFailure() << "reply to " << dest << "/" << irt << " is\n  "
                                       << shorten(r.line_of(dest, irt)) << "\nwant body "
                                       << shorten(std::string(expected))
                                       << " (+ in_reply_to, msg_id)";
  }
  return testing::AssertionSuccess();
}

// The reply to (dest, irt) is an error with `code` and exactly the error's members.
testing::AssertionResult IsError(const Replies& r, std::string_view dest, std::int64_t irt,
                                 int code) {
  const rapidjson::Value* body = r.body(dest, irt);
  if (body == nullptr) {
    return testing::AssertionFailure() << "no reply to " << dest << " for msg_id " << irt
                                       << " (want error " << code << ")";
  }
  bool ok = body->HasMember("type") && (*body)["type"].IsString() &&
            std::string_view((*body)["type"].GetString()) == "error" && body->HasMember("code") &&
            (*body)["code"].IsInt() && (*body)["code"].GetInt() == code &&
            body->HasMember("text") && (*body)["text"].IsString() &&
            body->HasMember("msg_id") && body->MemberCount() == 5;
  if (!ok) {
    return testing::AssertionFailure() << "want error " << code << " with members type, "
                                       << "in_reply_to, code, text, msg_id; got\n  "
                                       << shorten(r.line_of(dest, irt));
  }
  return testing::AssertionSuccess();
}

std::string raw_value_of(const Replies& r, std::string_view dest, std::int64_t irt,
                         std::string_view member = "value") {
  std::string line = r.line_of(dest, irt);
  auto raw = raw_body_member(line, member);
  return raw ? std::string(*raw) : "<no reply or no member>";
}

double number_of(const Replies& r, std::string_view dest, std::int64_t irt,
                 const char* member) {
  const rapidjson::Value* body = r.body(dest, irt);
  if (body == nullptr || !body->HasMember(member) || !(*body)[member].IsNumber()) return -1;
  return (*body)[member].GetDouble();
}

// Runs a node on `input`; the run must end by itself, in time, with exit status 0.
RunResult run_ok(const std::vector<std::string>& input, const std::vector<std::string>& args = {}) {
  RunResult res = run_node(input, args);
  EXPECT_TRUE(res.start_error.empty()) << res.start_error;
  EXPECT_FALSE(res.timed_out) << "the node did not finish; output so far:\n"
                              << all_lines(res.lines) << "stderr:\n" << res.stderr_text;
  EXPECT_EQ(res.status, 0) << "stderr:\n" << res.stderr_text;
  return res;
}

std::size_t count_lines(std::string_view text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Every output line's msg_id is its index: a per-node counter from 0 (no peers here).
void expect_msg_ids_count_from_zero(const Replies& r) {
  for (std::size_t i = 0; i < r.line_count(); ++i) {
    const auto& d = r.doc(i);
    if (!d.IsObject() || !d.HasMember("body")) continue;
    const auto& b = d["body"];
    ASSERT_TRUE(b.HasMember("msg_id") && b["msg_id"].IsUint64()) << r.line(i);
    EXPECT_EQ(b["msg_id"].GetUint64(), i) << r.line(i);
  }
}

// ---- The task's sample cases ----------------------------------------------------------------

TEST(SampleCase, BenchWriteReturnsWriteId) {
  RunResult res = run_ok({
      R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}})",
      R"({"src":"c1","dest":"n1","body":{"type":"bench_write","msg_id":2,"key":"x","value":"v1"}})",
  });
  std::vector<std::string> want = {
      R"({"src": "n1", "dest": "c0", "body": {"type": "init_ok", "in_reply_to": 1, "msg_id": 0}})",
      R"({"src": "n1", "dest": "c1", "body": {"type": "bench_write_ok", "write_id": 1, "in_reply_to": 2, "msg_id": 1}})",
  };
  ASSERT_EQ(res.lines.size(), want.size()) << all_lines(res.lines);
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(json_text_equal(res.lines[i], want[i])) << res.lines[i] << "\nwant\n" << want[i];
  }
}

TEST(SampleCase, BenchReportWithZeroWrites) {
  RunResult res = run_ok({
      R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}})",
      R"({"src":"c1","dest":"n1","body":{"type":"bench_report","msg_id":2}})",
  });
  std::vector<std::string> want = {
      R"({"src": "n1", "dest": "c0", "body": {"type": "init_ok", "in_reply_to": 1, "msg_id": 0}})",
      R"({"src": "n1", "dest": "c1", "body": {"type": "bench_report_ok", "total_writes": 0, "total_gossip_msgs": 0, "msgs_per_write": 0, "keys_stored": 0, "in_reply_to": 2, "msg_id": 1}})",
  };
  ASSERT_EQ(res.lines.size(), want.size()) << all_lines(res.lines);
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(json_text_equal(res.lines[i], want[i])) << res.lines[i] << "\nwant\n" << want[i];
  }
}

// bench_figures (gossip-bench's, docs/BENCHMARK.md) waits for init like the other bench
// requests; a one-node cluster measures no write one by one (each is everywhere at once).
TEST(Bench, FiguresNeedInitAndListNothingAlone) {
  RunResult res = run_ok({
      R"({"src":"c1","dest":"n1","body":{"type":"bench_figures","msg_id":1}})",
      R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":2,"node_id":"n1","node_ids":["n1"]}})",
      R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":3,"key":"x","value":1}})",
      R"({"src":"c1","dest":"n1","body":{"type":"bench_figures","msg_id":4}})",
  });
  ASSERT_EQ(res.lines.size(), 4u) << all_lines(res.lines);
  EXPECT_TRUE(json_text_equal(res.lines[0], R"({"src": "n1", "dest": "c1", "body": {"type": "error", "in_reply_to": 1, "code": 11, "text": "node not initialized: send init first", "msg_id": 0}})"))
      << res.lines[0];
  EXPECT_TRUE(json_text_equal(res.lines[3], R"({"src": "n1", "dest": "c1", "body": {"type": "bench_figures_ok", "figures": [], "figures_dropped": 0, "in_reply_to": 4, "msg_id": 3}})"))
      << res.lines[3];
}

// The comparator itself: 0 and 0.0 are the same figure, 0 and 1 are not, member order does not
// matter, and an extra member makes a difference.
TEST(Harness, JsonComparatorComparesNumbersByValue) {
  EXPECT_TRUE(json_text_equal(R"({"a":0,"b":[1,2.5]})", R"({"b":[1.0,2.5],"a":0.0})"));
  EXPECT_FALSE(json_text_equal(R"({"a":0})", R"({"a":1})"));
  EXPECT_FALSE(json_text_equal(R"({"a":0})", R"({"a":0,"b":1})"));
  EXPECT_FALSE(json_text_equal(R"({"a":"0"})", R"({"a":0})"));
  EXPECT_FALSE(json_text_equal(R"(9007199254740993)", R"(9007199254740992)"));
  EXPECT_EQ(raw_body_member(R"({"body":{"x":"a}\"","value" : [ 1 , {"b":"]"} ] ,"z":1}})",
                            "value").value_or(""),
            R"([ 1 , {"b":"]"} ])");
}

// ---- Envelope -------------------------------------------------------------------------------

// init_ok; every reply comes from the node's id, goes to the request's src, echoes its msg_id
// as in_reply_to; the node's msg_id counts from 0 over everything it writes.
TEST(Envelope, RepliesAddressedAndNumbered) {
  RunResult res = run_ok({
      init_line(R"(["n1","n2"])", 17, "c9"),
      msg("c1", write_b(1000, q("a"), "1")),
      msg("c2", read_b(0, q("a"))),
      msg("n2", read_b(5, q("a"), "read")),
      msg("c1", read_b(1001, q("missing"), "read")),
      msg("c3", simple_b(9223372036854775807, "bench_report")),
      msg("c2", R"({"type":"read","msg_id":9007199254740993,"key":"a"})"),
  });
  Replies r(res.lines);
  ASSERT_EQ(r.size(), 7u) << all_lines(res.lines);
  expect_msg_ids_count_from_zero(r);
  EXPECT_TRUE(BodyIs(r, "c9", 17, R"({"type":"init_ok"})"));
  for (std::size_t i = 0; i < r.size(); ++i) {
    ASSERT_TRUE(r.doc(i)["src"].IsString());
    EXPECT_STREQ(r.doc(i)["src"].GetString(), "n1") << r.line(i);
  }
  EXPECT_EQ(raw_value_of(r, "c2", 0, "type"), R"("kv_read_ok")");
  EXPECT_EQ(raw_value_of(r, "c2", 0, "value"), "1");
  EXPECT_TRUE(BodyIs(r, "n2", 5, R"({"type":"read_ok","value":1})"));
  EXPECT_TRUE(IsError(r, "c1", 1001, 20));
  // in_reply_to is the request's msg_id exactly, even past double precision.
  EXPECT_EQ(raw_value_of(r, "c2", 9007199254740993, "in_reply_to"), "9007199254740993");
  EXPECT_EQ(raw_value_of(r, "c3", 9223372036854775807, "in_reply_to"), "9223372036854775807");
}

TEST(Envelope, EmptyInputExitsCleanly) {
  RunResult res = run_ok({});
  EXPECT_TRUE(res.lines.empty()) << all_lines(res.lines);
}

// ---- Key-value semantics --------------------------------------------------------------------

bool is_float_text(std::string_view raw) {
  return raw.find_first_of(".eE") != std::string_view::npos;
}

TEST(Kv, WriteOkCarriesFloatTsAndKvReadReturnsIt) {
  double before = std::chrono::duration<double>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  RunResult res = run_ok({init_line(), msg("c1", write_b(2, q("x"), R"("hello")")),
                          msg("c1", read_b(3, q("x"))), msg("c1", read_b(4, q("x"), "read"))});
  double after = std::chrono::duration<double>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
  Replies r(res.lines);
  ASSERT_EQ(r.size(), 4u) << all_lines(res.lines);
  std::string ts_raw = raw_value_of(r, "c1", 2, "ts");
  EXPECT_TRUE(is_float_text(ts_raw)) << "write_ok ts must be a float: " << ts_raw;
  double ts = number_of(r, "c1", 2, "ts");
  // The version's timestamp is in seconds: near the wall clock (and not in ms or us).
  EXPECT_GT(ts, before - 5.0);
  EXPECT_LT(ts, after + 5.0);
  const rapidjson::Value* w = r.body("c1", 2);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->MemberCount(), 4u) << r.line_of("c1", 2);  // type, in_reply_to, ts, msg_id
  EXPECT_TRUE(BodyIs(r, "c1", 3,
                     R"({"type":"kv_read_ok","key":"x","value":"hello","ts":)" + ts_raw + "}"));
  EXPECT_TRUE(is_float_text(raw_value_of(r, "c1", 3, "ts")));
  EXPECT_TRUE(BodyIs(r, "c1", 4, R"({"type":"read_ok","value":"hello"})"));
}

TEST(Kv, OverwriteReturnsLatestValueWithNewerTs) {
  std::vector<std::string> in = {init_line()};
  for (int i = 0; i < 20; ++i) {
    in.push_back(msg("c1", write_b(100 + i, q("k"), std::to_string(i))));
    in.push_back(msg("c2", read_b(200 + i, q("k"))));
  }
  RunResult res = run_ok(in);
  Replies r(res.lines);
  ASSERT_EQ(r.size(), in.size()) << all_lines(res.lines);
  double prev = 0;
  for (int i = 0; i < 20; ++i) {
    double ts = number_of(r, "c1", 100 + i, "ts");
    EXPECT_GT(ts, prev) << "write " << i << " must get a newer version";
    prev = ts;
    EXPECT_TRUE(BodyIs(r, "c2", 200 + i,
                       R"({"type":"kv_read_ok","key":"k","value":)" + std::to_string(i) +
                           R"(,"ts":)" + raw_value_of(r, "c1", 100 + i, "ts") + "}"));
  }
}

TEST(Kv, MissingKeyIsError20) {
  RunResult res = run_ok({init_line(), msg("c1", read_b(2, q("nope"))),
                          msg("c1", read_b(3, q("nope"), "read")), msg("c1", read_b(4, "7")),
                          msg("c1", cas_b(5, q("nope"), "1", "2"))});
  Replies r(res.lines);
  for (int m = 2; m <= 5; ++m) {
    EXPECT_TRUE(IsError(r, "c1", m, 20));
    const rapidjson::Value* b = r.body("c1", m);
    if (b != nullptr && b->HasMember("text") && (*b)["text"].IsString()) {
      EXPECT_STREQ((*b)["text"].GetString(), "Key not found");
    }
  }
}

// The key 1 and the key "1" are different keys; integer keys come back as integers.
TEST(Kv, IntegerAndStringKeysAreDistinct) {
  RunResult res = run_ok({
      init_line(),
      msg("c1", write_b(2, "1", R"("int one")")),
      msg("c1", read_b(3, q("1"))),
      msg("c1", write_b(4, q("1"), R"("string one")")),
      msg("c1", read_b(5, "1")),
      msg("c1", read_b(6, q("1"))),
      msg("c1", write_b(7, "-42", "true")),
      msg("c1", read_b(8, "-42", "read")),
      msg("c1", read_b(9, q("-42"), "read")),
      msg("c1", write_b(10, "0", "0")),
      msg("c1", read_b(11, "0")),
      msg("c1", write_b(12, "9223372036854775807", "[]")),
      msg("c1", read_b(13, "9223372036854775807")),
      msg("c1", simple_b(14, "bench_report")),
  });
  Replies r(res.lines);
  EXPECT_TRUE(IsError(r, "c1", 3, 20)) << "the string key \"1\" must not see the integer key 1";
  EXPECT_EQ(raw_value_of(r, "c1", 5), R"("int one")");
  EXPECT_EQ(raw_value_of(r, "c1", 5, "key"), "1");
  EXPECT_EQ(raw_value_of(r, "c1", 6), R"("string one")");
  EXPECT_EQ(raw_value_of(r, "c1", 6, "key"), R"("1")");
  EXPECT_TRUE(BodyIs(r, "c1", 8, R"({"type":"read_ok","value":true})"));
  EXPECT_TRUE(IsError(r, "c1", 9, 20));
  EXPECT_EQ(raw_value_of(r, "c1", 11, "key"), "0");
  EXPECT_EQ(raw_value_of(r, "c1", 13, "key"), "9223372036854775807");
  EXPECT_TRUE(BodyIs(r, "c1", 14,
                     R"({"type":"bench_report_ok","total_writes":5,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":5})"));
}

// Values of every JSON type come back exactly as written: same bytes, whitespace and escapes
// included, through write, cas and kv_merge, and through read and kv_read.
TEST(Kv, ValuesComeBackByteForByte) {
  const std::vector<std::string> values = {
      "null", "true", "false", "0", "-0", "42", "-17", "9223372036854775807",
      "-9223372036854775808", "18446744073709551615", "123456789012345678901234567890",
      "3.14", "-2.5e-3", "1e2", "1E+2", "0.0", "1.0", "1.5E-300", "-0.0",
      R"("")", R"("plain")", R"("esc \"q\" \\ \/ \b\f\n\r\t")",
      R"("\u00e9\u4e2d\ud83d\ude00")", "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"",
      R"("key\":\"value\"}}")", "[]", "{}", R"([1,[2,[3,{"a":null}]]])",
      R"({"k":{"nested":[true,false]},"z":1.5})", "[ 1 ,\t2 ]", "{ \"a\" :\t{ } , \"b\":[ ] }",
      R"({"dup":1,"dup":2})", R"({"type":"write","msg_id":99,"key":"x"})",
      R"([{"value":{"value":"v"}}])"};
  std::vector<std::string> in = {init_line()};
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::string key = q("k" + std::to_string(i));
    std::int64_t base = static_cast<std::int64_t>(i) * 10;
    // Alternate layouts: value first, odd whitespace around the colon and the comma.
    if (i % 2 == 0) {
      in.push_back(msg("c1", write_b(base + 1, key, values[i])));
    } else {
      in.push_back(msg("c1", R"({"value" :	)" + values[i] + R"(  , "type":"write","msg_id":)" +
                                 id(base + 1) + R"(,"key":)" + key + "}"));
    }
    in.push_back(msg("c1", read_b(base + 2, key)));
    in.push_back(msg("c1", read_b(base + 3, key, "read")));
    // cas from the value to itself: the stored text then comes from `to`.
    in.push_back(msg("c1", cas_b(base + 4, key, values[i], values[i])));
    in.push_back(msg("c1", read_b(base + 5, key, "read")));
    // kv_merge into another key, value last in its entry and first in another.
    std::string mkey = "m" + std::to_string(i);
    in.push_back(msg("n2", merge_b(base + 6, "{" + entry(mkey, values[i], "1.5") + "," + q(mkey + "b") +
                                              R"(: { "ts" : 2.5 , "value" :  )" + values[i] + " }}")));
    in.push_back(msg("c1", read_b(base + 7, q(mkey))));
    in.push_back(msg("c1", read_b(base + 8, q(mkey + "b"), "read")));
  }
  RunResult res = run_ok(in);
  Replies r(res.lines);
  ASSERT_EQ(r.size(), in.size()) << all_lines(res.lines);
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::int64_t base = static_cast<std::int64_t>(i) * 10;
    SCOPED_TRACE("value " + values[i]);
    EXPECT_EQ(raw_value_of(r, "c1", base + 2), values[i]);
    EXPECT_EQ(raw_value_of(r, "c1", base + 3), values[i]);
    EXPECT_TRUE(BodyIs(r, "c1", base + 4, R"({"type":"cas_ok"})"));
    EXPECT_EQ(raw_value_of(r, "c1", base + 5), values[i]);
    EXPECT_TRUE(BodyIs(r, "n2", base + 6, R"({"type":"kv_merge_ok","updated":2})"));
    EXPECT_EQ(raw_value_of(r, "c1", base + 7), values[i]);
    EXPECT_EQ(raw_value_of(r, "c1", base + 8), values[i]);
  }
}

TEST(Kv, CasChecksFromAgainstTheStoredValue) {
  RunResult res = run_ok({
      init_line(),
      msg("c1", cas_b(2, q("c"), "1", "2")),                  // missing: 20
      msg("c1", write_b(3, q("c"), R"({"n":[1,2],"s":"x"})")),
      msg("c1", cas_b(4, q("c"), R"({"n":[1,3],"s":"x"})", "5")),  // mismatch: 22
      msg("c1", read_b(5, q("c"), "read")),                   // unchanged
      msg("c1", cas_b(6, q("c"), R"({ "n" : [ 1 , 2 ] , "s" : "x" })", R"( "to" )")),  // ok
      msg("c1", read_b(7, q("c"), "read")),
      msg("c1", cas_b(8, q("c"), R"("to")", R"("again")")),
      msg("c1", cas_b(9, q("c"), R"("to")", R"("late")")),   // value is "again" now: 22
      msg("c1", read_b(10, q("c"))),
      msg("c1", cas_b(11, q("c"), R"("Again")", R"("x")")),  // strings compare exactly: 22
      msg("c1", simple_b(12, "bench_report")),
      msg("c1", simple_b(13, "bench_stats")),
  });
  Replies r(res.lines);
  EXPECT_TRUE(IsError(r, "c1", 2, 20));
  EXPECT_TRUE(IsError(r, "c1", 4, 22));
  EXPECT_TRUE(BodyIs(r, "c1", 5, R"({"type":"read_ok","value":{"n":[1,2],"s":"x"}})"));
  EXPECT_TRUE(BodyIs(r, "c1", 6, R"({"type":"cas_ok"})"));
  EXPECT_EQ(raw_value_of(r, "c1", 7), R"("to")");
  EXPECT_TRUE(BodyIs(r, "c1", 8, R"({"type":"cas_ok"})"));
  EXPECT_TRUE(IsError(r, "c1", 9, 22));
  EXPECT_EQ(raw_value_of(r, "c1", 10), R"("again")");
  EXPECT_GT(number_of(r, "c1", 10, "ts"), number_of(r, "c1", 3, "ts"))
      << "a cas takes a new version";
  EXPECT_TRUE(IsError(r, "c1", 11, 22));
  // total_writes counts write and bench_write, the writes write_id numbers in arrival order
  // (README); the two successful cas are reported apart, failed ones nowhere.
  EXPECT_TRUE(BodyIs(r, "c1", 12,
                     R"({"type":"bench_report_ok","total_writes":1,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":1})"));
  EXPECT_EQ(number_of(r, "c1", 13, "cas_writes"), 2);
}

// ---- kv_merge -------------------------------------------------------------------------------

TEST(KvMerge, NewerWinsOlderIsIgnored) {
  RunResult res = run_ok({
      init_line(R"(["n1","n2","n3"])"),
      msg("n2", merge_b(2, "{" + entry("x", R"("world")", "1704067201.0") + "}")),
      msg("c1", read_b(3, q("x"))),
      msg("n2", merge_b(4, "{" + entry("x", R"("older")", "1704067200.5") + "}")),
      msg("c1", read_b(5, q("x"))),
      msg("n3", merge_b(6, "{" + entry("x", R"("same ts, no node")", "1704067201") + "}")),
      msg("n2", merge_b(7, "{" + entry("x", R"("newer")", "1704067201.25") + "," +
                               entry("y", "1", "5") + "," + entry("z", "2", "6") + "}")),
      msg("c1", read_b(8, q("x"))),
      msg("n2", merge_b(9, "{" + entry("y", "0", "4") + "," + entry("z", "3", "7") + "," +
                               entry("x", "0", "1") + "}")),
      msg("c1", read_b(10, q("y"), "read")),
      msg("c1", read_b(11, q("z"), "read")),
      msg("n2", merge_b(12, "{}")),
      msg("c1", simple_b(13, "bench_report")),
  });
  Replies r(res.lines);
  EXPECT_TRUE(BodyIs(r, "n2", 2, R"({"type":"kv_merge_ok","updated":1})"));
  EXPECT_TRUE(BodyIs(r, "c1", 3, R"({"type":"kv_read_ok","key":"x","value":"world","ts":1704067201.0})"));
  EXPECT_TRUE(BodyIs(r, "n2", 4, R"({"type":"kv_merge_ok","updated":0})"));
  EXPECT_TRUE(BodyIs(r, "c1", 5, R"({"type":"kv_read_ok","key":"x","value":"world","ts":1704067201.0})"));
  EXPECT_TRUE(BodyIs(r, "n3", 6, R"({"type":"kv_merge_ok","updated":0})"))
      << "an equal version (same ts, no node) is not newer";
  EXPECT_TRUE(BodyIs(r, "n2", 7, R"({"type":"kv_merge_ok","updated":3})"));
  EXPECT_TRUE(BodyIs(r, "c1", 8, R"({"type":"kv_read_ok","key":"x","value":"newer","ts":1704067201.25})"));
  EXPECT_TRUE(BodyIs(r, "n2", 9, R"({"type":"kv_merge_ok","updated":1})"));
  EXPECT_TRUE(BodyIs(r, "c1", 10, R"({"type":"read_ok","value":1})"));
  EXPECT_TRUE(BodyIs(r, "c1", 11, R"({"type":"read_ok","value":3})"));
  EXPECT_TRUE(BodyIs(r, "n2", 12, R"({"type":"kv_merge_ok","updated":0})"));
  // Merged entries are not client writes.
  EXPECT_TRUE(BodyIs(r, "c1", 13,
                     R"({"type":"bench_report_ok","total_writes":0,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":3})"));
}

// An entry's own "key" member names its key, which is how an integer key is merged.
TEST(KvMerge, EntryKeyMemberNamesIntegerKeys) {
  RunResult res = run_ok({
      init_line(),
      msg("n2", merge_b(2, "{" + entry("label", R"("five")", "10.5", "", "5") + "," +
                               entry("other", R"("str")", "10.5", "", q("s")) + "}")),
      msg("c1", read_b(3, "5")),
      msg("c1", read_b(4, q("5"))),
      msg("c1", read_b(5, q("label"))),
      msg("c1", read_b(6, q("s"))),
      msg("c1", read_b(7, q("other"))),
      msg("c1", write_b(8, "5", R"("local")")),
      msg("c1", read_b(9, "5", "read")),
  });
  Replies r(res.lines);
  EXPECT_TRUE(BodyIs(r, "n2", 2, R"({"type":"kv_merge_ok","updated":2})"));
  EXPECT_TRUE(BodyIs(r, "c1", 3, R"({"type":"kv_read_ok","key":5,"value":"five","ts":10.5})"));
  EXPECT_TRUE(IsError(r, "c1", 4, 20));
  EXPECT_TRUE(IsError(r, "c1", 5, 20));
  EXPECT_TRUE(BodyIs(r, "c1", 6, R"({"type":"kv_read_ok","key":"s","value":"str","ts":10.5})"));
  EXPECT_TRUE(IsError(r, "c1", 7, 20));
  EXPECT_TRUE(BodyIs(r, "c1", 9, R"({"type":"read_ok","value":"local"})"));
}

// Equal timestamps: the entry's "node" breaks the tie, by node id order, whatever the order
// the versions arrive in.
TEST(KvMerge, NodeBreaksTimestampTies) {
  for (bool reversed : {false, true}) {
    SCOPED_TRACE(reversed ? "arrival n3, n2, n1" : "arrival n2, n3, n1");
    std::vector<std::string> merges = {
        merge_b(2, "{" + entry("t", R"("from n2")", "100.0", "n2") + "}"),
        merge_b(3, "{" + entry("t", R"("from n3")", "100.0", "n3") + "}"),
    };
    if (reversed) std::swap(merges[0], merges[1]);
    RunResult res = run_ok({
        init_line(R"(["n3","n1","n2"])"),
        msg("n2", merges[0]),
        msg("n2", merges[1]),
        msg("n2", merge_b(4, "{" + entry("t", R"("from n1")", "100.0", "n1") + "}")),
        msg("n2", merge_b(5, "{" + entry("t", R"("no node")", "100.0") + "}")),
        msg("c1", read_b(6, q("t"))),
    });
    Replies r(res.lines);
    // n3 sorts after n2, so its version is newer: it is taken whether it comes first or second.
    EXPECT_TRUE(BodyIs(r, "n2", 2, R"({"type":"kv_merge_ok","updated":)"s +
                                       (reversed ? "0" : "1") + "}"));
    EXPECT_TRUE(BodyIs(r, "n2", 3, R"({"type":"kv_merge_ok","updated":1})"));
    EXPECT_TRUE(BodyIs(r, "n2", 4, R"({"type":"kv_merge_ok","updated":0})"));
    EXPECT_TRUE(BodyIs(r, "n2", 5, R"({"type":"kv_merge_ok","updated":0})"));
    EXPECT_TRUE(BodyIs(r, "c1", 6, R"({"type":"kv_read_ok","key":"t","value":"from n3","ts":100.0})"));
  }
}

// A write taken after a merged version from the future still supersedes it: it arrived later.
// (The future is at most limits::kVersionAheadMaxUs = 10 s away: further is error 12.)
TEST(KvMerge, LaterLocalWriteSupersedesFutureMergedVersion) {
  double future = std::chrono::duration<double>(
                      std::chrono::system_clock::now().time_since_epoch()).count() + 5.0;
  char ts[64];
  std::snprintf(ts, sizeof ts, "%.3f", future);
  RunResult res = run_ok({
      init_line(R"(["n1","n2"])"),
      msg("n2", merge_b(2, "{" + entry("f", R"("future")", ts, "n2") + "}")),
      msg("c1", write_b(3, q("f"), R"("now")")),
      msg("c1", read_b(4, q("f"))),
      msg("c1", write_b(5, q("g"), R"("other key")")),
  });
  Replies r(res.lines);
  EXPECT_TRUE(BodyIs(r, "n2", 2, R"({"type":"kv_merge_ok","updated":1})"));
  EXPECT_GT(number_of(r, "c1", 3, "ts"), future - 0.001);
  EXPECT_EQ(raw_value_of(r, "c1", 4), R"("now")");
  EXPECT_EQ(number_of(r, "c1", 4, "ts"), number_of(r, "c1", 3, "ts"));
}

// ---- Errors ---------------------------------------------------------------------------------

// Lines that cannot be answered (invalid JSON, no usable src, body or msg_id) get no reply and
// one stderr line each; the node carries on, and they use no msg_id.
TEST(Errors, UnanswerableLinesAreLoggedAndSkipped) {
  const std::vector<std::string> bad = {
      R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":3,"key":"u1","value":1})",
      "not json at all",
      R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":4,"key":"u2","value":1}} trailing)",
      "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"write\",\"msg_id\":5,\"key\":\"u3\",\"value\":\"\xff\"}}",
      R"([{"src":"c1"}])",
      R"({"src":"c1","dest":"n1","body":"write"})",
      R"({"src":"c1","dest":"n1","body":[{"type":"write","msg_id":6}]})",
      R"({"src":"c1","dest":"n1"})",
      R"({"src":"c1","dest":"n1","body":{"type":"write","key":"u4","value":1}})",
      R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":"7","key":"u5","value":1}})",
      R"({"dest":"n1","body":{"type":"write","msg_id":8,"key":"u6","value":1}})",
      R"({"src":5,"dest":"n1","body":{"type":"write","msg_id":9,"key":"u7","value":1}})",
      R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":10,"key":"u8","value":01}})",
      R"({"src":"c1","dest":"n1","body":{"type":"write","msg_id":11,"key":"u9","value":'x'}})",
  };
  std::vector<std::string> in = {init_line(), msg("c1", write_b(2, q("kept"), R"("safe")"))};
  in.insert(in.end(), bad.begin(), bad.end());
  in.push_back(msg("c1", read_b(100, q("kept"), "read")));
  for (int i = 1; i <= 9; ++i) in.push_back(msg("c1", read_b(100 + i, q("u" + id(i)), "read")));
  in.push_back(msg("c1", simple_b(200, "bench_report")));
  RunResult res = run_ok(in);
  Replies r(res.lines);
  ASSERT_EQ(r.size(), 13u) << "only init, the write, the reads and the report are answered:\n"
                           << all_lines(res.lines);
  expect_msg_ids_count_from_zero(r);
  EXPECT_TRUE(BodyIs(r, "c1", 100, R"({"type":"read_ok","value":"safe"})"));
  for (int i = 1; i <= 9; ++i) EXPECT_TRUE(IsError(r, "c1", 100 + i, 20)) << "u" << i;
  EXPECT_TRUE(BodyIs(r, "c1", 200,
                     R"({"type":"bench_report_ok","total_writes":1,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":1})"));
  EXPECT_EQ(count_lines(res.stderr_text), bad.size())
      << "one stderr line per unanswerable line; stderr:\n" << res.stderr_text;
}

// A field missing or of the wrong JSON type: error 12, and nothing is applied.
TEST(Errors, MissingOrMistypedFieldsAre12) {
  const std::vector<std::string> bodies = {
      R"({"type":"write","msg_id":%,"value":1})",
      R"({"type":"write","msg_id":%,"key":"a"})",
      R"({"type":"write","msg_id":%,"key":true,"value":1})",
      R"({"type":"write","msg_id":%,"key":1.5,"value":1})",
      R"({"type":"write","msg_id":%,"key":null,"value":1})",
      R"({"type":"write","msg_id":%,"key":["a"],"value":1})",
      R"({"type":"write","msg_id":%,"key":{"a":1},"value":1})",
      R"({"type":"bench_write","msg_id":%,"key":"a"})",
      R"({"type":"bench_write","msg_id":%,"value":"a"})",
      R"({"type":"read","msg_id":%})",
      R"({"type":"kv_read","msg_id":%,"key":false})",
      R"({"type":"cas","msg_id":%,"key":"a","to":2})",
      R"({"type":"cas","msg_id":%,"key":"a","from":1})",
      R"({"type":"cas","msg_id":%,"from":1,"to":2})",
      R"({"type":"kv_merge","msg_id":%})",
      R"({"type":"kv_merge","msg_id":%,"entries":[{"value":1,"ts":1}]})",
      R"({"type":"kv_merge","msg_id":%,"entries":"a"})",
      R"({"type":"kv_merge","msg_id":%,"entries":{"a":1}})",
      R"({"type":"kv_merge","msg_id":%,"entries":{"a":{"value":1}}})",
      R"({"type":"kv_merge","msg_id":%,"entries":{"a":{"ts":1}}})",
      R"({"type":"kv_merge","msg_id":%,"entries":{"a":{"value":1,"ts":"1"}}})",
      R"({"type":"kv_merge","msg_id":%,"entries":{"a":{"value":1,"ts":1,"key":2.5}}})",
      R"({"msg_id":%,"key":"a","value":1})",
      R"({"type":5,"msg_id":%,"key":"a","value":1})",
      R"({"type":["write"],"msg_id":%,"key":"a","value":1})",
  };
  std::vector<std::string> in = {init_line(), msg("c1", write_b(1, q("a"), R"("before")"))};
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    std::string b = bodies[i];
    b.replace(b.find('%'), 1, id(10 + static_cast<std::int64_t>(i)));
    in.push_back(msg("c1", b));
  }
  in.push_back(msg("c1", read_b(1000, q("a"), "read")));
  in.push_back(msg("c1", simple_b(1001, "bench_report")));
  RunResult res = run_ok(in);
  Replies r(res.lines);
  ASSERT_EQ(r.size(), in.size()) << all_lines(res.lines);
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    EXPECT_TRUE(IsError(r, "c1", 10 + static_cast<std::int64_t>(i), 12)) << bodies[i];
  }
  EXPECT_TRUE(BodyIs(r, "c1", 1000, R"({"type":"read_ok","value":"before"})"));
  EXPECT_TRUE(BodyIs(r, "c1", 1001,
                     R"({"type":"bench_report_ok","total_writes":1,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":1})"));
}

// An entry's "key" (a string or an integer) and "node" (a node id string) of another JSON type
// are mistyped fields too: error 12, and the entry is not merged under its member name.
TEST(Errors, MistypedMergeEntryMembersAre12) {
  const std::vector<std::string> entries = {
      R"({"a":{"value":1,"ts":1,"key":true}})",  R"({"a":{"value":1,"ts":1,"key":null}})",
      R"({"a":{"value":1,"ts":1,"key":[5]}})",   R"({"a":{"value":1,"ts":1,"key":{"k":5}}})",
      R"({"a":{"value":1,"ts":1,"node":5}})",    R"({"a":{"value":1,"ts":1,"node":null}})",
      R"({"a":{"value":1,"ts":1,"node":["n2"]}})",
  };
  std::vector<std::string> in = {init_line(R"(["n1","n2"])")};
  for (std::size_t i = 0; i < entries.size(); ++i) {
    in.push_back(msg("n2", merge_b(10 + static_cast<std::int64_t>(i), entries[i])));
  }
  in.push_back(msg("c1", read_b(100, q("a"), "read")));
  RunResult res = run_ok(in);
  Replies r(res.lines);
  ASSERT_EQ(r.size(), in.size()) << all_lines(res.lines);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_TRUE(IsError(r, "n2", 10 + static_cast<std::int64_t>(i), 12)) << entries[i];
  }
  EXPECT_TRUE(IsError(r, "c1", 100, 20)) << "a malformed entry must not be merged";
}

TEST(Errors, UnknownTypeIs10) {
  RunResult res = run_ok({init_line(), msg("c1", simple_b(2, "frobnicate")),
                          msg("c1", write_b(3, q("a"), "1", "Write")),
                          msg("c1", simple_b(4, "echo")), msg("c1", simple_b(5, "")),
                          msg("c1", read_b(6, q("a"), "read"))});
  Replies r(res.lines);
  ASSERT_EQ(r.size(), 6u) << all_lines(res.lines);
  for (int m = 2; m <= 5; ++m) EXPECT_TRUE(IsError(r, "c1", m, 10));
  EXPECT_TRUE(IsError(r, "c1", 6, 20)) << "\"Write\" is not write";
}

// Before init every request is answered with 11 and none takes effect; init then works.
TEST(Errors, RequestsBeforeInitAre11) {
  RunResult res = run_ok({
      msg("c1", write_b(1, q("a"), "1")),
      msg("c1", write_b(2, q("b"), "1", "bench_write")),
      msg("c1", read_b(3, q("a"), "read")),
      msg("c1", read_b(4, q("a"))),
      msg("c1", cas_b(5, q("a"), "1", "2")),
      msg("n2", merge_b(6, "{" + entry("m", "1", "1.0") + "}")),
      msg("c1", simple_b(7, "bench_report")),
      msg("c1", simple_b(8, "bench_stats")),
      msg("c0", R"({"type":"init","msg_id":9,"node_id":"n1"})"),  // malformed init: 12
      init_line(R"(["n1"])", 10),
      msg("c1", read_b(11, q("a"), "read")),
      msg("c1", read_b(12, q("m"), "read")),
      msg("c1", simple_b(13, "bench_report")),
      msg("c1", write_b(14, q("z"), "1", "bench_write")),
  });
  Replies r(res.lines);
  ASSERT_EQ(r.size(), 14u) << all_lines(res.lines);
  expect_msg_ids_count_from_zero(r);
  for (int m = 1; m <= 8; ++m) {
    std::string dest = m == 6 ? "n2" : "c1";
    EXPECT_TRUE(IsError(r, dest, m, 11));
    if (r.find(dest, m) >= 0) {
      EXPECT_STREQ(r.doc(static_cast<std::size_t>(r.find(dest, m)))["src"].GetString(), "n1")
          << "before init the reply comes from the request's dest";
    }
  }
  EXPECT_TRUE(IsError(r, "c0", 9, 12));
  EXPECT_TRUE(BodyIs(r, "c0", 10, R"({"type":"init_ok"})"));
  EXPECT_TRUE(IsError(r, "c1", 11, 20));
  EXPECT_TRUE(IsError(r, "c1", 12, 20));
  EXPECT_TRUE(BodyIs(r, "c1", 13,
                     R"({"type":"bench_report_ok","total_writes":0,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":0})"));
  EXPECT_TRUE(BodyIs(r, "c1", 14, R"({"type":"bench_write_ok","write_id":1})"))
      << "writes refused before init are not counted";
}

// A second init is refused with 22; the node keeps its identity and its data.
TEST(Errors, SecondInitIsRefusedAndChangesNothing) {
  RunResult res = run_ok({
      init_line(R"(["n1","n2"])"),
      msg("c1", write_b(2, q("a"), R"("kept")")),
      msg("c0", R"({"type":"init","msg_id":3,"node_id":"n7","node_ids":["n7","n8"]})"),
      msg("c0", R"({"type":"init","msg_id":4,"node_id":"n1","node_ids":["n1"]})"),
      msg("c1", read_b(5, q("a"), "read")),
      msg("c1", write_b(6, q("b"), "2")),
      msg("c1", simple_b(7, "bench_report")),
  });
  Replies r(res.lines);
  ASSERT_EQ(r.size(), 7u) << all_lines(res.lines);
  EXPECT_TRUE(IsError(r, "c0", 3, 22));
  EXPECT_TRUE(IsError(r, "c0", 4, 22));
  EXPECT_TRUE(BodyIs(r, "c1", 5, R"({"type":"read_ok","value":"kept"})"));
  for (std::size_t i = 0; i < r.size(); ++i) EXPECT_STREQ(r.doc(i)["src"].GetString(), "n1");
  EXPECT_TRUE(BodyIs(r, "c1", 7,
                     R"({"type":"bench_report_ok","total_writes":2,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":2})"));
}

// Keys up to 1024 bytes (UTF-8 bytes of the decoded string) and values up to 64 KiB of JSON
// text are served; one byte more is error 12 and stores nothing.
TEST(Errors, KeyAndValueLimits) {
  std::string key_max(kKeyBytesMax, 'k');
  std::string key_over(kKeyBytesMax + 1, 'k');
  std::string utf8_max;    // 512 two-byte characters
  std::string escaped_ok;  // 300 \u00e9: 1,800 bytes of text, 600 bytes of key
  for (int i = 0; i < 512; ++i) utf8_max += "\xc3\xa9";
  for (int i = 0; i < 300; ++i) escaped_ok += "\\u00e9";
  std::string utf8_over = utf8_max + "\xc3\xa9";
  std::string value_max = q(std::string(kValueBytesMax - 2, 'v'));  // quotes included
  std::string value_over = q(std::string(kValueBytesMax - 1, 'v'));
  std::string array_over = "[" + std::string(kValueBytesMax - 1, ' ') + "]";
  std::string entries_max = "{";
  std::string entries_over = "{";
  for (std::size_t i = 0; i < kMergeEntriesMax + 1; ++i) {
    std::string e = entry("e" + std::to_string(i), "1", "1.0");
    if (i < kMergeEntriesMax) entries_max += (i ? "," : "") + e;
    entries_over += (i ? "," : "") + e;
  }
  entries_max += "}";
  entries_over += "}";
  RunResult res = run_ok({
      init_line(),
      msg("c1", write_b(2, q(key_max), "1")),
      msg("c1", write_b(3, q(key_over), "1")),
      msg("c1", write_b(4, "\"" + utf8_max + "\"", "2")),
      msg("c1", write_b(5, "\"" + utf8_over + "\"", "2")),
      msg("c1", write_b(6, "\"" + escaped_ok + "\"", "3")),
      msg("c1", write_b(7, q("v"), value_max)),
      msg("c1", write_b(8, q("v2"), value_over)),
      msg("c1", write_b(9, q("v3"), array_over)),
      msg("c1", cas_b(10, q("v"), value_max, value_over)),
      msg("n2", merge_b(11, "{" + entry("mv", value_over, "1.0") + "}")),
      msg("n2", merge_b(12, "{" + entry(key_over, "1", "1.0") + "}")),
      msg("n2", merge_b(13, "{" + entry("x", "1", "1.0", "", q(key_over)) + "}")),
      msg("n2", merge_b(14, entries_over)),
      msg("c1", read_b(15, q(key_max), "read")),
      msg("c1", read_b(16, "\"" + utf8_max + "\"", "read")),
      msg("c1", read_b(17, "\"" + escaped_ok + "\"", "read")),
      msg("c1", read_b(18, q("v"), "read")),
      msg("c1", read_b(19, q("v2"), "read")),
      msg("c1", read_b(20, q("mv"), "read")),
      msg("c1", read_b(21, q("e0"), "read")),
      msg("c1", simple_b(22, "bench_report")),
      msg("n2", merge_b(23, entries_max)),
      msg("c1", simple_b(24, "bench_report")),
  });
  Replies r(res.lines);
  ASSERT_EQ(r.size(), 24u) << all_lines(res.lines);
  EXPECT_TRUE(r.body("c1", 2) && std::string_view((*r.body("c1", 2))["type"].GetString()) == "write_ok");
  EXPECT_TRUE(IsError(r, "c1", 3, 12));
  EXPECT_TRUE(r.body("c1", 4) && std::string_view((*r.body("c1", 4))["type"].GetString()) == "write_ok");
  EXPECT_TRUE(IsError(r, "c1", 5, 12));
  EXPECT_TRUE(r.body("c1", 6) && std::string_view((*r.body("c1", 6))["type"].GetString()) == "write_ok");
  EXPECT_TRUE(r.body("c1", 7) && std::string_view((*r.body("c1", 7))["type"].GetString()) == "write_ok");
  EXPECT_TRUE(IsError(r, "c1", 8, 12));
  EXPECT_TRUE(IsError(r, "c1", 9, 12));
  EXPECT_TRUE(IsError(r, "c1", 10, 12));
  for (int m = 11; m <= 14; ++m) EXPECT_TRUE(IsError(r, "n2", m, 12));
  EXPECT_TRUE(BodyIs(r, "c1", 15, R"({"type":"read_ok","value":1})"));
  EXPECT_TRUE(BodyIs(r, "c1", 16, R"({"type":"read_ok","value":2})"));
  EXPECT_TRUE(BodyIs(r, "c1", 17, R"({"type":"read_ok","value":3})"));
  EXPECT_EQ(raw_value_of(r, "c1", 18), value_max);
  EXPECT_TRUE(IsError(r, "c1", 19, 20));
  EXPECT_TRUE(IsError(r, "c1", 20, 20));
  EXPECT_TRUE(IsError(r, "c1", 21, 20));
  EXPECT_TRUE(BodyIs(r, "c1", 22,
                     R"({"type":"bench_report_ok","total_writes":4,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":4})"));
  EXPECT_TRUE(BodyIs(r, "n2", 23, R"({"type":"kv_merge_ok","updated":4096})"));
  EXPECT_TRUE(BodyIs(r, "c1", 24,
                     R"({"type":"bench_report_ok","total_writes":4,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":4100})"));
}

// A kv_merge line of exactly `total` bytes (without its newline) whose entries k0..k<n-1> are all
// valid (each value under 64 KiB).
std::string merge_line_of_size(std::int64_t msg_id, std::size_t total, std::size_t n) {
  std::string pre = R"({"src":"n2","dest":"n1","body":{"type":"kv_merge","msg_id":)" + id(msg_id) +
                    R"(,"entries":{)";
  std::string post = "}}}";
  std::size_t fixed = pre.size() + post.size() + (n - 1);
  for (std::size_t i = 0; i < n; ++i) fixed += entry("k" + std::to_string(i), R"("")", "1.5").size();
  std::size_t pad = total - fixed;
  std::string line = pre;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t len = pad / n + (i == 0 ? pad % n : 0);
    if (i) line += ",";
    line += entry("k" + std::to_string(i), q(std::string(len, 'x')), "1.5");
  }
  line += post;
  EXPECT_EQ(line.size(), total);
  return line;
}

// Lines over 1 MiB are skipped with one stderr line, whatever they hold and however the bytes
// arrive; the next line is still served, and a line under the limit is served.
TEST(Errors, LinesOver1MiBAreSkipped) {
  struct Case {
    std::size_t bytes;
    bool served;
  };
  const Case cases[] = {{kLineBytesMax - 100, true},
                        {kLineBytesMax + 100, false},
                        {kLineBytesMax + kLineBytesMax / 2, false},
                        {5 * kLineBytesMax, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE("line of " + std::to_string(c.bytes) + " bytes");
    std::size_t n = c.bytes / 60000 + 1;
    RunResult res = run_ok({init_line(), msg("c1", write_b(2, q("before"), "1")),
                            merge_line_of_size(3, c.bytes, n),
                            msg("c1", read_b(4, q("k1"), "read")),
                            msg("c1", read_b(5, q("before"), "read"))});
    Replies r(res.lines);
    EXPECT_TRUE(BodyIs(r, "c1", 5, R"({"type":"read_ok","value":1})"));
    if (c.served) {
      EXPECT_TRUE(BodyIs(r, "n2", 3, R"({"type":"kv_merge_ok","updated":)" + std::to_string(n) + "}"));
      EXPECT_EQ(r.size(), 5u);
      EXPECT_EQ(res.stderr_text, "");
    } else {
      EXPECT_EQ(r.find("n2", 3), -1) << "an over-long line must not be answered";
      EXPECT_TRUE(IsError(r, "c1", 4, 20)) << "an over-long line must not be applied";
      EXPECT_EQ(r.size(), 4u);
      EXPECT_EQ(count_lines(res.stderr_text), 1u) << "one stderr line per skipped line:\n"
                                                  << res.stderr_text;
    }
  }
}

// After every kind of bad input, everything stored before is still there.
TEST(Errors, NothingStoredIsLostAfterBadInput) {
  std::vector<std::string> in = {init_line()};
  for (int i = 0; i < 50; ++i) {
    in.push_back(msg("c1", write_b(1000 + i, q("s" + id(i)), "[" + id(i) + "]")));
    in.push_back(msg("c1", write_b(2000 + i, id(i), "{\"i\":" + id(i) + "}")));
  }
  in.push_back("garbage");
  in.push_back(std::string(kLineBytesMax + 10, 'g'));
  in.push_back(msg("c1", R"({"type":"write","msg_id":3,"key":"s1"})"));
  in.push_back(msg("c1", write_b(4, q("s2"), q(std::string(kValueBytesMax, 'z')))));
  in.push_back(msg("c1", simple_b(5, "frobnicate")));
  in.push_back(msg("c0", R"({"type":"init","msg_id":6,"node_id":"n1","node_ids":["n1"]})"));
  in.push_back(msg("n2", R"({"type":"kv_merge","msg_id":7,"entries":{"s3":{"value":1}}})"));
  in.push_back(msg("c1", cas_b(8, q("s4"), "[5]", "0")));
  in.push_back(msg("c1", R"({"type":"read","msg_id":9})"));
  for (int i = 0; i < 50; ++i) {
    in.push_back(msg("c1", read_b(3000 + i, q("s" + id(i)), "read")));
    in.push_back(msg("c1", read_b(4000 + i, id(i), "read")));
  }
  in.push_back(msg("c1", simple_b(10, "bench_report")));
  RunResult res = run_ok(in);
  Replies r(res.lines);
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(BodyIs(r, "c1", 3000 + i, R"({"type":"read_ok","value":[)" + id(i) + "]}"));
    EXPECT_TRUE(BodyIs(r, "c1", 4000 + i, R"({"type":"read_ok","value":{"i":)" + id(i) + "}}"));
  }
  EXPECT_TRUE(BodyIs(r, "c1", 10,
                     R"({"type":"bench_report_ok","total_writes":100,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":100})"));
}

// ---- Benchmark endpoints --------------------------------------------------------------------

TEST(Bench, WriteIdCountsTakenWritesFromOne) {
  std::vector<std::string> in = {init_line()};
  for (int i = 1; i <= 50; ++i) in.push_back(msg("c1", write_b(i, q("k" + id(i % 7)), id(i), "bench_write")));
  in.push_back(msg("c2", write_b(100, q("w"), "0")));
  in.push_back(msg("c2", write_b(101, q("w"), "0")));
  in.push_back(msg("c1", write_b(102, "3", "0", "bench_write")));
  RunResult res = run_ok(in);
  Replies r(res.lines);
  ASSERT_EQ(r.size(), in.size()) << all_lines(res.lines);
  for (int i = 1; i <= 50; ++i) {
    EXPECT_TRUE(BodyIs(r, "c1", i, R"({"type":"bench_write_ok","write_id":)" + id(i) + "}"));
  }
  // Plain writes are writes this node has taken too.
  EXPECT_TRUE(BodyIs(r, "c1", 102, R"({"type":"bench_write_ok","write_id":53})"));
}

TEST(Bench, ReportFigures) {
  std::vector<std::string> in = {init_line()};
  for (int i = 0; i < 30; ++i) in.push_back(msg("c1", write_b(i, q("k" + id(i % 10)), id(i), "bench_write")));
  for (int i = 0; i < 5; ++i) in.push_back(msg("c2", write_b(i, id(i), id(i))));
  in.push_back(msg("n2", merge_b(100, "{" + entry("m1", "1", "1.0") + "," + entry("k1", "1", "1.0") + "}")));
  for (int i = 0; i < 5; ++i) in.push_back(msg("c3", read_b(i, q("k" + id(i)))));
  in.push_back(msg("c1", simple_b(200, "bench_report")));
  in.push_back(msg("c1", simple_b(201, "bench_stats")));
  RunResult res = run_ok(in);
  Replies r(res.lines);
  EXPECT_TRUE(BodyIs(r, "n2", 100, R"({"type":"kv_merge_ok","updated":1})"));
  EXPECT_TRUE(BodyIs(r, "c1", 200,
                     R"({"type":"bench_report_ok","total_writes":35,"total_gossip_msgs":0,)"
                     R"("msgs_per_write":0,"keys_stored":16})"));
  const rapidjson::Value* s = r.body("c1", 201);
  ASSERT_NE(s, nullptr);
  EXPECT_STREQ((*s)["type"].GetString(), "bench_stats_ok");
  for (const char* f : {"total_writes", "total_gossip_msgs", "msgs_per_write", "keys_stored",
                        "reads", "stale_reads", "state_digest"}) {
    EXPECT_TRUE(s->HasMember(f)) << "bench_stats_ok lacks " << f << ": " << r.line_of("c1", 201);
  }
  if (HasFailure()) return;
  EXPECT_TRUE(json_text_equal(raw_value_of(r, "c1", 201, "total_writes"), "35"));
  EXPECT_TRUE(json_text_equal(raw_value_of(r, "c1", 201, "total_gossip_msgs"), "0"));
  EXPECT_TRUE(json_text_equal(raw_value_of(r, "c1", 201, "msgs_per_write"), "0"));
  EXPECT_TRUE(json_text_equal(raw_value_of(r, "c1", 201, "keys_stored"), "16"));
  EXPECT_TRUE(json_text_equal(raw_value_of(r, "c1", 201, "reads"), "5"));
  EXPECT_TRUE(json_text_equal(raw_value_of(r, "c1", 201, "stale_reads"), "0"));
}

// bench_stats_ok carries the convergence and replication-lag figures PROTOCOL.md lists.
TEST(Bench, StatsCarriesConvergenceAndLagFigures) {
  RunResult res = run_ok({init_line(R"(["n1","n2"])"),
                          msg("c1", write_b(2, q("a"), "1", "bench_write")),
                          msg("c1", simple_b(3, "bench_stats"))});
  Replies r(res.lines);
  const rapidjson::Value* s = r.body("c1", 3);
  ASSERT_NE(s, nullptr);
  struct Want {
    const char* object;
    std::vector<const char*> members;
  };
  for (const Want& w : {Want{"convergence_ms", {"count", "pending", "p50", "p95", "p99", "max"}},
                        Want{"replication_lag_ms", {"count", "p50", "p99", "max"}}}) {
    ASSERT_TRUE(s->HasMember(w.object) && (*s)[w.object].IsObject())
        << "bench_stats_ok lacks object " << w.object << ": " << r.line_of("c1", 3);
    for (const char* m : w.members) {
      EXPECT_TRUE((*s)[w.object].HasMember(m) && (*s)[w.object][m].IsNumber())
          << w.object << "." << m << " missing: " << r.line_of("c1", 3);
    }
  }
  // The sparse histogram holds exactly the measured writes, so nodes can be merged exactly.
  const rapidjson::Value& conv = (*s)["convergence_ms"];
  ASSERT_TRUE(conv.HasMember("histogram") && conv["histogram"].IsArray()) << r.line_of("c1", 3);
  std::uint64_t in_buckets = 0;
  for (const auto& bucket : conv["histogram"].GetArray()) {
    ASSERT_TRUE(bucket.IsArray() && bucket.Size() == 2) << r.line_of("c1", 3);
    in_buckets += bucket[1].GetUint64();
  }
  EXPECT_EQ(in_buckets, conv["count"].GetUint64()) << r.line_of("c1", 3);
}

// ---- Pipelined ordering ---------------------------------------------------------------------

// bench_report sees every write that arrived before it and none after it.
TEST(Ordering, BenchReportSeesEverythingBeforeAndNothingAfter) {
  for (const char* workers : {"1", "4"}) {
    SCOPED_TRACE(std::string("--workers ") + workers);
    std::vector<std::string> in = {init_line()};
    for (int i = 1; i <= 1000; ++i) {
      in.push_back(msg("c" + id(i % 5), write_b(i, q("k" + id(i % 100)), id(i), "bench_write")));
    }
    in.push_back(msg("r", simple_b(1, "bench_report")));
    for (int i = 1001; i <= 1500; ++i) {
      in.push_back(msg("c" + id(i % 5), write_b(i, q("new" + id(i % 50)), id(i), "bench_write")));
    }
    in.push_back(msg("r", simple_b(2, "bench_report")));
    for (int i = 1501; i <= 1600; ++i) in.push_back(msg("c0", write_b(i, id(i), id(i))));
    in.push_back(msg("r", simple_b(3, "bench_stats")));
    RunResult res = run_ok(in, {"--workers", workers});
    Replies r(res.lines);
    ASSERT_EQ(r.size(), in.size());
    expect_msg_ids_count_from_zero(r);
    for (int i = 1; i <= 1500; ++i) {
      EXPECT_TRUE(BodyIs(r, "c" + id(i % 5), i,
                         R"({"type":"bench_write_ok","write_id":)" + id(i) + "}"));
    }
    EXPECT_TRUE(BodyIs(r, "r", 1,
                       R"({"type":"bench_report_ok","total_writes":1000,"total_gossip_msgs":0,)"
                       R"("msgs_per_write":0,"keys_stored":100})"));
    EXPECT_TRUE(BodyIs(r, "r", 2,
                       R"({"type":"bench_report_ok","total_writes":1500,"total_gossip_msgs":0,)"
                       R"("msgs_per_write":0,"keys_stored":150})"));
    EXPECT_TRUE(json_text_equal(raw_value_of(r, "r", 3, "total_writes"), "1600"));
    EXPECT_TRUE(json_text_equal(raw_value_of(r, "r", 3, "keys_stored"), "250"));
  }
}

// Operations on one key take effect in arrival order whichever src sent them: every read sees
// the latest write that arrived before it (and kv_merge, cas likewise); replies to one src
// leave in the order of its requests.
TEST(Ordering, SameKeyOperationsTakeEffectInArrivalOrder) {
  for (const char* workers : {"4", "2"}) {
    SCOPED_TRACE(std::string("--workers ") + workers);
    std::mt19937 rng(12345);
    const int kSrcs = 8;
    const int kOps = 4000;
    std::vector<std::string> keys = {q("a"), q("b"), "7", q("7")};
    std::map<std::string, std::string> current;  // key -> raw value, per the arrival order
    std::set<std::string> merged_only;           // keys whose version came from a kv_merge
    std::vector<std::int64_t> next_msg(kSrcs, 1);
    struct Expect {
      std::string src;
      std::int64_t msg_id;
      std::string body;  // expected body, or "" for write_ok
      int error = 0;
    };
    std::vector<Expect> expects;
    std::vector<std::string> in = {init_line(R"(["n1","n2"])")};
    double merge_ts = 1.0;  // kv_merge versions from the past: ignored once a key is written
    for (int i = 0; i < kOps; ++i) {
      int s = static_cast<int>(rng() % kSrcs);
      std::string src = (s == 0 ? "n2" : "c" + id(s));
      std::int64_t m = next_msg[s]++;
      const std::string& key = keys[rng() % keys.size()];
      std::string val = "[" + id(s) + "," + id(m) + "]";
      switch (rng() % 5) {
        case 0:
        case 1:
          in.push_back(msg(src, write_b(m, key, val)));
          current[key] = val;
          merged_only.erase(key);
          expects.push_back({src, m, ""});
          break;
        case 2: {
          in.push_back(msg(src, read_b(m, key, "read")));
          auto it = current.find(key);
          if (it == current.end()) {
            expects.push_back({src, m, "", 20});
          } else {
            expects.push_back({src, m, R"({"type":"read_ok","value":)" + it->second + "}"});
          }
          break;
        }
        case 3: {
          auto it = current.find(key);
          std::string from = (it != current.end() && rng() % 2) ? it->second : "[-1]";
          in.push_back(msg(src, cas_b(m, key, from, val)));
          if (it == current.end()) {
            expects.push_back({src, m, "", 20});
          } else if (it->second == from) {
            expects.push_back({src, m, R"({"type":"cas_ok"})"});
            it->second = val;
            merged_only.erase(key);
          } else {
            expects.push_back({src, m, "", 22});
          }
          break;
        }
        default: {
          // A merge of a version from the past, newer than every earlier merge: applied only
          // while the key is missing or holds a merged version.
          merge_ts += 0.001;
          char ts[32];
          std::snprintf(ts, sizeof ts, "%.3f", merge_ts);
          std::string e = key[0] == '"' ? entry(key.substr(1, key.size() - 2), val, ts)
                                        : entry("int", val, ts, "", key);
          in.push_back(msg(src, merge_b(m, "{" + e + "}")));
          bool applies = current.find(key) == current.end() || merged_only.count(key) > 0;
          if (applies) {
            current[key] = val;
            merged_only.insert(key);
          }
          expects.push_back({src, m, R"({"type":"kv_merge_ok","updated":)"s + (applies ? "1" : "0") + "}"});
        }
      }
    }
    RunResult res = run_ok(in, {"--workers", workers});
    Replies r(res.lines);
    ASSERT_EQ(r.size(), in.size());
    int failures = 0;
    for (const Expect& e : expects) {
      testing::AssertionResult ok = testing::AssertionSuccess();
      if (e.error != 0) {
        ok = IsError(r, e.src, e.msg_id, e.error);
      } else if (!e.body.empty()) {
        ok = BodyIs(r, e.src, e.msg_id, e.body);
      } else {
        const rapidjson::Value* b = r.body(e.src, e.msg_id);
        ok = b != nullptr && std::string_view((*b)["type"].GetString()) == "write_ok"
                 ? testing::AssertionSuccess()
                 : testing::AssertionFailure() << "want write_ok: " << r.line_of(e.src, e.msg_id);
      }
      EXPECT_TRUE(ok);
      if (!ok && ++failures > 10) FAIL() << "too many failures";
    }
    // Replies to each src leave in the order of its requests.
    std::map<std::string, std::int64_t> last;
    for (std::size_t i = 1; i < r.line_count(); ++i) {
      const auto& d = r.doc(i);
      if (!d["body"].HasMember("in_reply_to")) continue;  // gossip to the peers in init
      std::string dest = d["dest"].GetString();
      std::int64_t irt = d["body"]["in_reply_to"].GetInt64();
      EXPECT_GT(irt, last[dest]) << "reply to " << dest << " out of order: " << r.line(i);
      last[dest] = irt;
    }
  }
}

// A peer's kv_merge followed by a client's kv_read of that key sees the merge; a multi-key
// kv_merge is seen whole by the next bench_report and by reads of each of its keys.
TEST(Ordering, MergeThenReadSeesTheMerge) {
  std::vector<std::string> in = {init_line(R"(["n1","n2","n3"])")};
  for (int i = 1; i <= 300; ++i) {
    char ts[32];
    std::snprintf(ts, sizeof ts, "%d.5", 1000 + i);
    std::string src = i % 2 ? "n2" : "n3";
    in.push_back(msg(src, merge_b(i, "{" + entry("x", id(i), ts, src) + "}")));
    in.push_back(msg("c" + id(i % 3), read_b(i, q("x"))));
  }
  std::string many = "{";
  for (int k = 0; k < 200; ++k) many += (k ? "," : "") + entry("mk" + id(k), id(k), "5.0", "n2");
  many += "}";
  in.push_back(msg("n2", merge_b(1000, many)));
  in.push_back(msg("c9", simple_b(1, "bench_report")));
  for (int k = 0; k < 200; ++k) in.push_back(msg("c8", read_b(k, q("mk" + id(k)), "read")));
  RunResult res = run_ok(in, {"--workers", "4"});
  Replies r(res.lines);
  ASSERT_EQ(r.size(), in.size());
  for (int i = 1; i <= 300; ++i) {
    char want[160];
    std::snprintf(want, sizeof want,
                  R"({"type":"kv_read_ok","key":"x","value":%d,"ts":%d.5})", i, 1000 + i);
    EXPECT_TRUE(BodyIs(r, "c" + id(i % 3), i, want));
  }
  EXPECT_TRUE(BodyIs(r, "n2", 1000, R"({"type":"kv_merge_ok","updated":200})"));
  // The merged entries are replicated to the peers init named, so total_gossip_msgs depends on
  // timing; the rest is exact.
  const rapidjson::Value* report = r.body("c9", 1);
  ASSERT_NE(report, nullptr);
  EXPECT_EQ((*report)["total_writes"].GetInt(), 0);
  EXPECT_EQ((*report)["keys_stored"].GetInt(), 201);
  EXPECT_EQ((*report)["msgs_per_write"].GetDouble(), 0.0);
  EXPECT_TRUE((*report)["total_gossip_msgs"].IsUint64());
  for (int k = 0; k < 200; ++k) {
    EXPECT_TRUE(BodyIs(r, "c8", k, R"({"type":"read_ok","value":)" + id(k) + "}"));
  }
}

// ---- Shutdown -------------------------------------------------------------------------------

// At end of input, every accepted request is answered before the node exits with status 0,
// also when more requests arrive at once than the node keeps in flight (16,384).
TEST(Shutdown, EveryAcceptedRequestIsAnsweredBeforeExit) {
  constexpr int kRequests = 20000;
  for (const char* workers : {"1", "4"}) {
    SCOPED_TRACE(std::string("--workers ") + workers);
    std::vector<std::string> in = {init_line()};
    for (int i = 0; i < kRequests; ++i) {
      std::string src = "c" + id(i % 7);
      switch (i % 4) {
        case 0: in.push_back(msg(src, write_b(i, id(i % 97), id(i)))); break;
        case 1: in.push_back(msg(src, read_b(i, id(i % 97)))); break;
        case 2: in.push_back(msg(src, write_b(i, q(id(i % 13)), id(i), "bench_write"))); break;
        default: in.push_back(msg(src, cas_b(i, id(i % 97), "0", "1"))); break;
      }
    }
    RunResult res = run_ok(in, {"--workers", workers});
    Replies r(res.lines);
    ASSERT_EQ(r.size(), in.size()) << "stderr:\n" << res.stderr_text;
    for (int i = 0; i < kRequests; ++i) {
      if (r.find("c" + id(i % 7), i) < 0) {
        ADD_FAILURE() << "no reply to request " << i;
        break;
      }
    }
    EXPECT_EQ(res.stderr_text, "");
  }
}

// ---- State digest ---------------------------------------------------------------------------

std::string digest_after(const std::vector<std::string>& merges) {
  std::vector<std::string> in = {init_line(R"(["n1","n2","n3"])")};
  for (std::size_t i = 0; i < merges.size(); ++i) {
    in.push_back(msg("n2", merge_b(static_cast<std::int64_t>(i) + 10, merges[i])));
  }
  in.push_back(msg("c1", simple_b(1, "bench_stats")));
  RunResult res = run_ok(in, {"--workers", "3"});
  Replies r(res.lines);
  EXPECT_EQ(r.size(), in.size());
  const rapidjson::Value* s = r.body("c1", 1);
  if (s == nullptr || !s->HasMember("state_digest")) {
    ADD_FAILURE() << "no state_digest: " << all_lines(res.lines);
    return "";
  }
  return raw_value_of(r, "c1", 1, "state_digest");
}

// Replicas holding the same state report the same digest, whatever order the versions
// arrived in; a different state gives a different digest.
TEST(Digest, SameStateSameDigestWhateverTheArrivalOrder) {
  std::vector<std::string> entries;
  for (int k = 0; k < 60; ++k) {
    std::string name = "key" + id(k);
    std::string key = k % 3 == 0 ? id(k) : "";  // every third key is an integer key
    for (int v = 0; v < 3; ++v) {
      char ts[32];
      std::snprintf(ts, sizeof ts, "%d.%03d", 1700000000 + k, v * 7);
      entries.push_back(entry(name, R"({"k":)" + id(k) + R"(,"v":)" + id(v) + "}", ts,
                              v == 2 ? "n2" : "", key));
    }
    // A tie on the newest timestamp, broken by the node id.
    char ts[32];
    std::snprintf(ts, sizeof ts, "%d.%03d", 1700000000 + k, 14);
    entries.push_back(entry(name, R"("tie won by n3")", ts, "n3", key));
  }
  auto one_per_line = [](const std::vector<std::string>& es) {
    std::vector<std::string> out;
    for (const auto& e : es) out.push_back("{" + e + "}");
    return out;
  };
  auto batches = [](const std::vector<std::string>& es, std::size_t per) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < es.size(); i += per) {
      std::string b = "{";
      for (std::size_t j = i; j < std::min(es.size(), i + per); ++j) b += (j > i ? "," : "") + es[j];
      out.push_back(b + "}");
    }
    return out;
  };
  std::vector<std::string> shuffled = entries;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::vector<std::string> reversed(entries.rbegin(), entries.rend());

  std::string a = digest_after(one_per_line(entries));
  std::string b = digest_after(one_per_line(shuffled));
  std::string c = digest_after(batches(reversed, 37));
  std::string d = digest_after(batches(shuffled, 1000));
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a, d);
  // Without the winning tie entry of one key the state differs, and so must the digest.
  std::vector<std::string> fewer = entries;
  fewer.erase(fewer.begin() + 3);
  EXPECT_NE(a, digest_after(one_per_line(fewer)));
  // With a different value under the same versions, too.
  std::vector<std::string> changed = entries;
  changed[3] = entry("key0", R"("tie won by n3!")", "1700000000.014", "n3", "0");
  EXPECT_NE(a, digest_after(one_per_line(changed)));
}

}  // namespace
}  // namespace gossip_kv::test
