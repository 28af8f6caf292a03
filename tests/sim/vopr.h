// The VOPR: a randomized search over a simulated cluster that models the node's runtime, not
// only its replication core (after TigerBeetle's Viewstamped Operation Replicator). Each seed
// draws a cluster (size, profile, workers, queue bounds) and a mix of faults, runs a client load
// through it, heals everything, waits a quiet period long enough for anti-entropy, then checks
// invariants by comparing the replicas' contents against what the simulator saw, never against
// the nodes' own bookkeeping. A seed replays exactly (GOSSIP_VOPR_SEED, or --seed).
//
// The node model mirrors src/runtime/: W workers per node, each taking the client writes of
// its keys from its own queue in batches, taking versions from the node's shared HybridClock,
// and handing one delta per write to a bounded delta queue (waiting while it is full:
// backpressure); a gossip side that takes at most delta_room() deltas a step, derives the safe
// own watermark exactly as gossip_thread.cpp does (clock last, per-worker batch floors,
// enqueue counts), feeds peer messages and timers to the engine, and costs virtual time.
// It drives GossipEngine only through the ReplicationEngine interface (gossip_io.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gossip_kv::sim {

// Fault classes, each switchable. A seed draws a random subset of the enabled ones.
enum Fault : std::uint32_t {
  kLoss = 1u << 0,       // messages dropped
  kDuplicate = 1u << 1,  // messages delivered twice
  kReorder = 1u << 2,    // widely spread random delays
  kPartition = 1u << 3,  // random groups cut off from each other, then healed
  kPause = 1u << 4,      // a node's workers, timers and inbox frozen, then resumed
  kRestart = 1u << 5,    // a node killed and restarted empty (same id), then writing again
  kSkew = 1u << 6,       // each node's wall clock offset ahead or behind
  kBurst = 1u << 7,      // writes far beyond a round, at one node at once
  // A misbehaving peer, by class of input (spoofing a cluster member's id):
  kForge = 1u << 8,       // forged watermarks and spans (push from/to, gossip wm, relay sp)
  kCrashInput = 1u << 9,  // inputs that crash today: relay "e" not an array, ts INT64_MIN,
                          // ts INT64_MAX then a client write to that key
  kRange = 1u << 10,      // origins and timestamps out of range, huge and negative numbers
  kGarbage = 1u << 11,    // not JSON, wrong types, wrong shapes, unknown types
  kInject = 1u << 12,     // entries with invalid values (newlines, not JSON), untagged keys,
                          // and plausible entries indistinguishable from a peer's writes
};
inline constexpr std::uint32_t kAllFaults = (1u << 13) - 1;
inline constexpr std::uint32_t kMisbehaviour = kForge | kCrashInput | kRange | kGarbage | kInject;
// Everything but a restart and the misbehaving peer: the faults of a network and of a host.
inline constexpr std::uint32_t kNetworkFaults = kAllFaults & ~(kRestart | kMisbehaviour);
// Two narrower mixes, for the broken-model checks and quick runs.
inline constexpr std::uint32_t kBurstFaults = kDuplicate | kPause | kSkew | kBurst;
inline constexpr std::uint32_t kCutFaults = kDuplicate | kPartition | kPause | kSkew;

// "loss,dup,..." for a mask; parse_faults takes the same names, "peer" (every misbehaviour
// class), "all", "network" (kNetworkFaults), "bursts" (kBurstFaults), "cuts" (kCutFaults) and "all-x,y" (all
// but x and y). False on an unknown name.
std::string fault_names(std::uint32_t mask);
bool parse_faults(const std::string& text, std::uint32_t* mask);

// Deliberately broken models, to show that each invariant catches what it is meant to.
enum class Breakage {
  kNone,
  kDropDelta,       // the gossip side drops every 50th delta it dequeues (a silent drop)
  kDropDeltaNoNet,  // the same, with content anti-entropy (the safety net) switched off
  kCorruptLine,     // the writer changes a value in every 50th peer line that carries entries
  kLateTaken,       // deltas carry the time the gossip side dequeued them, not when taken
  kDoubleLine,      // the writer emits every 100th peer line twice
  kSwappedFigures,  // bench_figures names the wrong writes: figures reversed against versions
};
const char* breakage_name(Breakage b);
bool parse_breakage(const std::string& text, Breakage* out);

struct VoprOptions {
  std::uint32_t faults = kAllFaults;
  Breakage breakage = Breakage::kNone;
};

struct VoprResult {
  std::uint64_t seed = 0;
  std::string mix;                      // one line: the cluster and the faults drawn
  std::vector<std::string> violations;  // empty: every invariant held
  std::vector<std::string> failed;      // the invariants violated ("I1", ...), sorted
  // Nodes whose own p50, p95 or max came out later than the truth's by more than 10 % and
  // 20 ms (and the clocks' spread), with every write of the node's life measured: a report,
  // not an invariant. The truth counts only live replicas, so a figure that waits for a
  // killed replica's new life to hold the write is late against it by design (restarts).
  std::vector<std::string> late;
  std::uint64_t writes_acked = 0;
  std::uint64_t writes_excused = 0;  // acknowledged by a node killed before anyone else held them
  std::uint64_t messages = 0;        // peer lines emitted
  std::uint64_t delta_waits = 0;     // a worker found the delta queue full
  std::uint64_t injected = 0;        // misbehaving peer messages delivered
  std::int64_t virtual_ms = 0;
  [[nodiscard]] bool ok() const { return violations.empty(); }
};

// The cluster and fault mix a seed draws, as one line (without running it).
std::string describe_seed(std::uint64_t seed, const VoprOptions& options);

// Runs one seed. Deterministic: the same seed and options give the same result.
VoprResult run_vopr_seed(std::uint64_t seed, const VoprOptions& options);

}  // namespace gossip_kv::sim
