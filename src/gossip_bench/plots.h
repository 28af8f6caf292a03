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

// Runs gnuplot on script (relative to run_dir) in run_dir, its messages to gnuplot.log there.
// False with *problem set when it could not, or when gnuplot is missing.
bool render_script(const std::string& run_dir, const std::string& script, std::string* problem);

// A gnuplot single-quoted string, and the preamble of a PNG of rows x cols panels under one
// title, which the plots share.
std::string gnuplot_quote(const std::string& s);
std::string gnuplot_multiplot(const std::string& png, int width, int panel_height, std::size_t rows, int cols,
                              const std::string& title, int font_size);

}  // namespace gossip_bench
