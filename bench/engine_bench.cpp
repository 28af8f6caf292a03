// A peer's push applied by the engine, end to end: decode, merge into the store, index for
// anti-entropy, bookkeeping (issue 12's "a peer message of 16 small entries parsed and applied
// in at most 1.5 µs"). Every entry is a newer version of a key the replica already holds, so
// the anti-entropy index moves each one (erase at its old place, insert at the end).
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "gossip_kv/store.h"
#include "replication/gossip_engine.h"

namespace gossip_kv {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000'000;
constexpr std::int64_t kFloor = kT0 - 1;

std::string key_of(std::int64_t k) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "sk%07lld", static_cast<long long>(k));
  return buf;
}

// A push from n2 of its writes `keys`, at versions ts + 1, ts + 2, ..., with the chain that
// covers them, (ts, ts + keys.size()]: n2's push of its newest writes, as on the fast path.
std::string push(const std::vector<std::int64_t>& keys, std::int64_t ts) {
  std::string s = R"({"type":"gossip","from":)" + std::to_string(ts) + R"(,"to":)" +
                  std::to_string(ts + static_cast<std::int64_t>(keys.size())) + R"(,"fl":)" +
                  std::to_string(kFloor) + R"(,"e":[)";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) s += ',';
    s += "[\"" + key_of(keys[i]) + "\"," + std::to_string(ts + 1 + static_cast<std::int64_t>(i)) + R"(,2,"7"])";
  }
  return s + "]}";
}

// The timed step, apart so that callgrind can count it alone
// (--toggle-collect='*apply_and_tick*').
[[gnu::noinline]] void apply_and_tick(GossipEngine& n1, const std::string& body, std::int64_t now_us,
                                      std::vector<OutMessage>& out) {
  n1.on_peer_message("n2", body, now_us, out);
  n1.tick(now_us, out);  // as the gossip thread does: work only when a round is due
}

void BM_ApplyPush16(benchmark::State& state) {
  const auto keys = state.range(0);
  Store store;
  GossipEngine n1(GossipConfig{}, "n1", {"n1", "n2", "n3"}, store, 7, kT0);
  std::vector<OutMessage> out;
  std::int64_t ts = kFloor;  // n2's chain starts at its floor
  std::vector<std::int64_t> batch;
  for (std::int64_t k = 0; k < keys; ++k) {  // the replica holds every key, at n2's version
    batch.push_back(k);
    if (batch.size() == 1000 || k + 1 == keys) {
      n1.on_peer_message("n2", push(batch, ts), ts + 1'000, out);
      n1.tick(ts + 1'000, out);  // reports go, figures settle: nothing piles up
      ts += static_cast<std::int64_t>(batch.size());
      batch.clear();
      out.clear();
    }
  }
  std::mt19937_64 rng(5);
  std::vector<std::string> pushes(2048);
  std::vector<std::int64_t> at(pushes.size());
  // Each push's last entry (the newest version it carries): the replica must hold it after.
  std::vector<std::pair<std::int64_t, std::int64_t>> last(pushes.size());
  auto refill = [&] {
    for (std::size_t i = 0; i < pushes.size(); ++i) {
      batch.clear();
      for (int e = 0; e < 16; ++e) batch.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(keys)));
      pushes[i] = push(batch, ts);
      at[i] = ts + 1'000;
      last[i] = {batch.back(), ts + static_cast<std::int64_t>(batch.size())};
      ts += 16;
    }
  };
  refill();
  std::size_t next = 0;
  for (auto _ : state) {
    if (next == pushes.size()) {
      state.PauseTiming();
      n1.tick(at[next - 1], out);
      out.clear();
      refill();
      next = 0;
      state.ResumeTiming();
    }
    apply_and_tick(n1, pushes[next], at[next], out);
    ++next;
    out.clear();
  }
  if (store.key_count() != static_cast<std::size_t>(keys)) state.SkipWithError("keys lost");
  for (std::size_t i = 0; i < next; ++i) {  // the last round of pushes, read from the store
    const Entry* e = store.find(key_of(last[i].first));
    if (e == nullptr || store.load(*e, nullptr).ts_us < last[i].second) {
      state.SkipWithError("a push was not applied");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApplyPush16)->Arg(1000)->Arg(1000000);

}  // namespace
}  // namespace gossip_kv

BENCHMARK_MAIN();
