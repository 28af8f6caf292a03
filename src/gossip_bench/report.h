// What a gossip-bench run leaves behind: the comparison table on the terminal (and in
// table.txt), results.json with every figure, and each condition's history.jsonl. The figures
// are defined in docs/BENCHMARK.md.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "driver.h"
#include "options.h"

namespace gossip_bench {

// One line describing the run's conditions, for the table's head and the plots' titles.
std::string describe_run(const Options& o);

void print_table(const Options& o, const std::vector<ConditionRun>& runs, std::FILE* out);

void write_results_json(const Options& o, const std::vector<ConditionRun>& runs,
                        const std::string& started_utc, const std::vector<std::string>& plots,
                        const std::string& path);

// Each write's convergence figure from its node beside the router's, one per line
// (node, ts_us, nodes_ms, observed_ms or "-"); nothing but the header for nodes without
// bench_figures.
void write_figures_tsv(const ConditionRun& run, const std::string& path);

// One JSON object per line per client operation, in invocation order.
void write_history_jsonl(const ConditionRun& run, const std::string& path);

// What makes the run fail (exit 1): lost writes, diverged replicas, counts that disagree,
// nodes that died, hung or stayed silent. Empty when the run is valid.
std::vector<std::string> run_problems(const std::vector<ConditionRun>& runs);

}  // namespace gossip_bench
