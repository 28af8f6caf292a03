#include "driver.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <absl/container/flat_hash_map.h>
#include <rapidjson/document.h>

#include "envelope.h"
#include "nemesis.h"
#include "observer.h"
#include "poll_observer.h"

namespace gossip_bench {
namespace {

// The runner's own requests (client c0): init, the final reads and bench_stats rounds.
constexpr std::int64_t kInitMsgId = 1;
constexpr std::int64_t kFinalReadBase = 1'000'000'000;  // + key
constexpr std::int64_t kStatsBase = 2'000'000'000;      // + round
constexpr std::int64_t kBurstBase = 3'000'000'000;      // + the burst write's index
constexpr std::int64_t kPollBase = 4'000'000'000;       // + the poll's number (foreign nodes)
constexpr std::int64_t kLastWordsMsgId = 5'000'000'000;  // bench_stats just before a kill
constexpr std::int64_t kLastFiguresMsgId = 5'000'000'001;  // bench_figures just before a kill
constexpr std::int64_t kFiguresMsgId = 6'000'000'000;      // bench_figures at the end
constexpr std::int64_t kLastWordsWaitUs = 200'000;
// Between polling rounds for a node without gossip-bench's endpoints (poll_observer.h): the
// resolution of its convergence figures.
constexpr std::int64_t kPollUs = 50'000;
// How long the nodes get to answer init, a stats round, and to exit once their input closes.
constexpr std::int64_t kInitWaitUs = 5'000'000;
constexpr std::int64_t kStatsWaitUs = 2'000'000;
constexpr std::int64_t kExitGraceUs = 2'000'000;
// Between stats rounds in the quiet period: the resolution of identical_after_ms.
constexpr std::int64_t kQuietPollUs = 100'000;
// Final reads in flight per node; a node that answers none of them for kFinalReadsStallUs is
// given up on (reported), however many keys there are.
constexpr int kFinalReadsInFlightMax = 256;
constexpr std::int64_t kFinalReadsStallUs = 2'000'000;

std::int64_t wall_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t us(double seconds) { return std::llround(seconds * 1e6); }

// Small typed readers of a reply body: absent or mistyped members read as nullopt.
std::optional<std::int64_t> int_member(const rapidjson::Value& o, const char* k) {
  if (!o.IsObject()) return std::nullopt;
  auto it = o.FindMember(k);
  if (it == o.MemberEnd() || !it->value.IsInt64()) return std::nullopt;
  return it->value.GetInt64();
}
std::uint64_t count_member(const rapidjson::Value& o, const char* k) {
  if (!o.IsObject()) return 0;
  auto it = o.FindMember(k);
  return it != o.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
}
std::string string_member(const rapidjson::Value& o, const char* k) {
  if (!o.IsObject()) return {};
  auto it = o.FindMember(k);
  return it != o.MemberEnd() && it->value.IsString() ? it->value.GetString() : std::string();
}
// A version timestamp in seconds (a JSON number) as microseconds.
std::optional<std::int64_t> ts_member(const rapidjson::Value& o) {
  if (!o.IsObject()) return std::nullopt;
  auto it = o.FindMember("ts");
  if (it == o.MemberEnd() || !it->value.IsNumber()) return std::nullopt;
  return std::llround(it->value.GetDouble() * 1e6);
}

NodeConvergence parse_convergence(const rapidjson::Value& c) {
  NodeConvergence n;
  n.count = count_member(c, "count");
  n.pending = count_member(c, "pending");
  n.unmeasured = count_member(c, "unmeasured");
  n.p50 = int_member(c, "p50").value_or(0);
  n.p95 = int_member(c, "p95").value_or(0);
  n.p99 = int_member(c, "p99").value_or(0);
  n.max = int_member(c, "max").value_or(0);
  if (c.IsObject() && c.HasMember("histogram") && c["histogram"].IsArray()) {
    for (const auto& b : c["histogram"].GetArray()) {
      if (b.IsArray() && b.Size() == 2 && b[0].IsInt64() && b[1].IsUint64()) {
        n.histogram.emplace_back(b[0].GetInt64(), b[1].GetUint64());
      }
    }
  }
  return n;
}

class Driver {
 public:
  Driver(const Options& o, const std::string& condition, const std::string& dir)
      : o_(o), rng_(o.seed), nemesis_rng_(o.seed ^ 0x6e656d65736973ull), observer_(o.node_count),
        polls_(o.node_count, &run_.history) {
    run_.condition = condition;
    run_.write_type = o.write_type;
    ClusterOptions co;
    co.bin = o.bin;
    std::istringstream words(o.node_args);
    for (std::string w; words >> w;) co.node_args.push_back(w);
    co.nodes = o.node_count;
    co.latency_ms = o.latency_ms;
    co.dist = o.latency_dist;
    co.log_dir = dir;
    co.seed = o.seed;
    if (condition == "clock-skew") skew_clocks(co);
    next_burst_key_ = o.key_count;  // burst keys follow the load's
    if (condition == "burst") observer_.track_from_key(o.key_count);
    cluster_ = std::make_unique<Cluster>(co);
    cluster_->on_delivery([this](int to, std::string_view line, std::int64_t now) {
      observer_.on_delivered(to, line, now);
    });
    clients_.resize(static_cast<std::size_t>(o.concurrency) + 1);
    run_.nodes.resize(static_cast<std::size_t>(n()));
  }

  // Every node's clock offset for the whole condition, uniform in [-skew, +skew] ms.
  void skew_clocks(ClusterOptions& co) {
    auto skew = std::llround(o_.clock_skew_ms);
    std::uniform_int_distribution<std::int64_t> offset(-skew, skew);
    min_skew_ms_ = INT64_MAX;
    max_skew_ms_ = INT64_MIN;
    co.args_of_node.resize(static_cast<std::size_t>(n()) + 1);
    for (int i = 1; i <= n(); ++i) {
      std::int64_t ms = offset(nemesis_rng_);
      min_skew_ms_ = std::min(min_skew_ms_, ms);
      max_skew_ms_ = std::max(max_skew_ms_, ms);
      co.args_of_node[static_cast<std::size_t>(i)] = {"--clock-offset-ms", std::to_string(ms)};
      skew_description_ += (i > 1 ? ", n" : "n") + std::to_string(i) + (ms >= 0 ? " +" : " ") + std::to_string(ms) + " ms";
    }
  }

  ConditionRun run() {
    init();
    probe_bench_endpoints();
    load();
    if (foreign_) {
      quiet_polling();
    } else {
      quiet();
    }
    final_reads();
    if (foreign_) {
      adopt_final_reads();
    } else {
      stats_round(kStatsWaitUs);
      adopt_final_stats();
      figures_round();
    }
    end_progress();
    shutdown_us_ = cluster_->now_us();
    cluster_->shutdown(kExitGraceUs);
    collect();
    return std::move(run_);
  }

 private:
  struct Client {
    bool busy = false;
    std::int64_t msg_id = 0;
    std::size_t op = 0;
    std::int64_t deadline_us = 0;
  };

  int n() const { return o_.node_count; }
  // Keys read at the end: the load's, and every burst's.
  int final_keys() const { return std::max<int>(o_.key_count, static_cast<int>(next_burst_key_)); }
  NodeReport& node(int i) { return run_.nodes[static_cast<std::size_t>(i - 1)]; }
  static std::string envelope(const std::string& src, int node, const std::string& body) {
    return R"({"src":")" + src + R"(","dest":"n)" + std::to_string(node) + R"(","body":)" + body + "}";
  }
  void pump(std::int64_t until_us) {
    cluster_->run_until(until_us, [this](int node, std::string_view line, std::int64_t now) {
      on_line(node, line, now);
    });
  }
  bool alive(int i) const { return !cluster_->exit_of(i).output_ended; }

  void send_init(int i) {
    std::string ids;
    for (int j = 1; j <= n(); ++j) ids += (j > 1 ? ",\"n" : "\"n") + std::to_string(j) + "\"";
    init_ok_[static_cast<std::size_t>(i)] = false;
    cluster_->send(i, envelope("c0", i, R"({"type":"init","msg_id":)" + std::to_string(kInitMsgId) +
                                            R"(,"node_id":"n)" + std::to_string(i) + R"(","node_ids":[)" + ids + "]}"));
  }

  void init() {
    init_ok_.assign(static_cast<std::size_t>(n()) + 1, false);
    for (int i = 1; i <= n(); ++i) send_init(i);
    std::int64_t until = cluster_->now_us() + kInitWaitUs;
    auto waiting = [&] {
      for (int i = 1; i <= n(); ++i) {
        if (!init_ok_[static_cast<std::size_t>(i)] && alive(i)) return true;
      }
      return false;
    };
    while (cluster_->now_us() < until && waiting()) pump(std::min(until, cluster_->now_us() + 5'000));
  }

  // A node that answers bench_stats with a digest is measured through it; any other (their
  // own node, `--bin`) by polling reads, with the figures only gossip-kv reports left n/a.
  void probe_bench_endpoints() {
    if (o_.poll_reads) {
      foreign_ = run_.foreign = true;
      return;
    }
    stats_round(kStatsWaitUs);
    // Only when no node has the endpoint: one slow or broken gossip-kv node must not turn off
    // the checks that need bench_stats (it is reported as a problem later).
    foreign_ = std::none_of(stats_.begin(), stats_.end(),
                            [](const NodeReport& r) { return r.answered_stats && !r.digest.empty(); });
    run_.foreign = foreign_;
  }

  // --- Polling reads (foreign nodes) --------------------------------------------------------

  void send_polls() {
    for (auto [node, key] : polls_.polls_due()) {
      if (cluster_->down(node)) continue;  // in flight until forget_polls_of at its restart
      std::int64_t msg_id = kPollBase + next_poll_++;
      poll_of_msg_[msg_id] = {node, key};
      cluster_->send(node, envelope("c0", node, R"({"type":"kv_read","msg_id":)" + std::to_string(msg_id) +
                                                    R"(,"key":)" + std::to_string(key) + "}"));
    }
  }

  void on_poll_answer(int node, const rapidjson::Value& b, std::int64_t irt, std::int64_t now) {
    auto it = poll_of_msg_.find(irt);
    if (it == poll_of_msg_.end() || it->second.first != node) return;
    std::int64_t key = it->second.second;
    poll_of_msg_.erase(it);
    std::int64_t value = string_member(b, "type") == "kv_read_ok" ? int_member(b, "value").value_or(kUnknown) : kUnknown;
    polls_.on_answer(node, key, value, now);
  }

  // The quiet period without bench_stats: until every acknowledged write has been read on
  // every node (or a later write of its key), or the period ends.
  void quiet_polling() {
    std::int64_t start = cluster_->now_us(), end = start + us(o_.quiet_period_s);
    while (cluster_->now_us() < end && !polls_.idle()) {
      send_polls();
      pump(std::min(end, cluster_->now_us() + kPollUs));
    }
    // Every acknowledged write on every node is what "identical" can mean without digests;
    // the final reads then compare the nodes' values key by key.
    if (polls_.idle()) run_.identical_after_ms = run_.settled_after_ms = (cluster_->now_us() - load_end_us_) / 1000;
  }

  // Without bench_stats, a node's report is its final reads: its "digest" is their values.
  void adopt_final_reads() {
    for (int i = 1; i <= n(); ++i) {
      NodeReport& r = node(i);
      r.answered_stats = r.final_reads_complete;
      r.digest.clear();
      for (const auto& [key, f] : r.held) r.digest += std::to_string(key) + "=" + std::to_string(f.value) + ";";
    }
  }

  // A foreign node's reads carry no version: stand-ins that keep the checkers sound. A write's
  // is its invocation's wall time; a value read stands for its write's acknowledgement wall
  // time (or "never older" when it had none). A read then counts as older than an
  // acknowledged write only when its write was acknowledged before that one was invoked: a
  // strict real-time order, so concurrent writes are never taken for lost or stale.
  void assign_stand_in_versions() {
    constexpr std::int64_t kNeverOlder = INT64_MAX / 4;
    absl::flat_hash_map<std::int64_t, std::int64_t> acked_at;  // value -> acknowledgement wall time
    for (Op& op : run_.history) {
      if (op.kind != Op::Kind::kWrite) continue;
      op.ts_us = op.invoke_wall_us;
      acked_at[op.value] = op.acked_write() ? op.complete_wall_us : kNeverOlder;
    }
    auto stand_in = [&](std::int64_t value) {
      auto it = acked_at.find(value);
      return it == acked_at.end() ? kNeverOlder : it->second;
    };
    for (Op& op : run_.history) {
      if (op.read_found() && op.value != kUnknown) op.ts_us = stand_in(op.value);
    }
    for (NodeReport& r : run_.nodes) {
      for (auto& [key, f] : r.held) {
        if (f.value != kUnknown) f.ts_us = stand_in(f.value);
      }
    }
  }

  // --- The load ---------------------------------------------------------------------------

  void load() {
    std::exponential_distribution<double> gap_us(o_.rate / 1e6);
    std::int64_t start = cluster_->now_us(), end = start + us(o_.time_limit_s);
    run_.load_start_s = static_cast<double>(start) / 1e6;
    std::uint64_t msgs_before = cluster_->routed_total();
    auto by_type_before = cluster_->routed_by_type();
    // Clock skew is in force for the whole condition: one span over the load, no schedule.
    bool faults = run_.condition != "normal" && run_.condition != "clock-skew";
    if (run_.condition == "clock-skew") run_.faults.push_back({static_cast<double>(start) / 1e6, 0, "clock-skew", skew_description_});
    std::int64_t next_op = start, next_toggle = faults ? start + us(o_.nemesis_interval_s) : INT64_MAX;
    std::int64_t next_progress = start;
    std::int64_t next_poll = foreign_ ? start : INT64_MAX;
    for (std::int64_t now = start; now < end; now = cluster_->now_us()) {
      if (now >= next_poll) {
        send_polls();
        next_poll += kPollUs;
      }
      if (now >= next_toggle) {
        toggle_fault(now);
        next_toggle += us(o_.nemesis_interval_s);
        now = cluster_->now_us();  // a kill waits for its victims' figures first
      }
      for (int due = 0; now >= next_op && due < 1000; ++due) {
        issue(now);
        next_op += std::max<std::int64_t>(1, std::llround(gap_us(rng_)));
      }
      expire(now);
      if (now >= next_progress) {
        progress("load", now - start);
        next_progress += progress_interval_us();
      }
      pump(std::min({next_op, end, next_toggle, next_progress, next_poll, next_deadline()}));
    }
    if (fault_on_) toggle_fault(cluster_->now_us());
    std::int64_t stop = cluster_->now_us();
    if (run_.condition == "clock-skew") run_.faults.back().end_s = static_cast<double>(stop) / 1e6;
    run_.load_end_s = static_cast<double>(stop) / 1e6;
    run_.load_msgs = cluster_->routed_total() - msgs_before;
    for (const auto& [type, n] : cluster_->routed_by_type()) {
      auto before = by_type_before.find(type);
      std::uint64_t during = n - (before == by_type_before.end() ? 0 : before->second);
      if (during > 0) run_.load_msgs_by_type[type] = during;
    }
    load_end_us_ = stop;
    // Requests still in flight get their full timeout.
    while (std::any_of(clients_.begin(), clients_.end(), [](const Client& c) { return c.busy; }) &&
           cluster_->now_us() < stop + us(o_.request_timeout_s)) {
      pump(std::min(stop + us(o_.request_timeout_s), cluster_->now_us() + 5'000));
      expire(cluster_->now_us());
    }
    expire(INT64_MAX);
  }

  // The condition's faults in turn, each on for an interval, then healed for one.
  void toggle_fault(std::int64_t now) {
    double t = static_cast<double>(now) / 1e6;
    if (run_.condition == "burst") return toggle_burst(now);
    if (fault_on_) {
      cluster_->set_fault(std::nullopt);
      for (int k : killed_) {  // back, empty: gossip-kv keeps nothing on disk
        cluster_->restart_node(k);
        polls_.forget_polls_of(k);
        send_init(k);
        ++run_.restarts;
      }
      killed_.clear();
      run_.faults.back().end_s = t;
      fault_on_ = false;
      return;
    }
    // The next kind that does something here (a ring of two nodes cuts nothing; nothing does
    // in a one-node cluster, which then sees no faults at all).
    for (std::size_t tries = 0; tries < o_.fault_kinds.size() + o_.pause_kinds.size() + o_.kill_kinds.size(); ++tries) {
      Fault f = next_fault();
      if (!f.does_anything()) continue;
      if (!f.killed.empty()) {  // the victims' figures first; the fault starts after the wait
        last_words(f.killed);
        t = static_cast<double>(cluster_->now_us()) / 1e6;
      }
      run_.faults.push_back({t, t, f.kind, f.description});
      for (int k : f.killed) {
        cluster_->kill_node(k);
        release_clients_of(k);
      }
      if (!f.killed.empty()) {
        observer_.on_killed(f.killed, wall_us());
        polls_.on_killed(f.killed);
      }
      killed_ = f.killed;
      cluster_->set_fault(std::move(f));
      fault_on_ = true;
      return;
    }
  }

  // A node about to be killed is asked for its figures first (up to kLastWordsWaitUs): the
  // router measures every write, the killed life's included, and without them the nodes'
  // figures would leave out every write that life settled (a quarter of them in one run).
  // What it had not settled yet dies with it.
  // Nodes killed together are asked together, and killed together after one wait.
  void last_words(const std::vector<int>& victims) {
    if (foreign_) return;
    last_words_waiting_.clear();
    last_figures_waiting_.clear();
    for (int k : victims) {
      if (!alive(k)) continue;
      last_words_waiting_.insert(k);
      last_figures_waiting_.insert(k);
      cluster_->send(k, envelope("c0", k, R"({"type":"bench_stats","msg_id":)" + std::to_string(kLastWordsMsgId) + "}"));
      cluster_->send(k, envelope("c0", k, R"({"type":"bench_figures","msg_id":)" + std::to_string(kLastFiguresMsgId) + "}"));
    }
    std::int64_t until = cluster_->now_us() + kLastWordsWaitUs;
    while ((!last_words_waiting_.empty() || !last_figures_waiting_.empty()) && cluster_->now_us() < until) {
      pump(std::min(until, cluster_->now_us() + 1'000));
    }
    last_words_waiting_.clear();  // a late answer is not taken: its life may be gone
    last_figures_waiting_.clear();
  }

  // Every live node's figures one by one, after the final stats round (kStatsWaitUs at most).
  void figures_round() {
    figures_waiting_.clear();
    for (int i = 1; i <= n(); ++i) {
      if (!alive(i)) continue;
      figures_waiting_.insert(i);
      cluster_->send(i, envelope("c0", i, R"({"type":"bench_figures","msg_id":)" + std::to_string(kFiguresMsgId) + "}"));
    }
    std::int64_t until = cluster_->now_us() + kStatsWaitUs;
    while (!figures_waiting_.empty() && cluster_->now_us() < until) pump(std::min(until, cluster_->now_us() + 5'000));
    figures_waiting_.clear();
  }

  // bench_figures_ok: "figures": [[ts_us, ms], ...], "figures_dropped": n.
  void take_figures(int node, const rapidjson::Value& b) {
    run_.figure_check.dropped += count_member(b, "figures_dropped");
    if (!b.HasMember("figures") || !b["figures"].IsArray()) return;
    for (const auto& f : b["figures"].GetArray()) {
      if (!f.IsArray() || f.Size() != 2 || !f[0].IsInt64() || !f[1].IsInt64()) continue;
      run_.figures.push_back({node, f[0].GetInt64(), f[1].GetInt64(), kUnknown});
    }
  }

  // Each figure beside the router's (observer.h), once the run is over.
  void compare_figures() {
    FigureCheck& c = run_.figure_check;
    c.tolerance_ms = 1 + (max_skew_ms_ > min_skew_ms_ ? max_skew_ms_ - min_skew_ms_ : 0);
    if (!observer_.understood() || o_.write_type != WriteType::kWrite) return;
    for (WriteFigure& f : run_.figures) {
      f.observed_ms = observer_.converged_ms_of(f.node, f.ts_us);
      if (f.observed_ms == kUnknown) {
        ++c.unobserved;
        continue;
      }
      ++c.compared;
      // A write the router registered and never saw everywhere: any figure is early.
      if (f.observed_ms == ConvergenceObserver::kNever || f.node_ms + c.tolerance_ms < f.observed_ms) {
        ++c.earlier;
      } else if (f.node_ms > f.observed_ms + std::max<std::int64_t>(10, f.observed_ms / 10)) {
        ++c.later;
      }
    }
  }

  // When an operation is invoked, on both clocks read together: the router maps a version (wall
  // clock) to when its node took it through this pair (taken_us). A burst's pair was the
  // burst's start on one and each write's own on the other, up to 5 ms apart after building
  // 2,000 requests, which put the router's figures that much late (the per-write check found
  // the nodes' own "earlier" by as much).
  void stamp_invocation(Op& op) const {
    op.invoke_us = cluster_->now_us();
    op.invoke_wall_us = wall_us();
  }

  // A burst at each fault time, shaded for the interval that follows.
  void toggle_burst(std::int64_t now) {
    double t = static_cast<double>(now) / 1e6;
    if (fault_on_) {
      run_.faults.back().end_s = t;
      fault_on_ = false;
      return;
    }
    int node = std::uniform_int_distribution<int>(1, n())(nemesis_rng_);
    if (cluster_->down(node)) return;
    BurstSpan b;
    b.start_s = t;
    b.node = node;
    b.writes = static_cast<std::uint64_t>(o_.burst_writes);
    run_.bursts.push_back(b);
    run_.faults.push_back({t, t, "burst", std::to_string(o_.burst_writes) + " writes to n" + std::to_string(node)});
    fault_on_ = true;
    for (int i = 0; i < o_.burst_writes; ++i) {
      Op op;
      op.node = node;
      op.key = next_burst_key_++;
      op.value = next_value_++;
      stamp_invocation(op);
      std::int64_t msg_id = kBurstBase + static_cast<std::int64_t>(burst_ops_.size());
      run_.history.push_back(op);
      burst_ops_.push_back(run_.history.size() - 1);
      if (foreign_) polls_.on_issued(run_.history.size() - 1);
      cluster_->send(node, envelope("c0", node, R"({"type":"write","msg_id":)" + std::to_string(msg_id) +
                                                    R"(,"key":)" + std::to_string(op.key) + R"(,"value":)" +
                                                    std::to_string(op.value) + "}"));
    }
  }

  // Per burst: how many writes were acknowledged, and when the last of them was everywhere.
  void measure_bursts() {
    std::size_t next = 0;
    for (BurstSpan& b : run_.bursts) {
      std::int64_t last = 0;
      bool everywhere = true;
      for (std::uint64_t i = 0; i < b.writes; ++i) {
        const Op& op = run_.history[burst_ops_[next++]];
        if (!op.acked_write()) continue;
        ++b.acked;
        std::int64_t at = foreign_ ? polls_.converged_at(burst_ops_[next - 1]) : observer_.converged_at(op.key, op.ts_us);
        everywhere &= at >= 0;
        last = std::max(last, at);
      }
      b.spread_ms = everywhere && b.acked > 0 ? (last - std::llround(b.start_s * 1e6)) / 1000 : kUnknown;
    }
  }

  Fault next_fault() {
    std::size_t k = next_fault_++;
    if (run_.condition == "pause") {
      return make_pause(o_.pause_kinds[k % o_.pause_kinds.size()], n(), nemesis_rng_);
    }
    if (run_.condition == "kill") return make_kill(o_.kill_kinds[k % o_.kill_kinds.size()], n(), nemesis_rng_);
    if (run_.condition == "loss") return make_loss(o_.loss, n());
    if (run_.condition == "duplicate") return make_duplicate(o_.duplicate, n());
    return make_fault(o_.fault_kinds[k % o_.fault_kinds.size()], n(), nemesis_rng_);
  }

  void issue(std::int64_t now) {
    std::vector<int> idle;
    for (int c = 1; c <= o_.concurrency; ++c) {
      if (!clients_[static_cast<std::size_t>(c)].busy) idle.push_back(c);
    }
    if (idle.empty()) {
      ++run_.skipped_ops;  // every client waits on a reply, as Maelstrom's clients would
      return;
    }
    int client = idle[std::uniform_int_distribution<std::size_t>(0, idle.size() - 1)(rng_)];
    Op op;
    op.client = client;
    op.node = std::uniform_int_distribution<int>(1, n())(rng_);
    op.key = std::uniform_int_distribution<std::int64_t>(0, o_.key_count - 1)(rng_);
    std::int64_t msg_id = next_msg_id_++;
    std::string body;
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < o_.read_fraction) {
      op.kind = Op::Kind::kRead;
      body = R"({"type":"kv_read","msg_id":)" + std::to_string(msg_id) + R"(,"key":)" + std::to_string(op.key) + "}";
    } else {
      op.value = next_value_++;
      body = R"({"type":")" + to_string(o_.write_type) + R"(","msg_id":)" + std::to_string(msg_id) +
             R"(,"key":)" + std::to_string(op.key) + R"(,"value":)" + std::to_string(op.value) + "}";
    }
    stamp_invocation(op);
    run_.history.push_back(op);
    op_of_msg_.push_back(run_.history.size() - 1);  // msg_ids run 1, 2, ... in issue order
    if (foreign_ && op.kind == Op::Kind::kWrite) polls_.on_issued(run_.history.size() - 1);
    // A killed node refuses at once, as a closed connection would: unanswered, client free.
    if (cluster_->down(op.node)) return;
    clients_[static_cast<std::size_t>(client)] = {true, msg_id, run_.history.size() - 1,
                                                  now + us(o_.request_timeout_s)};
    cluster_->send(op.node, envelope("c" + std::to_string(client), op.node, body));
  }

  // A killed node answers nothing more: its clients give up at once, as a Jepsen client whose
  // connection broke would, and their requests stay unanswered (indeterminate).
  void release_clients_of(int node) {
    for (Client& c : clients_) {
      if (c.busy && run_.history[c.op].node == node) c.busy = false;
    }
  }

  void expire(std::int64_t now) {
    for (Client& c : clients_) {
      if (c.busy && c.deadline_us <= now) c.busy = false;  // the op stays a timeout
    }
  }

  std::int64_t next_deadline() const {
    std::int64_t t = INT64_MAX;
    for (const Client& c : clients_) {
      if (c.busy) t = std::min(t, c.deadline_us);
    }
    return t;
  }

  // --- Replies ----------------------------------------------------------------------------

  void on_line(int node, std::string_view line, std::int64_t now) {
    rapidjson::Document d;
    d.Parse(line.data(), line.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("body") || !d["body"].IsObject()) return;
    const rapidjson::Value& b = d["body"];
    auto irt = int_member(b, "in_reply_to");
    if (!irt) return;
    std::string dest = string_member(d, "dest");
    if (dest == "c0") return on_admin_reply(node, b, *irt, now);
    int client = dest.size() > 1 && dest[0] == 'c' ? std::atoi(dest.c_str() + 1) : 0;
    if (client < 1 || client > o_.concurrency) return;
    Client& c = clients_[static_cast<std::size_t>(client)];
    if (c.busy && c.msg_id == *irt) {
      c.busy = false;
      ++answered_;
      return record_reply(run_.history[c.op], b, now);
    }
    // After its timeout: the client has moved on, but the node did serve it (history.h).
    if (*irt < 1 || *irt >= next_msg_id_) return;
    Op& op = run_.history[op_of_msg_[static_cast<std::size_t>(*irt - 1)]];
    if (op.client != client || op.complete_us != kUnknown) return;  // not ours, or a duplicate
    ++run_.late_replies;
    op.late = true;
    record_reply(op, b, now);
  }

  // When the node took a write, on the cluster's clock: its version is the node's wall clock
  // then, so the invocation plus the version's distance from the invocation's wall time, kept
  // within the request's invocation and reply. A paused node takes a write when it resumes,
  // not when the client sent it.
  static std::int64_t taken_us(const Op& op, std::int64_t ts_us, std::int64_t reply_us) {
    return std::clamp(op.invoke_us + (ts_us - op.invoke_wall_us), op.invoke_us, std::max(op.invoke_us, reply_us));
  }

  void record_reply(Op& op, const rapidjson::Value& b, std::int64_t now) {
    op.complete_us = now;
    op.complete_wall_us = wall_us();
    std::string type = string_member(b, "type");
    if (type == "write_ok" || type == "bench_write_ok" || type == "kv_read_ok") {
      op.outcome = Op::Outcome::kOk;
      if (auto ts = ts_member(b)) {
        op.ts_us = *ts;
        if (op.acked_write()) {
          observer_.on_write(op.node, op.key, *ts, taken_us(op, *ts, now), now);
        } else if (op.kind == Op::Kind::kWrite) {  // answered late: taken all the same
          observer_.on_unacknowledged_write(op.node, op.key, *ts, taken_us(op, *ts, now));
        }
      }
      if (op.kind == Op::Kind::kRead) op.value = int_member(b, "value").value_or(kUnknown);
      if (foreign_ && op.acked_write()) polls_.on_acked(static_cast<std::size_t>(&op - run_.history.data()), now);
      return;
    }
    op.error_code = static_cast<int>(int_member(b, "code").value_or(-1));
    bool missing = type == "error" && op.error_code == 20 && op.kind == Op::Kind::kRead;
    op.outcome = missing ? Op::Outcome::kNotFound : Op::Outcome::kError;
  }

  void on_admin_reply(int node, const rapidjson::Value& b, std::int64_t irt, std::int64_t now) {
    if (irt == kFiguresMsgId) {
      if (figures_waiting_.erase(node) > 0) take_figures(node, b);
    } else if (irt == kLastFiguresMsgId) {
      if (last_figures_waiting_.erase(node) > 0) take_figures(node, b);
    } else if (irt == kLastWordsMsgId) {
      if (last_words_waiting_.erase(node) == 0) return;
      if (b.HasMember("convergence_ms")) run_.killed_lives.push_back(parse_convergence(b["convergence_ms"]));
    } else if (irt >= kPollBase) {
      on_poll_answer(node, b, irt, now);
    } else if (irt >= kBurstBase) {
      auto i = static_cast<std::size_t>(irt - kBurstBase);
      if (i < burst_ops_.size() && run_.history[burst_ops_[i]].complete_us == kUnknown) {
        record_reply(run_.history[burst_ops_[i]], b, now);
      }
    } else if (irt == kInitMsgId) {
      init_ok_[static_cast<std::size_t>(node)] = string_member(b, "type") == "init_ok";
    } else if (irt >= kStatsBase) {
      if (irt == kStatsBase + stats_round_) on_stats(node, b);
    } else if (irt >= kFinalReadBase) {
      on_final_read(node, b, irt - kFinalReadBase);
    }
  }

  // A final read's answer: the key's value and version, or "missing" (error 20). Any other
  // answer leaves the key unread, so the node's final state is incomplete, not wrong.
  void on_final_read(int node, const rapidjson::Value& b, std::int64_t key) {
    std::string type = string_member(b, "type");
    bool missing = type == "error" && int_member(b, "code").value_or(0) == 20;
    if (type != "kv_read_ok" && !missing) {
      ++final_errors_[static_cast<std::size_t>(node)];
      return;
    }
    FinalRead f;
    f.wall_us = wall_us();
    if (!missing) {
      f.value = int_member(b, "value").value_or(kUnknown);
      f.ts_us = ts_member(b).value_or(kUnknown);
    }
    auto [it, fresh] = this->node(node).held.insert_or_assign(key, f);
    if (fresh) ++final_answers_[static_cast<std::size_t>(node)];
  }

  void on_stats(int node, const rapidjson::Value& b) {
    NodeReport& r = stats_[static_cast<std::size_t>(node - 1)];
    if (r.answered_stats) return;
    r.answered_stats = true;
    r.digest = string_member(b, "state_digest");
    r.total_writes = count_member(b, "total_writes");
    r.total_gossip_msgs = count_member(b, "total_gossip_msgs");
    r.routed_before_report = cluster_->routed_from(node);
    r.stale_reads = count_member(b, "stale_reads");
    r.reads = count_member(b, "reads");
    if (b.HasMember("convergence_ms")) r.convergence = parse_convergence(b["convergence_ms"]);
    ++stats_answers_;
  }

  // --- After the load ---------------------------------------------------------------------

  // Asks every live node for bench_stats and waits for their answers. True when every node
  // answered and all report the same digest.
  bool stats_round(std::int64_t wait_us) {
    ++stats_round_;
    stats_.assign(static_cast<std::size_t>(n()), NodeReport{});
    stats_answers_ = 0;
    int asked = 0;
    for (int i = 1; i <= n(); ++i) {
      if (!alive(i)) continue;
      cluster_->send(i, envelope("c0", i, R"({"type":"bench_stats","msg_id":)" +
                                              std::to_string(kStatsBase + stats_round_) + "}"));
      ++asked;
    }
    std::int64_t until = cluster_->now_us() + wait_us;
    while (stats_answers_ < asked && cluster_->now_us() < until) pump(std::min(until, cluster_->now_us() + 5'000));
    if (stats_answers_ < n()) return false;
    for (const NodeReport& r : stats_) {
      if (r.digest != stats_[0].digest) return false;
    }
    return true;
  }

  // The quiet period: no load, no fault; polls until the replicas are identical and nothing is
  // pending, or the period ends.
  void quiet() {
    std::int64_t start = cluster_->now_us(), end = start + us(o_.quiet_period_s);
    std::int64_t next_progress = start;
    while (cluster_->now_us() < end) {
      std::int64_t round = cluster_->now_us();
      bool identical = stats_round(std::min(kStatsWaitUs, end - round));
      std::int64_t after_ms = (cluster_->now_us() - load_end_us_) / 1000;
      if (identical && run_.identical_after_ms == kUnknown) run_.identical_after_ms = after_ms;
      // Every write a node took has its figure: none pending, none inside the grace period.
      std::uint64_t pending = 0;
      for (const NodeReport& r : stats_) {
        std::uint64_t measured = r.convergence.count + r.convergence.unmeasured;
        pending += r.total_writes > measured ? r.total_writes - measured : 0;
      }
      if (identical && pending == 0) {
        run_.settled_after_ms = after_ms;
        break;
      }
      if (round >= next_progress) {
        progress_quiet(round - start, identical, pending);
        next_progress += progress_interval_us();
      }
      pump(std::min(end, round + kQuietPollUs));
    }
  }

  // Reads every key on every live node, at most kFinalReadsInFlightMax at a time per node.
  void final_reads() {
    final_answers_.assign(static_cast<std::size_t>(n()) + 1, 0);
    final_errors_.assign(static_cast<std::size_t>(n()) + 1, 0);
    std::vector<int> sent(static_cast<std::size_t>(n()) + 1, 0), seen(sent);
    std::vector<std::int64_t> progress_us(sent.size(), cluster_->now_us());
    for (;;) {
      bool done = true;
      std::int64_t now = cluster_->now_us();
      for (int i = 1; i <= n(); ++i) {
        auto k = static_cast<std::size_t>(i);
        int answered = final_answers_[k] + final_errors_[k];
        if (answered != seen[k]) progress_us[k] = now;
        seen[k] = answered;
        if (!alive(i) || answered >= final_keys() || now - progress_us[k] > kFinalReadsStallUs) continue;
        done = false;
        for (; sent[k] < final_keys() && sent[k] - answered < kFinalReadsInFlightMax; ++sent[k]) {
          cluster_->send(i, envelope("c0", i, R"({"type":"kv_read","msg_id":)" +
                                                  std::to_string(kFinalReadBase + sent[k]) + R"(,"key":)" +
                                                  std::to_string(sent[k]) + "}"));
        }
      }
      if (done) break;
      pump(now + 5'000);
    }
    for (int i = 1; i <= n(); ++i) {
      node(i).final_reads_complete = final_answers_[static_cast<std::size_t>(i)] >= final_keys();
    }
  }

  // The last stats round's answers join the final reads in the nodes' reports.
  void adopt_final_stats() {
    for (int i = 1; i <= n(); ++i) {
      NodeReport& r = node(i);
      NodeReport& s = stats_[static_cast<std::size_t>(i - 1)];
      s.held = std::move(r.held);
      s.final_reads_complete = r.final_reads_complete;
      r = std::move(s);
    }
  }

  void collect() {
    run_.seconds = cluster_->seconds();
    run_.dropped = cluster_->dropped_total();
    run_.duplicated = cluster_->duplicated_total();
    run_.unroutable = cluster_->unroutable();
    run_.undeliverable = cluster_->undeliverable();
    run_.overflowed = cluster_->overflowed();
    run_.total_s = static_cast<double>(cluster_->now_us()) / 1e6;
    for (int i = 1; i <= n(); ++i) note_problems(i);
    run_.observed = observer_.understood() && o_.write_type == WriteType::kWrite;
    run_.observed_ms = observer_.converged_ms();
    run_.observed_taken_us = observer_.converged_taken_us();
    run_.observed_never = observer_.unconverged();
    run_.routed_at_end = cluster_->routed_total();
    if (foreign_) {
      run_.observed = true;
      run_.observed_by = "polling reads";
      run_.observed_ms = polls_.converged_ms();
      run_.observed_taken_us = polls_.converged_taken_us();
      run_.observed_never = polls_.unconverged();
    }
    run_.routed_by_earlier_lives = cluster_->routed_by_earlier_lives();
    mark_lost_with_crash();  // by the real versions, before any stand-ins replace them
    measure_bursts();
    if (foreign_) assign_stand_in_versions();
    learn_versions(run_.history, run_.nodes);
    run_.checks = check(run_.history, run_.nodes);
    run_.checks.nodes_convergence = merge_convergence(run_.nodes, run_.killed_lives);
    compare_figures();
  }

  // Flags the acknowledged writes the router saw die with a killed node (observer.h).
  void mark_lost_with_crash() {
    if (foreign_) {
      for (std::size_t op : polls_.lost_with_crash()) run_.history[op].lost_with_crash = true;
      return;
    }
    std::set<std::array<std::int64_t, 3>> lost;
    for (const auto& w : observer_.lost_with_crash()) lost.insert(w);
    if (lost.empty()) return;
    for (Op& op : run_.history) {
      if (op.acked_write() && lost.count({op.node, op.key, op.ts_us}) > 0) op.lost_with_crash = true;
    }
  }

  void note_problems(int i) {
    const NodeExit& e = cluster_->exit_of(i);
    std::string id = "n" + std::to_string(i) + ": ";
    char when[64];
    std::snprintf(when, sizeof when, "%.1f s", static_cast<double>(e.output_ended_us) / 1e6);
    if (!init_ok_[static_cast<std::size_t>(i)]) run_.node_problems.push_back(id + "no init_ok");
    if (e.input_stuck) run_.node_problems.push_back(id + "stopped reading its input");
    if (e.output_ended && e.output_ended_us < shutdown_us_) {
      run_.node_problems.push_back(id + "output ended at " + when + " (" + e.describe() + ")");
    } else if (e.killed_at_shutdown) {
      run_.node_problems.push_back(id + "did not exit within 2 s of its input closing; killed");
    } else if (e.reaped && e.describe() != "exited 0") {
      run_.node_problems.push_back(id + e.describe() + " at shutdown");
    }
    for (const std::string& p : cluster_->problems_before_kills(i)) run_.node_problems.push_back(id + p);
    const NodeReport& r = node(i);
    if (!r.answered_stats && !foreign_) run_.node_problems.push_back(id + "no final bench_stats");
    if (!r.final_reads_complete) {
      auto k = static_cast<std::size_t>(i);
      std::string errors = final_errors_[k] > 0 ? " (" + std::to_string(final_errors_[k]) + " answered with an error)" : "";
      run_.node_problems.push_back(id + "answered " + std::to_string(final_answers_[k]) + " of " +
                                   std::to_string(final_keys()) + " final reads" + errors);
    }
  }

  // --- Progress on stderr -----------------------------------------------------------------

  std::int64_t progress_interval_us() const { return isatty(2) ? 1'000'000 : 5'000'000; }
  void progress(const char* phase, std::int64_t elapsed_us) {
    std::fprintf(stderr, "gossip-bench %-9s %s %4.1f/%.0f s: %zu ops (%" PRIu64 " answered), %" PRIu64
                 " node-to-node msgs, %s%s",
                 run_.condition.c_str(), phase, static_cast<double>(elapsed_us) / 1e6, o_.time_limit_s,
                 run_.history.size(), answered_, cluster_->routed_total(),
                 fault_on_ ? run_.faults.back().description.c_str() : "no fault", line_end());
  }
  void progress_quiet(std::int64_t elapsed_us, bool identical, std::uint64_t pending) {
    std::fprintf(stderr, "gossip-bench %-9s quiet %4.1f s: replicas %s, %" PRIu64 " writes not yet measured%s",
                 run_.condition.c_str(), static_cast<double>(elapsed_us) / 1e6,
                 identical ? "identical" : "differ", pending, line_end());
  }
  void end_progress() {
    if (isatty(2)) std::fputs("\33[2K\r", stderr);
  }
  static const char* line_end() { return isatty(2) ? "\33[K\r" : "\n"; }

  const Options& o_;
  ConditionRun run_;
  std::mt19937_64 rng_, nemesis_rng_;
  ConvergenceObserver observer_;
  std::unique_ptr<Cluster> cluster_;
  std::vector<Client> clients_;
  std::vector<std::size_t> op_of_msg_;  // [msg_id - 1] -> index in the history
  std::vector<bool> init_ok_;
  std::vector<NodeReport> stats_;
  std::vector<int> final_answers_, final_errors_;
  int stats_answers_ = 0;
  std::uint64_t answered_ = 0;
  std::int64_t stats_round_ = 0;
  std::int64_t next_msg_id_ = 1;
  std::int64_t next_value_ = 1;
  std::size_t next_fault_ = 0;
  bool fault_on_ = false;
  bool foreign_ = false;  // the nodes do not answer bench_stats: measured by polling reads
  std::set<int> last_words_waiting_;  // nodes asked for their figures before a kill, unanswered
  std::set<int> last_figures_waiting_;  // the same for bench_figures
  std::set<int> figures_waiting_;       // nodes asked for bench_figures at the end, unanswered
  std::int64_t min_skew_ms_ = 0, max_skew_ms_ = 0;  // the clock offsets given (clock-skew)
  PollObserver polls_;
  std::int64_t next_poll_ = 0;
  absl::flat_hash_map<std::int64_t, std::pair<int, std::int64_t>> poll_of_msg_;  // msg_id -> (node, key)
  std::vector<int> killed_;  // by the fault in force, restarted when it heals
  std::vector<std::size_t> burst_ops_;  // [msg_id - kBurstBase] -> index in the history
  std::int64_t next_burst_key_ = 0;      // from key_count on: every burst key is new
  std::string skew_description_;  // "n1 +120 ms, n2 -45 ms, ..." in the clock-skew condition
  std::int64_t shutdown_us_ = INT64_MAX;
  std::int64_t load_end_us_ = 0;
};

}  // namespace

ConditionRun run_condition(const Options& o, const std::string& condition, const std::string& dir) {
  return Driver(o, condition, dir).run();
}

}  // namespace gossip_bench
