// run_node: starts the threads, runs the reader, and shuts down in order at end of input.
#include "gossip_kv/runtime.h"

#include <algorithm>
#include <thread>

#include "runtime/shared.h"

namespace gossip_kv::rt {

Shared::Shared(std::size_t worker_count, std::size_t shards) : store(shards) {
  for (std::size_t i = 0; i < worker_count; ++i) {
    workers.push_back(std::make_unique<WorkerChannel>());
  }
  for (std::size_t i = 0; i < limits::kPeerInboxMax; ++i) peer_free.enqueue(new PeerItem());
}

Shared::~Shared() {
  PeerItem* item = nullptr;
  while (peer_inbox.try_dequeue(item)) delete item;
  while (peer_free.try_dequeue(item)) delete item;
}

}  // namespace gossip_kv::rt

namespace gossip_kv {

int run_node(const NodeOptions& options, const EngineFactory& make_engine, int in_fd,
             int out_fd) {
  std::size_t workers = options.workers;
  if (workers == 0) {
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    workers = cores > 2 ? cores - 2 : 1;
  }
  workers = std::min(workers, limits::kWorkersMax);
  auto sh = std::make_unique<rt::Shared>(workers, std::max<std::size_t>(1, options.shards));
  sh->out_fd = out_fd;
  sh->make_engine = make_engine;
  sh->seed = options.seed;

  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < workers; ++i) {
    threads.emplace_back([&sh, i] { rt::worker_main(*sh, i); });
  }
  std::thread gossip([&sh] { rt::gossip_main(*sh); });
  std::thread writer([&sh] { rt::writer_main(*sh); });

  std::uint64_t slots_used = rt::run_reader(*sh, in_fd);

  sh->stopping.store(true, std::memory_order_release);
  sh->gossip_parker.unpark();
  for (auto& t : threads) t.join();
  gossip.join();
  sh->final_seq.store(slots_used, std::memory_order_release);
  sh->writer_parker.unpark();
  writer.join();
  return 0;
}

}  // namespace gossip_kv
