// The VOPR's cluster model, fault schedule and invariant checker (vopr.h).
#include "vopr.h"

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <unistd.h>

#include <absl/container/flat_hash_map.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/latency_dist.h"
#include "common/percentile.h"
#include "gossip_kv/gossip_config.h"
#include "gossip_kv/gossip_io.h"
#include "gossip_kv/limits.h"
#include "gossip_kv/store.h"
#include "gossip_kv/version.h"

namespace gossip_kv::sim {
namespace {

constexpr std::int64_t kEpochUs = 1'700'000'000'000'000;  // virtual time starts here
constexpr std::int64_t kInf = INT64_MAX / 4;
// The runtime's worker sleeps this long before retrying a full delta queue (worker.cpp).
constexpr std::int64_t kDeltaRetryUs = 50;
constexpr std::uint64_t kViolationsListed = 3;  // per invariant

struct FaultName {
  Fault bit;
  const char* name;
};
constexpr FaultName kFaultNames[] = {
    {kLoss, "loss"},       {kDuplicate, "dup"},  {kReorder, "reorder"},  {kPartition, "partition"},
    {kPause, "pause"},     {kRestart, "restart"}, {kSkew, "skew"},       {kBurst, "burst"},
    {kForge, "forge"},     {kCrashInput, "crash"}, {kRange, "range"},    {kGarbage, "garbage"},
    {kInject, "inject"},
};

// ---------------------------------------------------------------------------------------------
// What a seed draws.

struct Episode {
  std::int64_t from_us = 0, to_us = 0;
  int node = 0;
  std::vector<int> groups;  // partitions: group per node (index 0 unused)
};

struct Burst {
  std::int64_t at_us = 0;
  int node = 0;
  int count = 0;
};

struct Mix {
  int nodes = 3;
  std::string profile;
  GossipConfig gossip;
  int workers = 1;
  std::size_t delta_queue_max = 16;  // the model's kDeltaQueueMax, small so it fills
  std::size_t gossip_bulk = 16;      // deltas / peer lines the gossip side takes per step
  std::size_t worker_batch_max = 8;  // the model's kWorkerBatchMax
  std::int64_t cost_delta_us = 1, cost_msg_us = 10, cost_tick_us = 20;
  std::int64_t service_us_max = 50;        // per write, in a worker
  std::int64_t take_to_enqueue_us_max = 20;  // between taking a version and enqueueing it
  double latency_ms = 20;
  LatencyDist dist = LatencyDist::kConstant;
  double loss = 0, duplicate = 0;
  std::int64_t load_us = 0;
  double writes_per_s = 100;
  int keys = 50;
  std::uint32_t faults = 0;  // the subset drawn
  std::vector<std::int64_t> skew_us;
  std::vector<Episode> partitions, pauses, restarts;
  std::vector<Burst> bursts;
  double misbehave_per_s = 0;
  std::uint32_t misbehave = 0;  // the misbehaviour classes drawn
  std::int64_t quiet_us = 0;
};

Mix draw_mix(std::uint64_t seed, std::uint32_t enabled) {
  std::mt19937_64 r(seed * 0x9E3779B97F4A7C15ull + 1);
  auto uni = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(r);
  };
  auto real = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(r); };
  auto coin = [&](double p) { return real(0, 1) < p; };
  Mix m;
  m.nodes = static_cast<int>(uni(3, 5));
  const char* profiles[] = {"default", "fast", "frugal"};
  m.profile = profiles[uni(0, 2)];
  GossipConfig::from_profile(m.profile, &m.gossip);
  m.workers = static_cast<int>(uni(1, 4));
  m.delta_queue_max = static_cast<std::size_t>(uni(2, 64));
  m.gossip_bulk = static_cast<std::size_t>(uni(1, 32));
  m.worker_batch_max = static_cast<std::size_t>(uni(1, 16));
  m.cost_delta_us = uni(0, 40);
  m.cost_msg_us = uni(2, 60);
  m.cost_tick_us = uni(2, 60);
  m.service_us_max = uni(1, 100);
  m.take_to_enqueue_us_max = uni(0, 100);
  m.latency_ms = real(1, 60);
  m.load_us = uni(3000, 8000) * 1000;
  m.writes_per_s = real(20, 250);
  m.keys = static_cast<int>(uni(5, 200));
  for (const FaultName& f : kFaultNames) {
    if ((enabled & f.bit) != 0 && coin(0.5)) m.faults |= f.bit;
  }
  auto when = [&](double lo, double hi) {  // a time within the load, as a share of it
    return static_cast<std::int64_t>(real(lo, hi) * static_cast<double>(m.load_us));
  };
  if ((m.faults & kLoss) != 0) m.loss = real(0.01, 0.3);
  if ((m.faults & kDuplicate) != 0) m.duplicate = real(0.01, 0.2);
  m.dist = (m.faults & kReorder) != 0 ? (coin(0.5) ? LatencyDist::kExponential : LatencyDist::kUniform)
                                      : LatencyDist::kConstant;
  m.skew_us.assign(static_cast<std::size_t>(m.nodes) + 1, 0);
  if ((m.faults & kSkew) != 0) {
    std::int64_t bound = uni(1, 500) * 1000;
    for (int n = 1; n <= m.nodes; ++n) m.skew_us[static_cast<std::size_t>(n)] = uni(-bound, bound);
  }
  if ((m.faults & kPartition) != 0) {
    for (auto i = uni(1, 3); i > 0; --i) {
      Episode e;
      e.from_us = when(0.05, 0.8);
      e.to_us = e.from_us + uni(200, 4000) * 1000;
      e.groups.assign(static_cast<std::size_t>(m.nodes) + 1, 0);
      for (int n = 1; n <= m.nodes; ++n) e.groups[static_cast<std::size_t>(n)] = static_cast<int>(uni(0, 2));
      m.partitions.push_back(e);
    }
  }
  if ((m.faults & kPause) != 0) {
    for (auto i = uni(1, 2); i > 0; --i) {
      m.pauses.push_back({when(0.05, 0.9), 0, static_cast<int>(uni(1, m.nodes)), {}});
      m.pauses.back().to_us = m.pauses.back().from_us + uni(100, 3000) * 1000;
    }
  }
  if ((m.faults & kRestart) != 0) {
    m.restarts.push_back({when(0.3, 0.7), 0, static_cast<int>(uni(1, m.nodes)), {}});
    m.restarts.back().to_us = m.restarts.back().from_us + uni(0, 2000) * 1000;
  }
  if ((m.faults & kBurst) != 0) {
    for (auto i = uni(1, 3); i > 0; --i) {
      m.bursts.push_back({when(0.0, 0.9), static_cast<int>(uni(1, m.nodes)), static_cast<int>(uni(200, 2000))});
    }
  }
  m.misbehave = m.faults & kMisbehaviour;
  if (m.misbehave != 0) m.misbehave_per_s = real(2, 20);
  // Long enough for anti-entropy rounds to reach everyone and for the acknowledgements of the
  // last writes to be asked for again (4 x ack_delay_max) and settled (2 x ack_delay_max).
  m.quiet_us = std::max<std::int64_t>({30'000, 15 * m.gossip.anti_entropy_interval_ms,
                                       20 * m.gossip.ack_delay_max_ms}) * 1000;
  return m;
}

std::string describe(const Mix& m, std::uint64_t seed) {
  std::ostringstream o;
  o << "seed " << seed << ": " << m.nodes << " nodes, " << m.profile << ", " << m.workers
    << " workers, delta queue " << m.delta_queue_max << ", bulk " << m.gossip_bulk << ", latency "
    << static_cast<int>(m.latency_ms) << " ms, load " << m.load_us / 1000 << " ms at "
    << static_cast<int>(m.writes_per_s) << " w/s on " << m.keys << " keys; faults ["
    << fault_names(m.faults) << "]";
  if (m.loss > 0) o << " loss " << static_cast<int>(m.loss * 100) << "%";
  if (m.duplicate > 0) o << " dup " << static_cast<int>(m.duplicate * 100) << "%";
  for (const Episode& e : m.partitions) o << " cut " << e.from_us / 1000 << "-" << e.to_us / 1000;
  for (const Episode& e : m.pauses) o << " pause n" << e.node << " " << e.from_us / 1000 << "-" << e.to_us / 1000;
  for (const Episode& e : m.restarts) o << " kill n" << e.node << " " << e.from_us / 1000 << "-" << e.to_us / 1000;
  for (const Burst& b : m.bursts) o << " burst " << b.count << "@n" << b.node << " " << b.at_us / 1000;
  if ((m.faults & kSkew) != 0) {
    std::int64_t lo = *std::min_element(m.skew_us.begin() + 1, m.skew_us.end());
    std::int64_t hi = *std::max_element(m.skew_us.begin() + 1, m.skew_us.end());
    o << " skew " << lo / 1000 << ".." << hi / 1000 << " ms";
  }
  if (m.misbehave != 0) o << " peer " << static_cast<int>(m.misbehave_per_s) << "/s";
  return o.str();
}

// ---------------------------------------------------------------------------------------------
// The cluster.

struct ClientWrite {
  std::string key, value;
};

// Every version a client write took (acknowledged or not), as the simulator saw it.
struct Taken {
  std::string key;
  Version version;
  int node = 0;
  int incarnation = 0;
  std::int64_t taken_us = 0;       // global time the worker took it
  std::int64_t acked_us = -1;      // when the delta was enqueued (the reply follows); -1: never
  std::int64_t everywhere_us = -1;  // first time every live node held it or a newer version
  std::vector<char> held;
  bool at_risk = false;  // a node holding it was killed while no other live node held it
};

enum class InKind : std::uint8_t { kGenuine, kMalformed, kForged, kPlausible };

struct Worker {
  std::deque<ClientWrite> queue;
  std::vector<ClientWrite> batch;
  std::size_t idx = 0;
  enum Phase { kIdle, kTake, kEnqueue } phase = kIdle;
  bool has_event = false;
  std::int64_t floor_us = INT64_MAX;  // DeltaFence::batch_floor_us
  std::uint64_t enqueued = 0;         // DeltaFence::enqueued
  std::int64_t batch_local_us = 0;    // the worker's now_us_ for the batch
  LocalDelta delta;
  std::size_t taken_idx = 0;
};

struct QueuedDelta {
  LocalDelta delta;
  std::size_t worker = 0;
  std::size_t taken_idx = 0;
};

struct InMsg {
  std::string src, body;
  InKind kind = InKind::kGenuine;
};

struct Node {
  bool alive = true;
  bool paused = false;
  std::uint64_t gen = 0;  // incarnation; events of an earlier one are ignored
  std::int64_t skew_us = 0;
  std::int64_t floor_us = 0;  // this incarnation's floor, as the engine takes it (its "fl")
  std::unique_ptr<Store> store;
  std::unique_ptr<HybridClock> clock;
  std::unique_ptr<ReplicationEngine> engine;
  std::vector<Worker> workers;
  std::deque<QueuedDelta> deltas;
  std::vector<std::uint64_t> dequeued;
  std::int64_t published = INT64_MIN;
  std::deque<InMsg> inbox;
  std::int64_t busy_until = 0;
  std::int64_t step_at = INT64_MAX;
  // This incarnation's counters, as the simulator saw them.
  std::uint64_t lines_out = 0, lines_in = 0, malformed_in = 0, forged_in = 0;
  std::uint64_t dequeued_total = 0;
};

enum class Ev : std::uint8_t {
  kDeliver, kGossip, kWorker, kClient, kCut, kHeal, kPause, kResume, kKill, kRestart, kPeer, kEndLoad
};

struct Event {
  std::int64_t at = 0;
  std::uint64_t seq = 0;
  Ev kind = Ev::kGossip;
  int node = 0;
  std::size_t arg = 0;
  std::uint64_t gen = 0;
  InKind in = InKind::kGenuine;
  std::string src, body;
  bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
};

struct EngineStats {
  std::uint64_t sent = 0, received = 0, malformed = 0, count = 0, pending = 0, unmeasured = 0;
  std::vector<std::int64_t> figures_ms;  // bucket lower bounds, one per sample, ascending
};

// The members an engine writes into a reply (write_stats, write_figures), parsed.
rapidjson::Document members_of(const ReplicationEngine& e,
                               void (ReplicationEngine::*write)(rapidjson::Writer<rapidjson::StringBuffer>&) const) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  (e.*write)(w);
  w.EndObject();
  rapidjson::Document d;
  d.Parse(buf.GetString());
  return d;
}

EngineStats read_stats(const ReplicationEngine& e) {
  rapidjson::Document d = members_of(e, &ReplicationEngine::write_stats);
  EngineStats s;
  for (const auto& k : d["gossip_sent_by_kind"].GetObject()) s.sent += k.value[0].GetUint64();
  s.received = d["gossip_msgs_received"].GetUint64();
  s.malformed = d["gossip_msgs_malformed"].GetUint64();
  const auto& c = d["convergence_ms"];
  s.count = c["count"].GetUint64();
  s.pending = c["pending"].GetUint64();
  s.unmeasured = c["unmeasured"].GetUint64();
  for (const auto& b : c["histogram"].GetArray()) {
    for (std::uint32_t i = 0; i < b[1].GetUint(); ++i) s.figures_ms.push_back(b[0].GetInt64());
  }
  return s;
}

// The engine's figures one by one (bench_figures): [version ts_us, ms], oldest first.
std::vector<std::pair<std::int64_t, std::int64_t>> read_figures(const ReplicationEngine& e) {
  rapidjson::Document d = members_of(e, &ReplicationEngine::write_figures);
  std::vector<std::pair<std::int64_t, std::int64_t>> figures;
  for (const auto& f : d["figures"].GetArray()) figures.emplace_back(f[0].GetInt64(), f[1].GetInt64());
  return figures;
}

// The crash line a signal handler prints: the seed and its mix.
char g_crash_line[2048];

extern "C" void on_crash_signal(int sig) {
  const char* head = "\ngossip-vopr: CRASH (signal) in ";
  (void)!write(2, head, std::strlen(head));
  (void)!write(2, g_crash_line, std::strlen(g_crash_line));
  (void)!write(2, "\n", 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

class Cluster {
 public:
  Cluster(std::uint64_t seed, const Mix& mix, Breakage breakage)
      : mix_(mix), breakage_(breakage), rng_(seed ^ 0xC0FFEEull),
        nodes_(static_cast<std::size_t>(mix.nodes) + 1),
        group_(static_cast<std::size_t>(mix.nodes) + 1, 0),
        taken_by_node_(static_cast<std::size_t>(mix.nodes) + 1) {
    for (int i = 1; i <= mix.nodes; ++i) ids_.push_back("n" + std::to_string(i));
    std::sort(ids_.begin(), ids_.end());
    // The safety net switched off (but for the exchange at start, before any write).
    if (breakage_ == Breakage::kDropDeltaNoNet) mix_.gossip.sync_interval_ms = 600000;
    loss_ = mix.loss;
    duplicate_ = mix.duplicate;
    for (int n = 1; n <= mix.nodes; ++n) {
      nodes_[static_cast<std::size_t>(n)].skew_us = mix.skew_us[static_cast<std::size_t>(n)];
      start_node(n);
    }
  }

  VoprResult run(std::uint64_t seed);

 private:
  Node& node(int n) { return nodes_[static_cast<std::size_t>(n)]; }
  std::int64_t local(int n) { return now_ + node(n).skew_us; }
  std::uint32_t origin_of(int n) const {
    std::string id = "n" + std::to_string(n);
    return static_cast<std::uint32_t>(std::lower_bound(ids_.begin(), ids_.end(), id) - ids_.begin() + 1);
  }
  std::int64_t rand_us(std::int64_t max_us) {
    return max_us <= 0 ? 0 : std::uniform_int_distribution<std::int64_t>(0, max_us)(rng_);
  }
  bool coin(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  void push(Event e) {
    e.seq = seq_++;
    events_.push(std::move(e));
  }

  void start_node(int n);
  void schedule_load();
  void handle(Event& e);
  void wake_gossip(int n, std::int64_t at);
  void wake_worker(int n, std::size_t w, std::int64_t at);
  void gossip_step(int n);
  void publish_own_watermark(int n);
  void worker_step(int n, std::size_t w);
  void route(int from, std::vector<OutMessage>& out);
  void deliver(int to, std::string src, std::string body, InKind kind, std::int64_t delay_us);
  std::int64_t delay_us();
  void kill(int n);
  void misbehave();
  std::string forge_message(std::uint32_t cls, int target, int src);  // src: the sender

  // Truth.
  void observe_keys(int n, const std::vector<std::string>& keys);
  void observe_all(int n);
  bool holds(int n, const Taken& t);
  bool lost_with_its_replica(const Taken& t);
  void recheck(Taken& t);
  int live_count();
  static std::vector<std::string> keys_in(const std::string& body, bool* parsed);

  // Invariants.
  void check_counters(int n, const char* when);
  void check_end();
  void check_durability(const std::vector<int>& live);
  void check_contents(const std::vector<int>& live);
  void check_figures(int n);
  // Adds to late_ when node n's p50, p95 or max is later than the truth's (both ascending)
  // by more than 10 % and 20 ms plus tolerance_ms; only when every write has its figure.
  void report_late(int n, const std::vector<std::int64_t>& figures, const std::vector<std::int64_t>& truth,
                   std::int64_t tolerance_ms);
  void check_acks(int from, int to, const std::string& body);
  // Keeps the first few violations of each invariant ("I1 ...": the id is the first word).
  void violate(std::string v) {
    std::string id = v.substr(0, v.find(' '));
    if (++per_invariant_[id] <= kViolationsListed) violations_.push_back(std::move(v));
  }

  Mix mix_;
  Breakage breakage_;
  std::mt19937_64 rng_;
  std::vector<Node> nodes_;
  std::vector<std::string> ids_;
  std::vector<int> group_;
  double loss_ = 0, duplicate_ = 0;
  std::int64_t now_ = kEpochUs;
  std::uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::vector<OutMessage> out_;
  const char* trace_ = std::getenv("GOSSIP_VOPR_TRACE");  // print peer lines holding this text

  std::vector<Taken> taken_;
  absl::flat_hash_map<std::string, std::vector<std::size_t>> taken_by_key_;
  std::vector<std::vector<std::pair<std::int64_t, std::size_t>>> taken_by_node_;  // by ts
  // Every (version, value) a key may legitimately hold: client writes and plausible peer entries.
  absl::flat_hash_map<std::string, std::set<std::pair<Version, std::string>>> known_;
  std::uint64_t write_counter_ = 0;
  std::uint64_t delta_waits_ = 0, lines_total_ = 0, entry_lines_ = 0, injected_ = 0;
  std::vector<std::string> violations_;
  std::vector<std::string> late_;  // VoprResult::late
  std::map<std::string, std::uint64_t> per_invariant_;
};

void Cluster::start_node(int n) {
  Node& x = node(n);
  x.alive = true;
  x.paused = false;
  ++x.gen;
  x.store = std::make_unique<Store>(4);
  x.clock = std::make_unique<HybridClock>();
  x.engine = make_gossip_engine(mix_.gossip, "n" + std::to_string(n), ids_, *x.store, rng_(), local(n));
  x.floor_us = std::max<std::int64_t>(local(n) - 1, 0);
  x.workers.assign(static_cast<std::size_t>(mix_.workers), Worker{});
  x.deltas.clear();
  x.dequeued.assign(static_cast<std::size_t>(mix_.workers), 0);
  x.published = INT64_MIN;
  x.inbox.clear();
  x.busy_until = now_;
  x.step_at = INT64_MAX;
  x.lines_out = x.lines_in = x.malformed_in = x.forged_in = x.dequeued_total = 0;
  wake_gossip(n, now_);
}

std::int64_t Cluster::delay_us() {
  return std::max<std::int64_t>(1, std::llround(sample_delay_us(mix_.dist, mix_.latency_ms * 1000, rng_)));
}

void Cluster::schedule_load() {
  std::mt19937_64 r(rng_());
  std::exponential_distribution<double> gap(mix_.writes_per_s / 1e6);
  std::uniform_int_distribution<int> pick_node(1, mix_.nodes);
  std::uniform_int_distribution<int> pick_key(0, mix_.keys - 1);
  auto client = [&](std::int64_t at, int n, std::string key) {
    Event e;
    e.at = kEpochUs + at;
    e.kind = Ev::kClient;
    e.node = n;
    e.src = std::move(key);
    push(std::move(e));
  };
  for (double t = gap(r); t < static_cast<double>(mix_.load_us); t += gap(r)) {
    client(static_cast<std::int64_t>(t), pick_node(r), "i" + std::to_string(pick_key(r)));
  }
  int burst_no = 0;
  for (const Burst& b : mix_.bursts) {
    ++burst_no;
    for (int j = 0; j < b.count; ++j) {
      client(b.at_us, b.node, "i" + std::to_string(1'000'000 * burst_no + j));
    }
  }
  auto at = [&](std::int64_t t, Ev kind, int n, std::size_t arg) {
    Event e;
    e.at = kEpochUs + t;
    e.kind = kind;
    e.node = n;
    e.arg = arg;
    push(std::move(e));
  };
  for (std::size_t i = 0; i < mix_.partitions.size(); ++i) {
    at(mix_.partitions[i].from_us, Ev::kCut, 0, i);
    at(mix_.partitions[i].to_us, Ev::kHeal, 0, i);
  }
  for (const Episode& p : mix_.pauses) {
    at(p.from_us, Ev::kPause, p.node, 0);
    at(p.to_us, Ev::kResume, p.node, 0);
  }
  for (const Episode& k : mix_.restarts) {
    at(k.from_us, Ev::kKill, k.node, 0);
    at(k.to_us, Ev::kRestart, k.node, 0);
    // The restarted node takes new writes of its own (the case that loses its older ones).
    for (int j = static_cast<int>(std::uniform_int_distribution<int>(1, 10)(r)); j > 0; --j) {
      client(k.to_us + std::uniform_int_distribution<std::int64_t>(1, 500'000)(r), k.node,
             "i" + std::to_string(pick_key(r)));
    }
  }
  if (mix_.misbehave_per_s > 0) {
    std::exponential_distribution<double> mgap(mix_.misbehave_per_s / 1e6);
    for (double t = mgap(r); t < static_cast<double>(mix_.load_us); t += mgap(r)) {
      at(static_cast<std::int64_t>(t), Ev::kPeer, 0, 0);
    }
  }
  at(mix_.load_us, Ev::kEndLoad, 0, 0);
}

void Cluster::wake_gossip(int n, std::int64_t at) {
  Node& x = node(n);
  if (!x.alive || x.paused) return;
  at = std::max({at, x.busy_until, now_});
  if (at >= x.step_at) return;
  x.step_at = at;
  Event e;
  e.at = at;
  e.kind = Ev::kGossip;
  e.node = n;
  e.gen = x.gen;
  push(std::move(e));
}

void Cluster::wake_worker(int n, std::size_t w, std::int64_t at) {
  Node& x = node(n);
  Worker& k = x.workers[w];
  if (!x.alive || x.paused || k.has_event) return;
  k.has_event = true;
  Event e;
  e.at = std::max(at, now_);
  e.kind = Ev::kWorker;
  e.node = n;
  e.arg = w;
  e.gen = x.gen;
  push(std::move(e));
}

// One pass of the gossip thread's loop (gossip_thread.cpp): deltas, the own watermark, peer
// lines, the timer; it costs virtual time, so the delta queue fills behind it.
void Cluster::gossip_step(int n) {
  Node& x = node(n);
  ReplicationEngine& engine = *x.engine;
  std::size_t room = std::min({engine.delta_room(), mix_.gossip_bulk, x.deltas.size()});
  std::int64_t cost = 0;
  for (std::size_t i = 0; i < room; ++i) {
    QueuedDelta d = x.deltas.front();
    x.deltas.pop_front();
    ++x.dequeued[d.worker];
    ++x.dequeued_total;
    cost += mix_.cost_delta_us;
    if ((breakage_ == Breakage::kDropDelta || breakage_ == Breakage::kDropDeltaNoNet) &&
        x.dequeued_total % 50 == 0) {
      continue;
    }
    if (breakage_ == Breakage::kLateTaken) d.delta.taken_us = local(n);
    engine.on_local_delta(d.delta, local(n));
  }
  if (room > 0) {  // workers waiting for room retry on their own (kDeltaRetryUs)
    for (std::size_t w = 0; w < x.workers.size(); ++w) wake_worker(n, w, now_ + kDeltaRetryUs);
  }
  publish_own_watermark(n);
  for (std::size_t i = 0; i < mix_.gossip_bulk && !x.inbox.empty(); ++i) {
    InMsg m = std::move(x.inbox.front());
    x.inbox.pop_front();
    ++x.lines_in;
    if (m.kind == InKind::kMalformed) ++x.malformed_in;
    if (m.kind == InKind::kForged) ++x.forged_in;
    bool parsed = false;
    std::vector<std::string> keys = keys_in(m.body, &parsed);
    std::uint64_t before = x.store->digest();
    if (trace_ != nullptr && m.body.find(trace_) != std::string::npos) {
      std::fprintf(stderr, "%lld %s -> n%d: %.100000s\n", static_cast<long long>((now_ - kEpochUs) / 1000), m.src.c_str(), n, m.body.c_str());
    }
    engine.on_peer_message(m.src, m.body, local(n), out_);
    if (x.store->digest() != before) {
      if (parsed && !keys.empty()) {
        observe_keys(n, keys);
      } else {
        observe_all(n);
      }
    }
    route(n, out_);
    cost += mix_.cost_msg_us;
  }
  if (local(n) >= engine.next_deadline_us()) {
    engine.tick(local(n), out_);
    route(n, out_);
    cost += mix_.cost_tick_us;
  }
  x.busy_until = now_ + cost;
  bool more = !x.inbox.empty() || (!x.deltas.empty() && engine.delta_room() > 0);
  wake_gossip(n, more ? std::max(x.busy_until, now_ + 1) : engine.next_deadline_us() - x.skew_us);
}

// The own-watermark handshake, exactly as gossip_thread.cpp's publish_own_watermark.
void Cluster::publish_own_watermark(int n) {
  Node& x = node(n);
  std::int64_t safe = x.clock->last();
  for (std::size_t w = 0; w < x.workers.size(); ++w) {
    safe = std::min(safe, x.workers[w].floor_us);
    if (x.dequeued[w] < x.workers[w].enqueued) return;
  }
  if (safe > x.published) {
    x.published = safe;
    x.engine->on_local_watermark(safe);
  }
}

// A worker (worker.cpp): a batch of the writes queued for it, each taking a version from the
// shared clock and then enqueueing its delta, with time passing between the steps so that the
// workers interleave and deltas reach the gossip side out of timestamp order.
void Cluster::worker_step(int n, std::size_t w) {
  Node& x = node(n);
  Worker& k = x.workers[w];
  switch (k.phase) {
    case Worker::kIdle: {
      if (k.queue.empty()) return;
      std::size_t take = std::min(k.queue.size(), mix_.worker_batch_max);
      k.batch.assign(std::make_move_iterator(k.queue.begin()),
                     std::make_move_iterator(k.queue.begin() + static_cast<std::ptrdiff_t>(take)));
      k.queue.erase(k.queue.begin(), k.queue.begin() + static_cast<std::ptrdiff_t>(take));
      k.idx = 0;
      k.floor_us = x.clock->last();
      k.batch_local_us = local(n);
      k.phase = Worker::kTake;
      wake_worker(n, w, now_ + rand_us(mix_.service_us_max));
      return;
    }
    case Worker::kTake: {
      const ClientWrite& cw = k.batch[k.idx];
      Store::WriteResult r = x.store->write(cw.key, cw.value, k.batch_local_us, origin_of(n), *x.clock);
      Taken t;
      t.key = cw.key;
      t.version = r.version;
      t.node = n;
      t.incarnation = static_cast<int>(x.gen);
      t.taken_us = now_;
      t.held.assign(nodes_.size(), 0);
      taken_.push_back(std::move(t));
      k.taken_idx = taken_.size() - 1;
      taken_by_key_[cw.key].push_back(k.taken_idx);
      auto& mine = taken_by_node_[static_cast<std::size_t>(n)];
      mine.insert(std::upper_bound(mine.begin(), mine.end(), std::pair{r.version.ts_us, k.taken_idx}),
                  std::pair{r.version.ts_us, k.taken_idx});
      known_[cw.key].insert({r.version, cw.value});
      k.delta = {r.entry, r.version, k.batch_local_us, true};
      // Another replica may hold a newer version of the key already.
      for (int o = 1; o <= mix_.nodes; ++o) {
        if (node(o).alive) observe_keys(o, {cw.key});
      }
      k.phase = Worker::kEnqueue;
      wake_worker(n, w, now_ + rand_us(mix_.take_to_enqueue_us_max));
      return;
    }
    case Worker::kEnqueue: {
      if (x.deltas.size() >= mix_.delta_queue_max) {  // full: wait (backpressure), never drop
        ++delta_waits_;
        wake_gossip(n, now_);
        wake_worker(n, w, now_ + kDeltaRetryUs);
        return;
      }
      x.deltas.push_back({k.delta, w, k.taken_idx});
      ++k.enqueued;
      taken_[k.taken_idx].acked_us = now_;  // the reply follows the enqueue
      wake_gossip(n, now_);
      if (++k.idx < k.batch.size()) {
        k.phase = Worker::kTake;
        wake_worker(n, w, now_ + rand_us(mix_.service_us_max));
      } else {
        k.floor_us = INT64_MAX;
        k.batch.clear();
        k.phase = Worker::kIdle;
        wake_worker(n, w, now_);
      }
      return;
    }
  }
}

void Cluster::deliver(int to, std::string src, std::string body, InKind kind, std::int64_t delay) {
  Event e;
  e.at = now_ + delay;
  e.kind = Ev::kDeliver;
  e.node = to;
  e.in = kind;
  e.src = std::move(src);
  e.body = std::move(body);
  push(std::move(e));
}

void Cluster::route(int from, std::vector<OutMessage>& out) {
  Node& x = node(from);
  for (OutMessage& m : out) {
    int lines = 1;
    ++lines_total_;
    if (breakage_ == Breakage::kDoubleLine && lines_total_ % 100 == 0) lines = 2;
    int to = std::stoi(m.dest.substr(1));
    check_acks(from, to, m.body);
    // I7: the runtime wraps the body in an envelope ({"src":..,"dest":..,"body":..}, under 64
    // bytes here) and a receiver skips any line longer than kLineBytesMax.
    if (m.body.size() + 64 > limits::kLineBytesMax) {
      violate("I7 line limit: n" + std::to_string(from) + " sends " + std::to_string(m.body.size()) +
              " bytes to " + m.dest + ", over the receiver's line limit");
    }
    std::size_t value_at = m.body.find("\"]");  // the end of the first entry's value
    if (breakage_ == Breakage::kCorruptLine && value_at != std::string::npos && ++entry_lines_ % 50 == 0) {
      m.body.insert(value_at, "0");
    }
    if (trace_ != nullptr && m.body.find(trace_) != std::string::npos) {
      std::fprintf(stderr, "%lld n%d sends to %s: %.100000s\n", static_cast<long long>((now_ - kEpochUs) / 1000), from, m.dest.c_str(), m.body.c_str());
    }
    for (int l = 0; l < lines; ++l) {
      ++x.lines_out;
      if (group_[static_cast<std::size_t>(from)] != group_[static_cast<std::size_t>(to)] || coin(loss_)) {
        continue;
      }
      int copies = coin(duplicate_) ? 2 : 1;
      for (int c = 0; c < copies; ++c) deliver(to, "n" + std::to_string(from), m.body, InKind::kGenuine, delay_us());
    }
  }
  out.clear();
}

// ---------------------------------------------------------------------------------------------
// Truth: who holds what, observed from the stores.

std::vector<std::string> Cluster::keys_in(const std::string& body, bool* parsed) {
  std::vector<std::string> keys;
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  *parsed = !d.HasParseError() && d.IsObject();
  if (!*parsed || !d.HasMember("e")) return keys;
  if (!d["e"].IsArray()) {
    *parsed = false;
    return keys;
  }
  for (const auto& e : d["e"].GetArray()) {
    if (e.IsArray() && e.Size() > 0 && e[0].IsString()) {
      keys.emplace_back(e[0].GetString(), e[0].GetStringLength());
    } else {
      *parsed = false;
    }
  }
  return keys;
}

// A write whose only holders were killed: no replica can give it back.
bool Cluster::lost_with_its_replica(const Taken& t) {
  if (!t.at_risk) return false;
  for (int n = 1; n <= mix_.nodes; ++n) {
    if (node(n).alive && holds(n, t)) return false;
  }
  return true;
}

bool Cluster::holds(int n, const Taken& t) {
  const Entry* e = node(n).store->find(t.key);
  return e != nullptr && !(node(n).store->load(*e, nullptr) < t.version);
}

int Cluster::live_count() {
  int c = 0;
  for (int n = 1; n <= mix_.nodes; ++n) c += node(n).alive ? 1 : 0;
  return c;
}

void Cluster::recheck(Taken& t) {
  if (t.everywhere_us >= 0) return;
  int held = 0;
  for (int n = 1; n <= mix_.nodes; ++n) held += node(n).alive && t.held[static_cast<std::size_t>(n)] ? 1 : 0;
  if (held == live_count()) t.everywhere_us = now_;
}

void Cluster::observe_keys(int n, const std::vector<std::string>& keys) {
  for (const std::string& k : keys) {
    auto it = taken_by_key_.find(k);
    if (it == taken_by_key_.end()) continue;
    for (std::size_t i : it->second) {
      Taken& t = taken_[i];
      if (t.everywhere_us >= 0 || t.held[static_cast<std::size_t>(n)] != 0) continue;
      if (!holds(n, t)) continue;
      t.held[static_cast<std::size_t>(n)] = 1;
      recheck(t);
    }
  }
}

void Cluster::observe_all(int n) {
  for (Taken& t : taken_) {
    if (t.everywhere_us >= 0 || t.held[static_cast<std::size_t>(n)] != 0) continue;
    if (!holds(n, t)) continue;
    t.held[static_cast<std::size_t>(n)] = 1;
    recheck(t);
  }
}

// ---------------------------------------------------------------------------------------------
// Faults.

void Cluster::kill(int n) {
  Node& x = node(n);
  check_counters(n, "when killed");
  x.alive = false;
  ++x.gen;
  x.engine.reset();  // before the store it replicates
  x.store.reset();
  x.inbox.clear();
  x.deltas.clear();
  for (Taken& t : taken_) {
    if (t.everywhere_us >= 0) continue;
    bool had = t.held[static_cast<std::size_t>(n)] != 0;
    t.held[static_cast<std::size_t>(n)] = 0;
    bool elsewhere = false;
    for (int o = 1; o <= mix_.nodes; ++o) elsewhere |= o != n && node(o).alive && t.held[static_cast<std::size_t>(o)] != 0;
    if (had && !elsewhere) t.at_risk = true;
    recheck(t);
  }
}

std::string ints(std::initializer_list<std::int64_t> v) {
  std::string s = "[";
  for (std::int64_t x : v) s += (s.size() > 1 ? "," : "") + std::to_string(x);
  return s + "]";
}

// One message of a misbehaving peer, of class `cls`. Sets the kind it is delivered as.
std::string Cluster::forge_message(std::uint32_t cls, int target, int src) {
  std::int64_t now = local(target);
  auto any_origin = [&] { return std::uniform_int_distribution<int>(1, mix_.nodes)(rng_); };
  auto key = [&] { return "i" + std::to_string(std::uniform_int_distribution<int>(0, mix_.keys - 1)(rng_)); };
  auto wm_all = [&](std::int64_t v) {
    std::string s = "[0";
    for (int o = 1; o <= mix_.nodes; ++o) s += "," + std::to_string(v);
    return s + "]";
  };
  auto entry = [&](const std::string& k, std::int64_t ts, std::int64_t origin, const std::string& value_json) {
    return "[\"" + k + "\"," + std::to_string(ts) + "," + std::to_string(origin) + "," + value_json + "]";
  };
  auto pick = [&](int count) { return std::uniform_int_distribution<int>(0, count - 1)(rng_); };
  switch (cls) {
    case kForge:
      switch (pick(5)) {
        case 0: return R"({"type":"gossip","from":0,"to":9223372036854775807,"e":[]})";
        case 1:  // with the sender's floor, as its pushes say: a chain of its current life
          return R"({"type":"gossip","from":0,"to":)" + std::to_string(now + 10'000'000) + R"(,"fl":)" +
                 std::to_string(node(src).floor_us) + R"(,"e":[]})";
        case 2:  // an answer to the target's current life: its digests tell the floor
          return R"({"type":"gossip","e":[],"wm":)" + wm_all(now + 60'000'000) + R"(,"af":)" +
                 std::to_string(node(target).floor_us) + "}";
        case 3: return R"({"type":"digest","wm":)" + wm_all(INT64_MAX) + "}";
        default:
          return R"({"type":"gossip","from":0,"to":0,"e":[],"r":{"sp":[)" +
                 ints({any_origin(), 0, now + 60'000'000, now + 60'000'000}) + "]}}";
      }
    case kCrashInput:
      switch (pick(4)) {
        case 0: return R"({"type":"gossip","from":0,"to":0,"e":"x"})";
        case 1: return R"({"type":"gossip","from":0,"to":0,"e":{"a":1}})";
        case 2: return R"({"type":"gossip","e":[)" + entry(key(), INT64_MIN, any_origin(), "\"1\"") + "]}";
        default: {
          std::string k = key();
          Event e;  // then a client write to that key
          e.at = now_ + 200'000;
          e.kind = Ev::kClient;
          e.node = target;
          e.src = k;
          push(std::move(e));
          return R"({"type":"gossip","e":[)" + entry(k, INT64_MAX, any_origin(), "\"1\"") + "]}";
        }
      }
    case kRange:
      switch (pick(6)) {
        case 0: return R"({"type":"gossip","e":[)" + entry(key(), now, mix_.nodes + 1, "\"1\"") + "]}";
        case 1: return R"({"type":"gossip","e":[)" + entry(key(), now, 4294967295, "\"1\"") + "]}";
        case 2: return R"({"type":"gossip","e":[)" + entry(key(), -5, any_origin(), "\"1\"") + "]}";
        case 3: return R"({"type":"gossip","e":[)" + entry(key(), now + 315'360'000'000'000, any_origin(), "\"1\"") + "]}";
        case 4: return R"({"type":"ack","a":[[0,9223372036854775807,-1]]})";
        default: return R"({"type":"gossip","from":-9223372036854775808,"to":-1,"e":[]})";
      }
    case kGarbage: {
      const char* g[] = {"not json", "{", "[]", R"({"type":5})", R"({"type":"zzz"})",
                         R"({"type":"gossip","e":[[1,2,3]]})", R"({"type":"gossip","e":[["i1","12",1,"1"]]})",
                         R"({"type":"digest","wm":"x"})", R"({"type":"ack","a":[["x"]]})",
                         R"({"type":"gossip","e":[["i1",1.5,1,"1"]]})"};
      return g[pick(10)];
    }
    default: {  // kInject
      int c = pick(6);
      if (c == 0) return R"({"type":"gossip","e":[)" + entry(key(), now, any_origin(), R"("1}}\n{\"src\":\"n1\"}")") + "]}";
      if (c == 1) return R"({"type":"gossip","e":[)" + entry(key(), now, any_origin(), R"("not json")") + "]}";
      if (c == 2) return R"({"type":"gossip","e":[)" + entry("untagged", now, any_origin(), R"("1")") + "]}";
      if (c == 3 && !taken_.empty()) {  // the version of a real write, another value: a tie
        const Taken& t = taken_[std::uniform_int_distribution<std::size_t>(0, taken_.size() - 1)(rng_)];
        std::string value = std::to_string(1'000'000'000 + write_counter_++);
        known_[t.key].insert({t.version, value});
        return R"({"type":"gossip","e":[)" + entry(t.key, t.version.ts_us, t.version.origin, "\"" + value + "\"") + "]}";
      }
      // Plausible: indistinguishable from a write of that origin's.
      std::string k = key();
      std::string value = std::to_string(1'000'000'000 + write_counter_++);
      Version v{now - rand_us(500'000), static_cast<std::uint32_t>(any_origin())};
      known_[k].insert({v, value});
      return R"({"type":"gossip","e":[)" + entry(k, v.ts_us, v.origin, "\"" + value + "\"") + "]}";
    }
  }
}

void Cluster::misbehave() {
  std::vector<std::uint32_t> classes;
  for (std::uint32_t b = kForge; b <= kInject; b <<= 1) {
    if ((mix_.misbehave & b) != 0) classes.push_back(b);
  }
  std::vector<int> live;
  for (int n = 1; n <= mix_.nodes; ++n) {
    if (node(n).alive) live.push_back(n);
  }
  if (classes.empty() || live.empty()) return;
  std::uint32_t cls = classes[std::uniform_int_distribution<std::size_t>(0, classes.size() - 1)(rng_)];
  int target = live[std::uniform_int_distribution<std::size_t>(0, live.size() - 1)(rng_)];
  int src = std::uniform_int_distribution<int>(1, mix_.nodes - 1)(rng_);
  if (src >= target) ++src;
  std::size_t known_before = 0;
  for (const auto& [k, s] : known_) known_before += s.size();
  std::string body = forge_message(cls, target, src);
  std::size_t known_after = 0;
  for (const auto& [k, s] : known_) known_after += s.size();
  InKind kind = cls == kForge ? InKind::kForged
                : known_after > known_before ? InKind::kPlausible
                                             : InKind::kMalformed;
  ++injected_;
  deliver(target, "n" + std::to_string(src), std::move(body), kind, delay_us());
}

// ---------------------------------------------------------------------------------------------
// The run.

void Cluster::handle(Event& e) {
  switch (e.kind) {
    case Ev::kDeliver: {
      Node& x = node(e.node);
      if (!x.alive) return;  // a dead process reads nothing
      x.inbox.push_back({std::move(e.src), std::move(e.body), e.in});
      wake_gossip(e.node, now_);
      return;
    }
    case Ev::kGossip: {
      Node& x = node(e.node);
      if (e.gen != x.gen || !x.alive || x.paused || e.at != x.step_at) return;
      x.step_at = INT64_MAX;
      gossip_step(e.node);
      return;
    }
    case Ev::kWorker: {
      Node& x = node(e.node);
      if (e.gen != x.gen || !x.alive) return;
      x.workers[e.arg].has_event = false;
      if (x.paused) return;  // resumed later
      worker_step(e.node, e.arg);
      return;
    }
    case Ev::kClient: {
      Node& x = node(e.node);
      if (!x.alive) return;  // refused: never acknowledged
      std::size_t w = std::hash<std::string>{}(e.src) % x.workers.size();
      x.workers[w].queue.push_back({e.src, std::to_string(write_counter_++)});
      if (x.workers[w].phase == Worker::kIdle) wake_worker(e.node, w, now_);
      return;
    }
    case Ev::kCut: group_ = mix_.partitions[e.arg].groups; return;
    case Ev::kHeal: std::fill(group_.begin(), group_.end(), 0); return;
    case Ev::kPause: node(e.node).paused = true; return;
    case Ev::kResume: {
      Node& x = node(e.node);
      if (!x.paused) return;
      x.paused = false;
      x.step_at = INT64_MAX;
      wake_gossip(e.node, now_);
      for (std::size_t w = 0; w < x.workers.size(); ++w) wake_worker(e.node, w, now_);
      return;
    }
    case Ev::kKill:
      if (node(e.node).alive) kill(e.node);
      return;
    case Ev::kRestart:
      if (!node(e.node).alive) start_node(e.node);
      return;
    case Ev::kPeer: misbehave(); return;
    case Ev::kEndLoad: {
      // Everything heals: a clean network, no cut, no pause, every node up.
      loss_ = duplicate_ = 0;
      std::fill(group_.begin(), group_.end(), 0);
      for (int n = 1; n <= mix_.nodes; ++n) {
        if (!node(n).alive) start_node(n);
        if (node(n).paused) {
          Event r;
          r.kind = Ev::kResume;
          r.node = n;
          handle(r);
        }
      }
      return;
    }
  }
}

VoprResult Cluster::run(std::uint64_t seed) {
  schedule_load();
  std::int64_t end = kEpochUs + mix_.load_us + mix_.quiet_us;
  while (!events_.empty() && events_.top().at <= end) {
    Event e = events_.top();
    events_.pop();
    now_ = std::max(now_, e.at);
    handle(e);
  }
  now_ = end;
  check_end();
  VoprResult r;
  r.seed = seed;
  r.mix = describe(mix_, seed);
  r.violations = violations_;
  r.late = late_;
  for (const auto& [id, count] : per_invariant_) {
    r.failed.push_back(id);
    if (count > kViolationsListed) {
      r.violations.push_back("... " + std::to_string(count - kViolationsListed) + " more " + id);
    }
  }
  for (const Taken& t : taken_) {
    if (t.acked_us < 0) continue;
    ++r.writes_acked;
  }
  r.messages = lines_total_;
  r.delta_waits = delta_waits_;
  r.injected = injected_;
  r.virtual_ms = (now_ - kEpochUs) / 1000;
  for (const Taken& t : taken_) {
    bool anywhere = false;
    for (int n = 1; n <= mix_.nodes; ++n) anywhere |= holds(n, t);
    if (t.acked_us >= 0 && t.at_risk && !anywhere) ++r.writes_excused;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Invariants: contents against the truth; the engine's counters against what was routed.

std::string vstr(Version v) { return "(" + std::to_string(v.ts_us) + "," + std::to_string(v.origin) + ")"; }

void Cluster::check_counters(int n, const char* when) {
  Node& x = node(n);
  EngineStats s = read_stats(*x.engine);
  std::string who = "n" + std::to_string(n) + " (incarnation " + std::to_string(x.gen) + ") " + when;
  if (s.sent != x.lines_out) {
    violate("I4 counters: " + who + " counts " + std::to_string(s.sent) + " messages sent, its writer emitted " +
            std::to_string(x.lines_out));
  }
  if (s.received != x.lines_in) {
    violate("I4 counters: " + who + " counts " + std::to_string(s.received) + " messages received, it was handed " +
            std::to_string(x.lines_in));
  }
  bool exact = x.forged_in == 0;  // a forged message may or may not be malformed by the spec
  if (exact ? s.malformed != x.malformed_in : s.malformed < x.malformed_in) {
    violate("I4 counters: " + who + " counts " + std::to_string(s.malformed) + " malformed messages, the peer sent " +
            std::to_string(x.malformed_in) + " malformed");
  }
  std::uint64_t own_acked = 0;
  for (const Taken& t : taken_) {
    own_acked += t.node == n && t.incarnation == static_cast<int>(x.gen) && t.acked_us >= 0 ? 1 : 0;
  }
  if (s.count + s.pending + s.unmeasured != own_acked && std::string(when) == "at the end") {
    violate("I4 counters: " + who + " accounts for " + std::to_string(s.count) + " measured + " +
            std::to_string(s.pending) + " pending + " + std::to_string(s.unmeasured) +
            " unmeasured own writes, it acknowledged " + std::to_string(own_acked));
  }
}

// I6: an acknowledgement from `from` about origin o's writes, "a": [[lo, hi, at_us], ...] (o is
// the recipient) or "ra": [[o, lo, hi, at_us], ...] (for a relay to forward), says `from` holds
// every write of o with lo < ts <= hi (or a newer version of its key): checked when it is sent.
// It is read by o's current life, about its own writes: an earlier life's writes are not
// claimed (their versions may lie in the same range when a clock ran ahead before a restart;
// they are content sync's), and a dead origin reads nothing. Spans of several versions that name
// another life of the recipient ("al", the floor of the life they are about) are not read by
// this one: the engine ignores them (wire.cpp), so they claim nothing about its writes.
void Cluster::check_acks(int from, int to, const std::string& body) {
  if (body.find("\"a\":") == std::string::npos && body.find("\"ra\":") == std::string::npos) return;
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return;
  auto check = [&](int origin, std::int64_t lo, std::int64_t hi) {
    if (origin < 1 || origin > mix_.nodes) return;
    const auto& mine = taken_by_node_[static_cast<std::size_t>(origin)];
    for (auto it = std::upper_bound(mine.begin(), mine.end(), std::pair{lo, SIZE_MAX});
         it != mine.end() && it->first <= hi; ++it) {
      const Taken& t = taken_[it->second];
      if (t.incarnation != static_cast<int>(node(origin).gen)) continue;
      if (holds(from, t) || lost_with_its_replica(t)) continue;
      violate("I6 acknowledgements: n" + std::to_string(from) + " tells n" + std::to_string(origin) +
              " at " + std::to_string((now_ - kEpochUs) / 1000) + " ms that it holds (" + std::to_string(lo) +
              ", " + std::to_string(hi) + "] but lacks " + t.key + " " + vstr(t.version));
      return;
    }
  };
  bool other_life = d.HasMember("al") && d["al"].IsInt64() && d["al"].GetInt64() != node(to).floor_us;
  if (d.HasMember("a") && d["a"].IsArray()) {
    for (const auto& a : d["a"].GetArray()) {
      if (!a.IsArray() || a.Size() != 3 || !a[0].IsInt64() || !a[1].IsInt64()) continue;
      // A report on one version is taken whichever life it names.
      if (other_life && a[1].GetInt64() - a[0].GetInt64() != 1) continue;
      check(to, a[0].GetInt64(), a[1].GetInt64());
    }
  }
  if (d.HasMember("ra") && d["ra"].IsArray()) {
    for (const auto& a : d["ra"].GetArray()) {
      if (a.IsArray() && a.Size() == 4 && a[0].IsInt() && a[1].IsInt64() && a[2].IsInt64()) {
        check(a[0].GetInt(), a[1].GetInt64(), a[2].GetInt64());
      }
    }
  }
}

void Cluster::check_end() {
  std::vector<int> live;
  for (int n = 1; n <= mix_.nodes; ++n) {
    if (node(n).alive) live.push_back(n);
  }
  check_durability(live);
  check_contents(live);
  for (int n : live) {  // I2: identical replicas
    if (node(n).store->digest() != node(live[0]).store->digest()) {
      violate("I2 digests: n" + std::to_string(n) + " (" + std::to_string(node(n).store->key_count()) +
              " keys) differs from n" + std::to_string(live[0]) + " (" +
              std::to_string(node(live[0]).store->key_count()) + " keys)");
    }
  }
  for (int n : live) {
    check_counters(n, "at the end");
    check_figures(n);
  }
}

// I1: every acknowledged write on every live replica, or a newer version of its key.
void Cluster::check_durability(const std::vector<int>& live) {
  for (const Taken& t : taken_) {
    if (t.acked_us < 0) continue;
    bool anywhere = false;
    for (int n : live) anywhere |= holds(n, t);
    if (t.at_risk && !anywhere) continue;  // lost with the only replica that held it
    for (int n : live) {
      if (holds(n, t)) continue;
      const Entry* e = node(n).store->find(t.key);
      violate("I1 durability: write " + t.key + " " + vstr(t.version) + " acknowledged by n" +
              std::to_string(t.node) + " at " + std::to_string((t.acked_us - kEpochUs) / 1000) +
              " ms is missing on n" + std::to_string(n) + " (it holds " +
              (e == nullptr ? std::string("nothing") : vstr(node(n).store->load(*e, nullptr))) + ")");
    }
  }
}

// I5: every replica holds only what a client wrote (or a peer could plausibly have).
void Cluster::check_contents(const std::vector<int>& live) {
  for (int n : live) {
    node(n).store->for_each([&](const Entry& e, std::string_view value, Version v) {
      if (v == Version{}) return;
      std::string key(Store::key_of(e));
      auto it = known_.find(key);
      if (it == known_.end() || it->second.count({v, std::string(value)}) == 0) {
        violate("I5 contents: n" + std::to_string(n) + " holds " + key + " " + vstr(v) + " = " +
                std::string(value.substr(0, 40)) + ", which no client wrote");
      }
    });
  }
}

// I3: a node's convergence figures are never earlier than the truth. The k-th smallest of the
// figures it took cannot be below the k-th smallest true time over all of its writes (a
// subset's k-th smallest is at least the whole set's). Figures span two clocks: the tolerance
// is the clocks' spread (known to the simulator) plus rounding.
void Cluster::check_figures(int n) {
  std::int64_t lo = *std::min_element(mix_.skew_us.begin() + 1, mix_.skew_us.end());
  std::int64_t hi = *std::max_element(mix_.skew_us.begin() + 1, mix_.skew_us.end());
  std::int64_t tolerance_ms = 1 + (hi - lo + 999) / 1000;
  {
    Node& x = node(n);
    EngineStats s = read_stats(*x.engine);
    std::vector<std::int64_t> truth;
    for (const Taken& t : taken_) {
      if (t.node != n || t.incarnation != static_cast<int>(x.gen) || t.acked_us < 0) continue;
      truth.push_back(t.everywhere_us < 0 ? kInf : (t.everywhere_us - t.taken_us) / 1000);
    }
    std::sort(truth.begin(), truth.end());
    report_late(n, s.figures_ms, truth, tolerance_ms);
    if (s.figures_ms.size() > truth.size()) {
      violate("I3 figures: n" + std::to_string(n) + " took " + std::to_string(s.figures_ms.size()) +
              " convergence figures for " + std::to_string(truth.size()) + " writes");
      return;
    }
    for (std::size_t k = 0; k < s.figures_ms.size(); ++k) {
      std::int64_t bucket = s.figures_ms[k] >= 10'000 ? 10 : 0;
      if (s.figures_ms[k] + bucket + tolerance_ms >= truth[k]) continue;
      violate("I3 figures: n" + std::to_string(n) + "'s figure #" + std::to_string(k + 1) + " is " +
              std::to_string(s.figures_ms[k]) + " ms, the truth's #" + std::to_string(k + 1) + " is " +
              (truth[k] == kInf ? std::string("never") : std::to_string(truth[k]) + " ms"));
      return;
    }
    // Write by write (bench_figures, the newest kFiguresKept): each figure against the truth
    // of the write it names, which the ranks above cannot tell apart.
    const auto& mine = taken_by_node_[static_cast<std::size_t>(n)];
    std::vector<std::pair<std::int64_t, std::int64_t>> figures = read_figures(*x.engine);
    if (breakage_ == Breakage::kSwappedFigures) {  // the same figures, each on another write
      for (std::size_t i = 0; i < figures.size() / 2; ++i) {
        std::swap(figures[i].second, figures[figures.size() - 1 - i].second);
      }
    }
    for (const auto& [ts, ms] : figures) {
      const Taken* t = nullptr;
      for (auto it = std::lower_bound(mine.begin(), mine.end(), std::pair{ts, std::size_t{0}});
           it != mine.end() && it->first == ts; ++it) {
        const Taken& c = taken_[it->second];
        if (c.incarnation == static_cast<int>(x.gen) && c.acked_us >= 0) t = &c;
      }
      if (t == nullptr) {
        violate("I3 figures: n" + std::to_string(n) + " took a figure for version " + std::to_string(ts) +
                ", no write of its life");
        return;
      }
      std::int64_t truth_ms = t->everywhere_us < 0 ? kInf : (t->everywhere_us - t->taken_us) / 1000;
      if (ms + tolerance_ms >= truth_ms) continue;
      violate("I3 figures: n" + std::to_string(n) + "'s figure for " + t->key + " " + vstr(t->version) + " is " +
              std::to_string(ms) + " ms, the truth is " +
              (truth_ms == kInf ? std::string("never") : std::to_string(truth_ms) + " ms"));
      return;
    }
  }
}

void Cluster::report_late(int n, const std::vector<std::int64_t>& figures, const std::vector<std::int64_t>& truth,
                          std::int64_t tolerance_ms) {
  if (figures.empty() || figures.size() != truth.size() || truth.back() == kInf) return;
  auto rank = [](const std::vector<std::int64_t>& v, double q) {  // v ascending
    return v[static_cast<std::size_t>(nearest_rank(q, v.size())) - 1];
  };
  std::string worst;
  for (auto [q, name] : {std::pair{0.5, "p50"}, std::pair{0.95, "p95"}, std::pair{1.0, "max"}}) {
    std::int64_t f = rank(figures, q), t = rank(truth, q);
    if (f <= t + t / 10 + 20 + tolerance_ms) continue;
    worst += std::string(worst.empty() ? "" : ", ") + name + " " + std::to_string(f) + " ms against " +
             std::to_string(t);
  }
  if (!worst.empty()) late_.push_back("late figures: n" + std::to_string(n) + "'s " + worst);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string fault_names(std::uint32_t mask) {
  std::string s;
  for (const FaultName& f : kFaultNames) {
    if ((mask & f.bit) == 0) continue;
    s += (s.empty() ? "" : ",") + std::string(f.name);
  }
  return s;
}

bool parse_faults(const std::string& text, std::uint32_t* mask) {
  std::string rest = text;
  bool subtract = rest.rfind("all-", 0) == 0;
  if (subtract) rest = rest.substr(4);
  std::uint32_t m = 0;
  std::stringstream ss(rest);
  for (std::string name; std::getline(ss, name, ',');) {
    std::uint32_t bits = 0;
    for (const FaultName& f : kFaultNames) {
      if (name == f.name) bits = f.bit;
    }
    if (name == "peer") bits = kMisbehaviour;
    if (name == "all") bits = kAllFaults;
    if (name == "network") bits = kNetworkFaults;
    if (name == "bursts") bits = kBurstFaults;
    if (name == "cuts") bits = kCutFaults;
    if (bits == 0) return false;
    m |= bits;
  }
  *mask = subtract ? kAllFaults & ~m : m;
  return true;
}

const char* breakage_name(Breakage b) {
  switch (b) {
    case Breakage::kNone: return "none";
    case Breakage::kDropDelta: return "drop-delta";
    case Breakage::kDropDeltaNoNet: return "drop-delta-no-net";
    case Breakage::kCorruptLine: return "corrupt-line";
    case Breakage::kLateTaken: return "late-taken";
    case Breakage::kDoubleLine: return "double-line";
    case Breakage::kSwappedFigures: return "swapped-figures";
  }
  return "?";
}

bool parse_breakage(const std::string& text, Breakage* out) {
  for (Breakage b : {Breakage::kNone, Breakage::kDropDelta, Breakage::kDropDeltaNoNet,
                     Breakage::kCorruptLine,
                     Breakage::kLateTaken, Breakage::kDoubleLine, Breakage::kSwappedFigures}) {
    if (text == breakage_name(b)) {
      *out = b;
      return true;
    }
  }
  return false;
}

std::string describe_seed(std::uint64_t seed, const VoprOptions& options) {
  return describe(draw_mix(seed, options.faults), seed);
}

VoprResult run_vopr_seed(std::uint64_t seed, const VoprOptions& options) {
  Mix mix = draw_mix(seed, options.faults);
  std::string line = describe(mix, seed) + " (GOSSIP_VOPR_SEED=" + std::to_string(seed) + " to replay)";
  std::snprintf(g_crash_line, sizeof g_crash_line, "%s", line.c_str());
  for (int sig : {SIGSEGV, SIGABRT, SIGFPE, SIGBUS, SIGILL}) std::signal(sig, on_crash_signal);
  Cluster cluster(seed, mix, options.breakage);
  return cluster.run(seed);
}

}  // namespace gossip_kv::sim
