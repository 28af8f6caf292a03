#include "report.h"

#include <algorithm>
#include <cinttypes>
#include <fstream>
#include <functional>
#include <utility>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace gossip_bench {
namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
std::string count(std::uint64_t v) { return std::to_string(v); }
std::string ms_of_us(std::int64_t v) { return fmt("%.2f", static_cast<double>(v) / 1000.0); }
std::uint64_t reads_answered(const Checks& c) { return c.reads_ok + c.reads_not_found; }

std::string faults_cell(const ConditionRun& r) {
  if (r.faults.empty()) return "none";
  std::vector<std::string> kinds;
  for (const FaultSpan& f : r.faults) {
    const std::string& k = f.kind;
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  }
  std::string s = count(r.faults.size()) + ":";
  for (const std::string& k : kinds) s += " " + k;
  return s;
}

std::string bursts_cell(const ConditionRun& r) {
  if (r.bursts.empty()) return "none";
  std::uint64_t writes = 0, acked = 0;
  std::string spreads;
  for (const BurstSpan& b : r.bursts) {
    writes += b.writes;
    acked += b.acked;
    spreads += (spreads.empty() ? "" : ", ") + (b.spread_ms == kUnknown ? std::string("never") : count(static_cast<std::uint64_t>(b.spread_ms)));
  }
  return count(acked) + " of " + count(writes) + " / " + spreads;
}

std::string after_quiet(std::int64_t ms, double quiet_s) {
  return ms == kUnknown ? "not within " + fmt("%g", quiet_s) + " s" : fmt("%.1f s", static_cast<double>(ms) / 1000.0);
}

using Cell = std::function<std::string(const ConditionRun&)>;

// A row of the table. A row of one fault condition's figures names the runs it is about
// (shown_for), and is left out when no condition of the run is one of them.
struct Row {
  using Filter = std::function<bool(const ConditionRun&)>;
  Row(std::string l, Cell c, Filter f = {}) : label(std::move(l)), cell(std::move(c)), shown_for(std::move(f)) {}
  std::string label;
  Cell cell;
  Filter shown_for;  // empty: always shown
};

std::vector<Row> table_rows(const Options& o) {
  std::vector<Row> rows = {
      {"faults", faults_cell},
      {"operations answered / invoked", [](const ConditionRun& r) {
         return count(r.checks.answered) + " / " + count(r.checks.ops) + fmt(" (%.1f%%)", 100 * ratio(r.checks.answered, r.checks.ops));
       }},
      {"writes acknowledged", [](const ConditionRun& r) {
         std::string s = count(r.checks.writes_ok);
         if (r.checks.writes_unversioned > 0) s += " (" + count(r.checks.writes_unversioned) + " never read)";
         return s;
       }},
      {"convergence, nodes' own p50 / p95 / max (ms)", [](const ConditionRun& r) {
         if (r.foreign) return std::string("n/a");
         const NodeConvergence& c = r.checks.nodes_convergence;
         return count(static_cast<std::uint64_t>(c.p50)) + " / " + count(static_cast<std::uint64_t>(c.p95)) + " / " +
                count(static_cast<std::uint64_t>(c.max));
       }},
      {"  writes measured / not yet measured", [](const ConditionRun& r) {
         if (r.foreign) return std::string("n/a");
         return count(r.checks.nodes_convergence.count) + " / " + count(r.checks.writes_unmeasured_yet);
       }},
      {"convergence, observed p50 / p95 / max (ms)", [](const ConditionRun& r) {
         if (!r.observed) return std::string("n/a");
         Summary s = summarize(r.observed_ms);
         std::string cell = count(static_cast<std::uint64_t>(s.p50)) + " / " + count(static_cast<std::uint64_t>(s.p95)) +
                            " / " + count(static_cast<std::uint64_t>(s.max));
         if (r.observed_by != "router") cell += " (" + r.observed_by + ")";
         return r.observed_never > 0 ? cell + " (" + count(r.observed_never) + " never)" : cell;
       }},
      {"  each write's figure against observed: earlier / later by > 10 %", [](const ConditionRun& r) {
         const FigureCheck& c = r.figure_check;
         if (r.foreign || !r.observed) return std::string("n/a");
         if (r.figures.empty()) return std::string("n/a (no figures listed)");
         std::string s = (c.earlier > 0 ? "EARLIER: " : "") + count(c.earlier) + " / " + count(c.later) + " of " + count(c.compared);
         if (c.unobserved > 0) s += ", " + count(c.unobserved) + " unobserved";
         if (c.dropped > 0) s += ", " + count(c.dropped) + " not kept";
         return s;
       }},
      {"convergence, history lower bound p50 / max (ms)", [](const ConditionRun& r) {
         return count(static_cast<std::uint64_t>(r.checks.stable_ms.p50)) + " / " +
                count(static_cast<std::uint64_t>(r.checks.stable_ms.max));
       }},
      {"replicas identical after the load ended", [&o](const ConditionRun& r) {
         return after_quiet(r.identical_after_ms, o.quiet_period_s);
       }},
      {"node-to-node messages: load / in all (dropped)", [](const ConditionRun& r) {
         std::string extra = r.duplicated > 0 ? ", " + count(r.duplicated) + " duplicated" : "";
         return count(r.load_msgs) + " / " + count(r.msgs_in_all()) + " (" + count(r.dropped) + extra + ")";
       }},
      {"messages per write: load / in all", [](const ConditionRun& r) {
         return fmt("%.2f", ratio(r.load_msgs, r.checks.writes_ok)) + " / " + fmt("%.2f", ratio(r.msgs_in_all(), r.checks.writes_ok));
       }},
      {"messages per operation (msgs-per-op): load / in all", [](const ConditionRun& r) {
         return fmt("%.2f", ratio(r.load_msgs, r.checks.ops)) + " / " + fmt("%.2f", ratio(r.msgs_in_all(), r.checks.ops));
       }},
      {"  during the load: gossip / digest / ack / sync", [](const ConditionRun& r) {
         // Content sync's three types as one; any other type at the end (results.json has each).
         std::uint64_t gossip = 0, digest = 0, ack = 0, sync = 0;
         std::string other;
         for (const auto& [type, n] : r.load_msgs_by_type) {
           if (type == "gossip") gossip = n;
           else if (type == "digest") digest = n;
           else if (type == "ack") ack = n;
           else if (type.rfind("sync_", 0) == 0) sync += n;
           else other += " + " + type + " " + count(n);
         }
         return count(gossip) + " / " + count(digest) + " / " + count(ack) + " / " + count(sync) + other;
       }},
      {"stale reads, history (% of reads)", [](const ConditionRun& r) {
         return count(r.checks.stale_reads) + fmt(" (%.1f%%)", 100 * ratio(r.checks.stale_reads, reads_answered(r.checks)));
       }},
      {"stale reads, nodes' own (history allows)", [](const ConditionRun& r) {
         if (r.foreign) return std::string("n/a");
         std::string s = count(r.checks.nodes_stale_reads) + " (<= " + count(r.checks.node_stale_possible) + ")";
         return r.checks.nodes_stale_beyond_history ? "TOO MANY: " + s : s;
       }},
      {"bursts: writes acknowledged / each spread everywhere (ms)", bursts_cell,
       [](const ConditionRun& r) { return !r.bursts.empty(); }},
      {"lost writes", [](const ConditionRun& r) { return count(r.checks.lost_writes); }},
      {"  acknowledged writes hidden by an older write (clock skew)",
       [](const ConditionRun& r) { return count(r.checks.overwritten_by_older); },
       [](const ConditionRun& r) { return r.condition == "clock-skew" || r.checks.overwritten_by_older > 0; }},
      {"  lost with a crashed node (nodes restarted)",
       [](const ConditionRun& r) { return count(r.checks.lost_with_crash) + " (" + count(r.restarts) + ")"; },
       [](const ConditionRun& r) { return r.restarts > 0 || r.checks.lost_with_crash > 0; }},
      {"divergent replicas after the quiet period", [](const ConditionRun& r) { return count(static_cast<std::uint64_t>(r.checks.divergent_nodes)); }},
      {"router count = nodes' total_gossip_msgs", [](const ConditionRun& r) {
         if (r.foreign) return std::string("n/a");
         return r.checks.msg_count_mismatch ? "NO: " + count(r.checks.routed) + " vs " + count(r.checks.reported_msgs)
                                            : std::string("yes");
       }},
      {"client latency p50 / p99 / max (ms)", [](const ConditionRun& r) {
         const Summary& l = r.checks.latency_us;
         return ms_of_us(l.p50) + " / " + ms_of_us(l.p99) + " / " + ms_of_us(l.max);
       }},
      {"node problems", [](const ConditionRun& r) {
         return r.node_problems.empty() ? std::string("none") : count(r.node_problems.size());
       }},
  };
  return rows;
}

}  // namespace

std::string describe_run(const Options& o) {
  std::string s = count(static_cast<std::uint64_t>(o.node_count)) + " nodes (" + o.node_args + "), " +
                  fmt("%g", o.latency_ms) + " ms " + to_string(o.latency_dist) + " latency, " +
                  fmt("%g", o.rate) + " ops/s (" + fmt("%g", 100 * o.read_fraction) + "% reads, " +
                  to_string(o.write_type) + ") on " + count(static_cast<std::uint64_t>(o.key_count)) + " keys, " +
                  fmt("%g", o.time_limit_s) + " s per condition, seed " + count(o.seed);
  return s;
}

void print_table(const Options& o, const std::vector<ConditionRun>& runs, std::FILE* out) {
  auto rows = table_rows(o);
  auto hidden = [&runs](const Row& row) {
    return row.shown_for && std::none_of(runs.begin(), runs.end(), row.shown_for);
  };
  rows.erase(std::remove_if(rows.begin(), rows.end(), hidden), rows.end());
  std::vector<std::vector<std::string>> cells;
  std::size_t label_w = 0;
  std::vector<std::size_t> col_w(runs.size());
  for (std::size_t c = 0; c < runs.size(); ++c) col_w[c] = runs[c].condition.size();
  for (const Row& row : rows) {
    label_w = std::max(label_w, row.label.size());
    cells.emplace_back();
    for (std::size_t c = 0; c < runs.size(); ++c) {
      cells.back().push_back(row.cell(runs[c]));
      col_w[c] = std::max(col_w[c], cells.back().back().size());
    }
  }
  std::fprintf(out, "gossip-bench: %s\n\n%-*s", describe_run(o).c_str(), static_cast<int>(label_w), "");
  for (std::size_t c = 0; c < runs.size(); ++c) std::fprintf(out, "   %*s", static_cast<int>(col_w[c]), runs[c].condition.c_str());
  std::fputc('\n', out);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::fprintf(out, "%-*s", static_cast<int>(label_w), rows[i].label.c_str());
    for (std::size_t c = 0; c < runs.size(); ++c) std::fprintf(out, "   %*s", static_cast<int>(col_w[c]), cells[i][c].c_str());
    std::fputc('\n', out);
  }
  for (const ConditionRun& r : runs) {
    for (const FaultSpan& f : r.faults) {
      std::fprintf(out, "\n%s: %s %.1f-%.1f s: %s", r.condition.c_str(), f.kind.c_str(), f.start_s, f.end_s,
                   f.description.c_str());
    }
    for (const std::string& p : r.node_problems) std::fprintf(out, "\n%s: %s", r.condition.c_str(), p.c_str());
  }
  std::fputc('\n', out);
}

std::vector<std::string> run_problems(const std::vector<ConditionRun>& runs) {
  std::vector<std::string> problems;
  for (const ConditionRun& r : runs) {
    const Checks& c = r.checks;
    auto add = [&](const std::string& what) { problems.push_back(r.condition + ": " + what); };
    if (c.lost_writes > 0) add(count(c.lost_writes) + " lost writes");
    if (c.divergent_nodes > 0) add(count(static_cast<std::uint64_t>(c.divergent_nodes)) + " divergent replicas");
    if (c.msg_count_mismatch) add("router counted " + count(c.routed) + " node-to-node messages, the nodes " + count(c.reported_msgs));
    if (c.nodes_stale_beyond_history) {
      add("nodes report " + count(c.nodes_stale_reads) + " stale reads, the history allows " + count(c.node_stale_possible));
    }
    if (r.figure_check.earlier > 0) {
      add(count(r.figure_check.earlier) + " of the nodes' convergence figures earlier than the router observed (beyond " +
          count(static_cast<std::uint64_t>(r.figure_check.tolerance_ms)) + " ms)");
    }
    if (r.unroutable > 0) add(count(r.unroutable) + " node output lines without a routable dest");
    if (r.overflowed > 0) add(count(r.overflowed) + " messages dropped: more than 512 MiB in flight");
    for (const std::string& p : r.node_problems) add(p);
  }
  return problems;
}

}  // namespace gossip_bench
