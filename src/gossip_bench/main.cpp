// gossip-bench: runs gossip-kv nodes as a local cluster with Maelstrom-like latency and
// partitions, drives a read/write workload, and reports convergence time, gossip messages per
// write and stale reads, normal versus partitioned (docs/BENCHMARK.md).
//
// `gossip-bench compare RUN_A RUN_B` prints two runs' figures side by side (compare.h).
//
// Exit status: 0 when every check held, 1 when one failed (lost writes, divergent replicas,
// counts that disagree, nodes that died or hung), 2 when the run could not be made.
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "compare.h"
#include "driver.h"
#include "options.h"
#include "plots.h"
#include "report.h"
#include "sweep.h"

namespace {

std::string utc_now(const char* format) {
  char stamp[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(stamp, sizeof stamp, format, &tm);
  return stamp;
}

// <store>/<UTC time>, with a suffix when a run already took that second.
std::string make_run_dir(const std::string& store, std::string* name) {
  namespace fs = std::filesystem;
  fs::create_directories(store);
  std::string base = utc_now("%Y%m%dT%H%M%SZ");
  *name = base;
  for (int k = 2; fs::exists(store + "/" + *name); ++k) *name = base + "-" + std::to_string(k);
  fs::create_directories(store + "/" + *name);
  return store + "/" + *name;
}

// store/latest -> the newest run folder.
void link_latest(const std::string& store, const std::string& name) {
  std::error_code ec;
  std::filesystem::remove(store + "/latest", ec);
  std::filesystem::create_directory_symlink(name, store + "/latest", ec);
}

// Runs every condition of o into dir, and writes what a run leaves there (README of the run
// folder: docs/BENCHMARK.md). Throws std::runtime_error when a condition cannot be run.
std::vector<gossip_bench::ConditionRun> run_and_write(const gossip_bench::Options& o, const std::string& dir,
                                                      const std::string& started, bool print) {
  using namespace gossip_bench;
  std::vector<ConditionRun> runs;
  for (const std::string& condition : o.conditions) {
    std::filesystem::create_directories(dir + "/" + condition);
    try {
      runs.push_back(run_condition(o, condition, dir + "/" + condition));
    } catch (const std::exception& e) {
      throw std::runtime_error(condition + ": " + e.what());
    }
    write_history_jsonl(runs.back(), dir + "/" + condition + "/history.jsonl");
    write_figures_tsv(runs.back(), dir + "/" + condition + "/figures.tsv");
  }
  PlotResult plots = write_plots(o, runs, dir, o.plots);
  write_results_json(o, runs, started, plots.pngs, dir + "/results.json");
  if (print) print_table(o, runs, stdout);
  if (std::FILE* table = std::fopen((dir + "/table.txt").c_str(), "w")) {
    print_table(o, runs, table);
    std::fclose(table);
  }
  if (!print) return runs;
  std::printf("\nrun folder: %s (results.json, table.txt, per condition: history.jsonl, figures.tsv and the nodes' stderr logs)\n",
              dir.c_str());
  if (!plots.pngs.empty()) {
    std::printf("plots:");
    for (const std::string& p : plots.pngs) std::printf(" %s/%s", dir.c_str(), p.c_str());
    std::printf("\n");
  }
  if (!plots.problem.empty()) std::printf("plots: %s\n", plots.problem.c_str());
  return runs;
}

int report_problems(const std::vector<std::string>& problems) {
  if (problems.empty()) {
    std::printf("checks: all held (no lost write, identical replicas, message counts agree, no node failed)\n");
    return 0;
  }
  std::printf("checks FAILED:\n");
  for (const std::string& p : problems) std::printf("  %s\n", p.c_str());
  return 1;
}

// One run per value (and profile), each in dir/<point>/, then the sweep's summary and plots.
int run_sweep(const gossip_bench::Options& o, const std::string& dir, const std::string& started) {
  using namespace gossip_bench;
  std::vector<std::string> profiles = o.sweep_profiles.empty() ? std::vector<std::string>{""} : o.sweep_profiles;
  std::vector<SweepPoint> points;
  std::vector<std::string> problems;
  for (const std::string& profile : profiles) {
    for (const std::string& value : o.sweep_values) {
      Options point = sweep_point_options(o, profile, value);
      std::string folder = sweep_point_folder(o, profile, value);
      std::fprintf(stderr, "gossip-bench sweep: %s (%s)\n", folder.c_str(), describe_run(point).c_str());
      std::filesystem::create_directories(dir + "/" + folder);
      std::vector<ConditionRun> runs = run_and_write(point, dir + "/" + folder, started, false);
      for (SweepPoint& p : summarize_sweep_point(point, profile, value, folder, runs)) points.push_back(p);
      for (const std::string& p : run_problems(runs)) problems.push_back(folder + ": " + p);
    }
  }
  PlotResult plots = write_sweep(o, points, dir, o.plots, stdout);
  std::printf("\nsweep folder: %s (sweep.json, sweep.txt, one run folder per point)\n", dir.c_str());
  if (!plots.pngs.empty()) {
    std::printf("plots:");
    for (const std::string& p : plots.pngs) std::printf(" %s/%s", dir.c_str(), p.c_str());
    std::printf("\n");
  }
  if (!plots.problem.empty()) std::printf("plots: %s\n", plots.problem.c_str());
  return report_problems(problems);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gossip_bench;
  if (argc > 1 && std::string_view(argv[1]) == "compare") return compare_main(argc - 1, argv + 1);
  Options o;
  if (int rc = parse_options(argc, argv, &o); rc >= 0) return rc;
  if (::access(o.bin.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "gossip-bench: cannot run the node binary %s (build it with `cmake --build build "
                 "--target gossip-kv`, or pass --bin)\n", o.bin.c_str());
    return 2;
  }
  std::string name, dir;
  try {
    dir = make_run_dir(o.store_dir, &name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gossip-bench: cannot make a run folder in %s: %s\n", o.store_dir.c_str(), e.what());
    return 2;
  }
  std::string started = utc_now("%Y-%m-%dT%H:%M:%SZ");
  std::fprintf(stderr, "gossip-bench: %s\ngossip-bench: run folder %s\n", describe_run(o).c_str(), dir.c_str());
  try {
    if (!o.sweep_name.empty()) {
      int rc = run_sweep(o, dir, started);
      link_latest(o.store_dir, name);
      return rc;
    }
    std::vector<ConditionRun> runs = run_and_write(o, dir, started, true);
    link_latest(o.store_dir, name);
    return report_problems(run_problems(runs));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gossip-bench: %s\n", e.what());
    return 2;
  }
}
