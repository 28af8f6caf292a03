// The parse path: one input line to a Request, reusing one Parser and one Request as the
// reader does; and the render path: a reply into a reused buffer, closed with its msg_id.
#include <benchmark/benchmark.h>

#include "gossip_kv/codec.h"

namespace gossip_kv {
namespace {

std::string nested_value(std::size_t bytes) {
  std::string v = R"({"items":[)";
  for (int i = 0; v.size() < bytes; ++i) {
    if (i > 0) v += ',';
    v += R"({"id":)" + std::to_string(i) + R"(,"name":"item-)" + std::to_string(i) +
         R"(","tags":["a","b"],"price":)" + std::to_string(i) + ".25}";
  }
  return v + "]}";
}

std::string merge_line(int entries) {
  std::string s = R"({"src":"n2","dest":"n1","body":{"type":"kv_merge","msg_id":9,"entries":{)";
  for (int i = 0; i < entries; ++i) {
    if (i > 0) s += ',';
    s += "\"k" + std::to_string(i) + R"(":{"value":"v)" + std::to_string(i) +
         R"(","ts":1704067201.123456,"node":"n2"})";
  }
  return s + "}}}";
}

// A peer's gossip push with 16 small entries, as the engine writes it (the body of
// peer_wire_bench's message): the reader only routes it, the gossip thread decodes it.
std::string peer_gossip_line() {
  const std::string ts = "1700000000000000";
  std::string s = R"({"src":"n2","dest":"n1","body":{"type":"gossip","from":1699999999900000,"to":)" +
                  ts + R"(,"e":[)";
  for (int i = 0; i < 16; ++i) {
    if (i > 0) s += ',';
    s += (i % 2 ? "[\"i" + std::to_string(i * 37) : "[\"suser:" + std::to_string(i)) + "\"," +
         ts + ",2,\"" + (i % 2 ? std::to_string(i * 1000) : "\\\"v" + std::to_string(i) + "\\\"") +
         "\"]";
  }
  return s + R"(],"a":[[0,)" + ts + "," + ts + R"(]],"msg_id":12345}})";
}

const std::string& line_for(int which) {
  static const std::string lines[] = {
      R"({"src":"c3","dest":"n1","body":{"type":"write","msg_id":12345,"key":"user:42","value":"hello"}})",
      R"({"src":"c3","dest":"n1","body":{"type":"kv_read","msg_id":12346,"key":417}})",
      R"({"src":"c3","dest":"n1","body":{"type":"write","msg_id":12347,"key":7,"value":)" +
          nested_value(1024) + "}}",
      merge_line(16),
      R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n2","n3","n4","n5"]}})",
      peer_gossip_line(),
  };
  return lines[which];
}

void BM_Parse(benchmark::State& state, int which) {
  const std::string& line = line_for(which);
  Parser parser;
  Request req;
  std::string problem;
  for (auto _ : state) {
    ParseStatus st = parser.parse(line, &req, &problem);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(req.key.data());
  }
  if (req.error != ErrorCode::kNone) state.SkipWithError(req.error_text.c_str());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(line.size()));
}
BENCHMARK_CAPTURE(BM_Parse, write_small, 0);
BENCHMARK_CAPTURE(BM_Parse, kv_read, 1);
BENCHMARK_CAPTURE(BM_Parse, write_1KiB_nested, 2);
BENCHMARK_CAPTURE(BM_Parse, kv_merge_16, 3);
BENCHMARK_CAPTURE(BM_Parse, init_5_nodes, 4);
BENCHMARK_CAPTURE(BM_Parse, peer_gossip_16, 5);

void BM_RenderKvReadOk(benchmark::State& state) {
  Parser parser;
  Request req;
  std::string problem;
  parser.parse(line_for(1), &req, &problem);
  ReplyRenderer renderer;
  rapidjson::StringBuffer buf;
  std::string out;
  const std::string value = R"({"a":[1,2,3],"b":"text"})";
  std::uint64_t msg_id = 0;
  for (auto _ : state) {
    renderer.read_ok(&buf, "n1", req, true, req.key, value, 1704067201123456);  // as the worker
    out.clear();
    close_line(out, std::string_view(buf.GetString(), buf.GetSize()), msg_id++);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_RenderKvReadOk);

}  // namespace
}  // namespace gossip_kv

BENCHMARK_MAIN();
