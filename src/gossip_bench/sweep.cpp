#include "sweep.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "report.h"

namespace gossip_bench {
namespace {

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& w : v) s += (s.empty() ? "" : " ") + w;
  return s;
}

// Removes `--name value` and `--name=value` from a node's arguments.
void drop_flag(std::vector<std::string>& args, const std::string& name) {
  std::string flag = "--" + name;
  for (std::size_t i = 0; i < args.size();) {
    if (args[i] == flag) {
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
                 args.begin() + static_cast<std::ptrdiff_t>(std::min(args.size(), i + 2)));
    } else if (args[i].rfind(flag + "=", 0) == 0) {
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}


std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}


// Profiles and conditions in the order the points first name them.
std::vector<std::string> distinct(const std::vector<SweepPoint>& points, std::string SweepPoint::*field) {
  std::vector<std::string> out;
  for (const SweepPoint& p : points) {
    if (std::find(out.begin(), out.end(), p.*field) == out.end()) out.push_back(p.*field);
  }
  return out;
}

std::string profile_name(const std::string& p) { return p.empty() ? "as given" : p; }

// The Fly.io efficiency challenge's published results (25 nodes, 100 ms latency, normal
// network), drawn as reference points: msgs/op, median and max convergence in ms.
struct Reference {
  const char* label;
  double msgs_per_op, p50_ms, max_ms;
};
constexpr Reference kPublished[] = {
    {"published 3d", 23.38, 181, 207}, {"published 3d", 24.03, 177, 204},
    {"published 3e", 1.92, 764, 1087}, {"published 3e", 5.58, 678, 899}};

void write_table(const Options& base, const std::vector<SweepPoint>& points, std::FILE* out) {
  std::fprintf(out, "gossip-bench sweep over %s: %s\n\n", base.sweep_name.c_str(), describe_run(base).c_str());
  std::fprintf(out, "%-10s %-12s %-12s %9s %10s %21s %10s %5s %7s\n", "profile", base.sweep_name.c_str(), "condition",
               "msgs/op", "msgs/write", "convergence p50/max", "identical", "lost", "checks");
  for (const SweepPoint& p : points) {
    std::string conv = std::to_string(p.p50_ms) + " / " + std::to_string(p.max_ms) + (p.observed ? " ms" : " ms*");
    std::string identical = p.identical_after_ms < 0 ? "no" : fmt("%.1f s", static_cast<double>(p.identical_after_ms) / 1000);
    std::fprintf(out, "%-10s %-12s %-12s %9.2f %10.2f %21s %10s %5llu %7s\n", profile_name(p.profile).c_str(),
                 p.value.c_str(), p.condition.c_str(), p.msgs_per_op, p.msgs_per_write, conv.c_str(), identical.c_str(),
                 static_cast<unsigned long long>(p.lost_writes), p.problems == 0 ? "held" : "FAILED");
  }
  std::fprintf(out, "\nconvergence as the router observed it (* the nodes' own, where the router could not)\n");
}

void write_json(const Options& base, const std::vector<SweepPoint>& points, const std::string& path) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("description");
  w.String(describe_run(base).c_str());
  w.Key("sweep");
  w.String(base.sweep_name.c_str());
  w.Key("points");
  w.StartArray();
  auto str = [&w](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str());
  };
  auto num = [&w](const char* k, double v) {
    w.Key(k);
    w.Double(v);
  };
  auto count = [&w](const char* k, std::int64_t v) {
    w.Key(k);
    w.Int64(v);
  };
  for (const SweepPoint& p : points) {
    w.StartObject();
    str("profile", p.profile);
    str("value", p.value);
    str("condition", p.condition);
    str("folder", p.folder);
    count("node_count", p.node_count);
    num("msgs_per_op", p.msgs_per_op);
    num("msgs_per_write", p.msgs_per_write);
    str("convergence_from", p.observed ? "router" : "nodes");
    count("p50_ms", p.p50_ms);
    count("max_ms", p.max_ms);
    w.Key("identical_after_load_ms");
    if (p.identical_after_ms < 0) w.Null(); else w.Int64(p.identical_after_ms);
    count("lost_writes", static_cast<std::int64_t>(p.lost_writes));
    count("problems", static_cast<std::int64_t>(p.problems));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::ofstream(path) << buf.GetString() << "\n";
}

// Per condition and profile: msgs/op p50 max value node_count, in sweep order.
std::string data_file(const std::string& condition, std::size_t profile) {
  return "sweep_" + condition + "_" + std::to_string(profile) + ".dat";
}

void write_data(const std::vector<SweepPoint>& points, const std::string& dir) {
  auto profiles = distinct(points, &SweepPoint::profile);
  for (const std::string& condition : distinct(points, &SweepPoint::condition)) {
    for (std::size_t i = 0; i < profiles.size(); ++i) {
      std::ofstream out(dir + "/" + data_file(condition, i));
      out << "# msgs_per_op p50_ms max_ms value node_count msgs_per_write\n";
      for (const SweepPoint& p : points) {
        if (p.condition != condition || p.profile != profiles[i]) continue;
        out << p.msgs_per_op << ' ' << p.p50_ms << ' ' << p.max_ms << ' ' << p.value << ' ' << p.node_count << ' '
            << p.msgs_per_write << '\n';
      }
    }
  }
  std::ofstream ref(dir + "/sweep_published.dat");
  ref << "# msgs_per_op p50_ms max_ms label (Fly.io challenge 3d/3e results, 25 nodes, 100 ms)\n";
  for (const Reference& r : kPublished) ref << r.msgs_per_op << ' ' << r.p50_ms << ' ' << r.max_ms << " \"" << r.label << "\"\n";
}

const char* color(std::size_t i) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
  return kColors[i % 5];
}

std::string tradeoff_script(const Options& base, const std::vector<SweepPoint>& points) {
  auto profiles = distinct(points, &SweepPoint::profile);
  auto conditions = distinct(points, &SweepPoint::condition);
  std::string s = gnuplot_multiplot("tradeoff.png", 1000, 460, conditions.size(), 1,
                                    "messages per operation against convergence, one point per " +
                                        base.sweep_name + " value (labelled) and profile", 10);
  s += "set label 100 " + gnuplot_quote(describe_run(base)) + " at screen 0.01, screen 0.01 font ',7'\n";
  s += "set bmargin 4\nset logscale xy\nset xlabel 'messages per operation (load)'\nset ylabel 'convergence (ms)'\n";
  s += "set key outside right top\nset grid lc rgb '#dddddd'\n";
  for (const std::string& condition : conditions) {
    s += "set title " + gnuplot_quote(condition) + "\nplot ";
    for (std::size_t i = 0; i < profiles.size(); ++i) {
      std::string data = gnuplot_quote(data_file(condition, i)), name = profile_name(profiles[i]);
      s += data + " using 1:2 with linespoints pt 7 lc rgb '" + color(i) + "' title " + gnuplot_quote(name + ": p50") +
           ", \\\n     " + data + " using 1:3 with linespoints pt 9 dt 2 lc rgb '" + color(i) + "' title " +
           gnuplot_quote(name + ": max") + ", \\\n     " + data +
           " using 1:2:4 with labels offset 0.8,-0.8 font ',8' tc rgb '" + color(i) + "' notitle, \\\n     ";
    }
    s += "'sweep_published.dat' using 1:2 with points pt 6 ps 1.6 lc rgb '#000000' title 'published challenge results: p50',"
         " \\\n     'sweep_published.dat' using 1:3 with points pt 8 ps 1.6 lc rgb '#000000' title 'published: max',"
         " \\\n     'sweep_published.dat' using 1:2:4 with labels offset 0,1.2 font ',8' notitle\n";
  }
  return s + "unset multiplot\n";
}

std::string scaling_script(const Options& base, const std::vector<SweepPoint>& points) {
  auto profiles = distinct(points, &SweepPoint::profile);
  auto conditions = distinct(points, &SweepPoint::condition);
  std::string s = gnuplot_multiplot("scaling.png", 1200, 380, conditions.size(), 2, "scaling with cluster size", 10);
  s += "set label 100 " + gnuplot_quote(describe_run(base)) + " at screen 0.01, screen 0.01 font ',7'\n";
  s += "set bmargin 4\nset xlabel 'nodes'\nset key outside right top font ',8'\nset grid lc rgb '#dddddd'\nset logscale x 2\n";
  for (const std::string& condition : conditions) {
    s += "set title " + gnuplot_quote(condition + ": convergence") + "\nset ylabel 'ms'\nset y2label 'rounds'\n";
    s += "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\nplot ";
    for (std::size_t i = 0; i < profiles.size(); ++i) {
      std::string data = gnuplot_quote(data_file(condition, i)), name = profile_name(profiles[i]);
      s += data + " using 5:2 with linespoints pt 7 lc rgb '" + color(i) + "' title " + gnuplot_quote(name + ": p50") +
           ", \\\n     " + data + " using 5:3 with linespoints pt 9 dt 2 lc rgb '" + color(i) + "' title " +
           gnuplot_quote(name + ": max") + ", \\\n     ";
    }
    s += "[2:*] log(x)/log(2) + log(x) axes x1y2 with lines lw 2 dt 3 lc rgb '#000000' title 'log2(n) + ln(n) rounds'\n";
    s += "unset y2tics\nunset y2label\nset ytics mirror\n";
    s += "set title " + gnuplot_quote(condition + ": messages per write") + "\nset ylabel 'messages per write (load)'\nplot ";
    for (std::size_t i = 0; i < profiles.size(); ++i) {
      s += std::string(i ? ", \\\n     " : "") + gnuplot_quote(data_file(condition, i)) +
           " using 5:6 with linespoints pt 7 lc rgb '" + color(i) + "' title " + gnuplot_quote(profile_name(profiles[i]));
    }
    s += "\n";
  }
  return s + "unset multiplot\n";
}

}  // namespace

Options sweep_point_options(const Options& base, const std::string& profile, const std::string& value) {
  Options p = base;
  p.sweep_name.clear();
  p.sweep_values.clear();
  p.sweep_profiles.clear();
  std::vector<std::string> args = words(base.node_args);
  if (!profile.empty()) {
    drop_flag(args, "profile");
    args.insert(args.begin(), {"--profile", profile});
  }
  if (base.sweep_name == "node-count") {
    p.node_count = std::stoi(value);
  } else if (base.sweep_name == "rate") {
    p.rate = std::stod(value);
  } else if (base.sweep_name == "latency") {
    p.latency_ms = std::stod(value);
  } else {
    drop_flag(args, base.sweep_name);
    args.push_back("--" + base.sweep_name);
    args.push_back(value);
  }
  p.node_args = join(args);
  return p;
}

std::string sweep_point_folder(const Options& base, const std::string& profile, const std::string& value) {
  return (profile.empty() ? "" : profile + "-") + base.sweep_name + "=" + value;
}

std::vector<SweepPoint> summarize_sweep_point(const Options& point, const std::string& profile,
                                              const std::string& value, const std::string& folder,
                                              const std::vector<ConditionRun>& runs) {
  std::vector<SweepPoint> out;
  for (const ConditionRun& r : runs) {
    SweepPoint p;
    p.profile = profile;
    p.value = value;
    p.condition = r.condition;
    p.folder = folder;
    p.node_count = point.node_count;
    p.msgs_per_op = ratio(r.load_msgs, r.checks.ops);
    p.msgs_per_write = ratio(r.load_msgs, r.checks.writes_ok);
    p.observed = r.observed;
    if (r.observed) {
      Summary s = summarize(r.observed_ms);
      p.p50_ms = s.p50;
      p.max_ms = s.max;
    } else {
      p.p50_ms = r.checks.nodes_convergence.p50;
      p.max_ms = r.checks.nodes_convergence.max;
    }
    p.identical_after_ms = r.identical_after_ms;
    p.lost_writes = r.checks.lost_writes;
    p.problems = run_problems({r}).size();
    out.push_back(p);
  }
  return out;
}

PlotResult write_sweep(const Options& base, const std::vector<SweepPoint>& points, const std::string& dir,
                       bool render, std::FILE* out) {
  write_table(base, points, out);
  if (std::FILE* table = std::fopen((dir + "/sweep.txt").c_str(), "w")) {
    write_table(base, points, table);
    std::fclose(table);
  }
  write_json(base, points, dir + "/sweep.json");
  write_data(points, dir);
  PlotResult result;
  std::ofstream(dir + "/tradeoff.gp") << tradeoff_script(base, points);
  result.scripts.push_back("tradeoff.gp");
  if (base.sweep_name == "node-count") {
    std::ofstream(dir + "/scaling.gp") << scaling_script(base, points);
    result.scripts.push_back("scaling.gp");
  }
  if (!render) return result;
  for (const std::string& script : result.scripts) {
    std::string png = script.substr(0, script.size() - 3) + ".png", problem;
    struct stat st {};
    if (render_script(dir, script, &problem) && ::stat((dir + "/" + png).c_str(), &st) == 0 && st.st_size > 0) {
      result.pngs.push_back(png);
    } else if (result.problem.empty()) {
      result.problem = problem.empty() ? "gnuplot drew no " + png : problem;
    }
  }
  return result;
}

}  // namespace gossip_bench
