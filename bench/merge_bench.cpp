// The merge path: a batch of versioned entries applied to the Store, as replication and
// kv_merge do; plus local writes and reads for scale.
#include <benchmark/benchmark.h>

#include <atomic>
#include <random>

#include "gossip_kv/key.h"
#include "gossip_kv/store.h"

namespace gossip_kv {
namespace {

struct Batch {
  std::vector<std::string> keys;
  std::string value = R"({"v":"some value of moderate size","n":12345})";
};

Batch make_batch(std::size_t size, std::size_t key_space, std::uint64_t seed) {
  Batch b;
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < size; ++i) {
    std::string k;
    key::encode_int(static_cast<std::int64_t>(rng() % key_space), k);
    b.keys.push_back(std::move(k));
  }
  return b;
}

// range(0): entries per batch; range(1): key space. Every batch carries newer versions, so
// every entry is taken (the expensive case).
void BM_MergeNewer(benchmark::State& state) {
  static Store store;  // shared by the threads of a multi-threaded run
  auto size = static_cast<std::size_t>(state.range(0));
  Batch b = make_batch(size, static_cast<std::size_t>(state.range(1)),
                       static_cast<std::uint64_t>(state.thread_index()));
  // One timestamp source for every run and thread, so each batch is newer than all before.
  static std::atomic<std::int64_t> next_ts{1};
  auto origin = static_cast<std::uint32_t>(state.thread_index() + 1);
  for (auto _ : state) {
    std::int64_t ts = next_ts.fetch_add(1, std::memory_order_relaxed);
    for (const std::string& k : b.keys) {
      benchmark::DoNotOptimize(store.merge(k, b.value, Version{ts, origin}, 0).applied);
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * state.range(0) *
                          static_cast<std::int64_t>(b.value.size()));
}
BENCHMARK(BM_MergeNewer)->Args({64, 1000})->Args({1024, 1000})->Args({1024, 1000000});
BENCHMARK(BM_MergeNewer)->Args({1024, 1000000})->Threads(2)->UseRealTime();

// Entries older than what is stored: the cheap, common case of redundant gossip.
void BM_MergeIgnored(benchmark::State& state) {
  Store store;
  Batch b = make_batch(1024, 1000, 7);
  for (const std::string& k : b.keys) store.merge(k, b.value, Version{1'000'000, 1}, 0);
  for (auto _ : state) {
    for (const std::string& k : b.keys) {
      benchmark::DoNotOptimize(store.merge(k, b.value, Version{5, 1}, 0).applied);
    }
  }
  state.SetItemsProcessed(state.iterations() * 1024);
  state.SetBytesProcessed(state.iterations() * 1024 * static_cast<std::int64_t>(b.value.size()));
}
BENCHMARK(BM_MergeIgnored);

void BM_WriteThenRead(benchmark::State& state) {
  Store store;
  HybridClock clock;
  Batch b = make_batch(1024, 1000, 9);
  std::string out;
  for (auto _ : state) {
    for (const std::string& k : b.keys) {
      store.write(k, b.value, 1, 1, clock);
      benchmark::DoNotOptimize(store.read(k, 2, &out, nullptr));
    }
  }
  state.SetItemsProcessed(state.iterations() * 2048);
  state.SetBytesProcessed(state.iterations() * 2048 * static_cast<std::int64_t>(b.value.size()));
}
BENCHMARK(BM_WriteThenRead);

}  // namespace
}  // namespace gossip_kv

BENCHMARK_MAIN();
