// peer_wire: every message kind the engine writes today decodes to exactly what it says; every
// hostile shape is rejected with a reason and never crashes; a message at the encoder's caps fits
// the receiver's line; a warm decoder does not allocate per entry.
#include "replication/peer_wire.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "gossip_kv/codec.h"
#include "replication/gossip_engine.h"
#include "codec/json_util.h"
#include "gossip_kv/key.h"

// Counts operator new calls on this thread while enabled (RapidJSON's own stacks use malloc;
// they are reused by the decoder's readers and are not per entry).
namespace {
[[maybe_unused]] thread_local bool g_count_news = false;
[[maybe_unused]] thread_local std::size_t g_news = 0;
}  // namespace
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC sees free() on memory from the replaced operator new and warns; both sides use malloc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  if (g_count_news) ++g_news;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#define PEER_WIRE_COUNTS_NEWS 1
#endif

namespace gossip_kv {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000'000;  // a realistic wall clock, microseconds
constexpr std::int64_t kAheadUs = 10'000'000;

PeerBounds bounds_at(std::uint32_t nodes, std::int64_t now_us) {
  return PeerBounds::for_cluster(nodes, 1, now_us + kAheadUs);
}

// ---- a small cluster of real engines whose every message is captured ----------------------

struct Captured {
  std::string src, dest, body;  // body as the receiver gets it: with the writer's msg_id
  std::int64_t at_us;
};

class Cluster {
 public:
  Cluster(int n, const GossipConfig& config) {
    for (int i = 1; i <= n; ++i) ids_.push_back("n" + std::to_string(i));
    for (int i = 0; i < n; ++i) {
      nodes_.push_back(std::make_unique<Node>());
      nodes_[i]->engine = std::make_unique<GossipEngine>(config, ids_[i], ids_, nodes_[i]->store,
                                                         7 + i, now_);
    }
  }
  void write(int node, const std::string& encoded_key, const std::string& value) {
    Node& n = *nodes_[node];
    Store::WriteResult w = n.store.write(encoded_key, value, now_, node + 1, n.clock);
    n.engine->on_local_delta({w.entry, w.version, now_, true}, now_);
    n.engine->on_local_watermark(w.version.ts_us);  // one thread: every write is handed over
  }
  // Advances the clock in 5 ms steps, delivering every message at once (or dropping the ones
  // whose destination is `deaf`).
  void run_ms(std::int64_t ms, int deaf = -1) {
    for (std::int64_t end = now_ + ms * 1000; now_ < end;) {
      now_ += 5000;
      std::vector<OutMessage> out;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (now_ >= nodes_[i]->engine->next_deadline_us()) {
          nodes_[i]->engine->tick(now_, out);
          deliver(static_cast<int>(i), out, deaf);
        }
      }
    }
  }
  std::vector<Captured> seen;
  std::int64_t now() const { return now_; }

 private:
  struct Node {
    Store store{1};
    HybridClock clock;
    std::unique_ptr<GossipEngine> engine;
  };
  void deliver(int from, std::vector<OutMessage>& out, int deaf) {
    std::vector<std::pair<int, OutMessage>> queue;
    for (auto& m : out) queue.emplace_back(from, std::move(m));
    out.clear();
    for (std::size_t q = 0; q < queue.size(); ++q) {
      auto [src, m] = queue[q];
      int dest = std::stoi(m.dest.substr(1)) - 1;
      std::string body = m.body.substr(0, m.body.size() - 1) + ",\"msg_id\":" +
                         std::to_string(msg_id_++) + "}";
      seen.push_back({ids_[src], m.dest, body, now_});
      if (dest == deaf) continue;
      std::vector<OutMessage> replies;
      nodes_[dest]->engine->on_peer_message(ids_[src], body, now_, replies);
      for (auto& r : replies) queue.emplace_back(dest, std::move(r));
    }
  }
  std::vector<std::string> ids_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::int64_t now_ = kT0;
  std::uint64_t msg_id_ = 1;
};

std::string skey(const std::string& s) {
  std::string k;
  key::encode_string(s, k);
  return k;
}
std::string ikey(std::int64_t i) {
  std::string k;
  key::encode_int(i, k);
  return k;
}

const char* const kValues[] = {
    R"("plain")", "42", "-7.5e3", "true", "null", R"({"a":[1,2,{"b":"c\"q\\"}],"u":"\u00e9é😀"})",
    R"([[[],{}],"x"])", R"("line\nbreak escaped is fine")",
};

// Writes through real engines in both dissemination modes, with a node that misses pushes (so
// anti-entropy replies carry entries) and long enough for acks and digests to flow.
std::vector<Captured> capture_real_traffic(int nodes, int relays) {
  GossipConfig config;
  config.relays = relays;
  config.ack_delay_max_ms = 200;
  // Rare periodic digests, so acknowledgements also go alone (an "ack" message) before a
  // digest could carry them; digests still come from gap repair and re-asks.
  config.anti_entropy_interval_ms = 5000;
  Cluster c(nodes, config);
  int i = 0;
  for (int round = 0; round < 6; ++round) {
    for (int n = 0; n < nodes; ++n, ++i) {
      c.write(n, i % 2 ? ikey(i * 1000003 - 500) : skey("k\xc3\xa9y-" + std::to_string(i)),
              kValues[i % std::size(kValues)]);
    }
    c.run_ms(150, round < 2 ? nodes - 1 : -1);  // the last node misses the first rounds
  }
  c.run_ms(3000);
  for (auto& m : c.seen) m.at_us = c.now();  // decode against the end's clock
  return std::move(c.seen);
}

// Checks a decoded message against an independent DOM reading of the same body.
void expect_matches_dom(const std::string& body, const PeerMessage& m) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  ASSERT_FALSE(d.HasParseError()) << body;
  std::string type = d["type"].GetString();
  EXPECT_EQ(m.kind, type == "gossip" ? PeerKind::kGossip
                    : type == "digest" ? PeerKind::kDigest : PeerKind::kAck);
  EXPECT_EQ(m.msg_id, d["msg_id"].GetUint64());
  EXPECT_EQ(m.has_chain, d.HasMember("from"));
  if (m.has_chain) {
    EXPECT_EQ(m.from, d["from"].GetInt64());
    EXPECT_EQ(m.to, d["to"].GetInt64());
  }
  auto ints = [](const rapidjson::Value& a) {
    std::vector<std::int64_t> v;
    for (const auto& x : a.GetArray()) v.push_back(x.GetInt64());
    return v;
  };
  ASSERT_EQ(m.has_entries, d.HasMember("e"));
  if (m.has_entries) {
    const auto& e = d["e"];
    ASSERT_EQ(m.entries.size(), e.Size());
    for (rapidjson::SizeType k = 0; k < e.Size(); ++k) {
      EXPECT_EQ(m.entries[k].key, std::string(e[k][0].GetString(), e[k][0].GetStringLength()));
      EXPECT_EQ(m.entries[k].ts_us, e[k][1].GetInt64());
      EXPECT_EQ(m.entries[k].origin, e[k][2].GetUint());
      EXPECT_EQ(m.entries[k].value, std::string(e[k][3].GetString(), e[k][3].GetStringLength()));
    }
  }
  ASSERT_EQ(m.has_wm, d.HasMember("wm"));
  if (m.has_wm) {
    EXPECT_EQ(m.wm, ints(d["wm"]));
  }
  ASSERT_EQ(m.has_acks, d.HasMember("a"));
  for (std::size_t k = 0; m.has_acks && k < m.acks.size(); ++k) {
    EXPECT_EQ((std::vector<std::int64_t>{m.acks[k].lo, m.acks[k].hi, m.acks[k].at_us}),
              ints(d["a"][static_cast<rapidjson::SizeType>(k)]));
  }
  if (m.has_acks) {
    EXPECT_EQ(m.acks.size(), d["a"].Size());
  }
  ASSERT_EQ(m.has_relay_acks, d.HasMember("ra"));
  for (std::size_t k = 0; m.has_relay_acks && k < m.relay_acks.size(); ++k) {
    const PeerRelayAck& a = m.relay_acks[k];
    EXPECT_EQ((std::vector<std::int64_t>{a.origin, a.lo, a.hi, a.at_us}),
              ints(d["ra"][static_cast<rapidjson::SizeType>(k)]));
  }
  if (m.has_relay_acks) {
    EXPECT_EQ(m.relay_acks.size(), d["ra"].Size());
  }
  ASSERT_EQ(m.has_sent_at, d.HasMember("st"));
  if (m.has_sent_at) {
    EXPECT_EQ(m.sent_at, d["st"].GetInt64());
  }
  ASSERT_EQ(m.has_seen_min, d.HasMember("mo"));
  if (m.has_seen_min) {
    EXPECT_EQ(m.seen_min, d["mo"].GetInt64());
  }
  ASSERT_EQ(m.has_report_seq, d.HasMember("rq"));
  if (m.has_report_seq) {
    EXPECT_EQ(m.report_seq, d["rq"].GetInt64());
  }
  ASSERT_EQ(m.has_clock_offsets, d.HasMember("co"));
  for (std::size_t k = 0; m.has_clock_offsets && k < m.clock_offsets.size(); ++k) {
    const PeerClockOffset& c = m.clock_offsets[k];
    EXPECT_EQ((std::vector<std::int64_t>{c.node, c.mid, c.half_width}),
              ints(d["co"][static_cast<rapidjson::SizeType>(k)]));
  }
  ASSERT_EQ(m.has_relay, d.HasMember("r"));
  if (!m.has_relay) return;
  const auto& r = d["r"];
  ASSERT_EQ(m.has_relay_spans, r.HasMember("sp"));
  for (std::size_t k = 0; m.has_relay_spans && k < m.relay_spans.size(); ++k) {
    const PeerRelaySpan& s = m.relay_spans[k];
    EXPECT_EQ((std::vector<std::int64_t>{s.origin, s.from, s.to, s.floor}),
              ints(r["sp"][static_cast<rapidjson::SizeType>(k)]));
  }
  if (m.has_relay_spans) {
    EXPECT_EQ(m.relay_spans.size(), r["sp"].Size());
  }
  ASSERT_EQ(m.has_forwarded_acks, r.HasMember("fa"));
  for (std::size_t k = 0; m.has_forwarded_acks && k < m.forwarded_acks.size(); ++k) {
    const PeerForwardedAck& a = m.forwarded_acks[k];
    EXPECT_EQ((std::vector<std::int64_t>{a.acker, a.origin, a.lo, a.hi, a.at_us}),
              ints(r["fa"][static_cast<rapidjson::SizeType>(k)]));
  }
  if (m.has_forwarded_acks) {
    EXPECT_EQ(m.forwarded_acks.size(), r["fa"].Size());
  }
}

// The shapes a capture must include for the round trip to cover every kind and member.
std::set<std::string> shapes_of(const PeerMessage& m) {
  std::set<std::string> s;
  const char* kind = m.kind == PeerKind::kGossip ? "gossip" : m.kind == PeerKind::kDigest ? "digest" : "ack";
  s.insert(kind);
  auto add = [&](bool has, bool nonempty, const char* name) {
    if (has && nonempty) s.insert(std::string(kind) + "." + name);
  };
  add(m.has_chain, true, "from/to");
  add(m.has_entries, !m.entries.empty(), "e");
  add(m.has_wm, true, "wm");
  add(m.has_acks, !m.acks.empty(), "a");
  add(m.has_relay_acks, !m.relay_acks.empty(), "ra");
  add(m.has_relay_spans, !m.relay_spans.empty(), "r.sp");
  add(m.has_forwarded_acks, !m.forwarded_acks.empty(), "r.fa");
  add(m.has_relay_lives, !m.relay_lives.empty(), "r.lv");
  add(m.has_floor, true, "fl");
  add(m.has_sent_at, true, "st");
  add(m.has_seen_min, true, "mo");
  add(m.has_report_seq, true, "rq");
  add(m.has_clock_offsets, !m.clock_offsets.empty(), "co");
  for (const PeerEntry& e : m.entries) s.insert(e.key[0] == 'i' ? "int key" : "string key");
  return s;
}

void round_trip(int nodes, int relays, const std::set<std::string>& must_see,
                const std::set<std::string>& must_not_see = {}) {
  std::vector<Captured> traffic = capture_real_traffic(nodes, relays);
  ASSERT_FALSE(traffic.empty());
  PeerDecoder decoder;
  PeerMessage m;
  std::set<std::string> shapes;
  for (const Captured& c : traffic) {
    // Content sync's messages have their own decoder (content_sync_codec.h).
    if (c.body.rfind(R"({"type":"sync_)", 0) == 0) continue;
    std::uint64_t scanned = decoder.scanned();
    PeerDecodeResult r = decoder.decode(c.body, bounds_at(nodes, c.at_us), &m);
    ASSERT_TRUE(r.ok()) << peer_status_name(r.status) << ": " << r.reason << " at " << r.offset
                        << " in " << c.body;
    // What engines write takes the scanner, not the general parse.
    EXPECT_EQ(decoder.scanned(), scanned + 1) << "went to RapidJSON: " << c.body;
    expect_matches_dom(c.body, m);
    std::size_t before = shapes.size();
    for (const auto& s : shapes_of(m)) shapes.insert(s);
    // PEER_WIRE_CORPUS_DIR=dir saves one body per new shape: the fuzzer's seeds (the first
    // byte picks the cluster size, see tests/fuzz/peer_decoder_fuzz.cpp).
    if (const char* dir = std::getenv("PEER_WIRE_CORPUS_DIR"); dir != nullptr && shapes.size() > before) {
      std::string path = std::string(dir) + "/engine_" + std::to_string(relays) + "_" +
                         std::to_string(shapes.size());
      if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fputc(nodes - 1, f);
        std::fwrite(c.body.data(), 1, c.body.size(), f);
        std::fclose(f);
      }
    }
  }
  for (const auto& s : must_see) EXPECT_TRUE(shapes.count(s)) << "no captured message had " << s;
  for (const auto& s : must_not_see) EXPECT_FALSE(shapes.count(s)) << "a captured message had " << s;
}

TEST(PeerWire, DirectModeTrafficRoundTrips) {
  round_trip(3, 0, {"gossip.from/to", "gossip.e", "gossip.wm", "gossip.a", "digest.wm",
                    "digest.a", "ack.a", "int key", "string key", "gossip.st", "gossip.mo",
                    "digest.st", "ack.st", "gossip.fl", "digest.fl", "ack.fl", "ack.rq"});
}

TEST(PeerWire, RelayModeTrafficRoundTrips) {
  round_trip(4, 1, {"gossip.from/to", "gossip.e", "gossip.ra", "gossip.r.sp", "gossip.r.fa",
                    "gossip.r.lv", "digest.wm", "ack.ra", "gossip.co", "ack.fl"},
             {"gossip.rq", "digest.rq", "ack.rq"});  // relays' rounds are not numbered
}

// ---- the hostile matrix ---------------------------------------------------------------------

constexpr std::int64_t kNow = kT0 + 1'000'000;
const std::string kTs = std::to_string(kNow);

// A push holding every gossip member, each valid, for 3 nodes.
std::string good_gossip(const std::string& entries = "[[\"sk\"," + kTs + ",2,\"\\\"v\\\"\"]]") {
  return R"({"type":"gossip","from":0,"to":)" + kTs + R"(,"fl":)" + kTs + R"(,"e":)" + entries +
         R"(,"a":[[0,)" + kTs + "," + kTs + R"(]],"ra":[[3,0,)" + kTs + "," + kTs +
         R"(]],"r":{"sp":[[3,0,)" + kTs + "," + kTs + R"(]],"fa":[[2,1,0,)" + kTs + "," + kTs +
         R"(]]},"msg_id":17})";
}
std::string entry(const std::string& key_json, const std::string& ts, const std::string& origin,
                  const std::string& value_json) {
  return "[[" + key_json + "," + ts + "," + origin + "," + value_json + "]]";
}
// An entry whose value text is `text` (escaped here into a JSON string).
std::string value_entry(const std::string& text) {
  rapidjson::StringBuffer quoted;
  rapidjson::Writer<rapidjson::StringBuffer> w(quoted);
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return entry(R"("sk")", kTs, "2", quoted.GetString());
}
std::string digest_with_wm(const std::string& wm) {
  return R"({"type":"digest","wm":)" + wm + "}";
}

struct Hostile {
  const char* name;
  std::string body;
  PeerStatus want;
};

std::vector<Hostile> hostile_matrix() {
  const std::string T = kTs;
  const std::string deep(100'000, '[');
  std::vector<Hostile> h = {
      // e of the wrong type (the engine's SIGSEGV) and entries of the wrong shape.
      {"e as string", good_gossip(R"("oops")"), PeerStatus::kBadShape},
      {"e as number", good_gossip("7"), PeerStatus::kBadShape},
      {"e as object", good_gossip(R"({"k":1})"), PeerStatus::kBadShape},
      {"entry as string", good_gossip(R"(["x"])"), PeerStatus::kBadShape},
      // Clock samples (st, mo) and a relay's offsets (co).
      {"st past the window", R"({"type":"ack","st":)" + std::to_string(kNow + kAheadUs + 1) + "}",
       PeerStatus::kOutOfRange},
      {"st negative", R"({"type":"ack","st":-1})", PeerStatus::kOutOfRange},
      {"st as string", R"({"type":"ack","st":"1"})", PeerStatus::kBadShape},
      {"st twice", R"({"type":"ack","st":)" + T + R"(,"st":)" + T + "}", PeerStatus::kBadShape},
      {"mo too far", R"({"type":"ack","mo":)" + std::to_string(peer_wire::kClockSampleAbsMaxUs + 1) + "}",
       PeerStatus::kOutOfRange},
      {"mo too far below", R"({"type":"ack","mo":)" + std::to_string(-peer_wire::kClockSampleAbsMaxUs - 1) + "}",
       PeerStatus::kOutOfRange},
      {"co in a digest", R"({"type":"digest","wm":[0,0,0,0],"co":[[1,5,0]]})", PeerStatus::kBadShape},
      {"co node 0", R"({"type":"gossip","co":[[0,5,0]]})", PeerStatus::kOutOfRange},
      {"co node N+1", R"({"type":"gossip","co":[[4,5,0]]})", PeerStatus::kOutOfRange},
      {"co mid too far", R"({"type":"gossip","co":[[1,)" + std::to_string(peer_wire::kClockSampleAbsMaxUs + 1) + ",0]]}",
       PeerStatus::kOutOfRange},
      {"co half-width negative", R"({"type":"gossip","co":[[1,5,-1]]})", PeerStatus::kOutOfRange},
      {"co item of 2", R"({"type":"gossip","co":[[1,5]]})", PeerStatus::kBadShape},
      {"co item of 4", R"({"type":"gossip","co":[[1,5,6,7]]})", PeerStatus::kBadShape},
      {"co as object", R"({"type":"gossip","co":{"1":5}})", PeerStatus::kBadShape},
      {"entry of 3", good_gossip("[[\"sk\"," + T + ",2]]"), PeerStatus::kBadShape},
      {"entry of 5", good_gossip("[[\"sk\"," + T + ",2,\"1\",\"1\"]]"), PeerStatus::kBadShape},
      {"entry of 5 (int)", good_gossip("[[\"sk\"," + T + ",2,\"1\",1]]"), PeerStatus::kBadShape},
      // The older writes an entry stands for: (origin, ts) pairs after the value.
      {"older write origin 0", good_gossip(R"([["sk",)" + T + R"(,2,"1",0,)" + T + "]]"),
       PeerStatus::kOutOfRange},
      {"older write origin N+1", good_gossip(R"([["sk",)" + T + R"(,2,"1",4,)" + T + "]]"),
       PeerStatus::kOutOfRange},
      {"older write ts past the window",
       good_gossip(R"([["sk",)" + T + R"(,2,"1",1,)" + std::to_string(kNow + kAheadUs + 1) + "]]"),
       PeerStatus::kOutOfRange},
      {"older write ts negative", good_gossip(R"([["sk",)" + T + R"(,2,"1",1,-5]])"),
       PeerStatus::kOutOfRange},
      {"older write ts as string", good_gossip(R"([["sk",)" + T + R"(,2,"1",1,")" + T + "\"]]"),
       PeerStatus::kBadShape},
      {"older write nested", good_gossip(R"([["sk",)" + T + R"(,2,"1",[1,)" + T + "]]]"),
       PeerStatus::kBadShape},
      {"nine older writes", good_gossip(R"([["sk",)" + T + R"(,2,"1")" + [&T] {
                                          std::string older;
                                          for (int i = 0; i < 9; ++i) older += ",1," + T;
                                          return older;
                                        }() + "]]"),
       PeerStatus::kBadShape},
      {"entry key as int", good_gossip(entry("7", T, "2", R"("1")")), PeerStatus::kBadShape},
      {"entry ts as string", good_gossip(entry(R"("sk")", "\"" + T + "\"", "2", R"("1")")),
       PeerStatus::kBadShape},
      {"entry ts as double", good_gossip(entry(R"("sk")", T + ".5", "2", R"("1")")),
       PeerStatus::kBadShape},
      {"entry value as number", good_gossip(entry(R"("sk")", T, "2", "1")), PeerStatus::kBadShape},
      {"entry value as object", good_gossip(entry(R"("sk")", T, "2", "{}")),
       PeerStatus::kBadShape},
      {"entry nested array", good_gossip(entry(R"("sk")", T, "[2]", R"("1")")),
       PeerStatus::kBadShape},
      // Timestamps.
      {"ts INT64_MIN", good_gossip(entry(R"("sk")", "-9223372036854775808", "2", R"("1")")),
       PeerStatus::kOutOfRange},
      {"ts INT64_MAX", good_gossip(entry(R"("sk")", "9223372036854775807", "2", R"("1")")),
       PeerStatus::kOutOfRange},
      {"ts past int64", good_gossip(entry(R"("sk")", "9223372036854775808", "2", R"("1")")),
       PeerStatus::kOutOfRange},
      {"ts far past int64", good_gossip(entry(R"("sk")", "1e300", "2", R"("1")")),
       PeerStatus::kBadShape},
      {"ts beyond ahead bound",
       good_gossip(entry(R"("sk")", std::to_string(kNow + kAheadUs + 1), "2", R"("1")")),
       PeerStatus::kOutOfRange},
      {"ts zero", good_gossip(entry(R"("sk")", "0", "2", R"("1")")), PeerStatus::kOutOfRange},
      {"to INT64_MAX (forged watermark)",
       R"({"type":"gossip","from":0,"to":9223372036854775807,"e":[]})", PeerStatus::kOutOfRange},
      {"from > to", R"({"type":"gossip","from":)" + T + R"(,"to":)" +
                        std::to_string(kNow - 1) + R"(,"e":[]})",
       PeerStatus::kOutOfRange},
      {"from without to", R"({"type":"gossip","from":0,"e":[]})", PeerStatus::kBadShape},
      {"chain without e", R"({"type":"gossip","from":0,"to":)" + T + "}", PeerStatus::kBadShape},
      {"ack at_us INT64_MIN", R"({"type":"ack","a":[[0,)" + T + R"(,-9223372036854775808]]})",
       PeerStatus::kOutOfRange},
      {"ack lo > hi", R"({"type":"ack","a":[[)" + T + ",0," + T + "]]}", PeerStatus::kOutOfRange},
      {"ack of 2", R"({"type":"ack","a":[[0,)" + T + "]]}", PeerStatus::kBadShape},
      {"ack of 4", R"({"type":"ack","a":[[0,)" + T + "," + T + ",1]]}", PeerStatus::kBadShape},
      {"ack span negative lo", R"({"type":"ack","a":[[-5,)" + T + "," + T + "]]}",
       PeerStatus::kOutOfRange},
      // Origins.
      {"entry origin N+1", good_gossip(entry(R"("sk")", T, "4", R"("1")")), PeerStatus::kOutOfRange},
      {"entry origin huge", good_gossip(entry(R"("sk")", T, "4294967296", R"("1")")),
       PeerStatus::kOutOfRange},
      {"entry origin negative", good_gossip(entry(R"("sk")", T, "-1", R"("1")")),
       PeerStatus::kOutOfRange},
      {"ra origin 0", R"({"type":"ack","ra":[[0,0,)" + T + "," + T + "]]}", PeerStatus::kOutOfRange},
      {"ra origin N+1", R"({"type":"ack","ra":[[4,0,)" + T + "," + T + "]]}",
       PeerStatus::kOutOfRange},
      {"sp origin 0", R"({"type":"gossip","r":{"sp":[[0,0,)" + T + ",0]]}}", PeerStatus::kOutOfRange},
      {"sp forged to", R"({"type":"gossip","r":{"sp":[[2,0,9223372036854775807,0]]}})",
       PeerStatus::kOutOfRange},
      {"sp forged floor", R"({"type":"gossip","r":{"sp":[[2,0,)" + T + ",9223372036854775807]]}}",
       PeerStatus::kOutOfRange},
      {"sp without its floor", R"({"type":"gossip","r":{"sp":[[2,0,)" + T + "]]}}",
       PeerStatus::kBadShape},
      {"fl forged", R"({"type":"gossip","from":0,"to":)" + T + R"(,"fl":9223372036854775807,"e":[]})",
       PeerStatus::kOutOfRange},
      {"lv node N+1", R"({"type":"gossip","r":{"lv":[[4,)" + T + "," + T + "]]}}", PeerStatus::kOutOfRange},
      {"lv floor 0", R"({"type":"gossip","r":{"lv":[[1,0,)" + T + "]]}}", PeerStatus::kOutOfRange},
      {"lv sent_at forged", R"({"type":"gossip","r":{"lv":[[1,)" + T + R"(,9223372036854775807]]}})",
       PeerStatus::kOutOfRange},
      {"lv in the body", R"({"type":"gossip","lv":[[1,)" + T + "," + T + "]]}", PeerStatus::kBadShape},
      {"lv pair", R"({"type":"gossip","r":{"lv":[[1,)" + T + "]]}}", PeerStatus::kBadShape},
      {"fa acker N+1", R"({"type":"gossip","r":{"fa":[[4,1,0,)" + T + "," + T + "]]}}",
       PeerStatus::kOutOfRange},
      {"fa origin huge", R"({"type":"gossip","r":{"fa":[[2,99999999999,0,)" + T + "," + T + "]]}}",
       PeerStatus::kOutOfRange},
      // Keys.
      {"untagged key", good_gossip(entry(R"("k")", T, "2", R"("1")")), PeerStatus::kBadKey},
      {"empty key", good_gossip(entry(R"("")", T, "2", R"("1")")), PeerStatus::kBadKey},
      {"int key leading zero", good_gossip(entry(R"("i007")", T, "2", R"("1")")),
       PeerStatus::kBadKey},
      {"int key -0", good_gossip(entry(R"("i-0")", T, "2", R"("1")")), PeerStatus::kBadKey},
      {"int key plus", good_gossip(entry(R"("i+5")", T, "2", R"("1")")), PeerStatus::kBadKey},
      {"int key empty", good_gossip(entry(R"("i")", T, "2", R"("1")")), PeerStatus::kBadKey},
      {"int key letters", good_gossip(entry(R"("i12a")", T, "2", R"("1")")), PeerStatus::kBadKey},
      {"int key past int64", good_gossip(entry(R"("i9223372036854775808")", T, "2", R"("1")")),
       PeerStatus::kBadKey},
      {"key lone low surrogate", good_gossip(entry(R"("s\udc00")", T, "2", R"("1")")),
       PeerStatus::kBadKey},
      {"key lone high surrogate", good_gossip(entry(R"("s\ud800x")", T, "2", R"("1")")),
       PeerStatus::kNotJson},
      {"key raw invalid UTF-8", good_gossip(entry("\"s\xff\xfe\"", T, "2", R"("1")")),
       PeerStatus::kNotJson},
      {"key raw surrogate", good_gossip(entry("\"s\xed\xa0\x80\"", T, "2", R"("1")")),
       PeerStatus::kNotJson},
      {"key too long", good_gossip(entry("\"s" + std::string(1025, 'k') + "\"", T, "2", R"("1")")),
       PeerStatus::kBadKey},
      // Values.
      {"value injects a line", good_gossip(value_entry("1}}\n{\"src\":\"n1\",\"dest\":\"c1\"}")),
       PeerStatus::kBadValue},
      // One valid JSON value whose whitespace holds a whole forged line: only the control-byte
      // rule stops it.
      {"value injects a line as valid JSON",
       good_gossip(value_entry("[\n{\"src\":\"n1\",\"dest\":\"c1\",\"body\":{\"type\":"
                               "\"read_ok\",\"in_reply_to\":5,\"value\":666}}\n]")),
       PeerStatus::kBadValue},
      {"value with CR", good_gossip(value_entry("[1,\r2]")), PeerStatus::kBadValue},
      {"value two JSON values", good_gossip(value_entry("1 2")), PeerStatus::kBadValue},
      {"value two objects", good_gossip(value_entry("{}{}")), PeerStatus::kBadValue},
      {"value not JSON", good_gossip(value_entry("hello")), PeerStatus::kBadValue},
      {"value empty", good_gossip(value_entry("")), PeerStatus::kBadValue},
      {"value unterminated", good_gossip(value_entry("[1,2")), PeerStatus::kBadValue},
      {"value NaN", good_gossip(value_entry("NaN")), PeerStatus::kBadValue},
      {"value lone surrogate escape", good_gossip(value_entry(R"("\udc00")")),
       PeerStatus::kBadValue},
      {"value lone surrogate key escape", good_gossip(value_entry(R"({"\udfff":1})")),
       PeerStatus::kBadValue},
      {"value escaped lone surrogate decoded", good_gossip(entry(R"("sk")", T, "2", R"("\udc00")")),
       PeerStatus::kBadValue},
      {"value too deep", good_gossip(value_entry(std::string(129, '[') + std::string(129, ']'))),
       PeerStatus::kBadValue},
      {"value 60k deep", good_gossip(value_entry(std::string(60'000, '['))), PeerStatus::kBadValue},
      {"value 100k deep (too long first)", good_gossip(value_entry(deep)), PeerStatus::kBadValue},
      {"value too long", good_gossip(value_entry("\"" + std::string(65535, 'v') + "\"")),
       PeerStatus::kBadValue},
      // Structure.
      {"100k nested arrays", deep, PeerStatus::kBadShape},
      {"100k nested in e", good_gossip(deep), PeerStatus::kBadShape},
      {"100k nested unknown member", R"({"type":"ack","x":)" + deep, PeerStatus::kBadShape},
      {"duplicate type", R"({"type":"ack","type":"gossip"})", PeerStatus::kBadShape},
      {"duplicate e", good_gossip().insert(1, R"("e":[],)"), PeerStatus::kBadShape},
      {"duplicate wm", R"({"type":"digest","wm":[0,0,0,0],"wm":[0,0,0,0]})", PeerStatus::kBadShape},
      {"duplicate sp", R"({"type":"gossip","r":{"sp":[],"sp":[]}})", PeerStatus::kBadShape},
      {"unknown member", R"({"type":"ack","zz":1})", PeerStatus::kBadShape},
      {"unknown r member", R"({"type":"gossip","r":{"xx":[]}})", PeerStatus::kBadShape},
      {"e in a digest", R"({"type":"digest","wm":[0,0,0,0],"e":[]})", PeerStatus::kBadShape},
      {"ow in a push", R"({"type":"gossip","ow":0})", PeerStatus::kBadShape},
      {"ow as a string", R"({"type":"digest","wm":[0,0,0,0],"ow":"1"})", PeerStatus::kBadShape},
      {"ow forged INT64_MAX", R"({"type":"digest","wm":[0,0,0,0],"ow":9223372036854775807})",
       PeerStatus::kOutOfRange},
      {"ow negative", R"({"type":"digest","wm":[0,0,0,0],"ow":-5})", PeerStatus::kOutOfRange},
      // Split claims and the answer's life.
      {"bf in an ack", R"({"type":"ack","bf":[]})", PeerStatus::kBadShape},
      {"bf in a push", R"({"type":"gossip","from":0,"to":0,"e":[],"bf":[]})", PeerStatus::kBadShape},
      {"af in a push", R"({"type":"gossip","from":0,"to":0,"e":[],"wm":[0,0,0,0],"af":0})",
       PeerStatus::kBadShape},
      {"af without wm", R"({"type":"gossip","e":[],"af":0})", PeerStatus::kBadShape},
      {"af in a digest", R"({"type":"digest","wm":[0,0,0,0],"af":0})", PeerStatus::kBadShape},
      {"af as a string", R"({"type":"gossip","wm":[0,0,0,0],"af":"0"})", PeerStatus::kBadShape},
      {"af forged INT64_MAX", R"({"type":"gossip","wm":[0,0,0,0],"af":9223372036854775807})",
       PeerStatus::kOutOfRange},
      // The life acknowledgements are about.
      {"al without a", R"({"type":"ack","al":0})", PeerStatus::kBadShape},
      {"al without a, in a digest", R"({"type":"digest","wm":[0,0,0,0],"al":0})", PeerStatus::kBadShape},
      {"al as a string", R"({"type":"ack","a":[],"al":"0"})", PeerStatus::kBadShape},
      {"al forged INT64_MAX", R"({"type":"ack","a":[],"al":9223372036854775807})", PeerStatus::kOutOfRange},
      {"al negative", R"({"type":"ack","a":[],"al":-1})", PeerStatus::kOutOfRange},
      {"al twice", R"({"type":"ack","a":[],"al":0,"al":0})", PeerStatus::kBadShape},
      // Report numbers.
      {"rq 0", R"({"type":"ack","a":[],"rq":0})", PeerStatus::kOutOfRange},
      {"rq negative", R"({"type":"ack","a":[],"rq":-3})", PeerStatus::kOutOfRange},
      {"rq past 2^53", R"({"type":"ack","a":[],"rq":9007199254740993})", PeerStatus::kOutOfRange},
      {"rq as a string", R"({"type":"ack","a":[],"rq":"1"})", PeerStatus::kBadShape},
      {"rq twice", R"({"type":"ack","a":[],"rq":1,"rq":2})", PeerStatus::kBadShape},
      {"bf held above its floor", R"({"type":"digest","wm":[0,0,0,0],"bf":[[1,)" + kTs + ",1]]}",
       PeerStatus::kOutOfRange},
      {"bf origin 0", R"({"type":"digest","wm":[0,0,0,0],"bf":[[0,0,0]]})", PeerStatus::kOutOfRange},
      {"bf origin past N", R"({"type":"digest","wm":[0,0,0,0],"bf":[[4,0,0]]})", PeerStatus::kOutOfRange},
      {"bf floor forged", R"({"type":"digest","wm":[0,0,0,0],"bf":[[1,0,9223372036854775807]]})",
       PeerStatus::kOutOfRange},
      {"bf pair", R"({"type":"digest","wm":[0,0,0,0],"bf":[[1,0]]})", PeerStatus::kBadShape},
      {"bf as object", R"({"type":"digest","wm":[0,0,0,0],"bf":{}})", PeerStatus::kBadShape},
      {"r in an ack", R"({"type":"ack","r":{}})", PeerStatus::kBadShape},
      {"digest without wm", R"({"type":"digest"})", PeerStatus::kBadShape},
      {"no type", R"({"a":[]})", PeerStatus::kUnknownType},
      {"unknown type", R"({"type":"gossipp"})", PeerStatus::kUnknownType},
      {"type as number", R"({"type":1})", PeerStatus::kBadShape},
      {"body an array", "[1]", PeerStatus::kBadShape},
      {"body a string", R"("gossip")", PeerStatus::kBadShape},
      {"not JSON", "{\"type\":", PeerStatus::kNotJson},
      {"trailing garbage", R"({"type":"ack"} x)", PeerStatus::kNotJson},
      {"two bodies", R"({"type":"ack"}{"type":"ack"})", PeerStatus::kNotJson},
      {"NUL then garbage", std::string("{\"type\":\"ack\"}\0{", 16), PeerStatus::kNotJson},
      {"empty", "", PeerStatus::kNotJson},
      {"negative msg_id", R"({"type":"ack","msg_id":-1})", PeerStatus::kOutOfRange},
      {"msg_id as string", R"({"type":"ack","msg_id":"1"})", PeerStatus::kBadShape},
      {"a as object", R"({"type":"ack","a":{}})", PeerStatus::kBadShape},
      {"a item as number", R"({"type":"ack","a":[5]})", PeerStatus::kBadShape},
      {"null member", R"({"type":"ack","a":null})", PeerStatus::kBadShape},
      {"bool in tuple", R"({"type":"ack","a":[[0,true,1]]})", PeerStatus::kBadShape},
      // wm.
      {"wm too short", digest_with_wm("[0,0,0]"), PeerStatus::kBadShape},
      {"wm too long", digest_with_wm("[0,0,0,0,0]"), PeerStatus::kBadShape},
      {"wm empty", digest_with_wm("[]"), PeerStatus::kBadShape},
      {"wm of strings", digest_with_wm(R"(["0","0","0","0"])"), PeerStatus::kBadShape},
      {"wm nested", digest_with_wm("[[0],0,0,0]"), PeerStatus::kBadShape},
      {"wm as number", digest_with_wm("0"), PeerStatus::kBadShape},
      {"wm forged INT64_MAX", digest_with_wm("[0,0,9223372036854775807,0]"),
       PeerStatus::kOutOfRange},
      {"wm negative", digest_with_wm("[0,-1,0,0]"), PeerStatus::kOutOfRange},
  };
  h.push_back({"body over the line limit",
               R"({"type":"ack","a":[],"x":")" + std::string(limits::kLineBytesMax, 'x') + "\"}",
               PeerStatus::kNotJson});
  return h;
}

TEST(PeerWire, TheGoodMessagesOfTheMatrixDecode) {
  // The base of every hostile case is itself accepted: each case fails for its own mutation.
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  for (const std::string& body :
       {good_gossip(), good_gossip(entry(R"("i-12")", kTs, "0", R"("[1,{\"a\":null}]")")),
        good_gossip(value_entry(std::string(128, '[') + std::string(128, ']'))),
        good_gossip(value_entry("\"" + std::string(65534, 'v') + "\"")),
        good_gossip(entry("\"s" + std::string(1024, 'k') + "\"", kTs, "2", R"("1")")),
        digest_with_wm("[0,1," + kTs + ",0]"), std::string(R"({"type":"ack","ra":[]})"),
        // How far the sender's own writes go.
        R"({"type":"digest","wm":[0,1,)" + kTs + R"(,0],"ow":)" + kTs + "}",
        // A gap repair to the relay carries this node's reports again.
        R"({"type":"digest","wm":[0,1,)" + kTs + R"(,0],"ra":[[3,0,)" + kTs + "," + kTs + "]]}",
        // A split claim for a restarted origin, and the answer to it.
        R"({"type":"digest","wm":[0,1,)" + kTs + R"(,0],"bf":[[1,0,)" + kTs + "]]}",
        R"({"type":"gossip","e":[],"wm":[0,0,0,0],"af":)" + kTs + R"(,"bf":[[1,)" + kTs + "," + kTs + "]]}"}) {
    PeerDecodeResult r = decoder.decode(body, b, &m);
    EXPECT_TRUE(r.ok()) << r.reason << " in " << body.substr(0, 300);
  }
  ASSERT_TRUE(decoder.decode(good_gossip(), b, &m).ok());
  ASSERT_EQ(m.entries.size(), 1u);
  EXPECT_EQ(m.entries[0].key, "sk");
  EXPECT_EQ(m.entries[0].value, "\"v\"");
  EXPECT_EQ(m.entries[0].origin, 2u);
  EXPECT_EQ(m.to, kNow);
  EXPECT_EQ(m.msg_id, 17u);
  ASSERT_EQ(m.forwarded_acks.size(), 1u);
  EXPECT_EQ(m.forwarded_acks[0].acker, 2u);
  EXPECT_EQ(m.forwarded_acks[0].origin, 1u);
}

TEST(PeerWire, EveryHostileShapeIsRejectedWithAReason) {
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  for (const Hostile& h : hostile_matrix()) {
    PeerDecodeResult r = decoder.decode(h.body, b, &m);
    EXPECT_EQ(r.status, h.want) << h.name << ": got " << peer_status_name(r.status) << " ("
                                << r.reason << ")";
    EXPECT_NE(std::string(r.reason), "") << h.name;
    if (std::getenv("PEER_WIRE_VERBOSE") != nullptr) {
      std::printf("%-40s %-13s %s\n", h.name, peer_status_name(r.status), r.reason);
    }
    // The decoder stays usable after any rejection.
    ASSERT_TRUE(decoder.decode(good_gossip(), b, &m).ok()) << "after " << h.name;
  }
}

// decode() (the scanner, then RapidJSON for what it does not take) and decode_general()
// (RapidJSON alone) give the same verdict, reason and offset, and the same message, for the
// good and hostile bodies above and for every one-byte change of them: each byte replaced by
// one that matters to a JSON scanner, deleted, or doubled.
TEST(PeerWire, TheScannerAgreesWithRapidJson) {
  PeerDecoder fast, general;
  PeerMessage a, b;
  PeerBounds bounds = bounds_at(3, kNow);
  std::vector<std::string> bases = {
      good_gossip(),
      good_gossip(entry(R"("i-12")", kTs, "0", R"("[1,{\"a\":null}]")")),
      good_gossip(entry(R"("s\t\n\/\b\f\r\\\"é")", kTs, "1", R"("\"\\u00e9 \\\" 😀\"")")),
      good_gossip("[[\"sk\"," + kTs + ",2,\"7\",1," + kTs + "],[\"i5\"," + kTs + ",3,\"-1\"]]"),
      digest_with_wm("[0,1," + kTs + ",0]"),
      R"({"type":"digest","wm":[0,1,)" + kTs + R"(,0],"ow":)" + kTs + R"(,"mo":-12,"st":)" + kTs +
          "}",
      R"({"type":"digest","wm":[0,1,)" + kTs + R"(,0],"bf":[[1,0,)" + kTs + "]]}",
      R"({"type":"gossip","e":[],"wm":[0,0,0,0],"af":)" + kTs + R"(,"bf":[[1,)" + kTs + "," +
          kTs + R"(]],"co":[[2,-5,7]]})",
      R"({"type":"ack","a":[[)" + kTs + "," + kTs + "," + kTs + R"(]],"msg_id":18446744073709551615})",
      R"({"type":"digest","wm":[0,1,)" + kTs + R"(,0],"a":[[)" + kTs + "," + kTs + "," + kTs +
          R"(]],"al":)" + kTs + "}",
      R"({"type":"ack","a":[[)" + kTs + "," + kTs + "," + kTs + R"(]],"al":)" + kTs +
          R"(,"rq":9007199254740992})",
      // 19 and 18 digits: the scanner takes integers under 10^18 only.
      R"({"type":"ack","a":[],"msg_id":9999999999999999999})",
      R"({"type":"ack","a":[],"msg_id":999999999999999999})",
  };
  for (const Hostile& h : hostile_matrix()) {
    if (h.body.size() < 4096) bases.push_back(h.body);
  }
  const char kBytes[] = {'"', '\\', ' ', '0', '1', '9', '-', '.', 'e', ',', ':', '[', ']', '{',
                         '}', 'u', 'n', 't', '\t', '\x01', '\x1f', '\x7f', '\xc3'};
  std::size_t cases = 0, accepted = 0;
  auto same = [&](const std::string& body) {
    ++cases;
    std::uint64_t scanned = fast.scanned();
    PeerDecodeResult x = fast.decode(body, bounds, &a);
    PeerDecodeResult y = general.decode_general(body, bounds, &b);
    ASSERT_EQ(x.status, y.status) << x.reason << " / " << y.reason << " in " << body;
    ASSERT_STREQ(x.reason, y.reason) << body;
    ASSERT_EQ(x.offset, y.offset) << body;
    if (x.ok()) {
      ASSERT_TRUE(a == b) << body;
      accepted += fast.scanned() - scanned;
    }
  };
  for (const std::string& base : bases) {
    same(base);
    for (std::size_t i = 0; i < base.size(); ++i) {
      for (char c : kBytes) {
        if (c == base[i]) continue;
        std::string m = base;
        m[i] = c;
        same(m);
      }
      same(base.substr(0, i) + base.substr(i + 1));
      same(base.substr(0, i + 1) + base.substr(i));
    }
  }
  // Both paths were taken: the scanner settled good bodies, and handed on refused ones.
  RecordProperty("bodies", static_cast<int>(cases));
  RecordProperty("scanned", static_cast<int>(accepted));
  EXPECT_GT(accepted, 100u);
  EXPECT_LT(accepted, cases / 2);
}

// ow is decoded with its value, and a reused message does not keep it for the next digest.
TEST(PeerWire, OwnWatermarkIsDecodedAndNotCarriedOver) {
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  ASSERT_TRUE(decoder.decode(R"({"type":"digest","wm":[0,0,0,0],"ow":)" + kTs + "}", b, &m).ok());
  EXPECT_TRUE(m.has_own);
  EXPECT_EQ(m.own, kNow);
  ASSERT_TRUE(decoder.decode(R"({"type":"digest","wm":[0,0,0,0]})", b, &m).ok());
  EXPECT_FALSE(m.has_own);
}

// rq is decoded with its value, in any kind of message, and a reused message does not keep it.
TEST(PeerWire, ReportNumbersAreDecodedAndNotCarriedOver) {
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  ASSERT_TRUE(decoder.decode(R"({"type":"ack","a":[],"al":)" + kTs + R"(,"rq":7})", b, &m).ok());
  EXPECT_TRUE(m.has_report_seq);
  EXPECT_EQ(m.report_seq, 7);
  ASSERT_TRUE(decoder.decode(R"({"type":"digest","wm":[0,0,0,0],"rq":9007199254740992})", b, &m).ok());
  EXPECT_EQ(m.report_seq, peer_wire::kReportSeqMax);
  ASSERT_TRUE(decoder.decode(good_gossip(), b, &m).ok());
  EXPECT_FALSE(m.has_report_seq);
  EXPECT_EQ(m.report_seq, 0);
}

// bf and af are decoded with their values, and a reused message keeps neither.
TEST(PeerWire, SplitClaimsAndTheAnswersLifeAreDecodedAndNotCarriedOver) {
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  ASSERT_TRUE(decoder
                  .decode(R"({"type":"gossip","e":[],"wm":[0,0,0,0],"af":)" + kTs + R"(,"bf":[[2,5,)" + kTs +
                              "]]}",
                          b, &m)
                  .ok());
  EXPECT_TRUE(m.has_asker_floor);
  EXPECT_EQ(m.asker_floor, kNow);
  ASSERT_TRUE(m.has_before_floor);
  ASSERT_EQ(m.before_floor.size(), 1u);
  EXPECT_EQ(m.before_floor[0].origin, 2u);
  EXPECT_EQ(m.before_floor[0].held, 5);
  EXPECT_EQ(m.before_floor[0].floor, kNow);
  ASSERT_TRUE(decoder.decode(R"({"type":"gossip","e":[],"wm":[0,0,0,0]})", b, &m).ok());
  EXPECT_FALSE(m.has_asker_floor);
  // And al, the life the acknowledgements are about.
  ASSERT_TRUE(decoder.decode(R"({"type":"ack","a":[],"al":)" + kTs + "}", b, &m).ok());
  EXPECT_TRUE(m.has_ack_life);
  EXPECT_EQ(m.ack_life, kNow);
  ASSERT_TRUE(decoder.decode(R"({"type":"ack","a":[]})", b, &m).ok());
  EXPECT_FALSE(m.has_ack_life);
  EXPECT_FALSE(m.has_before_floor);
  EXPECT_TRUE(m.before_floor.empty());
  // At most one per origin's worth: the bound.
  std::string many = R"({"type":"digest","wm":[0,0,0,0],"bf":[)";
  for (std::size_t i = 0; i <= b.before_floor_max; ++i) many += (i ? "," : "") + std::string("[1,0,0]");
  EXPECT_EQ(decoder.decode(many + "]}", b, &m).status, PeerStatus::kOutOfRange);
}

// An entry's older writes are decoded in order, up to the bound, and a reused message keeps none.
TEST(PeerWire, TheOlderWritesAnEntryStandsForAreDecoded) {
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  std::string four;
  for (int i = 0; i < 4; ++i) four += "," + std::to_string(1 + i % 3) + "," + std::to_string(kNow - 10 + i);
  ASSERT_TRUE(decoder.decode(good_gossip(R"([["sk",)" + kTs + R"(,2,"1")" + four + R"(],["sj",)" + kTs +
                                         R"(,2,"1"]])"),
                             b, &m)
                  .ok());
  ASSERT_EQ(m.entries.size(), 2u);
  ASSERT_EQ(m.entries[0].stands_count, 4u);
  for (std::uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(m.entries[0].stands[i].first, 1 + i % 3);
    EXPECT_EQ(m.entries[0].stands[i].second, kNow - 10 + i);
  }
  EXPECT_EQ(m.entries[0].value, "1");
  EXPECT_EQ(m.entries[1].stands_count, 0u) << "the next entry starts with none";
  ASSERT_TRUE(decoder.decode(good_gossip(), b, &m).ok());
  ASSERT_EQ(m.entries.size(), 1u);
  EXPECT_EQ(m.entries[0].stands_count, 0u) << "a reused message keeps none";
}

TEST(PeerWire, WindowEdgesAreInclusive) {
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  b.min_ts_us = kNow - 5;  // the base's other timestamps are kNow, inside
  b.max_ts_us = kNow + 5;
  auto at = [&](std::int64_t ts) {
    return decoder.decode(good_gossip(entry(R"("sk")", std::to_string(ts), "2", R"("1")")), b, &m)
        .status;
  };
  EXPECT_EQ(at(kNow - 5), PeerStatus::kOk);
  EXPECT_EQ(at(kNow + 5), PeerStatus::kOk);
  EXPECT_EQ(at(kNow - 6), PeerStatus::kOutOfRange);
  EXPECT_EQ(at(kNow + 6), PeerStatus::kOutOfRange);
  // A span's exclusive lower end may sit one below the window: a write at the window's first
  // microsecond is acknowledged as (ts - 1, ts].
  auto ack = [&](std::int64_t lo) {
    return decoder.decode(R"({"type":"ack","a":[[)" + std::to_string(lo) + "," + kTs + "," + kTs +
                              "]]}", b, &m).status;
  };
  EXPECT_EQ(ack(kNow - 6), PeerStatus::kOk);
  EXPECT_EQ(ack(kNow - 7), PeerStatus::kOutOfRange);
  EXPECT_EQ(ack(0), PeerStatus::kOk);
}

// Each count bound: a list at the bound decodes, one more item is rejected.
TEST(PeerWire, CountBoundsAreEnforced) {
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  b.entries_max = b.ack_spans_max = b.relay_acks_max = b.relay_spans_max = 5;
  b.forwarded_acks_max = b.clock_offsets_max = b.relay_lives_max = 5;
  auto list = [](std::size_t n, const std::string& item) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) s += (i ? "," : "") + item;
    return s + "]";
  };
  const std::string T = kTs;
  auto bodies = [&](std::size_t n) {
    return std::vector<std::string>{
        good_gossip(list(n, "[\"sk\"," + T + ",2,\"1\"]")),
        R"({"type":"ack","a":)" + list(n, "[0,1,2]") + "}",
        R"({"type":"ack","ra":)" + list(n, "[1,0,1,2]") + "}",
        R"({"type":"gossip","r":{"sp":)" + list(n, "[1,0,1,0]") + "}}",
        R"({"type":"gossip","r":{"fa":)" + list(n, "[1,2,0,1,2]") + "}}",
        R"({"type":"gossip","co":)" + list(n, "[1,-5,3]") + "}",
        R"({"type":"gossip","r":{"lv":)" + list(n, "[1,1,2]") + "}}"};
  };
  b.min_ts_us = 1;
  for (const std::string& body : bodies(5)) {
    PeerDecodeResult r = decoder.decode(body, b, &m);
    EXPECT_TRUE(r.ok()) << r.reason << " in " << body;
  }
  for (const std::string& body : bodies(6)) {
    EXPECT_EQ(decoder.decode(body, b, &m).status, PeerStatus::kOutOfRange) << body;
  }
  // The defaults: every list may hold what the encoder's caps let through.
  PeerBounds d = bounds_at(3, kNow);
  EXPECT_EQ(d.ack_spans_max, peer_wire::kWireCaps.ack_spans);
  EXPECT_EQ(d.forwarded_acks_max, peer_wire::kWireCaps.forwarded_acks);
  EXPECT_EQ(decoder.decode(R"({"type":"ack","a":)" + list(d.ack_spans_max + 1, "[0,1,2]") + "}",
                           d, &m).status,
            PeerStatus::kOutOfRange);
}

// The client path can apply the same per-entry rules, so a node never holds what peers refuse.
TEST(PeerWire, KeyAndValueCheckersStandAlone) {
  EXPECT_EQ(check_encoded_key("sk"), nullptr);
  EXPECT_EQ(check_encoded_key("i-42"), nullptr);
  EXPECT_NE(check_encoded_key("k"), nullptr);
  EXPECT_NE(check_encoded_key("i042"), nullptr);
  EXPECT_NE(check_encoded_key("s\xed\xb0\x80"), nullptr);
  ValueTextChecker v;
  EXPECT_EQ(v.check(R"({"a":[1,"\u00e9"]})"), nullptr);
  EXPECT_NE(v.check("[1,\n2]"), nullptr);
  EXPECT_NE(v.check("1 2"), nullptr);
  EXPECT_NE(v.check(R"("\udc00")"), nullptr);
  EXPECT_NE(v.check("[[[]]]", limits::kValueBytesMax, 2), nullptr);
  EXPECT_EQ(v.check("[[]]", limits::kValueBytesMax, 2), nullptr);
}

// The values a peer's entries carry are mostly plain scalars, accepted without a parse; the
// rest are parsed. Both must agree with a parse on what is one valid value.
// A client may write a tab between a value's tokens and gets its value back as written: peers
// take it too (refusing it would refuse every message carrying the write, on every retry).
TEST(PeerWire, AValueWithATabBetweenItsTokensIsAccepted) {
  EXPECT_EQ(ValueTextChecker().check("[1,\t2]"), nullptr);
  EXPECT_EQ(ValueTextChecker().check("{\"a\" :\t{ } }"), nullptr);
  EXPECT_NE(ValueTextChecker().check("[1,\r2]"), nullptr);
  EXPECT_NE(ValueTextChecker().check("[1,\n2]"), nullptr);
}

TEST(PeerWire, PlainScalarsAreExactlyValidJson) {
  for (std::string_view yes : {"0", "-1", "123456789012345678", "true", "false", "null", R"("")",
                               R"("v é")"}) {
    EXPECT_TRUE(json::plain_scalar(yes)) << yes;
    EXPECT_EQ(ValueTextChecker().check(yes), nullptr) << yes;
  }
  // Not plain: some are still valid (parsed then), none is taken without a parse.
  for (std::string_view no : {"", "-", "-0x", "01", "1.5", "1e2", "+1", "1234567890123456789",
                              "tru", "truex", "nul", R"(")", R"("a\"b")", R"("a"b")", "\"a\x01\"",
                              "[1]", "{}", " 1", "1 "}) {
    EXPECT_FALSE(json::plain_scalar(no)) << no;
  }
  ValueTextChecker v;
  EXPECT_EQ(v.check("1.5"), nullptr);
  EXPECT_EQ(v.check("1234567890123456789"), nullptr);
  EXPECT_NE(v.check("01"), nullptr);
  EXPECT_NE(v.check("truex"), nullptr);
  EXPECT_NE(v.check(R"("a"b")"), nullptr);
}

TEST(PeerWire, StrictUtf8) {
  EXPECT_TRUE(json::valid_utf8("plain é 😀 \xef\xbf\xbf"));
  EXPECT_FALSE(json::valid_utf8("\xc0\x80"));           // overlong NUL
  EXPECT_FALSE(json::valid_utf8("\xe0\x80\x80"));       // overlong
  EXPECT_FALSE(json::valid_utf8("\xed\xa0\x80"));       // U+D800
  EXPECT_FALSE(json::valid_utf8("\xed\xbf\xbf"));       // U+DFFF
  EXPECT_TRUE(json::valid_utf8("\xed\x9f\xbf"));        // U+D7FF
  EXPECT_FALSE(json::valid_utf8("\xf4\x90\x80\x80"));   // past U+10FFFF
  EXPECT_TRUE(json::valid_utf8("\xf4\x8f\xbf\xbf"));    // U+10FFFF
  EXPECT_FALSE(json::valid_utf8("\xe2\x82"));           // truncated
  EXPECT_FALSE(json::valid_utf8("\x80"));               // stray continuation
  EXPECT_FALSE(json::valid_utf8("\xf5\x80\x80\x80"));
}

// ---- the encoder's bound ------------------------------------------------------------------

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void ints(Writer& w, std::initializer_list<std::int64_t> v) {
  w.StartArray();
  for (std::int64_t x : v) w.Int64(x);
  w.EndArray();
}

// Writes a gossip body with every list at its cap, the way the engine writes (entries until
// the batch reaches kBatchBytesLimit, checked before each entry), with the given integers.
std::string body_at_caps(std::size_t nodes, std::int64_t t, std::uint32_t origin,
                         const std::string& key, const std::string& value,
                         std::size_t* entries_bytes) {
  const peer_wire::WireCaps& c = peer_wire::kWireCaps;
  rapidjson::StringBuffer e;
  Writer ew(e);
  ew.StartArray();
  while (e.GetSize() < peer_wire::kBatchBytesLimit) {
    ew.StartArray();
    ew.String(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    ew.Int64(t);
    ew.Uint(origin);
    ew.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    for (std::size_t i = 0; i < peer_wire::kStandsForMax; ++i) {  // the older writes it stands for
      ew.Uint(origin);
      ew.Int64(t);
    }
    ew.EndArray();
  }
  ew.EndArray();
  *entries_bytes = e.GetSize() - 2;
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("type");
  w.String("gossip");
  w.Key("from");
  w.Int64(t);
  w.Key("to");
  w.Int64(t);
  w.Key("fl");
  w.Int64(t);
  w.Key("e");
  w.RawValue(e.GetString(), e.GetSize(), rapidjson::kArrayType);
  w.Key("wm");
  w.StartArray();
  for (std::size_t i = 0; i <= nodes; ++i) w.Int64(t);
  w.EndArray();
  w.Key("a");
  w.StartArray();
  for (std::size_t i = 0; i < c.ack_spans; ++i) ints(w, {t, t, t});
  w.EndArray();
  w.Key("al");
  w.Int64(t);
  w.Key("ra");
  w.StartArray();
  for (std::size_t i = 0; i < c.relay_acks; ++i) ints(w, {origin, t, t, t});
  w.EndArray();
  w.Key("r");
  w.StartObject();
  w.Key("sp");
  w.StartArray();
  for (std::size_t i = 0; i < c.relay_spans; ++i) ints(w, {origin, t, t, t});
  w.EndArray();
  w.Key("fa");
  w.StartArray();
  for (std::size_t i = 0; i < c.forwarded_acks; ++i) ints(w, {origin, origin, t, t, t});
  w.EndArray();
  w.Key("lv");
  w.StartArray();
  for (std::size_t i = 0; i < c.relay_lives; ++i) ints(w, {origin, t, t});
  w.EndArray();
  w.EndObject();
  // Offsets: the widest integer for the byte bound, the furthest decodable one otherwise.
  std::int64_t off = t < 0 ? t : -peer_wire::kClockSampleAbsMaxUs;
  w.Key("st");
  w.Int64(t);
  w.Key("mo");
  w.Int64(off);
  w.Key("co");
  w.StartArray();
  for (std::size_t i = 0; i < c.clock_offsets; ++i) ints(w, {origin, off, t < 0 ? t : -off});
  w.EndArray();
  w.Key("rq");
  w.Int64(t < 0 ? t : peer_wire::kReportSeqMax);
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

std::string wrap_in_line(const std::string& body, const std::string& id) {
  rapidjson::StringBuffer open;
  ReplyRenderer::peer_message(&open, id, id, body);
  std::string line;
  close_line(line, std::string_view(open.GetString(), open.GetSize()), UINT64_MAX);
  return line;
}

TEST(PeerWire, AMessageAtTheCapsFitsTheLineInTheWorstCase) {
  // Worst case for bytes: 20-character integers, the largest origin, a key of control bytes
  // (6 bytes each escaped), a value of only quotes and backslashes (2 each), ids of control
  // bytes, the largest cluster.
  std::string key = "s" + std::string(limits::kKeyBytesMax, '\x01');
  std::string value = "\"" + std::string(limits::kValueBytesMax - 2, '\\') + "\"";
  ASSERT_EQ(value.size(), limits::kValueBytesMax);
  std::size_t entries_bytes = 0;
  std::string body = body_at_caps(limits::kNodeIdsMax, INT64_MIN, UINT32_MAX, key, value,
                                  &entries_bytes);
  EXPECT_LE(entries_bytes + 2, peer_wire::kWireCaps.entries_bytes);
  std::string line = wrap_in_line(body, std::string(limits::kIdBytesMax, '\x02'));
  EXPECT_LE(line.size(), peer_wire::line_bytes_max(peer_wire::kWireCaps, limits::kNodeIdsMax));
  EXPECT_LE(line.size(), limits::kLineBytesMax);
  // Each per-item figure is an upper bound of what the writer emits.
  EXPECT_LE(line.size() - body.size() + 1, peer_wire::kEnvelopeBytesMax);
}

TEST(PeerWire, AMessageAtTheCapsDecodesWithTheDefaultBounds) {
  // Decodable: timestamps in the window, a value at the limit; the counts at the caps.
  std::string value = "\"" + std::string(limits::kValueBytesMax - 2, 'v') + "\"";
  std::size_t entries_bytes = 0;
  std::uint32_t nodes = 25;
  std::string body = body_at_caps(nodes, kNow, nodes, "s" + std::string(1024, 'k'), value,
                                  &entries_bytes);
  std::string line = wrap_in_line(body, "n25");
  EXPECT_LE(line.size(), limits::kLineBytesMax);
  PeerDecoder decoder;
  PeerMessage m;
  PeerDecodeResult r = decoder.decode(body, bounds_at(nodes, kNow), &m);
  ASSERT_TRUE(r.ok()) << r.reason << " at " << r.offset;
  EXPECT_EQ(m.acks.size(), peer_wire::kWireCaps.ack_spans);
  EXPECT_EQ(m.relay_acks.size(), peer_wire::kWireCaps.relay_acks);
  EXPECT_EQ(m.relay_spans.size(), peer_wire::kWireCaps.relay_spans);
  EXPECT_EQ(m.forwarded_acks.size(), peer_wire::kWireCaps.forwarded_acks);
  EXPECT_EQ(m.clock_offsets.size(), peer_wire::kWireCaps.clock_offsets);
  EXPECT_EQ(m.relay_lives.size(), peer_wire::kWireCaps.relay_lives);
  EXPECT_GE(m.entries.size(), 1u);
}

TEST(PeerWire, ItemsThatFit) {
  EXPECT_EQ(peer_wire::items_that_fit(65 * 10 + 64, peer_wire::kAckSpanBytesMax), 10u);
  EXPECT_EQ(peer_wire::kAckSpanBytesMax, std::string("[-9223372036854775808,-9223372036854775808,"
                                                     "-9223372036854775808],").size());
  EXPECT_EQ(peer_wire::kForwardedAckBytesMax,
            std::string("[4294967295,4294967295,-9223372036854775808,-9223372036854775808,"
                        "-9223372036854775808],").size());
}

// ---- allocations ----------------------------------------------------------------------------

TEST(PeerWire, AWarmDecoderDoesNotAllocatePerEntry) {
#ifndef PEER_WIRE_COUNTS_NEWS
  GTEST_SKIP() << "operator new is the sanitizer's in this build";
#else
  auto message = [](int n) {
    std::string e = "[";
    for (int i = 0; i < n; ++i) {
      e += (i ? "," : "") + std::string("[\"sk") + std::to_string(i) + "\"," + kTs +
           ",2,\"{\\\"a\\\":[1,\\\"x\\\"]}\"]";
    }
    return good_gossip(e + "]");
  };
  std::string big = message(2000), small = message(16);
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = bounds_at(3, kNow);
  ASSERT_TRUE(decoder.decode(big, b, &m).ok());  // warm: buffers grow to the largest message
  g_news = 0;
  g_count_news = true;
  bool ok = decoder.decode(big, b, &m).ok() && decoder.decode(small, b, &m).ok() &&
            decoder.decode(big, b, &m).ok();
  g_count_news = false;
  ASSERT_TRUE(ok);
  EXPECT_EQ(g_news, 0u);
  EXPECT_EQ(m.entries.size(), 2000u);
#endif
}

}  // namespace
}  // namespace gossip_kv
