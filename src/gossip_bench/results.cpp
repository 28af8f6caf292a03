// results.json and history.jsonl (declared in report.h).
#include <fstream>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "observer.h"
#include "report.h"

namespace gossip_bench {
namespace {

using Json = rapidjson::PrettyWriter<rapidjson::StringBuffer>;


void key_u(Json& w, const char* k, std::uint64_t v) { w.Key(k); w.Uint64(v); }
void key_i(Json& w, const char* k, std::int64_t v) { w.Key(k); w.Int64(v); }
void key_d(Json& w, const char* k, double v) { w.Key(k); w.Double(v); }
void key_s(Json& w, const char* k, const std::string& v) { w.Key(k); w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size())); }
void key_b(Json& w, const char* k, bool v) { w.Key(k); w.Bool(v); }
// A figure that may be unknown: null when it is.
void key_opt(Json& w, const char* k, std::int64_t v) {
  w.Key(k);
  if (v == kUnknown) w.Null(); else w.Int64(v);
}

// A summary as member k, or as a value when k is null.
void summary(Json& w, const char* k, const Summary& s, double scale) {
  if (k != nullptr) w.Key(k);
  w.StartObject();
  key_u(w, "count", s.count);
  key_d(w, "p50", static_cast<double>(s.p50) * scale);
  key_d(w, "p95", static_cast<double>(s.p95) * scale);
  key_d(w, "p99", static_cast<double>(s.p99) * scale);
  key_d(w, "max", static_cast<double>(s.max) * scale);
  w.EndObject();
}

void convergence(Json& w, const char* k, const NodeConvergence& c, bool with_histogram) {
  w.Key(k);
  w.StartObject();
  key_u(w, "count", c.count);
  key_u(w, "pending", c.pending);
  key_u(w, "unmeasured", c.unmeasured);
  key_i(w, "p50", c.p50);
  key_i(w, "p95", c.p95);
  key_i(w, "p99", c.p99);
  key_i(w, "max", c.max);
  if (with_histogram) {
    w.Key("histogram");
    w.StartArray();
    for (auto [lower, n] : c.histogram) {
      w.StartArray();
      w.Int64(lower);
      w.Uint64(n);
      w.EndArray();
    }
    w.EndArray();
  }
  w.EndObject();
}

void options(Json& w, const Options& o) {
  w.Key("options");
  w.StartObject();
  key_s(w, "bin", o.bin);
  key_s(w, "node_args", o.node_args);
  key_i(w, "node_count", o.node_count);
  key_d(w, "time_limit_s", o.time_limit_s);
  key_d(w, "rate", o.rate);
  key_i(w, "concurrency", o.concurrency);
  key_d(w, "latency_ms", o.latency_ms);
  key_s(w, "latency_dist", to_string(o.latency_dist));
  key_d(w, "nemesis_interval_s", o.nemesis_interval_s);
  w.Key("nemesis_targets");
  w.StartArray();
  for (FaultKind k : o.fault_kinds) w.String(to_string(k).c_str());
  w.EndArray();
  w.Key("pause_targets");
  w.StartArray();
  for (PauseKind k : o.pause_kinds) w.String(to_string(k).c_str());
  w.EndArray();
  key_d(w, "loss", o.loss);
  key_d(w, "duplicate", o.duplicate);
  key_d(w, "clock_skew_ms", o.clock_skew_ms);
  key_i(w, "burst_writes", o.burst_writes);
  w.Key("conditions");
  w.StartArray();
  for (const std::string& c : o.conditions) w.String(c.c_str());
  w.EndArray();
  key_u(w, "seed", o.seed);
  key_i(w, "key_count", o.key_count);
  key_d(w, "read_fraction", o.read_fraction);
  key_s(w, "write_type", to_string(o.write_type));
  key_d(w, "quiet_period_s", o.quiet_period_s);
  key_d(w, "request_timeout_s", o.request_timeout_s);
  key_b(w, "poll_reads", o.poll_reads);
  w.EndObject();
}

void operations(Json& w, const ConditionRun& r) {
  const Checks& c = r.checks;
  w.Key("operations");
  w.StartObject();
  key_u(w, "invoked", c.ops);
  key_u(w, "answered", c.answered);
  key_d(w, "answered_fraction", ratio(c.answered, c.ops));
  key_u(w, "timeouts", c.timeouts);
  key_u(w, "errors", c.errors);
  key_u(w, "writes_ok", c.writes_ok);
  key_u(w, "writes_unversioned", c.writes_unversioned);
  key_u(w, "reads_ok", c.reads_ok);
  key_u(w, "reads_not_found", c.reads_not_found);
  key_u(w, "skipped_all_clients_busy", r.skipped_ops);
  key_u(w, "late_replies", r.late_replies);
  w.EndObject();
  summary(w, "client_latency_ms", c.latency_us, 1e-3);
}

void messages(Json& w, const ConditionRun& r) {
  const Checks& c = r.checks;
  w.Key("messages");
  w.StartObject();
  key_u(w, "node_to_node", r.msgs_in_all());
  key_u(w, "from_killed_lives", r.routed_by_earlier_lives);
  key_u(w, "during_load", r.load_msgs);
  key_d(w, "per_write_during_load", ratio(r.load_msgs, c.writes_ok));
  key_d(w, "per_operation_during_load", ratio(r.load_msgs, c.ops));
  w.Key("during_load_by_type");
  w.StartObject();
  for (const auto& [type, n] : r.load_msgs_by_type) key_u(w, type.c_str(), n);
  w.EndObject();
  key_u(w, "dropped_by_faults", r.dropped);
  key_u(w, "duplicated_by_faults", r.duplicated);
  key_u(w, "undeliverable", r.undeliverable);
  key_u(w, "overflowed", r.overflowed);
  key_u(w, "unroutable_lines", r.unroutable);
  key_d(w, "per_write", ratio(r.msgs_in_all(), c.writes_ok));
  key_d(w, "per_operation", ratio(r.msgs_in_all(), c.ops));
  // The nodes' own counts cover their current lives: what the router read from those.
  key_u(w, "nodes_total_gossip_msgs", c.reported_msgs);
  key_u(w, "routed_from_current_lives", c.routed);
  key_b(w, "count_matches", !c.msg_count_mismatch);
  w.Key("per_second");
  w.StartArray();
  for (const SecondCounts& s : r.seconds) {
    w.StartArray();
    w.Uint64(s.sent);
    w.Uint64(s.dropped);
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
}

void safety(Json& w, const ConditionRun& r) {
  const Checks& c = r.checks;
  w.Key("stale_reads");
  w.StartObject();
  key_u(w, "history", c.stale_reads);
  key_d(w, "fraction_of_reads", ratio(c.stale_reads, c.reads_ok + c.reads_not_found));
  key_u(w, "nodes_own", c.nodes_stale_reads);
  key_u(w, "nodes_definition_possible", c.node_stale_possible);
  key_b(w, "nodes_within_history", !c.nodes_stale_beyond_history);
  w.EndObject();
  key_u(w, "lost_writes", c.lost_writes);
  key_u(w, "lost_with_crash", c.lost_with_crash);
  key_u(w, "overwritten_by_older", c.overwritten_by_older);
  key_u(w, "restarts", r.restarts);
  key_i(w, "divergent_nodes", c.divergent_nodes);
  key_i(w, "silent_nodes", c.silent_nodes);
}

void nodes(Json& w, const ConditionRun& r) {
  w.Key("nodes");
  w.StartArray();
  for (std::size_t i = 0; i < r.nodes.size(); ++i) {
    const NodeReport& n = r.nodes[i];
    w.StartObject();
    key_s(w, "id", "n" + std::to_string(i + 1));
    key_b(w, "answered_stats", n.answered_stats);
    key_b(w, "final_reads_complete", n.final_reads_complete);
    key_s(w, "state_digest", n.digest);
    key_u(w, "total_writes", n.total_writes);
    key_u(w, "total_gossip_msgs", n.total_gossip_msgs);
    key_u(w, "routed_before_report", n.routed_before_report);
    key_u(w, "reads", n.reads);
    key_u(w, "stale_reads", n.stale_reads);
    convergence(w, "convergence_ms", n.convergence, false);
    w.EndObject();
  }
  w.EndArray();
}

void condition(Json& w, const ConditionRun& r) {
  w.Key(r.condition.c_str());
  w.StartObject();
  key_d(w, "load_start_s", r.load_start_s);
  key_d(w, "load_end_s", r.load_end_s);
  key_d(w, "total_s", r.total_s);
  operations(w, r);
  w.Key("convergence");
  w.StartObject();
  convergence(w, "nodes_ms", r.checks.nodes_convergence, true);
  // Of nodes_ms, the figures killed nodes reported just before their kill.
  std::uint64_t from_killed = 0;
  for (const NodeConvergence& c : r.killed_lives) from_killed += c.count;
  key_u(w, "nodes_ms_from_killed_lives", from_killed);
  key_u(w, "killed_lives_reported", r.killed_lives.size());
  key_u(w, "writes_taken", r.checks.writes_taken);
  key_u(w, "writes_not_yet_measured", r.checks.writes_unmeasured_yet);
  summary(w, "history_lower_bound_ms", r.checks.stable_ms, 1.0);
  w.Key("observed_ms");
  if (r.observed) {
    summary(w, nullptr, summarize(r.observed_ms), 1.0);
  } else {
    w.Null();
  }
  key_u(w, "observed_never", r.observed_never);
  key_s(w, "observed_by", r.observed_by);
  // Each write's figure from its node against the router's (bench_figures); null where none
  // was compared (another node's format, bench_write).
  const FigureCheck& fc = r.figure_check;
  w.Key("per_write");
  if (r.foreign || !r.observed || r.observed_by != "router") {
    w.Null();
  } else {
    w.StartObject();
    key_u(w, "figures", r.figures.size());
    key_u(w, "compared", fc.compared);
    key_u(w, "earlier_than_observed", fc.earlier);
    key_u(w, "later_than_observed_by_10_percent", fc.later);
    key_u(w, "unobserved", fc.unobserved);
    key_u(w, "not_kept_by_nodes", fc.dropped);
    key_u(w, "tolerance_ms", static_cast<std::uint64_t>(fc.tolerance_ms));
    w.EndObject();
  }
  key_b(w, "nodes_report_bench_stats", !r.foreign);
  key_opt(w, "identical_after_load_ms", r.identical_after_ms);
  key_opt(w, "settled_after_load_ms", r.settled_after_ms);
  w.EndObject();
  messages(w, r);
  safety(w, r);
  w.Key("faults");
  w.StartArray();
  for (const FaultSpan& f : r.faults) {
    w.StartObject();
    key_s(w, "kind", f.kind);
    key_s(w, "description", f.description);
    key_d(w, "start_s", f.start_s);
    key_d(w, "end_s", f.end_s);
    w.EndObject();
  }
  w.EndArray();
  w.Key("bursts");
  w.StartArray();
  for (const BurstSpan& b : r.bursts) {
    w.StartObject();
    key_d(w, "start_s", b.start_s);
    key_s(w, "node", "n" + std::to_string(b.node));
    key_u(w, "writes", b.writes);
    key_u(w, "acked", b.acked);
    key_opt(w, "spread_ms", b.spread_ms);
    w.EndObject();
  }
  w.EndArray();
  w.Key("node_problems");
  w.StartArray();
  for (const std::string& p : r.node_problems) w.String(p.c_str());
  w.EndArray();
  nodes(w, r);
  key_s(w, "history", r.condition + "/history.jsonl");
  w.EndObject();
}

}  // namespace

void write_results_json(const Options& o, const std::vector<ConditionRun>& runs,
                        const std::string& started_utc, const std::vector<std::string>& plots,
                        const std::string& path) {
  rapidjson::StringBuffer buf;
  Json w(buf);
  w.SetMaxDecimalPlaces(6);
  w.StartObject();
  key_s(w, "started_utc", started_utc);
  key_s(w, "description", describe_run(o));
  options(w, o);
  w.Key("conditions");
  w.StartObject();
  for (const ConditionRun& r : runs) condition(w, r);
  w.EndObject();
  w.Key("problems");
  w.StartArray();
  for (const std::string& p : run_problems(runs)) w.String(p.c_str());
  w.EndArray();
  w.Key("plots");
  w.StartArray();
  for (const std::string& p : plots) w.String(p.c_str());
  w.EndArray();
  w.EndObject();
  std::ofstream(path) << buf.GetString() << "\n";
}

void write_figures_tsv(const ConditionRun& run, const std::string& path) {
  std::ofstream out(path);
  out << "node\tts_us\tnodes_ms\tobserved_ms\n";
  for (const WriteFigure& f : run.figures) {
    out << 'n' << f.node << '\t' << f.ts_us << '\t' << f.node_ms << '\t';
    if (f.observed_ms == kUnknown) {
      out << "-\n";
    } else if (f.observed_ms == ConvergenceObserver::kNever) {
      out << "never\n";
    } else {
      out << f.observed_ms << '\n';
    }
  }
}

void write_history_jsonl(const ConditionRun& run, const std::string& path) {
  static const char* kOutcome[] = {"timeout", "ok", "not_found", "error"};
  std::ofstream out(path);
  rapidjson::StringBuffer buf;
  for (const Op& op : run.history) {
    buf.Clear();
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("client");
    w.String(("c" + std::to_string(op.client)).c_str());
    w.Key("node");
    w.String(("n" + std::to_string(op.node)).c_str());
    w.Key("f");
    w.String(op.kind == Op::Kind::kWrite ? "write" : "read");
    w.Key("type");  // the request sent
    w.String(op.kind == Op::Kind::kRead ? "kv_read" : to_string(run.write_type).c_str());
    w.Key("key");
    w.Int64(op.key);
    w.Key("value");
    if (op.value == kUnknown) w.Null(); else w.Int64(op.value);
    w.Key("ts_us");
    if (op.ts_us == kUnknown) w.Null(); else w.Int64(op.ts_us);
    w.Key("outcome");
    w.String(kOutcome[static_cast<int>(op.outcome)]);
    if (op.error_code != 0) {
      w.Key("error_code");
      w.Int(op.error_code);
    }
    if (op.late) {
      w.Key("late");
      w.Bool(true);
    }
    if (op.lost_with_crash) {
      w.Key("lost_with_crash");
      w.Bool(true);
    }
    w.Key("invoke_us");
    w.Int64(op.invoke_us);
    w.Key("complete_us");
    if (op.complete_us == kUnknown) w.Null(); else w.Int64(op.complete_us);
    w.Key("invoke_wall_us");
    w.Int64(op.invoke_wall_us);
    w.EndObject();
    out << buf.GetString() << '\n';
  }
}

}  // namespace gossip_bench
