// Fuzz target: the kv_merge entries decoder (parse_entries), fed the raw JSON text of an
// `entries` member. Invariants: never crash; a successful decode respects every limit (entry
// count, key and value bytes, value nesting, ts window, node id length), every decoded string is
// valid UTF-8, and a kv_read_ok rendered for any entry is one line of valid UTF-8 JSON.
// Run: build-fuzz/bin/merge_entries_fuzz tests/fuzz/corpus/merge_entries -dict=tests/fuzz/gossip_kv.dict
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/stringbuffer.h>

#include "fuzz_checks.h"
#include "gossip_kv/codec.h"
#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "gossip_kv/version.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gossip_kv;
  // The node only ever decodes entries from inside one line: no '\n' in them.
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view text = input.substr(0, input.find('\n'));
  if (text.size() > limits::kLineBytesMax) return 0;
  // A fixed clock keeps runs reproducible: 2023-11-14T22:13:20Z.
  constexpr std::int64_t kNowUs = 1'700'000'000'000'000;
  constexpr std::int64_t kCeilingUs = kNowUs + limits::kVersionAheadMaxUs;
  static Request req;  // reused, as the reader reuses a slot's Request
  static std::string problem;
  req.msg_id = "7";
  req.src = "c1";
  if (!parse_entries(text, &req, &problem, kCeilingUs)) {
    FUZZ_CHECK(!problem.empty() && fuzz::strict_utf8(problem), text);
    return 0;
  }
  FUZZ_CHECK(req.entry_count <= limits::kMergeEntriesMax, text);
  static ReplyRenderer renderer;
  static rapidjson::StringBuffer out;
  static std::string line;
  for (std::size_t i = 0; i < req.entry_count; ++i) {
    const MergeEntry& e = req.entries[i];
    // An encoded key is a tag then the key ("s" alone is the empty string key).
    FUZZ_CHECK(!e.key.empty() && (e.key[0] == 's' || e.key[0] == 'i') &&
                   key::body(e.key).size() <= limits::kKeyBytesMax, e.key);
    FUZZ_CHECK(fuzz::strict_utf8(e.key), e.key);
    FUZZ_CHECK(e.value.size() <= limits::kValueBytesMax, e.value);
    fuzz::JsonFacts f = fuzz::json_facts(e.value);
    FUZZ_CHECK(f.valid && f.strings_ok && f.depth <= limits::kValueDepthMax, e.value);
    FUZZ_CHECK(e.version.ts_us >= 0 && e.version.ts_us <= kCeilingUs, text);
    FUZZ_CHECK(e.node.size() <= limits::kIdBytesMax && fuzz::strict_utf8(e.node), e.node);
    renderer.read_ok(&out, "n1", req, true, e.key, e.value, e.version.ts_us);
    line.clear();
    close_line(line, std::string_view(out.GetString(), out.GetSize()), 1);
    fuzz::check_output_line(line);
  }
  return 0;
}
