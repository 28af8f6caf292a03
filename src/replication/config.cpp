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

}  // namespace gossip_kv
