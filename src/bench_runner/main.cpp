// gossip-bench: runs gossip-kv nodes as a local cluster with Maelstrom-like latency and
// partitions, drives a read/write workload, and reports convergence time, gossip messages per
// write and stale reads, normal versus partitioned (docs/BENCHMARK.md).
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "cluster.h"
#include "history.h"

namespace gossip_bench {
namespace {

struct Options {
  ClusterOptions cluster;
  std::string node_args = "--profile fast";
  double time_limit_s = 10;
  double rate = 50;
  int concurrency = 10;
  std::string dist = "constant";
  std::string nemesis = "partition";
  double nemesis_interval_s = 3;
  int key_count = 20;
  double read_fraction = 0.5;
  double quiet_s = 3;
  std::string compare = "normal,partition";
  std::string store_dir = "store";
  double request_timeout_s = 1;
};

struct Pending {
  std::size_t op;
  std::int64_t deadline_us;
};

struct Run {
  std::string condition;
  std::vector<Op> history;
  std::vector<FinalState> finals;
  Checks checks;
  std::vector<std::pair<double, double>> partitions;  // seconds since start
  std::vector<int> dead;
  double seconds = 0;
};

std::string body_of(const rapidjson::Document& d, const char* member) {
  const auto& b = d["body"];
  return b.HasMember(member) && b[member].IsString() ? b[member].GetString() : "";
}

// Drives one condition from start to finals.
class Driver {
 public:
  Driver(const Options& o, std::string condition, const std::string& dir)
      : o_(o), run_{std::move(condition), {}, {}, {}, {}, {}, 0}, rng_(o.cluster.seed) {
    ClusterOptions co = o.cluster;
    co.log_dir = dir;
    cluster_ = std::make_unique<Cluster>(co);
    busy_.assign(static_cast<std::size_t>(o.concurrency) + 1, false);
  }

  Run run() {
    start_ = Cluster::now_us();
    init();
    load();
    heal();
    quiet();
    finals();
    run_.dead = cluster_->dead_nodes();
    run_.checks = check(run_.history, run_.finals);

    run_.seconds = static_cast<double>(Cluster::now_us() - start_) / 1e6;
    return run_;
  }

 private:
  int n() const { return o_.cluster.nodes; }
  std::string msg(const std::string& src, int node, const std::string& body) {
    return R"({"src":")" + src + R"(","dest":"n)" + std::to_string(node) + R"(","body":)" + body + "}";
  }
  void pump(std::int64_t until) {
    cluster_->run_until(until, [this](int node, const std::string& line, std::int64_t now) {
      on_reply(node, line, now);
    });
  }

  void init() {
    std::string ids;
    for (int i = 1; i <= n(); ++i) ids += (i > 1 ? ",\"n" : "\"n") + std::to_string(i) + "\"";
    for (int i = 1; i <= n(); ++i) {
      cluster_->send(i, msg("c0", i, R"({"type":"init","msg_id":)" + std::to_string(i) +
                                         R"(,"node_id":"n)" + std::to_string(i) +
                                         R"(","node_ids":[)" + ids + "]}"));
    }
    pump(Cluster::now_us() + 200'000);
  }

  void load() {
    std::exponential_distribution<double> gap(o_.rate / 1e6);
    std::int64_t end = Cluster::now_us() + static_cast<std::int64_t>(o_.time_limit_s * 1e6);
    std::int64_t next_op = Cluster::now_us();
    std::int64_t next_fault = run_.condition == "partition"
                                  ? Cluster::now_us() + static_cast<std::int64_t>(o_.nemesis_interval_s * 1e6)
                                  : INT64_MAX;
    bool cut = false;
    int fault = 0;
    while (Cluster::now_us() < end) {
      std::int64_t now = Cluster::now_us();
      if (run_.condition == "partition" && now >= next_fault) {
        if (cut) {
          cluster_->set_partition({});
          run_.partitions.back().second = seconds(now);
        } else {
          cluster_->set_partition(fault_groups(fault++));
          run_.partitions.push_back({seconds(now), -1});
        }
        cut = !cut;
        next_fault = now + static_cast<std::int64_t>(o_.nemesis_interval_s * 1e6);
      }
      if (now >= next_op) {
        issue(now);
        next_op += static_cast<std::int64_t>(gap(rng_));
      }
      expire(now);
      pump(std::min({next_op, end, next_fault}));
      if (Cluster::now_us() % 1'000'000 < 2'000) progress();
    }
    if (cut) run_.partitions.back().second = seconds(Cluster::now_us());
  }

  // Alternates Maelstrom-style faults: one node isolated, then the cluster split in halves.
  std::vector<int> fault_groups(int fault) {
    std::vector<int> g(static_cast<std::size_t>(n()) + 1, 0);
    std::uniform_int_distribution<int> pick(1, n());
    if (fault % 2 == 0) {
      g[static_cast<std::size_t>(pick(rng_))] = 1;
    } else {
      std::vector<int> order;
      for (int i = 1; i <= n(); ++i) order.push_back(i);
      std::shuffle(order.begin(), order.end(), rng_);
      for (int i = 0; i < n() / 2; ++i) g[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = 1;
    }
    return g;
  }

  void issue(std::int64_t now) {
    int client = -1;
    for (int c = 1; c <= o_.concurrency; ++c) {
      if (!busy_[static_cast<std::size_t>(c)]) {
        client = c;
        break;
      }
    }
    if (client < 0) return;  // every client has a request in flight, as Maelstrom would wait
    std::uniform_int_distribution<int> node(1, n());
    std::uniform_int_distribution<std::int64_t> key(0, o_.key_count - 1);
    Op op;
    op.node = node(rng_);
    op.key = key(rng_);
    op.invoke_us = now;
    std::string body;
    std::int64_t msg_id = next_msg_id_++;
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < o_.read_fraction) {
      op.kind = Op::Kind::kRead;
      body = R"({"type":"kv_read","msg_id":)" + std::to_string(msg_id) + R"(,"key":)" + std::to_string(op.key) + "}";
    } else {
      op.value = next_value_++;
      body = R"({"type":"write","msg_id":)" + std::to_string(msg_id) + R"(,"key":)" + std::to_string(op.key) +
             R"(,"value":)" + std::to_string(op.value) + "}";
    }
    run_.history.push_back(op);
    std::string src = "c" + std::to_string(client);
    pending_[{src, msg_id}] = {run_.history.size() - 1, now + static_cast<std::int64_t>(o_.request_timeout_s * 1e6)};
    busy_[static_cast<std::size_t>(client)] = true;
    cluster_->send(op.node, msg(src, op.node, body));
  }

  void expire(std::int64_t now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline_us > now) {
        ++it;
        continue;
      }
      busy_[static_cast<std::size_t>(std::stoi(it->first.first.substr(1)))] = false;
      it = pending_.erase(it);  // never answered: complete_us stays -1
    }
  }

  void on_reply(int node, const std::string& line, std::int64_t now) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("body")) return;
    const auto& b = d["body"];
    if (!b.HasMember("in_reply_to") || !b["in_reply_to"].IsInt64()) return;
    std::string dest = d["dest"].GetString();
    std::int64_t irt = b["in_reply_to"].GetInt64();
    if (dest == "c0") return on_admin_reply(node, d, irt);
    auto it = pending_.find({dest, irt});
    if (it == pending_.end()) return;  // late, after its timeout
    Op& op = run_.history[it->second.op];
    op.complete_us = now;
    std::string type = body_of(d, "type");
    op.ok = type == "write_ok" || type == "kv_read_ok" || (type == "error" && b["code"].GetInt() == 20);
    if (b.HasMember("ts") && b["ts"].IsNumber()) op.ts_us = std::llround(b["ts"].GetDouble() * 1e6);
    if (b.HasMember("value") && b["value"].IsInt64() && op.kind == Op::Kind::kRead) op.value = b["value"].GetInt64();
    busy_[static_cast<std::size_t>(std::stoi(dest.substr(1)))] = false;
    pending_.erase(it);
  }

  // Replies to c0: final reads (msg_id 1,000,000 + key) and bench_stats (2,000,000 + round).
  void on_admin_reply(int node, const rapidjson::Document& d, std::int64_t irt) {
    const auto& b = d["body"];
    FinalState& f = scratch_[static_cast<std::size_t>(node)];
    if (irt >= 1'000'000 && irt < 2'000'000) {
      if (b.HasMember("value") && b["value"].IsInt64() && b.HasMember("ts")) {
        f.held[irt - 1'000'000] = {b["value"].GetInt64(), std::llround(b["ts"].GetDouble() * 1e6)};
      }
      return;
    }
    if (irt < 2'000'000) return;
    f.digest = body_of(d, "state_digest");
    f.routed_before_report = cluster_->routed_from(node);
    auto u64 = [&](const rapidjson::Value& v, const char* k) -> std::uint64_t {
      return v.HasMember(k) && v[k].IsUint64() ? v[k].GetUint64() : 0;
    };
    f.total_gossip_msgs = u64(b, "total_gossip_msgs");
    f.stale_reads = u64(b, "stale_reads");
    if (b.HasMember("convergence_ms") && b["convergence_ms"].IsObject()) {
      const auto& c = b["convergence_ms"];
      f.convergence_count = u64(c, "count");
      f.convergence_pending = u64(c, "pending");
      f.convergence_p50 = static_cast<std::int64_t>(u64(c, "p50"));
      f.convergence_max = static_cast<std::int64_t>(u64(c, "max"));
    }
    ++stats_replies_;
  }

  void heal() { cluster_->set_partition({}); }

  // Asks every node for bench_stats until the digests agree or the quiet period ends.
  void quiet() {
    std::int64_t end = Cluster::now_us() + static_cast<std::int64_t>(o_.quiet_s * 1e6);
    while (Cluster::now_us() < end) {
      if (collect_stats(250'000)) break;
    }
    pump(end);  // the quiet period is served in full: acknowledgements still travel
  }

  bool collect_stats(std::int64_t wait_us) {
    scratch_.assign(static_cast<std::size_t>(n()) + 1, FinalState{});
    stats_replies_ = 0;
    std::int64_t id = 2'000'000 + stats_round_++;
    for (int i = 1; i <= n(); ++i) {
      cluster_->send(i, msg("c0", i, R"({"type":"bench_stats","msg_id":)" + std::to_string(id) + "}"));
    }
    std::int64_t until = Cluster::now_us() + wait_us;
    while (stats_replies_ < n() && Cluster::now_us() < until) pump(std::min(until, Cluster::now_us() + 5'000));
    for (int i = 2; i <= n(); ++i) {
      if (scratch_[static_cast<std::size_t>(i)].digest != scratch_[1].digest) return false;
    }
    return stats_replies_ == n();
  }

  void finals() {
    scratch_.assign(static_cast<std::size_t>(n()) + 1, FinalState{});
    for (int i = 1; i <= n(); ++i) {
      for (int k = 0; k < o_.key_count; ++k) {
        cluster_->send(i, msg("c0", i, R"({"type":"kv_read","msg_id":)" + std::to_string(1'000'000 + k) +
                                           R"(,"key":)" + std::to_string(k) + "}"));
      }
    }
    pump(Cluster::now_us() + 300'000);
    auto held = scratch_;
    collect_stats(2'000'000);
    for (int i = 1; i <= n(); ++i) {
      FinalState f = scratch_[static_cast<std::size_t>(i)];
      f.held = held[static_cast<std::size_t>(i)].held;
      run_.finals.push_back(f);
    }
  }

  double seconds(std::int64_t t) const { return static_cast<double>(t - start_) / 1e6; }
  void progress() {
    std::fprintf(stderr, "gossip-bench [%s] %.0f s: %zu ops, %" PRIu64 " node-to-node messages%s",
                 run_.condition.c_str(), seconds(Cluster::now_us()), run_.history.size(),
                 cluster_->routed_total(), isatty(2) ? "\r" : "\n");
  }

  const Options& o_;
  Run run_;
  std::mt19937_64 rng_;
  std::unique_ptr<Cluster> cluster_;
  std::vector<bool> busy_;
  std::map<std::pair<std::string, std::int64_t>, Pending> pending_;
  std::vector<FinalState> scratch_;
  int stats_replies_ = 0;
  std::int64_t stats_round_ = 0;
  std::int64_t next_msg_id_ = 1;
  std::int64_t next_value_ = 1;
  std::int64_t start_ = 0;
};

// The comparison table: one column per condition.
void print_table(const std::vector<Run>& runs, std::FILE* out) {
  auto row = [&](const char* name, auto value) {
    std::fprintf(out, "%-44s", name);
    for (const Run& r : runs) std::fprintf(out, "%22s", value(r).c_str());
    std::fputc('\n', out);
  };
  auto num = [](double v, const char* fmt = "%.0f") {
    char b[64];
    std::snprintf(b, sizeof b, fmt, v);
    return std::string(b);
  };
  std::fprintf(out, "\n%-44s", "");
  for (const Run& r : runs) std::fprintf(out, "%22s", r.condition.c_str());
  std::fputc('\n', out);
  row("operations (answered)", [&](const Run& r) {
    return num(double(r.checks.ops)) + " (" + num(100.0 * double(r.checks.answered) / double(std::max<std::uint64_t>(r.checks.ops, 1))) + "%)";
  });
  row("writes acknowledged", [&](const Run& r) { return num(double(r.checks.writes_ok)); });
  row("convergence p50 / max, nodes' own (ms)", [&](const Run& r) {
    std::int64_t p50 = 0, mx = 0;
    std::uint64_t pending = 0;
    for (const FinalState& f : r.finals) {
      p50 = std::max(p50, f.convergence_p50);
      mx = std::max(mx, f.convergence_max);
      pending += f.convergence_pending;
    }
    return num(double(p50)) + " / " + num(double(mx)) + (pending ? " (" + num(double(pending)) + " pend)" : "");
  });
  row("stable latency p50 / max, history (ms)", [&](const Run& r) {
    return num(double(r.checks.stable_p50_ms)) + " / " + num(double(r.checks.stable_max_ms));
  });
  row("node-to-node messages", [&](const Run& r) { return num(double(r.checks.routed)); });
  row("messages per write", [&](const Run& r) {
    return num(double(r.checks.routed) / double(std::max<std::uint64_t>(r.checks.writes_ok, 1)), "%.2f");
  });
  row("messages per operation (msgs-per-op)", [&](const Run& r) {
    return num(double(r.checks.routed) / double(std::max<std::uint64_t>(r.checks.ops, 1)), "%.2f");
  });
  row("stale reads, history (% of reads)", [&](const Run& r) {
    return num(double(r.checks.stale_reads)) + " (" + num(100.0 * double(r.checks.stale_reads) / double(std::max<std::uint64_t>(r.checks.reads_ok, 1)), "%.1f") + "%)";
  });
  row("stale reads, nodes' own", [&](const Run& r) {
    std::uint64_t n = 0;
    for (const FinalState& f : r.finals) n += f.stale_reads;
    return num(double(n));
  });
  row("lost writes (node-key pairs)", [&](const Run& r) { return num(double(r.checks.lost_writes)); });
  row("divergent replicas after quiet period", [&](const Run& r) { return num(double(r.checks.divergent_nodes)); });
  row("router count = nodes' total_gossip_msgs", [&](const Run& r) {
    return r.checks.msg_count_mismatch ? "NO: " + num(double(r.checks.routed)) + " vs " + num(double(r.checks.reported_msgs)) : std::string("yes");
  });
  row("client latency p50 / p99 (ms)", [&](const Run& r) {
    return num(double(r.checks.latency_p50_ms)) + " / " + num(double(r.checks.latency_p99_ms));
  });
  row("nodes that died", [&](const Run& r) { return num(double(r.dead.size())); });
}

void write_results(const std::vector<Run>& runs, const std::string& path) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const Run& r : runs) {
    const Checks& c = r.checks;
    w.Key(r.condition.c_str());
    w.StartObject();
    auto u = [&](const char* k, std::uint64_t v) { w.Key(k); w.Uint64(v); };
    auto i = [&](const char* k, std::int64_t v) { w.Key(k); w.Int64(v); };
    u("operations", c.ops);
    u("answered", c.answered);
    u("writes_ok", c.writes_ok);
    u("reads_ok", c.reads_ok);
    u("node_to_node_messages", c.routed);
    u("nodes_total_gossip_msgs", c.reported_msgs);
    w.Key("msg_count_matches");
    w.Bool(!c.msg_count_mismatch);
    u("stale_reads", c.stale_reads);
    u("lost_writes", c.lost_writes);
    i("divergent_nodes", c.divergent_nodes);
    i("stable_latency_p50_ms", c.stable_p50_ms);
    i("stable_latency_max_ms", c.stable_max_ms);
    i("client_latency_p50_ms", c.latency_p50_ms);
    i("client_latency_p99_ms", c.latency_p99_ms);
    i("client_latency_max_ms", c.latency_max_ms);
    w.Key("seconds");
    w.Double(r.seconds);
    w.Key("partitions_s");
    w.StartArray();
    for (auto [a, b] : r.partitions) {
      w.StartArray();
      w.Double(a);
      w.Double(b);
      w.EndArray();
    }
    w.EndArray();
    w.Key("nodes");
    w.StartArray();
    for (const FinalState& f : r.finals) {
      w.StartObject();
      w.Key("state_digest");
      w.String(f.digest.c_str());
      u("total_gossip_msgs", f.total_gossip_msgs);
      u("routed_before_report", f.routed_before_report);
      u("stale_reads", f.stale_reads);
      u("convergence_count", f.convergence_count);
      u("convergence_pending", f.convergence_pending);
      i("convergence_p50_ms", f.convergence_p50);
      i("convergence_max_ms", f.convergence_max);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  std::ofstream(path) << buf.GetString() << "\n";
}

}  // namespace
}  // namespace gossip_bench

int main(int argc, char** argv) {
  using namespace gossip_bench;
  Options o;
  CLI::App app{"gossip-bench: a local gossip-kv cluster under load, normal and partitioned"};
  std::string self_dir = ".";
  if (char buf[4096]; ::readlink("/proc/self/exe", buf, sizeof buf - 1) > 0) {
    ssize_t len = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[len] = 0;
    self_dir = std::string(buf).substr(0, std::string(buf).rfind('/'));
  }
  o.cluster.bin = self_dir + "/gossip-kv";
  app.add_option("--bin", o.cluster.bin, "the node binary")->capture_default_str();
  app.add_option("--node-count", o.cluster.nodes, "nodes")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--time-limit", o.time_limit_s, "seconds of load per condition")->capture_default_str();
  app.add_option("--rate", o.rate, "client operations per second")->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "clients, one request in flight each")->capture_default_str();
  app.add_option("--latency", o.cluster.latency_ms, "mean one-way node-to-node latency, ms")->capture_default_str();
  app.add_option("--latency-dist", o.dist, "constant|uniform|exponential")->capture_default_str()
      ->check(CLI::IsMember({"constant", "uniform", "exponential"}));
  app.add_option("--nemesis", o.nemesis, "partition|none (the partition condition's faults)")->capture_default_str();
  app.add_option("--nemesis-interval", o.nemesis_interval_s, "seconds between faults and heals")->capture_default_str();
  app.add_option("--seed", o.cluster.seed, "seed")->capture_default_str();
  app.add_option("--key-count", o.key_count, "keys")->capture_default_str();
  app.add_option("--read-fraction", o.read_fraction, "share of reads")->capture_default_str();
  app.add_option("--node-args", o.node_args, "arguments for every node")->capture_default_str();
  app.add_option("--quiet-period", o.quiet_s, "seconds without load before the finals")->capture_default_str();
  app.add_option("--compare", o.compare, "conditions to run: normal,partition")->capture_default_str();
  app.add_option("--store-dir", o.store_dir, "where run folders go")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  o.cluster.dist = o.dist == "uniform" ? LatencyDist::kUniform
                   : o.dist == "exponential" ? LatencyDist::kExponential : LatencyDist::kConstant;
  std::istringstream words(o.node_args);
  for (std::string w; words >> w;) o.cluster.node_args.push_back(w);

  char stamp[32];
  std::time_t t = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", std::gmtime(&t));
  std::string dir = o.store_dir + "/" + stamp;
  ::mkdir(o.store_dir.c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  std::vector<Run> runs;
  std::istringstream conditions(o.compare);
  for (std::string c; std::getline(conditions, c, ',');) {
    if (c == "partition" && o.nemesis == "none") continue;
    std::string cdir = dir + "/" + c;
    ::mkdir(cdir.c_str(), 0755);
    runs.push_back(Driver(o, c, cdir).run());
    std::fputc('\n', stderr);
  }
  ::unlink((o.store_dir + "/latest").c_str());
  [[maybe_unused]] int rc = ::symlink(stamp, (o.store_dir + "/latest").c_str());
  print_table(runs, stdout);
  write_results(runs, dir + "/results.json");
  std::printf("\nrun folder: %s (results.json, node stderr logs)\n", dir.c_str());
  bool bad = false;
  for (const Run& r : runs) bad |= r.checks.lost_writes > 0 || r.checks.msg_count_mismatch || r.checks.divergent_nodes > 0;
  return bad ? 1 : 0;
}
