// gossip-bench's plots: client latency over time with faults shaded (as Maelstrom draws it),
// node-to-node messages per second with faults shaded, and the distribution of convergence
// times, one panel or curve per condition. The data (.dat) and gnuplot scripts (.gp) are always
// written into the run folder, so a plot can be redrawn or restyled by hand; the PNGs are drawn
// by gnuplot (Debian's gnuplot-nox) when it is installed.
#pragma once

#include <string>
#include <vector>

#include "driver.h"
#include "options.h"

namespace gossip_bench {

struct PlotResult {
  std::vector<std::string> scripts;  // relative to the run folder
  std::vector<std::string> pngs;     // those gnuplot drew
  std::string problem;               // why some were not drawn; empty when all were
};

// Writes data and scripts into run_dir; runs gnuplot on each script when render is true.
PlotResult write_plots(const Options& o, const std::vector<ConditionRun>& runs,
                       const std::string& run_dir, bool render);

}  // namespace gossip_bench
