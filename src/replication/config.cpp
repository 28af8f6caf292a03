#include <CLI/CLI.hpp>

#include "replication/gossip_engine.h"

namespace gossip_kv {

bool GossipConfig::from_profile(std::string_view name, GossipConfig* out) {
  GossipConfig c;
  if (name == "fast") {
    // Writes go to the relay at once; the relay forwards every 50 ms.
    c.relays = 1;
    c.push_on_write = true;
    c.gossip_interval_ms = 50;
    c.relay_interval_ms = 50;
    c.anti_entropy_interval_ms = 500;
    c.ack_delay_max_ms = 250;
  } else if (name == "frugal") {
    // Writes wait up to 500 ms to share a message to the relay, which forwards every 300 ms;
    // anti-entropy and lone acknowledgements are rare.
    c.relays = 1;
    c.gossip_interval_ms = 500;
    c.relay_interval_ms = 300;
    c.anti_entropy_interval_ms = 5000;
    c.ack_delay_max_ms = 3000;
  } else if (name != "default") {
    return false;
  }
  *out = c;
  return true;
}

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
  app.add_option("--batch-bytes-max", config.batch_bytes_max,
                 "entry bytes per gossip message")->capture_default_str()
      ->check(CLI::Range(1024, 512 * 1024));
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

}  // namespace gossip_kv
