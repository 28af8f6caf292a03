// The node's command-line flags, registered by the executables (gossip-kv, gossip-sim) and not
// by the core library, which does not link CLI11.
#pragma once

#include <CLI/CLI.hpp>

#include "gossip_kv/gossip_config.h"
#include "gossip_kv/runtime.h"

namespace gossip_kv {

// Registers --profile and the per-field flags; the profile applies first, explicit flags win.
void add_gossip_flags(CLI::App& app, GossipConfig& config);

// Registers --workers, --shards and --seed.
void add_node_flags(CLI::App& app, NodeOptions& options);

}  // namespace gossip_kv
