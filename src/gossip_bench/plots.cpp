#include "plots.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>

#include "report.h"

namespace gossip_bench {
namespace {

// Latency points by outcome, drawn in this order.
enum Category { kWriteOk, kReadOk, kReadMissing, kError, kTimeout, kCategories };
constexpr std::array<const char*, kCategories> kCategoryTitle = {"write ok", "read ok", "read: key not found",
                                                                 "error", "timeout"};
constexpr std::array<const char*, kCategories> kCategoryStyle = {
    "pt 7 ps 0.45 lc rgb '#1f77b4'", "pt 7 ps 0.45 lc rgb '#2ca02c'", "pt 6 ps 0.5 lc rgb '#7f7f7f'",
    "pt 2 ps 0.8 lc rgb '#d62728'", "pt 3 ps 0.8 lc rgb '#000000'"};
using Present = std::array<bool, kCategories>;

Category category(const Op& op) {
  if (op.late) return kTimeout;
  switch (op.outcome) {
    case Op::Outcome::kTimeout: return kTimeout;
    case Op::Outcome::kError: return kError;
    case Op::Outcome::kNotFound: return kReadMissing;
    case Op::Outcome::kOk: break;
  }
  return op.kind == Op::Kind::kWrite ? kWriteOk : kReadOk;
}

// A gnuplot single-quoted string.
std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

std::string terminal(const std::string& png, int width, int height) {
  std::string size = std::to_string(width) + "," + std::to_string(height);
  return "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size " + size +
         " font ',10' } else { set terminal png size " + size + " }\nset output " + quote(png) + "\n";
}

// A PNG of rows x cols panels, each panel_height pixels high, under one title.
std::string multiplot(const std::string& png, int width, int panel_height, std::size_t rows, int cols,
                      const std::string& title, int font_size) {
  return terminal(png, width, panel_height * static_cast<int>(rows) + 40) + "set multiplot layout " +
         std::to_string(rows) + "," + std::to_string(cols) + " title " + quote(title) + " font '," +
         std::to_string(font_size) + "'\n";
}

Present write_latency_data(const ConditionRun& r, double timeout_s, const std::string& path) {
  Present present{};
  std::ofstream out(path);
  out << "# invoke_s latency_ms category (0 write ok, 1 read ok, 2 read not found, 3 error, 4 timeout)\n";
  for (const Op& op : r.history) {
    Category c = category(op);
    present[c] = true;
    double latency_ms = c == kTimeout ? timeout_s * 1e3 : static_cast<double>(op.complete_us - op.invoke_us) / 1e3;
    out << static_cast<double>(op.invoke_us) / 1e6 << ' ' << std::max(latency_ms, 0.001) << ' ' << c << '\n';
  }
  return present;
}

void write_message_data(const ConditionRun& r, const std::string& path) {
  std::ofstream out(path);
  out << "# second sent dropped (node-to-node messages in [second, second + 1))\n";
  for (std::size_t s = 0; s < r.seconds.size(); ++s) out << s << ' ' << r.seconds[s].sent << ' ' << r.seconds[s].dropped << '\n';
  // `with steps` holds each value until the next point: one more point closes the last second.
  if (!r.seconds.empty()) out << r.seconds.size() << ' ' << r.seconds.back().sent << ' ' << r.seconds.back().dropped << '\n';
}

// Each write's convergence (router) at the time it was taken, and stale reads per second.
bool write_timeline_data(const ConditionRun& r, const std::string& dir) {
  std::ofstream points(dir + "timeline_convergence.dat");
  points << "# taken_s convergence_ms (observed by the router)\n";
  for (std::size_t i = 0; i < r.observed_ms.size() && i < r.observed_taken_us.size(); ++i) {
    points << static_cast<double>(r.observed_taken_us[i]) / 1e6 << ' ' << r.observed_ms[i] << '\n';
  }
  std::vector<std::uint64_t> per_second(static_cast<std::size_t>(std::max(1.0, r.total_s)) + 1, 0);
  for (std::int64_t t : r.checks.stale_read_invoke_us) {
    auto s = static_cast<std::size_t>(std::max<std::int64_t>(t, 0) / 1'000'000);
    if (s < per_second.size()) ++per_second[s];
  }
  std::ofstream stale(dir + "timeline_stale.dat");
  stale << "# second stale_reads (history, by invocation)\n";
  for (std::size_t s = 0; s < per_second.size(); ++s) stale << s << ' ' << per_second[s] << '\n';
  stale << per_second.size() << ' ' << per_second.back() << '\n';
  return r.observed && !r.observed_ms.empty();
}

// A sample's cumulative distribution; 0 ms is drawn at 1 ms on the log axis. False when empty.
bool write_cdf(std::vector<std::int64_t> v, const std::string& path, const char* what) {
  std::sort(v.begin(), v.end());
  std::ofstream out(path);
  out << "# ms fraction (" << what << ")\n";
  for (std::size_t i = 0; i < v.size(); ++i) {
    out << std::max<std::int64_t>(v[i], 1) << ' ' << static_cast<double>(i + 1) / static_cast<double>(v.size()) << '\n';
  }
  return !v.empty();
}

struct CdfPresent {
  bool nodes = false, observed = false, history = false;
};

// The nodes' merged histogram as a cumulative distribution, then the router's observations
// and the history's bounds.
CdfPresent write_convergence_data(const ConditionRun& r, const std::string& dir) {
  const NodeConvergence& c = r.checks.nodes_convergence;
  std::uint64_t total = 0, seen = 0;
  for (auto [lower, n] : c.histogram) total += n;
  std::ofstream nodes(dir + "convergence_nodes.dat");
  nodes << "# ms fraction (the nodes' own convergence_ms, merged)\n";
  for (auto [lower, n] : c.histogram) {
    seen += n;
    nodes << std::max<std::int64_t>(lower, 1) << ' ' << static_cast<double>(seen) / static_cast<double>(total) << '\n';
  }
  CdfPresent p;
  p.nodes = total > 0;
  p.observed = r.observed && write_cdf(r.observed_ms, dir + "convergence_observed.dat", "observed by the router");
  p.history = write_cdf(r.checks.stable_per_write_ms, dir + "convergence_history.dat",
                        "the history's lower bound per acknowledged write");
  return p;
}

// Fault labels short enough for a 1.5 s band.
std::string short_name(const std::string& kind) {
  if (kind == "majority") return "maj";
  if (kind == "majorities-ring") return "ring";
  if (kind == "duplicate") return "dup";
  return kind;
}

// Shades each fault and marks the end of the load, in a panel whose x axis is the run's time
// (its own: conditions settle at different times).
std::string shading(const ConditionRun& r) {
  std::string s = "unset object\nunset label\nunset arrow\n";
  s += "set xrange [0:" + std::to_string(std::max(1.0, r.total_s)) + "]\n";
  int id = 1;
  for (const FaultSpan& f : r.faults) {
    std::string from = std::to_string(f.start_s), to = std::to_string(f.end_s), n = std::to_string(id++);
    s += "set object " + n + " rect from " + from + ", graph 0 to " + to +
         ", graph 1 behind fc rgb '#f4cccc' fs solid 0.6 noborder\n";
    s += "set label " + n + " " + quote(short_name(f.kind)) + " at " + from +
         ", graph 0.96 offset 0.2,0 font ',8' tc rgb '#a94442'\n";
  }
  std::string end = std::to_string(r.load_end_s);
  s += "set arrow 1 from " + end + ", graph 0 to " + end + ", graph 1 nohead dt 2 lc rgb '#555555'\n";
  s += "set label 999 'load ends' at " + end + ", graph 0.90 offset 0.3,0 font ',8' tc rgb '#555555'\n";
  return s;
}

std::string latency_script(const Options& o, const std::vector<ConditionRun>& runs, const std::vector<Present>& present) {
  std::string s = multiplot("latency.png", 1100, 330, runs.size(), 1, "client latency: " + describe_run(o), 9);
  s += "set logscale y\nset xlabel 'time (s)'\nset ylabel 'latency (ms)'\nset key outside right top\n";
  s += "set grid ytics lc rgb '#dddddd'\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const ConditionRun& r = runs[i];
    s += shading(r) + "set title " + quote(r.condition) + "\n";
    std::string plot;
    for (int c = 0; c < kCategories; ++c) {
      if (!present[i][static_cast<std::size_t>(c)]) continue;
      plot += std::string(plot.empty() ? "plot " : ", \\\n     ") + quote(r.condition + "/latency.dat") +
              " using 1:($3==" + std::to_string(c) + "?$2:1/0) with points " + kCategoryStyle[static_cast<std::size_t>(c)] +
              " title " + quote(kCategoryTitle[static_cast<std::size_t>(c)]);
    }
    s += plot.empty() ? "plot 1/0 notitle\n" : plot + "\n";
  }
  return s + "unset multiplot\n";
}

std::string messages_script(const Options& o, const std::vector<ConditionRun>& runs) {
  std::string s =
      multiplot("messages.png", 1100, 300, runs.size(), 1, "node-to-node messages per second: " + describe_run(o), 9);
  s += "set xlabel 'time (s)'\nset ylabel 'messages / s'\nset key outside right top\nset yrange [0:*]\n";
  s += "set grid ytics lc rgb '#dddddd'\n";
  for (const ConditionRun& r : runs) {
    std::string data = quote(r.condition + "/messages.dat");
    s += shading(r) + "set title " + quote(r.condition) + "\n";
    s += "plot " + data + " using 1:2 with steps lw 2 lc rgb '#1f77b4' title 'sent', \\\n     " + data +
         " using 1:3 with steps lw 2 lc rgb '#d62728' title 'dropped by faults'\n";
  }
  return s + "unset multiplot\n";
}

std::string timeline_script(const Options& o, const std::vector<ConditionRun>& runs, const std::vector<bool>& points) {
  std::string s = multiplot("timeline.png", 1100, 300, runs.size(), 1,
                            "each write's convergence when it was taken, and stale reads: " + describe_run(o), 9);
  s += "set xlabel 'time (s)'\nset ylabel 'convergence (ms)'\nset y2label 'stale reads / s'\n";
  s += "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\nset key outside right top\n";
  s += "set grid ytics lc rgb '#dddddd'\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const ConditionRun& r = runs[i];
    std::string stale = quote(r.condition + "/timeline_stale.dat");
    s += shading(r) + "set title " + quote(r.condition) + "\n";
    std::string plot = "plot ";
    if (points[i]) {
      plot += quote(r.condition + "/timeline_convergence.dat") +
              " using 1:2 axes x1y1 with points pt 7 ps 0.4 lc rgb '#1f77b4' title 'write: convergence, router', \\\n     ";
    }
    s += plot + stale + " using 1:2 axes x1y2 with steps lw 2 lc rgb '#d62728' title 'stale reads / s'\n";
  }
  return s + "unset multiplot\n";
}

std::string convergence_script(const Options& o, const std::vector<ConditionRun>& runs,
                               const std::vector<CdfPresent>& present) {
  static const std::array<const char*, 4> kColors = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  std::string s = terminal("convergence.png", 1000, 520);
  s += "set title " + quote("convergence time, cumulative: " + describe_run(o)) + " font ',9'\n";
  s += "set logscale x\nset xlabel 'ms from the write until every replica held it (0 drawn at 1 ms)'\n";
  s += "set ylabel 'fraction of writes'\nset yrange [0:1.02]\nset key right bottom\nset grid lc rgb '#dddddd'\n";
  std::string plot;
  auto curve = [&](const std::string& name, const char* file, const char* style, const std::string& color,
                   const char* title) {
    plot += std::string(plot.empty() ? "plot " : ", \\\n     ") + quote(name + "/" + file) + " using 1:2 with steps " +
            style + " lc rgb '" + color + "' title " + quote(name + ": " + title);
  };
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::string color = kColors[i % kColors.size()], name = runs[i].condition;
    if (present[i].observed) curve(name, "convergence_observed.dat", "lw 3", color, "observed by the router");
    if (present[i].nodes) curve(name, "convergence_nodes.dat", "lw 1", color, "nodes' own");
    if (present[i].history) curve(name, "convergence_history.dat", "lw 1 dt 2", color, "history lower bound");
  }
  return s + (plot.empty() ? "set xrange [1:10]\nplot 1/0 notitle\n" : plot + "\n");
}

// Runs gnuplot on a script in run_dir; its messages go to gnuplot.log there.
bool render(const std::string& run_dir, const std::string& script, std::string* problem) {
  pid_t pid = ::fork();
  if (pid < 0) {
    *problem = "cannot fork gnuplot";
    return false;
  }
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);  // the runner ignores it; gnuplot should not
    if (::chdir(run_dir.c_str()) != 0) ::_exit(126);
    int log = ::open("gnuplot.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    ::execlp("gnuplot", "gnuplot", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    *problem = "gnuplot is not installed (Debian: apt-get install gnuplot-nox); the scripts are in the run folder";
    return false;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *problem = "gnuplot failed on " + script + " (see gnuplot.log in the run folder)";
    return false;
  }
  return true;
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

bool render_script(const std::string& run_dir, const std::string& script, std::string* problem) {
  return render(run_dir, script, problem);
}
std::string gnuplot_quote(const std::string& s) { return quote(s); }
std::string gnuplot_multiplot(const std::string& png, int width, int panel_height, std::size_t rows, int cols,
                              const std::string& title, int font_size) {
  return multiplot(png, width, panel_height, rows, cols, title, font_size);
}

PlotResult write_plots(const Options& o, const std::vector<ConditionRun>& runs, const std::string& run_dir,
                       bool render_pngs) {
  PlotResult result;
  std::vector<Present> latency_present;
  std::vector<CdfPresent> convergence_present;
  std::vector<bool> timeline_points;
  for (const ConditionRun& r : runs) {
    std::string dir = run_dir + "/" + r.condition + "/";
    latency_present.push_back(write_latency_data(r, o.request_timeout_s, dir + "latency.dat"));
    write_message_data(r, dir + "messages.dat");
    convergence_present.push_back(write_convergence_data(r, dir));
    timeline_points.push_back(write_timeline_data(r, dir));
  }
  write_file(run_dir + "/latency.gp", latency_script(o, runs, latency_present));
  write_file(run_dir + "/messages.gp", messages_script(o, runs));
  write_file(run_dir + "/convergence.gp", convergence_script(o, runs, convergence_present));
  write_file(run_dir + "/timeline.gp", timeline_script(o, runs, timeline_points));
  result.scripts = {"latency.gp", "messages.gp", "convergence.gp", "timeline.gp"};
  if (!render_pngs) return result;
  for (const std::string& script : result.scripts) {
    std::string png = script.substr(0, script.size() - 3) + ".png";
    std::string problem;
    struct stat st {};
    if (render(run_dir, script, &problem) && ::stat((run_dir + "/" + png).c_str(), &st) == 0 && st.st_size > 0) {
      result.pngs.push_back(png);
    } else if (result.problem.empty()) {
      result.problem = problem.empty() ? "gnuplot drew no " + png : problem;
    }
    if (problem.find("not installed") != std::string::npos) break;
  }
  return result;
}

}  // namespace gossip_bench
