// Every bound the node enforces, in one place. Each has a unit and a reason.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gossip_kv::limits {

// Input lines longer than this are skipped with a stderr line; the next line is still served.
// Large enough for a gossip batch (kGossipBatchBytesMax) plus its envelope.
inline constexpr std::size_t kLineBytesMax = 1u << 20;  // 1 MiB

// A key's encoded length (a string key's UTF-8 bytes, an integer key's digits). Maelstrom's
// kv workloads use small integers; 1 KiB leaves room for structured string keys.
inline constexpr std::size_t kKeyBytesMax = 1024;

// A value's raw JSON text. Values are kept verbatim, so this bounds the store's memory per key.
inline constexpr std::size_t kValueBytesMax = std::size_t{64} * 1024;

// Entries in one kv_merge request: bounds the work one line can ask of the workers.
inline constexpr std::size_t kMergeEntriesMax = 4096;

// Entries in init's node_ids: the simulator goes to 1,000 replicas.
inline constexpr std::size_t kNodeIdsMax = 4096;

// A node or client id (src, dest, node_id).
inline constexpr std::size_t kIdBytesMax = 64;

// A request `type` string.
inline constexpr std::size_t kTypeBytesMax = 64;

// Requests in flight between the reader and the writer (the slot ring). A full ring makes the
// reader wait: that is the node's backpressure, and it bounds memory.
inline constexpr std::size_t kInflightRequestsMax = 16384;

// Bytes the reader asks read() for at once.
inline constexpr std::size_t kReadBlockBytes = std::size_t{256} * 1024;

// Bytes the writer gathers before one write() call (it also writes whenever it runs dry).
inline constexpr std::size_t kWriteBatchBytes = std::size_t{256} * 1024;

// Requests a worker takes off its queue in one bulk dequeue.
inline constexpr std::size_t kWorkerBatchMax = 256;

// Local deltas queued for the gossip thread. When full, the worker waits for room (and the
// reader, its ring full, waits for the worker): backpressure, never a drop, so every write the
// fast path vouches for was handed to it.
inline constexpr std::size_t kDeltaQueueMax = 1u << 16;

// Peer messages queued for the gossip thread (a pool of reused buffers). When none is free the
// reader waits for the gossip thread to return one: backpressure, never a drop.
inline constexpr std::size_t kPeerInboxMax = 4096;

// Messages to peers queued for the writer.
inline constexpr std::size_t kPeerOutboxMax = 4096;

// Worker threads.
inline constexpr std::size_t kWorkersMax = 64;

}  // namespace gossip_kv::limits
