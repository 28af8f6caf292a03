// The wire codec: one input line to a Request, and replies rendered into reused buffers.
//
// Parsing fills a Request in place: envelope fields, then the body's fields; values, `from` and
// `to` are kept as the exact bytes of their JSON text. The line is checked as UTF-8 whole; then
// the common single-key requests in plain form take a one-pass scan (parse_flat_line), and every
// other line one RapidJSON SAX pass. A Request is reused from line to line, so on the steady
// path parsing allocates nothing once its strings have grown to the workload's sizes.
// Replies are appended as text where the members are known (ReplyWriter::raw_member) and through
// RapidJSON's writer otherwise.
//
// Thread safety: a Parser or ReplyRenderer belongs to one thread; a Request is handed between
// threads through the runtime's queues (which order the accesses).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "gossip_kv/version.h"

namespace gossip_kv {

enum class MsgType : std::uint8_t {
  kInit,
  kWrite,
  kKvRead,
  kKvMerge,
  kRead,
  kCas,
  kBenchWrite,
  kBenchReport,
  kBenchStats,
  kBenchFigures,
  kPeer,    // a replication message from another node: handed to the gossip thread
  kReply,   // a reply (type "error" or "*_ok") sent to us: never answered, to avoid loops
  kUnknown  // answered with error 10
};

// Maelstrom error codes (PROTOCOL.md).
enum class ErrorCode : int {
  kNone = 0,
  kNotSupported = 10,
  kTemporarilyUnavailable = 11,
  kMalformedRequest = 12,
  kCrash = 13,
  kKeyDoesNotExist = 20,
  kPreconditionFailed = 22,
};

struct MergeEntry {
  std::string key;    // encoded (key.h)
  std::string value;  // raw JSON text
  Version version;
  std::string node;   // the entry's "node" when given (resolved to version.origin after init)
};

struct Request {
  // Envelope.
  std::string src;
  std::string dest;
  // Body.
  MsgType type = MsgType::kUnknown;
  std::string type_name;
  std::string msg_id;  // the msg_id's JSON text (an integer), echoed as in_reply_to
  std::string key;     // encoded (key.h)
  std::string value;   // raw JSON text of value / to (cas)
  std::string from;    // raw JSON text of from (cas)
  std::string node_id;
  std::vector<std::string> node_ids;
  std::vector<MergeEntry> entries;  // kv_merge; only the first entry_count are live
  std::size_t entry_count = 0;
  // Set when the request can be answered but not served: the error to answer with.
  ErrorCode error = ErrorCode::kNone;
  std::string error_text;

  // Heap bytes this Request's buffers hold (string capacity beyond the inline buffer, vector
  // capacity, and the strings of every entry and node id allocated so far), live or not.
  [[nodiscard]] std::size_t capacity_bytes() const;
  // Gives every buffer back to the allocator (the Request keeps nothing but its fields' empty
  // values); the next parse allocates afresh.
  void release_buffers();

  // Replies to this request are possible (it has a src and a msg_id).
  [[nodiscard]] bool answerable() const { return !src.empty() && !msg_id.empty(); }
  bool from_peer() const { return !src.empty() && src[0] == 'n'; }
};

enum class ParseStatus {
  kOk,           // *req is filled; req->error may still say why it cannot be served
  kUnanswerable  // invalid JSON or no usable src/msg_id: log *problem to stderr, answer nothing
};

class Parser {
 public:
  // Parses one line (without its newline). On kOk, req holds the request; on kUnanswerable,
  // *problem says why (for the stderr line).
  ParseStatus parse(std::string_view line, Request* req, std::string* problem);
  // The general parse alone (RapidJSON, every shape), without the fast path: tests compare
  // the two.
  ParseStatus parse_general(std::string_view line, Request* req, std::string* problem);

 private:
  // The RapidJSON pass itself. REQUIRES: line is valid UTF-8 (checked once, by the caller).
  ParseStatus parse_json(std::string_view line, Request* req, std::string* problem);

  std::string scratch_;
  std::string insitu_;  // the line's copy the parser decodes strings in (see codec.cpp)
  // Reused, so that its stack (the iterative parser's state, decoded strings) is not allocated
  // per line; replaced after a line over kReaderResetBytes, so that it keeps at most about
  // 8 bytes per byte of such a line (128 KiB), not the size a 1 MiB line made it. insitu_ is
  // given back with it.
  static constexpr std::size_t kReaderResetBytes = 16 * 1024;
  std::optional<rapidjson::Reader> reader_{std::in_place};
};

// RapidJSON's writer, able to go on with a reply whose opening was appended as raw text.
class ReplyWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
 public:
  // Takes out, which holds `{"src":S,"dest":D,"body":{"type":T,"in_reply_to":N`: members
  // written next go into the body, after a comma.
  void continue_body(rapidjson::StringBuffer& out);
  // Appends the member "name": json to the innermost open object. name must need no escaping
  // (it is one of the protocol's member names); json must be one valid JSON value.
  void raw_member(std::string_view name, std::string_view json);
  // Appends the member "name": "s", s escaped as JSON needs.
  void string_member(std::string_view name, std::string_view s);

 private:
  // The separator and `"name":`, counted as a member of the innermost open object.
  void member_name(std::string_view name);
};

// Renders reply lines into a caller's buffer. Each rendered line is left open at the end of its
// body, so that the writer can append `,"msg_id":N}}\n` in output order.
class ReplyRenderer {
 public:
  using Writer = ReplyWriter;

  // Starts a reply to req from self: envelope, type and in_reply_to. Returns the writer,
  // positioned inside the body object, for the reply's own members. type needs no escaping
  // (it is one of the protocol's reply types).
  Writer& begin(rapidjson::StringBuffer* out, std::string_view self, const Request& req,
                std::string_view type);
  // Starts a message to a peer, with body_json (a JSON object without msg_id) as its body.
  static void peer_message(rapidjson::StringBuffer* out, std::string_view self,
                           std::string_view dest, std::string_view body_json);
  // A whole error reply.
  void error(rapidjson::StringBuffer* out, std::string_view self, const Request& req,
             ErrorCode code, std::string_view text);
  // The whole reply to a read that found value (raw JSON text) at version time ts_us:
  // kv_read_ok with key, value and ts when kv, else read_ok with the value.
  void read_ok(rapidjson::StringBuffer* out, std::string_view self, const Request& req, bool kv,
               std::string_view encoded_key, std::string_view value, std::int64_t ts_us);
  // Appends the member "key": <the encoded key's JSON value>.
  static void key_member(Writer& w, std::string_view encoded_key);
  // Appends the member "ts": a version's time in seconds, to the microsecond: the exact
  // decimal of ts_us / 1e6 ("1764659400.123456", "1764659400.5", "1764659400.0"), formatted
  // from the integer.
  void ts_member(Writer& w, std::int64_t ts_us);

 private:
  Writer writer_;
  std::string self_;     // the self of the last reply begun, and
  std::string opening_;  // its `{"src":"<self>","dest":`
  bool opening_cached_ = false;  // self_ and opening_ are set (self may be empty: before init)
  std::int64_t ts_seconds_ = -1;  // the whole seconds of the last ts_member, and
  std::size_t ts_seconds_len_ = 0;  // the length of their digits and '.' in
  char ts_text_[32] = {};           // the text ts_member formats in
};

// What a message of this type is: one of the node's requests, a reply (type "error" or
// "*_ok", never answered), a peer's message (any other type from a node, from_peer), or unknown.
MsgType classify_type(std::string_view name, bool from_peer);

// The line decoder's fast path (flat_line.cpp): decodes the common single-key requests in their
// plain form (no escapes, no nested values, integers of at most 18 digits) and returns true, or
// returns false and leaves the line to the general parse. What it decodes, it decodes exactly
// as the general parse does, without error. REQUIRES: line is valid UTF-8.
bool parse_flat_line(std::string_view line, Request* req);

// Decodes kv_merge's entries object (the raw JSON text of `entries`) into req->entries[0,
// entry_count). Returns false with *problem set when any entry is malformed, over a limit
// (limits.h), names a member twice within an entry, or has a ts above ts_max_us.
bool parse_entries(std::string_view text, Request* req, std::string* problem,
                   std::int64_t ts_max_us);

// Appends `,"msg_id":N}}\n` to a line from ReplyRenderer, closing it.
void close_line(std::string& out, std::string_view open_line, std::uint64_t msg_id);

}  // namespace gossip_kv
