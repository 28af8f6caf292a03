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

// Nesting of a value: arrays and objects inside one another, the value itself counting as
// level 1. Values are kept verbatim but compared (cas) and decoded (peers) by code that walks
// them; 128 levels keep any such walk shallow, far above what a Maelstrom client sends. Deeper
// nesting anywhere in a line (kLineDepthMax) is error 12.
inline constexpr std::size_t kValueDepthMax = 128;

// Nesting of a whole line: the envelope (1), the body (2), a kv_merge's entries (3) and an
// entry (4) hold a value of up to kValueDepthMax levels.
inline constexpr std::size_t kLineDepthMax = kValueDepthMax + 4;

// How far ahead of this node's wall clock a version's timestamp may be, in microseconds. A
// kv_merge entry further ahead is error 12, and the hybrid clock never runs further ahead than
// this, whatever it has seen. NTP keeps real clocks milliseconds apart and the hybrid clock
// leads the wall clock by 1 us per write only above 1M writes/s, so 10 s rejects nothing
// legitimate; a node that was pushed to the bound issues wall-clock timestamps again within
// 10 s. Peer input is checked against the same window.
inline constexpr std::int64_t kVersionAheadMaxUs = 10'000'000;

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

// Heap bytes a slot keeps once its reply is out (its request's buffers and its reply buffer).
// A slot holding more gives all of them back: without this, 16,384 slots each keep the largest
// request they ever served (1 GiB after 64 KiB writes, 7 GiB after large kv_merges). 4 KiB keeps
// the steady path of small requests allocation-free; 16,384 slots then retain at most 64 MiB.
inline constexpr std::size_t kSlotRetainedBytesMax = 4096;

// Heap bytes of parsed requests in flight (reader to writer), counted as each request's
// Request::capacity_bytes() after parsing, plus the replies above kSlotRetainedBytesMax not
// yet written. The reader waits while more are in flight (with nothing in flight a request is
// always admitted), so a burst of large requests or large replies holds about this much, not
// 16,384 times the largest. 64 MiB admits 30+ requests of the largest kind at once, and
// any number of small ones (they fit their strings' inline buffers and count ~0).
inline constexpr std::size_t kInflightRequestBytesMax = std::size_t{64} << 20;

// Tasks dispatched to workers and not yet applied; the reader looks every 128 lines and waits
// while there are more. A reply counts toward kInflightRequestBytesMax only once a worker has
// rendered it, so this bounds the large replies that can appear at once beyond that budget:
// (1,024 + 128) x ~100 KiB (a 64 KiB value's reply buffer) = ~112 MiB. 1,024 is four of a
// worker's bulk dequeues (kWorkerBatchMax): enough to keep every worker busy.
inline constexpr std::size_t kWorkerBacklogTasksMax = 1024;

// The same for peer messages waiting for the gossip thread (their bodies' bytes). A message
// that would exceed it waits, like one that finds the pool empty (peer_pool_waits).
inline constexpr std::size_t kPeerInboxBytesMax = std::size_t{64} << 20;

// Heap bytes a peer message buffer keeps when it returns to the free pool; above it, the
// buffer is given back (4,096 buffers then retain at most 16 MiB, not 4 GiB).
inline constexpr std::size_t kPeerBufferRetainedBytesMax = 4096;

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

// Bytes of messages to peers queued for the writer: the gossip thread waits while more are
// queued (one message is always taken). Without it, 4,096 messages of up to a gossip batch
// (256 KiB) each could queue 1 GiB behind a slow stdout.
inline constexpr std::size_t kPeerOutboxBytesMax = std::size_t{64} << 20;

// Worker threads.
inline constexpr std::size_t kWorkersMax = 64;

}  // namespace gossip_kv::limits
