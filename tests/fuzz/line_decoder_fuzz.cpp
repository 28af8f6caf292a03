// Fuzz target: the line decoder (Parser::parse) and the replies rendered for what it decodes.
// Invariants: never crash; every rendered reply is one line of valid UTF-8 JSON whose strings
// are valid UTF-8; a request decoded without error respects every limit in limits.h; the fast
// path decodes what it takes exactly as the general parse does.
// Run: build-fuzz/bin/line_decoder_fuzz tests/fuzz/corpus/line_decoder -dict=tests/fuzz/gossip_kv.dict
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/stringbuffer.h>

#include "codec/json_util.h"
#include "fuzz_checks.h"
#include "replication/content_sync_codec.h"
#include "replication/peer_wire.h"
#include "gossip_kv/codec.h"
#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "gossip_kv/version.h"

namespace gossip_kv::fuzz {
namespace {

// True when the gossip thread's decoders both refuse a peer's body: the engine's (PeerDecoder),
// and content sync's for a type the first does not know.
bool decoders_refuse(std::string_view body) {
  static PeerDecoder decoder;
  static PeerMessage m;
  static sync::Message sm;
  PeerDecodeResult r = decoder.decode(body, PeerBounds::for_cluster(3, 0, INT64_MAX), &m);
  if (r.ok()) return false;
  if (r.status != PeerStatus::kUnknownType) return true;
  return !sync::decode(body, sync::DecodeLimits{3, INT64_MAX}, &sm).empty();
}

void check_limits(const Request& req) {
  FUZZ_CHECK(req.src.size() <= limits::kIdBytesMax && strict_utf8(req.src), req.src);
  FUZZ_CHECK(strict_utf8(req.dest), req.dest);
  FUZZ_CHECK(strict_utf8(req.error_text), req.error_text);
  if (req.error != ErrorCode::kNone) return;
  if (req.type == MsgType::kPeer) {
    // The body handed to the gossip thread: valid JSON, or (delimited by the fast path without
    // a parse) refused by the decoders there.
    JsonFacts f = json_facts(req.value);
    FUZZ_CHECK((f.valid && f.strings_ok && f.depth <= limits::kLineDepthMax) ||
                   decoders_refuse(req.value),
               req.value);
    return;
  }
  auto check_key = [](const std::string& k) {
    // An encoded key is a tag then the key ("s" alone is the empty string key).
    FUZZ_CHECK(!k.empty() && (k[0] == 's' || k[0] == 'i') &&
                   key::body(k).size() <= limits::kKeyBytesMax, k);
    FUZZ_CHECK(strict_utf8(k), k);
  };
  auto check_value = [](const std::string& v) {
    FUZZ_CHECK(v.size() <= limits::kValueBytesMax, v);
    JsonFacts f = json_facts(v);
    FUZZ_CHECK(f.valid && f.strings_ok && f.depth <= limits::kValueDepthMax, v);
  };
  switch (req.type) {
    case MsgType::kWrite:
    case MsgType::kBenchWrite:
      check_key(req.key);
      check_value(req.value);
      break;
    case MsgType::kRead:
    case MsgType::kKvRead:
      check_key(req.key);
      break;
    case MsgType::kCas:
      check_key(req.key);
      check_value(req.from);
      check_value(req.value);
      break;
    case MsgType::kKvMerge: {
      FUZZ_CHECK(req.entry_count <= limits::kMergeEntriesMax, "entry_count");
      std::int64_t ceiling = add_saturating(wall_clock_us(), limits::kVersionAheadMaxUs);
      for (std::size_t i = 0; i < req.entry_count; ++i) {
        const MergeEntry& e = req.entries[i];
        check_key(e.key);
        check_value(e.value);
        FUZZ_CHECK(e.version.ts_us >= 0 && e.version.ts_us <= ceiling, e.value);
        FUZZ_CHECK(e.node.size() <= limits::kIdBytesMax && strict_utf8(e.node), e.node);
      }
      break;
    }
    case MsgType::kInit:
      FUZZ_CHECK(!req.node_id.empty() && req.node_id.size() <= limits::kIdBytesMax &&
                     strict_utf8(req.node_id), req.node_id);
      FUZZ_CHECK(req.node_ids.size() <= limits::kNodeIdsMax, "node_ids");
      for (const std::string& id : req.node_ids) {
        FUZZ_CHECK(!id.empty() && id.size() <= limits::kIdBytesMax && strict_utf8(id), id);
      }
      break;
    default:
      break;
  }
}

// Renders what the node would answer for req, as the reader and workers do, and checks it.
void check_replies(const Request& req) {
  static ReplyRenderer renderer;
  static rapidjson::StringBuffer out;
  static std::string line;
  auto emit = [&] {
    line.clear();
    close_line(line, std::string_view(out.GetString(), out.GetSize()), 42);
    check_output_line(line);
  };
  // The reader's error reply before init: the request's dest stands in for the node's id.
  renderer.error(&out, req.dest, req, req.error == ErrorCode::kNone ? ErrorCode::kNotSupported
                                                                    : req.error,
                 req.error == ErrorCode::kNone ? "unsupported message type: " + req.type_name
                                               : req.error_text);
  emit();
  if (req.error != ErrorCode::kNone) return;
  switch (req.type) {
    case MsgType::kWrite:
    case MsgType::kCas:
    case MsgType::kRead:
    case MsgType::kKvRead: {
      // A read of what this request would store, rendered as the worker renders it:
      // kv_read_ok echoes the key and the value.
      bool stores = req.type == MsgType::kWrite || req.type == MsgType::kCas;
      renderer.read_ok(&out, "n1", req, true, req.key, stores ? req.value : "null", 1500000);
      emit();
      break;
    }
    case MsgType::kKvMerge:
      for (std::size_t i = 0; i < req.entry_count; ++i) {
        const MergeEntry& e = req.entries[i];
        renderer.read_ok(&out, "n1", req, true, e.key, e.value, e.version.ts_us);
        emit();
      }
      break;
    case MsgType::kInit:
      renderer.begin(&out, req.node_id, req, "init_ok");
      emit();
      break;
    default:
      break;
  }
}

// The fast path (parse_flat_line) takes only lines that the general parse decodes without error,
// and fills the request as the general parse does.
void check_fast_path(std::string_view line) {
  static Parser general;
  static Request flat;
  static Request slow;
  static std::string problem;
  if (!json::valid_utf8(line) || !parse_flat_line(line, &flat)) return;
  bool general_ok = general.parse_general(line, &slow, &problem) == ParseStatus::kOk &&
                    slow.error == ErrorCode::kNone;
  if (flat.type == MsgType::kPeer && !general_ok) {
    // A peer's body is only delimited: its decoders must refuse what the general parse refuses.
    FUZZ_CHECK(decoders_refuse(flat.value), line);
    return;
  }
  FUZZ_CHECK(general_ok, line);
  if (flat.type == MsgType::kPeer) FUZZ_CHECK(flat.value == slow.value, line);
  FUZZ_CHECK(flat.src == slow.src && flat.dest == slow.dest && flat.type == slow.type &&
                 flat.type_name == slow.type_name && flat.msg_id == slow.msg_id &&
                 flat.error == ErrorCode::kNone,
             line);
  // A peer's message is its body: any key member in it is the engine's business.
  if (flat.type != MsgType::kPeer) FUZZ_CHECK(flat.key == slow.key, line);
  if (slow.type == MsgType::kWrite || slow.type == MsgType::kBenchWrite ||
      slow.type == MsgType::kCas) {
    FUZZ_CHECK(flat.value == slow.value, line);
  }
  if (slow.type == MsgType::kCas) FUZZ_CHECK(flat.from == slow.from, line);
}

}  // namespace
}  // namespace gossip_kv::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gossip_kv;
  // The reader splits input at '\n' and skips lines over the limit before parsing.
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view line = input.substr(0, input.find('\n'));
  if (line.size() > limits::kLineBytesMax) return 0;
  // Reused from input to input, as the reader reuses a slot's Request: stale state from an
  // earlier line must never leak into a later one.
  fuzz::check_fast_path(line);
  static Parser parser;
  static Request req;
  static std::string problem;
  if (parser.parse(line, &req, &problem) == ParseStatus::kUnanswerable) {
    FUZZ_CHECK(!problem.empty(), line);
    return 0;
  }
  FUZZ_CHECK(req.answerable(), line);
  fuzz::check_limits(req);
  fuzz::check_replies(req);
  return 0;
}
