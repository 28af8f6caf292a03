// Decoding one peer message: PeerDecoder (one typed SAX pass, in situ, reused buffers) against
// what GossipEngine::on_peer_message does today (a fresh rapidjson::Document per message, then
// reads the members it wants).
#include <string>

#include <benchmark/benchmark.h>
#include <rapidjson/document.h>

#include "replication/peer_wire.h"

namespace gossip_kv {
namespace {

constexpr std::int64_t kNow = 1'700'000'000'000'000;

// A push with 16 small entries (keys and values as Maelstrom's kv workloads write them), the
// chain and a few acknowledgement spans, as the engine writes it.
std::string gossip_16() {
  std::string ts = std::to_string(kNow);
  std::string s = R"({"type":"gossip","from":)" + std::to_string(kNow - 100000) + R"(,"to":)" + ts +
                  R"(,"e":[)";
  for (int i = 0; i < 16; ++i) {
    if (i > 0) s += ',';
    s += (i % 2 ? "[\"i" + std::to_string(i * 37) : "[\"suser:" + std::to_string(i)) + "\"," +
         std::to_string(kNow - i) + ",2,\"" + (i % 2 ? std::to_string(i * 1000) : "\\\"v" + std::to_string(i) + "\\\"") + "\"]";
  }
  s += R"(],"a":[[0,)" + ts + "," + ts + "],[" + ts + "," + ts + "," + ts + R"(]],"msg_id":12345})";
  return s;
}

void BM_PeerDecoder(benchmark::State& state) {
  const std::string body = gossip_16();
  PeerDecoder decoder;
  PeerMessage m;
  PeerBounds b = PeerBounds::for_cluster(3, 1, kNow + 10'000'000);
  for (auto _ : state) {
    PeerDecodeResult r = decoder.decode(body, b, &m);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(m.entries.data());
  }
  if (m.entries.size() != 16) state.SkipWithError("did not decode 16 entries");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_PeerDecoder);

// Today's path: parse into a DOM, then read every entry as on_peer_message does (unchecked
// values, no range checks).
void BM_DocumentParse(benchmark::State& state) {
  const std::string body = gossip_16();
  std::size_t entries = 0;
  for (auto _ : state) {
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    entries = 0;
    if (!d.HasParseError() && d.IsObject() && d.HasMember("e") && d["e"].IsArray()) {
      for (const auto& e : d["e"].GetArray()) {
        entries += e.IsArray() && e.Size() == 4 && e[0].IsString() && e[1].IsInt64() &&
                   e[2].IsUint() && e[3].IsString();
      }
    }
    benchmark::DoNotOptimize(entries);
  }
  if (entries != 16) state.SkipWithError("did not read 16 entries");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_DocumentParse);

}  // namespace
}  // namespace gossip_kv

BENCHMARK_MAIN();
