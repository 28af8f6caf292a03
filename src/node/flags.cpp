#include "node/flags.h"

#include "replication/peer_wire.h"

namespace gossip_kv {

void add_gossip_flags(CLI::App& app, GossipConfig& config) {
  // The profile is applied in a callback that runs before the explicit flags are stored, so
  // `--profile frugal --gossip-interval-ms 200` keeps 200.
  app.add_option_function<std::string>(
         "--profile",
         [&config](const std::string& name) {
           if (!GossipConfig::from_profile(name, &config)) {
             throw CLI::ValidationError("--profile", "unknown profile " + name);
           }
         },
         "replication profile: default, fast (low convergence time), frugal (few messages)")
      ->trigger_on_parse();
  app.add_option("--gossip-interval-ms", config.gossip_interval_ms,
                 "push round interval, ms")->capture_default_str()->check(CLI::Range(1, 60000));
  app.add_option("--anti-entropy-interval-ms", config.anti_entropy_interval_ms,
                 "digest interval, ms")->capture_default_str()->check(CLI::Range(10, 600000));
  app.add_option("--sync-interval-ms", config.sync_interval_ms,
                 "content anti-entropy interval (the safety net), ms")
      ->capture_default_str()->check(CLI::Range(10, 600000));
  app.add_option("--batch-bytes-max", config.batch_bytes_max,
                 "entry bytes per gossip message")->capture_default_str()
      ->check(CLI::Range(std::size_t{1024}, peer_wire::kBatchBytesLimit));
  app.add_option("--relays", config.relays,
                 "relay nodes (0: every node pushes to every peer)")->capture_default_str()
      ->check(CLI::Range(0, 64));
  app.add_option("--relay-interval-ms", config.relay_interval_ms,
                 "relay forwarding interval, ms")->capture_default_str()->check(CLI::Range(1, 60000));
  app.add_flag("--push-on-write", config.push_on_write, "push each write at once");
  app.add_option("--ack-delay-max-ms", config.ack_delay_max_ms,
                 "longest wait before acknowledgements go in a message of their own, ms")
      ->capture_default_str()->check(CLI::Range(10, 600000));
}

void add_node_flags(CLI::App& app, NodeOptions& options) {
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
}

}  // namespace gossip_kv
