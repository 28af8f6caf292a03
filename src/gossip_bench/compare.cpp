// `gossip-bench compare` (compare.h): reads two results.json files and prints their main
// figures side by side.
#include "compare.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include <rapidjson/error/en.h>

namespace gossip_bench {
namespace {

using rapidjson::Value;

// One figure of a condition: where results.json keeps it and how it is printed.
struct FigureSpec {
  const char* label;
  std::vector<const char*> path;  // members from the condition object down
  int decimals;
  double scale = 1.0;
  // The figure is one statistic of a summary that has a `count`: a summary over nothing
  // still writes 0 for its percentiles, which must not read as "0 ms".
  bool summary = false;
};

const std::vector<FigureSpec>& figure_specs() {
  static const std::vector<FigureSpec> kSpecs = {
      {"messages per operation, during load", {"messages", "per_operation_during_load"}, 2},
      {"messages per operation, in all", {"messages", "per_operation"}, 2},
      {"messages per write, during load", {"messages", "per_write_during_load"}, 2},
      {"convergence, nodes' own p50 (ms)", {"convergence", "nodes_ms", "p50"}, 0, 1.0, true},
      {"convergence, nodes' own p95 (ms)", {"convergence", "nodes_ms", "p95"}, 0, 1.0, true},
      {"convergence, nodes' own max (ms)", {"convergence", "nodes_ms", "max"}, 0, 1.0, true},
      {"convergence, observed p50 (ms)", {"convergence", "observed_ms", "p50"}, 0, 1.0, true},
      {"convergence, observed p95 (ms)", {"convergence", "observed_ms", "p95"}, 0, 1.0, true},
      {"convergence, observed max (ms)", {"convergence", "observed_ms", "max"}, 0, 1.0, true},
      {"figures earlier than observed", {"convergence", "per_write", "earlier_than_observed"}, 0},
      {"figures later than observed by > 10 %", {"convergence", "per_write", "later_than_observed_by_10_percent"}, 0},
      {"identical after load (ms)", {"convergence", "identical_after_load_ms"}, 0},
      {"settled after load (ms)", {"convergence", "settled_after_load_ms"}, 0},
      {"stale reads, history", {"stale_reads", "history"}, 0},
      // Scaled to a percentage: a fraction such as 0.019 reads poorly at a fixed precision.
      {"stale reads, % of reads", {"stale_reads", "fraction_of_reads"}, 1, 100.0},
      {"lost writes", {"lost_writes"}, 0},
      {"divergent nodes", {"divergent_nodes"}, 0},
      {"operations answered", {"operations", "answered"}, 0},
      {"operations invoked", {"operations", "invoked"}, 0},
      {"client latency p50 (ms)", {"client_latency_ms", "p50"}, 2, 1.0, true},
      {"client latency p99 (ms)", {"client_latency_ms", "p99"}, 2, 1.0, true},
  };
  return kSpecs;
}

const Value* member(const Value* v, const char* name) {
  if (v == nullptr || !v->IsObject()) return nullptr;
  auto it = v->FindMember(name);
  return it == v->MemberEnd() ? nullptr : &it->value;
}

std::optional<double> figure(const Value* condition, const FigureSpec& spec) {
  const Value* parent = condition;
  for (std::size_t i = 0; i + 1 < spec.path.size(); ++i) parent = member(parent, spec.path[i]);
  const Value* v = member(parent, spec.path.back());
  if (v == nullptr || !v->IsNumber()) return std::nullopt;
  if (spec.summary) {
    const Value* count = member(parent, "count");
    if (count == nullptr || !count->IsNumber() || count->GetDouble() <= 0) return std::nullopt;
  }
  return v->GetDouble() * spec.scale;
}

std::string string_or_na(const Value* object, const char* name) {
  const Value* v = member(object, name);
  return v != nullptr && v->IsString() ? v->GetString() : "n/a";
}

// Names of an object's members, `a`'s order then `b`'s extra ones.
std::vector<std::string> member_names(const Value* a, const Value* b) {
  std::vector<std::string> names;
  for (const Value* v : {a, b}) {
    if (v == nullptr || !v->IsObject()) continue;
    for (const auto& m : v->GetObject()) {
      std::string name = m.name.GetString();
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  return names;
}

void diff_options(const Value& a, const Value& b, Comparison* c) {
  const Value* oa = member(&a, "options");
  const Value* ob = member(&b, "options");
  for (const std::string& key : member_names(oa, ob)) {
    const Value* va = member(oa, key.c_str());
    const Value* vb = member(ob, key.c_str());
    if (va != nullptr && vb != nullptr && *va == *vb) continue;
    // A key only one run has usually means the two were made by different versions of
    // gossip-bench, which is worth telling apart from a value that differs.
    std::string shown = key + (va == nullptr ? " (only in B)" : vb == nullptr ? " (only in A)" : "");
    bool node = key == "bin" || key == "node_args";
    (node ? c->node_options_differ : c->workload_options_differ).push_back(shown);
  }
}

std::optional<double> problem_count(const Value& doc) {
  const Value* p = member(&doc, "problems");
  if (p == nullptr || !p->IsArray()) return std::nullopt;
  return static_cast<double>(p->Size());
}

double round_to(double v, int decimals) {
  double unit = std::pow(10.0, decimals);
  return std::round(v * unit) / unit;
}

}  // namespace

Comparison compare_documents(const Value& a, const Value& b) {
  Comparison c;
  c.description_a = string_or_na(&a, "description");
  c.description_b = string_or_na(&b, "description");
  c.node_args_a = string_or_na(member(&a, "options"), "node_args");
  c.node_args_b = string_or_na(member(&b, "options"), "node_args");
  diff_options(a, b, &c);
  const Value* ca = member(&a, "conditions");
  const Value* cb = member(&b, "conditions");
  for (const std::string& name : member_names(ca, cb)) {
    ConditionComparison cc;
    cc.condition = name;
    const Value* in_a = member(ca, name.c_str());
    const Value* in_b = member(cb, name.c_str());
    cc.in_a = in_a != nullptr;
    cc.in_b = in_b != nullptr;
    for (const FigureSpec& spec : figure_specs())
      cc.rows.push_back({spec.label, figure(in_a, spec), figure(in_b, spec), spec.decimals});
    c.conditions.push_back(std::move(cc));
  }
  c.problems = {"problems (failed checks)", problem_count(a), problem_count(b), 0};
  return c;
}

// Both computed from the values as printed, so that the columns of a row agree with each other.
std::optional<double> difference(const CompareRow& row) {
  if (!row.a || !row.b) return std::nullopt;
  return round_to(round_to(*row.b, row.decimals) - round_to(*row.a, row.decimals), row.decimals);
}

std::optional<double> relative_change_pct(const CompareRow& row) {
  std::optional<double> d = difference(row);
  if (!d) return std::nullopt;
  double a = round_to(*row.a, row.decimals);
  if (a == 0) return std::nullopt;
  return *d / std::fabs(a) * 100.0;
}

namespace {

std::string format(const char* fmt, int decimals, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, decimals, v);
  return buf;
}

std::string value_text(const std::optional<double>& v, int decimals) {
  return v ? format("%.*f", decimals, *v) : "n/a";
}

std::string difference_text(const CompareRow& row) {
  std::optional<double> d = difference(row);
  if (!d) return "n/a";
  return *d == 0 ? format("%.*f", row.decimals, 0.0) : format("%+.*f", row.decimals, *d);
}

std::string change_text(const CompareRow& row) {
  std::optional<double> pct = relative_change_pct(row);
  if (!pct) return "";
  double shown = round_to(*pct, 1);
  return (shown == 0 ? format("%.*f", 1, 0.0) : format("%+.*f", 1, shown)) + "%";
}

constexpr int kFigureWidth = 38;
constexpr int kColumnWidth = 11;

void print_row(std::FILE* out, const std::string& figure, const std::string& a, const std::string& b,
               const std::string& diff, const std::string& change) {
  char line[256];
  std::snprintf(line, sizeof line, "  %-*s %*s %*s %*s %*s", kFigureWidth, figure.c_str(), kColumnWidth, a.c_str(),
                kColumnWidth, b.c_str(), kColumnWidth, diff.c_str(), kColumnWidth, change.c_str());
  std::string_view text = line;
  // A blank change column would otherwise leave trailing spaces in pasted output.
  std::fprintf(out, "%.*s\n", static_cast<int>(text.find_last_not_of(' ') + 1), line);
}

void print_figures(std::FILE* out, const CompareRow& row) {
  print_row(out, row.figure, value_text(row.a, row.decimals), value_text(row.b, row.decimals),
            difference_text(row), change_text(row));
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void print_header(const Comparison& c, const std::string& path_a, const std::string& path_b, std::FILE* out) {
  std::fprintf(out, "A: %s\n   %s\n   node args: %s\n", path_a.c_str(), c.description_a.c_str(),
               c.node_args_a.c_str());
  std::fprintf(out, "B: %s\n   %s\n   node args: %s\n", path_b.c_str(), c.description_b.c_str(),
               c.node_args_b.c_str());
  if (!c.workload_options_differ.empty())
    std::fprintf(out, "warning: the runs' options differ (%s): not a like-for-like comparison\n",
                 joined(c.workload_options_differ).c_str());
  if (!c.node_options_differ.empty())
    std::fprintf(out, "note: the node under test differs (%s)\n", joined(c.node_options_differ).c_str());
}

}  // namespace

void print_comparison(const Comparison& c, const std::string& path_a, const std::string& path_b,
                      std::FILE* out) {
  print_header(c, path_a, path_b, out);
  for (const ConditionComparison& cc : c.conditions) {
    const char* only = !cc.in_a ? " (only in B)" : !cc.in_b ? " (only in A)" : "";
    std::fprintf(out, "\ncondition %s%s\n", cc.condition.c_str(), only);
    print_row(out, "figure", "A", "B", "B-A", "change");
    for (const CompareRow& row : cc.rows) print_figures(out, row);
  }
  std::fprintf(out, "\nrun\n");
  print_figures(out, c.problems);
}

namespace {

// A run folder (or a store's `latest` symlink to one) holds results.json; any other existing
// path is taken to be the results.json itself.
bool read_results(const std::string& arg, rapidjson::Document* doc, std::string* path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(arg, ec)) {
    std::fprintf(stderr, "gossip-bench compare: %s: no such run folder or results.json\n", arg.c_str());
    return false;
  }
  *path = fs::is_directory(arg, ec) ? (fs::path(arg) / "results.json").string() : arg;
  std::ifstream in(*path);
  if (!in) {
    std::fprintf(stderr, "gossip-bench compare: %s: missing or unreadable (is %s a finished run folder?)\n",
                 path->c_str(), arg.c_str());
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  doc->Parse(text.str().c_str());
  if (doc->HasParseError()) {
    std::fprintf(stderr, "gossip-bench compare: %s: not valid JSON (%s at offset %zu)\n", path->c_str(),
                 rapidjson::GetParseError_En(doc->GetParseError()), doc->GetErrorOffset());
    return false;
  }
  if (member(doc, "conditions") == nullptr || !member(doc, "conditions")->IsObject()) {
    std::fprintf(stderr, "gossip-bench compare: %s: not a gossip-bench results.json (no \"conditions\" object)\n",
                 path->c_str());
    return false;
  }
  return true;
}

constexpr const char* kUsage =
    "usage: gossip-bench compare RUN_A RUN_B\n"
    "\n"
    "Prints the main figures of two gossip-bench runs side by side, condition by condition,\n"
    "with B-A and the relative change. RUN_A and RUN_B are run folders (store/<time>), a\n"
    "store's `latest` symlink, or results.json files. A warning line says when the runs'\n"
    "options differ beyond the node under test (bin, node_args).\n"
    "\n"
    "Exit status: 0, or 2 when a run is missing or its results.json cannot be parsed.\n";

}  // namespace

int compare_runs(const std::string& a, const std::string& b, std::FILE* out) {
  rapidjson::Document doc_a, doc_b;
  std::string path_a, path_b;
  if (!read_results(a, &doc_a, &path_a) || !read_results(b, &doc_b, &path_b)) return 2;
  print_comparison(compare_documents(doc_a, doc_b), path_a, path_b, out);
  return 0;
}

int compare_main(int argc, char** argv) {
  std::vector<std::string> runs;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    runs.emplace_back(arg);
  }
  if (runs.size() != 2) {
    std::fprintf(stderr, "gossip-bench compare: takes two runs, got %zu\n\n%s", runs.size(), kUsage);
    return 2;
  }
  return compare_runs(runs[0], runs[1], stdout);
}

}  // namespace gossip_bench
