// gossip-kv: a Maelstrom node. Flags are parsed here; everything else lives in gossip_kv_core.
#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "replication/gossip_engine.h"
#include "gossip_kv/runtime.h"
#include "gossip_kv/store.h"
#include "gossip_kv/version.h"

int main(int argc, char** argv) {
  CLI::App app{"gossip-kv: a gossip-replicated, eventually consistent key-value store node for "
               "Maelstrom. Speaks the Maelstrom protocol on stdin/stdout; logs on stderr."};
  gossip_kv::NodeOptions options;
  app.add_option("--workers", options.workers,
                 "worker threads applying requests (0: one per core beyond reader and writer, "
                 "at least 1)")
      ->capture_default_str();
  app.add_option("--shards", options.shards, "shards of the key-value map")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app.add_option("--seed", options.seed,
                 "seed of the replication core's generator (0: derived from the node id)")
      ->capture_default_str();
  gossip_kv::GossipConfig gossip;
  gossip_kv::add_gossip_flags(app, gossip);
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is reported by write(), not fatal
  auto make_engine = [&gossip](const std::string& self, const std::vector<std::string>& ids,
                               gossip_kv::Store& store, std::uint64_t seed)
      -> std::unique_ptr<gossip_kv::ReplicationEngine> {
    return std::make_unique<gossip_kv::GossipEngine>(gossip, self, ids, store, seed,
                                                     gossip_kv::wall_clock_us());
  };
  return gossip_kv::run_node(options, make_engine, 0, 1);
}
