// GossipConfig's named profiles.
#include "gossip_kv/gossip_config.h"

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
    // anti-entropy is rare. Acknowledgements ride on pushes; one that finds none goes alone
    // after 1 s, so every write's figure is settled within about 2 s of the last replica
    // holding it (at 3 s figures trailed the load by 10 to 18 s).
    c.relays = 1;
    c.gossip_interval_ms = 500;
    c.relay_interval_ms = 300;
    c.anti_entropy_interval_ms = 5000;
    c.sync_interval_ms = 10000;
    c.ack_delay_max_ms = 1000;
  } else if (name != "default") {
    return false;
  }
  *out = c;
  return true;
}

}  // namespace gossip_kv
