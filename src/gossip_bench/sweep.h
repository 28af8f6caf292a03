// gossip-bench's sweeps (`--sweep NAME=v1,v2,...`): one full run per value (and per profile of
// --sweep-profiles), each in a folder of its own under the sweep's run folder, then a summary
// of every point: sweep.json, sweep.txt, and a trade-off plot of messages per operation
// against convergence (p50 and max), with the published efficiency-challenge results drawn as
// reference points. A sweep over node-count also draws scaling.png: convergence and messages
// per write against cluster size, next to log2(n) + ln(n) gossip rounds.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "driver.h"
#include "options.h"
#include "plots.h"

namespace gossip_bench {

// One condition of one sweep point, as the trade-off plot and the sweep table need it.
struct SweepPoint {
  std::string profile;  // empty: the node args as given
  std::string value;    // of the swept name
  std::string condition;
  std::string folder;   // the point's run folder, relative to the sweep's
  int node_count = 0;
  double msgs_per_op = 0, msgs_per_write = 0;  // during the load
  bool observed = false;  // the convergence figures are the router's (else the nodes' own)
  std::int64_t p50_ms = 0, max_ms = 0;
  std::int64_t identical_after_ms = -1;  // kUnknown when not within the quiet period
  std::uint64_t lost_writes = 0;
  std::size_t problems = 0;  // checks that failed in this condition
};

// The options of one point: base with the swept value set (a runner flag, or `--NAME value`
// for every node, replacing the same flag in --node-args) and, when profile is not empty,
// `--profile profile` in place of any profile in --node-args.
Options sweep_point_options(const Options& base, const std::string& profile, const std::string& value);

// The folder name of a point: "fast-gossip-interval-ms=25", or "gossip-interval-ms=25".
std::string sweep_point_folder(const Options& base, const std::string& profile, const std::string& value);

// One SweepPoint per condition run.
std::vector<SweepPoint> summarize_sweep_point(const Options& point, const std::string& profile,
                                              const std::string& value, const std::string& folder,
                                              const std::vector<ConditionRun>& runs);

// Writes sweep.json, sweep.txt (also printed to out), the trade-off plot and, for node-count,
// the scaling plot into dir; runs gnuplot when render is true.
PlotResult write_sweep(const Options& base, const std::vector<SweepPoint>& points, const std::string& dir,
                       bool render, std::FILE* out);

}  // namespace gossip_bench
