// `gossip-bench compare RUN_A RUN_B`: the main figures of two runs side by side, so that a
// change to the node can be judged in one command (docs/BENCHMARK.md, "Comparing two runs").
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

namespace gossip_bench {

// One figure of one condition in both runs; nullopt is a figure the run does not hold
// (a missing or null member, or a convergence summary over no writes).
struct CompareRow {
  std::string figure;  // with its unit, as printed
  std::optional<double> a, b;
  int decimals = 0;  // printed precision; also rounds the difference
};

struct ConditionComparison {
  std::string condition;
  bool in_a = true, in_b = true;
  std::vector<CompareRow> rows;
};

struct Comparison {
  std::string description_a, description_b;  // "n/a" when the run has none
  std::string node_args_a, node_args_b;
  // Option keys whose values differ, A's order then B's extra ones; a key one run lacks is
  // listed as "key (only in A)" or "key (only in B)".
  // The node under test (bin, node_args) is kept apart: a difference there is what a comparison
  // is usually for, while any other difference means the workload was not the same.
  std::vector<std::string> workload_options_differ;
  std::vector<std::string> node_options_differ;
  // Every condition of either run, A's order then B's extra ones.
  std::vector<ConditionComparison> conditions;
  CompareRow problems;  // the count of each run's `problems`
};

// Builds the comparison of two parsed results.json documents (src/gossip_bench/results.cpp
// writes them). Pure: tolerates any shape, reporting what it cannot find as n/a.
Comparison compare_documents(const rapidjson::Value& a, const rapidjson::Value& b);

// b - a, or nullopt when either is n/a.
std::optional<double> difference(const CompareRow& row);
// (b - a) / a in percent, or nullopt when either is n/a or a is 0 (no meaningful ratio).
std::optional<double> relative_change_pct(const CompareRow& row);

// Prints the comparison as a table with columns figure, A, B, B-A and change %.
void print_comparison(const Comparison& c, const std::string& path_a, const std::string& path_b,
                      std::FILE* out);

// Reads both runs and prints their comparison to out. Each path is a run folder, a store's
// `latest` symlink, or a results.json. Returns 0, or 2 (message on stderr naming the path) when
// a run is missing or its results.json cannot be parsed.
int compare_runs(const std::string& a, const std::string& b, std::FILE* out);

// The subcommand: argv[0] is "compare". Returns the exit status (0 after --help, 2 on a usage
// error).
int compare_main(int argc, char** argv);

}  // namespace gossip_bench
