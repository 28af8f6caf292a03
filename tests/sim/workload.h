// A client workload for the simulator, and the figures a run yields.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/percentile.h"
#include "simulator.h"

namespace gossip_kv::sim {

struct Workload {
  double ops_per_s = 100;      // client operations per second, over the whole cluster
  double read_fraction = 0.5;  // the rest are writes
  int keys = 100;
  std::int64_t duration_ms = 10000;
  // A partition that isolates the first `partitioned` nodes from the rest during
  // [partition_from_ms, partition_to_ms); 0 nodes: none.
  int partitioned = 0;
  std::int64_t partition_from_ms = 0;
  std::int64_t partition_to_ms = 0;
  std::int64_t quiet_ms = 3000;  // after the load, no client activity
};

struct Figures {
  std::uint64_t ops = 0, writes = 0, reads = 0, messages = 0;
  double msgs_per_op = 0;
  std::int64_t observed_p50_ms = 0, observed_p95_ms = 0, observed_max_ms = 0;
  std::uint64_t observed_count = 0, observed_pending = 0;
  std::int64_t core_p50_ms = 0, core_max_ms = 0;  // max over nodes of their own figures
  std::uint64_t core_count = 0, core_pending = 0, stale_reads = 0;
  bool converged = false;
  std::uint64_t lost_writes = 0;
};

// Runs the workload, then the quiet period, and gathers the figures.
inline Figures run(Simulator& sim, const Workload& w, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(w.ops_per_s / 1e6);
  std::uniform_int_distribution<int> node(1, sim.size());
  std::uniform_int_distribution<int> key(0, w.keys - 1);
  std::uniform_real_distribution<double> u(0, 1);
  Figures f;
  bool cut = false;
  double t = 0;
  for (;;) {
    t += gap(rng);
    auto t_us = static_cast<std::int64_t>(t);
    if (t_us >= w.duration_ms * 1000) break;
    if (w.partitioned > 0 && !cut && t_us >= w.partition_from_ms * 1000 &&
        t_us < w.partition_to_ms * 1000) {
      sim.run_until(w.partition_from_ms * 1000);
      std::vector<int> groups(static_cast<std::size_t>(sim.size()) + 1, 0);
      for (int i = 1; i <= w.partitioned; ++i) groups[static_cast<std::size_t>(i)] = 1;
      sim.partition(groups);
      cut = true;
    }
    if (cut && t_us >= w.partition_to_ms * 1000) {
      sim.run_until(w.partition_to_ms * 1000);
      sim.heal();
      cut = false;
    }
    sim.run_until(t_us);
    std::string k = "i" + std::to_string(key(rng));
    if (u(rng) < w.read_fraction) {
      sim.read(node(rng), k);
      ++f.reads;
    } else {
      sim.write(node(rng), k, std::to_string(f.writes) + "");
      ++f.writes;
    }
  }
  if (cut) {
    sim.run_until(std::max(w.partition_to_ms, w.duration_ms) * 1000);
    sim.heal();
  }
  sim.run_until(w.duration_ms * 1000 + w.quiet_ms * 1000);
  f.ops = f.reads + f.writes;
  f.messages = sim.messages_sent();
  f.msgs_per_op = f.ops == 0 ? 0 : static_cast<double>(f.messages) / static_cast<double>(f.ops);

  std::vector<std::int64_t> observed;
  for (const WriteRecord& r : sim.writes()) {
    if (r.everywhere_us < 0) {
      ++f.observed_pending;
    } else {
      observed.push_back((r.everywhere_us - r.at_us + 500) / 1000);
    }
  }
  f.observed_count = observed.size();
  f.observed_p50_ms = percentile(observed, 0.5);
  f.observed_p95_ms = percentile(observed, 0.95);
  f.observed_max_ms = percentile(observed, 1.0);

  for (int n = 1; n <= sim.size(); ++n) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> wr(buf);
    wr.StartObject();
    sim.engine(n).write_stats(wr);
    wr.EndObject();
    rapidjson::Document d;
    d.Parse(buf.GetString());
    const auto& c = d["convergence_ms"];
    f.core_count += c["count"].GetUint64();
    f.core_pending += c["pending"].GetUint64();
    f.core_max_ms = std::max(f.core_max_ms, c["max"].GetInt64());
    f.core_p50_ms = std::max(f.core_p50_ms, c["p50"].GetInt64());
    f.stale_reads += sim.engine(n).stale_reads();
  }
  f.converged = sim.all_digests_equal();
  for (int n = 1; n <= sim.size(); ++n) {
    for (const auto& [k, best] : sim.newest()) {
      std::string v;
      Version got;
      if (!sim.store(n).read(k, 0, &v, &got) || got != best.first || v != best.second) {
        ++f.lost_writes;
      }
    }
  }
  return f;
}

}  // namespace gossip_kv::sim
