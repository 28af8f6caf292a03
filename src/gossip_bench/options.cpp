#include "options.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>

namespace gossip_bench {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::istringstream in(s);
  for (std::string p; std::getline(in, p, sep);) {
    if (!p.empty()) parts.push_back(p);
  }
  return parts;
}

// The gossip-kv beside this executable: what `cmake --build` puts in build/bin.
std::string default_bin() {
  char buf[4096];
  ssize_t len = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (len <= 0) return "./gossip-kv";
  std::string self(buf, static_cast<std::size_t>(len));
  return self.substr(0, self.rfind('/')) + "/gossip-kv";
}

// "10" or Maelstrom's "2n" (twice the node count).
bool parse_concurrency(const std::string& text, int node_count, int* out) {
  try {
    std::size_t used = 0;
    int v = std::stoi(text, &used);
    if (used == text.size()) {
      *out = v;
    } else if (used + 1 == text.size() && text.back() == 'n') {
      *out = v * node_count;
    } else {
      return false;
    }
  } catch (const std::exception&) {
    return false;
  }
  return *out >= 1 && *out <= 10'000;
}

const std::map<std::string, FaultKind>& fault_names() {
  static const std::map<std::string, FaultKind> names = {
      {"one", FaultKind::kOne}, {"majority", FaultKind::kMajority},
      {"majorities-ring", FaultKind::kMajoritiesRing}};
  return names;
}

// Client operations a run may ask for: each is kept in memory (about 100 bytes) until the end.
constexpr double kOpsMax = 10'000'000;

int usage_error(const std::string& what) {
  std::fprintf(stderr, "gossip-bench: %s (see --help)\n", what.c_str());
  return 2;
}

}  // namespace

std::string to_string(LatencyDist d) {
  switch (d) {
    case LatencyDist::kUniform: return "uniform";
    case LatencyDist::kExponential: return "exponential";
    case LatencyDist::kConstant: break;
  }
  return "constant";
}

std::string to_string(WriteType t) { return t == WriteType::kBenchWrite ? "bench_write" : "write"; }

std::string to_string(PauseKind k) { return k == PauseKind::kMinority ? "minority" : "one"; }

std::string to_string(FaultKind k) {
  for (const auto& [name, kind] : fault_names()) {
    if (kind == k) return name;
  }
  return "?";
}

namespace {

// Flags whose text is turned into Options after parsing.
struct RawFlags {
  std::string concurrency, dist = "constant", nemesis = "partition";
  std::string targets = "one,majority,majorities-ring", pause_targets = "one,minority", kill_targets = "one";
  std::string compare, write_type = "write";
  std::string sweep, sweep_profiles;
  bool no_plots = false;
  bool nemesis_given = false, compare_given = false;  // set after parsing
};

void add_flags(CLI::App& app, Options& o, RawFlags& raw) {
  app.add_option("--bin", o.bin, "node binary (default: the gossip-kv next to gossip-bench)");
  app.add_option("--node-count", o.node_count, "nodes n1..nN")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--time-limit", o.time_limit_s, "seconds of client load per condition")
      ->capture_default_str()->check(CLI::Range(0.1, 86'400.0));
  app.add_option("--rate", o.rate, "client operations per second, whole cluster")
      ->capture_default_str()->check(CLI::Range(0.1, 100'000.0));
  app.add_option("--concurrency", raw.concurrency, "clients, one request in flight each; '2n' = 2 x nodes")
      ->capture_default_str();
  app.add_option("--latency", o.latency_ms, "mean one-way node-to-node latency, ms")
      ->capture_default_str()->check(CLI::Range(0.0, 60'000.0));
  app.add_option("--latency-dist", raw.dist, "constant|uniform|exponential")->capture_default_str()
      ->check(CLI::IsMember({"constant", "uniform", "exponential"}));
  app.add_option("--nemesis", raw.nemesis,
                 "fault conditions to run besides normal: a list of partition,pause,kill,loss,duplicate,clock-skew,burst; all; none")
      ->capture_default_str();
  app.add_option("--nemesis-interval", o.nemesis_interval_s, "seconds a fault lasts, and a heal")
      ->capture_default_str()->check(CLI::Range(0.05, 3'600.0));
  app.add_option("--nemesis-targets", raw.targets, "partitions in turn: one,majority,majorities-ring")
      ->capture_default_str();
  app.add_option("--pause-targets", raw.pause_targets, "pauses in turn: one,minority")->capture_default_str();
  app.add_option("--kill-targets", raw.kill_targets, "kills in turn: one,minority")->capture_default_str();
  app.add_option("--loss", o.loss, "share of node-to-node messages lost while a loss fault is on")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("--burst-writes", o.burst_writes, "writes to distinct new keys in each burst of the burst condition")
      ->capture_default_str()->check(CLI::Range(1, 1'000'000));
  // gossip-kv rejects versions more than 10 s ahead of its clock: two nodes 2 x 4 s apart
  // still take each other's writes.
  app.add_option("--clock-skew", o.clock_skew_ms, "largest clock offset of a node in the clock-skew condition, ms (0..4000)")
      ->capture_default_str()->check(CLI::Range(0.0, 4'000.0));
  app.add_option("--duplicate", o.duplicate, "share of node-to-node messages delivered twice while a duplicate fault is on")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", o.seed, "seed of the workload, latencies and faults")->capture_default_str();
  app.add_option("--key-count", o.key_count, "integer keys 0..K-1")->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--read-fraction", o.read_fraction, "share of kv_read; the rest are writes")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("--write-type", raw.write_type, "write (reply carries the version) or bench_write")
      ->capture_default_str()->check(CLI::IsMember({"write", "bench_write"}));
  app.add_option("--node-args", o.node_args, "arguments for every node")->capture_default_str();
  app.add_option("--quiet-period", o.quiet_period_s,
                 "longest wait after the load for identical replicas and settled figures, s")
      ->capture_default_str()->check(CLI::Range(0.0, 3'600.0));
  app.add_option("--request-timeout", o.request_timeout_s, "seconds before a request times out")
      ->capture_default_str()->check(CLI::Range(0.01, 600.0));
  app.add_option("--compare", raw.compare,
                 "conditions to run, in order (default: normal and the --nemesis conditions)");
  app.add_option("--store-dir", o.store_dir, "where run folders go")->capture_default_str();
  app.add_option("--sweep", raw.sweep,
                 "NAME=v1,v2,...: one run per value of node-count, rate, latency or a node flag (without --)");
  app.add_option("--sweep-profiles", raw.sweep_profiles, "with --sweep: run every value with each of these profiles");
  app.add_flag("--poll-reads", o.poll_reads,
               "measure convergence by polling reads, as for a node without bench_stats (like for like with another node)");
  app.add_flag("--no-plots", raw.no_plots, "skip the gnuplot PNGs (data and scripts are still written)");
}

// "one,minority" -> the kinds; false after printing what is wrong.
bool parse_node_targets(const std::string& text, const std::string& flag, std::vector<PauseKind>* out) {
  out->clear();
  for (const std::string& t : split(text, ',')) {
    if (t != "one" && t != "minority") {
      usage_error("unknown " + flag + " entry '" + t + "'");
      return false;
    }
    out->push_back(t == "one" ? PauseKind::kOne : PauseKind::kMinority);
  }
  if (out->empty()) usage_error(flag + " is empty");
  return !out->empty();
}

bool is_fault_condition(const std::string& c) {
  return std::find(kFaultConditions.begin(), kFaultConditions.end(), c) != kFaultConditions.end();
}

int apply_conditions(const RawFlags& raw, Options& o);
int apply_sweep(const RawFlags& raw, Options& o);

// Turns the text flags into Options. Returns -1, or 2 after printing what is wrong.
int apply(const RawFlags& raw, Options& o) {
  if (o.bin.empty()) o.bin = default_bin();
  if (!parse_concurrency(raw.concurrency, o.node_count, &o.concurrency)) {
    return usage_error("--concurrency takes a count (1..10000) or Nn, not '" + raw.concurrency + "'");
  }
  if (o.rate * o.time_limit_s > kOpsMax) {
    return usage_error("--rate x --time-limit asks for more than 10,000,000 operations (the history is kept in memory)");
  }
  o.latency_dist = raw.dist == "uniform"       ? LatencyDist::kUniform
                   : raw.dist == "exponential" ? LatencyDist::kExponential
                                               : LatencyDist::kConstant;
  o.write_type = raw.write_type == "bench_write" ? WriteType::kBenchWrite : WriteType::kWrite;
  o.plots = !raw.no_plots;
  o.fault_kinds.clear();
  for (const std::string& t : split(raw.targets, ',')) {
    auto it = fault_names().find(t);
    if (it == fault_names().end()) return usage_error("unknown --nemesis-targets entry '" + t + "'");
    o.fault_kinds.push_back(it->second);
  }
  if (o.fault_kinds.empty()) return usage_error("--nemesis-targets is empty");
  if (!parse_node_targets(raw.pause_targets, "--pause-targets", &o.pause_kinds) ||
      !parse_node_targets(raw.kill_targets, "--kill-targets", &o.kill_kinds)) {
    return 2;
  }
  if (int rc = apply_sweep(raw, o); rc >= 0) return rc;
  return apply_conditions(raw, o);
}

// "gossip-interval-ms=25,50" -> name and values; numbers checked for the runner's own flags.
int apply_sweep(const RawFlags& raw, Options& o) {
  if (raw.sweep.empty()) {
    if (!raw.sweep_profiles.empty()) return usage_error("--sweep-profiles needs --sweep");
    return -1;
  }
  auto eq = raw.sweep.find('=');
  if (eq == std::string::npos || eq == 0) return usage_error("--sweep takes NAME=v1,v2,..., not '" + raw.sweep + "'");
  o.sweep_name = raw.sweep.substr(0, eq);
  if (o.sweep_name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    return usage_error("--sweep: '" + o.sweep_name + "' is not a flag name");
  }
  o.sweep_values = split(raw.sweep.substr(eq + 1), ',');
  if (o.sweep_values.empty()) return usage_error("--sweep " + o.sweep_name + " has no values");
  bool runner = o.sweep_name == "node-count" || o.sweep_name == "rate" || o.sweep_name == "latency";
  for (const std::string& v : o.sweep_values) {
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    bool number = end != v.c_str() && *end == '\0';
    bool ok = !runner || (number && x >= 0 && (o.sweep_name != "node-count" || (x >= 1 && x <= 100 && x == static_cast<int>(x))));
    if (!ok || v.find_first_of(" \t'\"") != std::string::npos) {
      return usage_error("--sweep " + o.sweep_name + ": bad value '" + v + "'");
    }
  }
  o.sweep_profiles = split(raw.sweep_profiles, ',');
  return -1;
}

// --nemesis names the fault conditions; --compare, when given, the conditions and their order.
// Given both, a fault condition runs only if --nemesis names it (`--nemesis none` keeps normal).
int apply_conditions(const RawFlags& raw, Options& o) {
  std::vector<std::string> nemeses;
  for (const std::string& c : split(raw.nemesis, ',')) {
    if (c == "all") {
      nemeses = kFaultConditions;
    } else if (c != "none") {
      if (!is_fault_condition(c)) return usage_error("unknown --nemesis entry '" + c + "'");
      if (std::find(nemeses.begin(), nemeses.end(), c) == nemeses.end()) nemeses.push_back(c);
    }
  }
  o.conditions.clear();
  if (!raw.compare_given) {
    o.conditions.emplace_back("normal");
    o.conditions.insert(o.conditions.end(), nemeses.begin(), nemeses.end());
    return -1;
  }
  for (const std::string& c : split(raw.compare, ',')) {
    if (c != "normal" && !is_fault_condition(c)) return usage_error("unknown condition '" + c + "'");
    bool dropped = c != "normal" && raw.nemesis_given && std::find(nemeses.begin(), nemeses.end(), c) == nemeses.end();
    if (!dropped) o.conditions.push_back(c);
  }
  if (o.conditions.empty()) return usage_error("no condition to run (--compare, --nemesis)");
  return -1;
}

}  // namespace

int parse_options(int argc, char** argv, Options* out) {
  CLI::App app{"gossip-bench: a local gossip-kv cluster under load, normal and partitioned "
               "(docs/BENCHMARK.md)"};
  RawFlags raw;
  raw.concurrency = std::to_string(out->concurrency);
  add_flags(app, *out, raw);
  try {
    app.parse(argc, argv);
    raw.nemesis_given = app.count("--nemesis") > 0;
    raw.compare_given = app.count("--compare") > 0;
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help, or the error
    return rc == 0 ? 0 : 2;
  }
  return apply(raw, *out);
}

}  // namespace gossip_bench
