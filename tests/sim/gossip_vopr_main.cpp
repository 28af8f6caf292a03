// gossip-vopr: the randomized search over the simulated cluster (tests/sim/vopr.h).
//   build/bin/gossip-vopr --seeds 100000              every fault class, seeds 1..100000
//   build/bin/gossip-vopr --seeds 1000 --faults bursts (or cuts): what passes today
//   build/bin/gossip-vopr --break drop-delta           a deliberately broken model
//   GOSSIP_VOPR_TRACE='"i5"' adds every peer line that holds that text (sent and handled)
//   GOSSIP_VOPR_SEED=42 build/bin/gossip-vopr          replays one seed, with its violations
//   build/bin/gossip-vopr --faults dup --late          also lists seeds with late figures
// Each seed runs in a child process (unless --no-fork), so a crash is reported with its seed
// and the search goes on. Exit status 1 when any seed failed.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "vopr.h"

namespace {

using gossip_kv::sim::VoprOptions;
using gossip_kv::sim::VoprResult;

std::string g_replay_flags;  // the flags a replay needs besides the seed

// A seed's outcome, also as a child's exit status.
enum Outcome { kOk = 0, kFailed = 1, kLate = 3 };

Outcome run_one(std::uint64_t seed, const VoprOptions& o, bool verbose, bool show_late) {
  VoprResult r = gossip_kv::sim::run_vopr_seed(seed, o);
  Outcome outcome = !r.ok() ? kFailed : r.late.empty() ? kOk : kLate;
  if (!verbose && (outcome == kOk || (outcome == kLate && !show_late))) return outcome;
  std::string failed;
  for (const std::string& id : r.failed) failed += " " + id;
  std::printf("%s%s %s\n", !r.ok() ? "FAIL" : r.late.empty() ? "ok  " : "LATE", failed.c_str(), r.mix.c_str());
  std::printf("     %llu writes acknowledged (%llu lost with their only replica), %llu peer lines, "
              "%llu delta-queue waits, %llu misbehaving messages, %lld virtual ms\n",
              static_cast<unsigned long long>(r.writes_acked), static_cast<unsigned long long>(r.writes_excused),
              static_cast<unsigned long long>(r.messages), static_cast<unsigned long long>(r.delta_waits),
              static_cast<unsigned long long>(r.injected), static_cast<long long>(r.virtual_ms));
  for (const std::string& v : r.violations) std::printf("     %s\n", v.c_str());
  for (const std::string& v : r.late) std::printf("     %s\n", v.c_str());
  if (outcome != kOk) {
    std::printf("     replay: GOSSIP_VOPR_SEED=%llu build/bin/gossip-vopr%s\n",
                static_cast<unsigned long long>(seed), g_replay_flags.c_str());
  }
  std::fflush(stdout);
  return outcome;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gossip-vopr: randomized fault search over a simulated gossip-kv cluster"};
  std::uint64_t seeds = 100, first = 1;
  std::string faults = "all", breakage = "none";
  bool verbose = false, no_fork = false, show_late = false;
  int max_failures = 20;
  app.add_option("--seeds", seeds, "how many seeds")->capture_default_str();
  app.add_option("--first", first, "the first seed")->capture_default_str();
  app.add_option("--faults", faults,
                 "fault classes: all, network, bursts, cuts, a list (loss,dup,reorder,partition,pause,restart,skew,"
                 "burst,forge,crash,range,garbage,inject,peer) or all-<list>")
      ->capture_default_str();
  app.add_option("--break", breakage, "a deliberately broken model: none, drop-delta, drop-delta-no-net, corrupt-line, "
                                      "late-taken, double-line, swapped-figures")
      ->capture_default_str();
  app.add_option("--max-failures", max_failures, "stop after this many failing seeds")->capture_default_str();
  app.add_flag("--verbose", verbose, "print every seed, not only failures");
  app.add_flag("--late", show_late, "print the seeds whose figures came out late (else only counted)");
  app.add_flag("--no-fork", no_fork, "run seeds in this process (a crash ends the search)");
  CLI11_PARSE(app, argc, argv);
  VoprOptions o;
  if (!gossip_kv::sim::parse_faults(faults, &o.faults)) {
    std::fprintf(stderr, "unknown fault list: %s\n", faults.c_str());
    return 2;
  }
  if (!gossip_kv::sim::parse_breakage(breakage, &o.breakage)) {
    std::fprintf(stderr, "unknown breakage: %s\n", breakage.c_str());
    return 2;
  }
  if (faults != "all") g_replay_flags += " --faults " + faults;
  if (breakage != "none") g_replay_flags += " --break " + breakage;
  if (const char* s = std::getenv("GOSSIP_VOPR_SEED")) {
    return run_one(std::strtoull(s, nullptr, 10), o, true, true) == kFailed ? 1 : 0;
  }
  auto start = std::chrono::steady_clock::now();
  std::uint64_t failed = 0, crashed = 0, late = 0, ran = 0;
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    ++ran;
    Outcome outcome = kOk;
    if (no_fork) {
      outcome = run_one(seed, o, verbose, show_late);
    } else {
      std::fflush(stdout);
      pid_t pid = fork();
      if (pid == 0) _exit(run_one(seed, o, verbose, show_late));
      int status = 0;
      waitpid(pid, &status, 0);
      if (WIFSIGNALED(status)) {
        ++crashed;
        outcome = kFailed;
        std::printf("CRASH signal %d: %s\n     replay: GOSSIP_VOPR_SEED=%llu build/bin/gossip-vopr%s\n",
                    WTERMSIG(status), gossip_kv::sim::describe_seed(seed, o).c_str(),
                    static_cast<unsigned long long>(seed), g_replay_flags.c_str());
      } else if (!WIFEXITED(status) || (WEXITSTATUS(status) != kOk && WEXITSTATUS(status) != kLate)) {
        outcome = kFailed;
      } else {
        outcome = static_cast<Outcome>(WEXITSTATUS(status));
      }
    }
    late += outcome == kLate ? 1 : 0;
    if (outcome == kFailed && ++failed >= static_cast<std::uint64_t>(max_failures)) break;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%llu seeds from %llu, faults [%s], break %s: %llu failed (%llu crashed), %.1f s; "
              "%llu passed with late figures (a report, not a failure)\n",
              static_cast<unsigned long long>(ran), static_cast<unsigned long long>(first),
              gossip_kv::sim::fault_names(o.faults).c_str(), breakage.c_str(),
              static_cast<unsigned long long>(failed), static_cast<unsigned long long>(crashed), s,
              static_cast<unsigned long long>(late));
  return failed == 0 ? 0 : 1;
}
