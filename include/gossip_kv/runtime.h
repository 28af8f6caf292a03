// The node's threaded runtime: reader, workers, gossip thread and writer (docs/ARCHITECTURE.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gossip_kv/gossip_io.h"

namespace gossip_kv {

class Store;

struct NodeOptions {
  // Worker threads applying requests to the store. 0 picks one per core beyond the reader and
  // writer, at least one.
  std::size_t workers = 0;
  // Shards of the store: many, so that short critical sections rarely meet.
  std::size_t shards = 256;
  // Seed for the replication core's generator; 0 derives one from the node id.
  std::uint64_t seed = 0;
};

// Serves the Maelstrom protocol on in_fd/out_fd until end of input, answering every accepted
// request before it returns. Returns the process exit status.
//
// make_engine is called once, at init, on the reader thread; it may be empty or return nullptr
// (a node that does not replicate).
using EngineFactory = std::function<std::unique_ptr<ReplicationEngine>(
    const std::string& self, const std::vector<std::string>& node_ids, Store& store,
    std::uint64_t seed)>;

int run_node(const NodeOptions& options, const EngineFactory& make_engine, int in_fd,
             int out_fd);

}  // namespace gossip_kv
