// gossip-bench end to end: real nodes, a short comparison whose checkers' own invariants must
// hold, a bench_write workload, and nodes that die or hang being reported while the run ends.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace {

struct BenchRun {
  int exit_code = -1;
  std::string output;
  std::string folder;  // store/latest
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs gossip-bench with args in a store folder of the test's own.
BenchRun bench(const std::string& name, const std::string& args) {
  std::string store = ::testing::TempDir() + "gossip-bench-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(store);
  std::string cmd = std::string(GOSSIP_BENCH_BIN) + " --store-dir " + store + " " + args + " > " + store +
                    ".out 2>&1";
  int status = std::system(cmd.c_str());
  BenchRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.output = slurp(store + ".out");
  r.folder = store + "/latest";
  return r;
}

rapidjson::Document results(const BenchRun& r) {
  rapidjson::Document d;
  d.Parse(slurp(r.folder + "/results.json").c_str());
  return d;
}

std::size_t lines_in(const std::string& path) {
  std::ifstream in(path);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

bool is_png(const std::string& path) { return slurp(path).rfind("\x89PNG\r\n\x1a\n", 0) == 0; }

TEST(GossipBench, ShortThreeNodeComparisonKeepsItsInvariants) {
  // Generous bounds (a 10 s request timeout, up to 60 s of quiet) so that a slow machine only
  // makes the test slower: every figure asserted below is a count, not a time.
  BenchRun r = bench("compare", "--bin " GOSSIP_KV_NODE_BIN " --node-count 3 --time-limit 3 --nemesis-interval 0.5"
                                " --quiet-period 60 --request-timeout 10 --rate 40");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << slurp(r.folder + "/results.json");
  ASSERT_TRUE(d["problems"].Empty()) << r.output;
  for (const char* condition : {"normal", "partition"}) {
    SCOPED_TRACE(condition);
    ASSERT_TRUE(d["conditions"].HasMember(condition)) << r.output;
    const auto& c = d["conditions"][condition];
    const auto& ops = c["operations"];
    const auto& msgs = c["messages"];
    EXPECT_EQ(c["lost_writes"].GetUint64(), 0u);
    EXPECT_EQ(c["divergent_nodes"].GetInt(), 0);
    EXPECT_TRUE(msgs["count_matches"].GetBool());
    EXPECT_EQ(msgs["node_to_node"].GetUint64(), msgs["nodes_total_gossip_msgs"].GetUint64());
    EXPECT_TRUE(c["stale_reads"]["nodes_within_history"].GetBool());
    EXPECT_GT(ops["writes_ok"].GetUint64(), 10u);
    // Clients are never cut off, so every request is answered in both conditions.
    EXPECT_EQ(ops["answered"].GetUint64(), ops["invoked"].GetUint64());
    // The quiet period ends once replicas are identical and every write has its figure.
    EXPECT_FALSE(c["convergence"]["identical_after_load_ms"].IsNull());
    EXPECT_FALSE(c["convergence"]["settled_after_load_ms"].IsNull());
    EXPECT_EQ(c["convergence"]["writes_not_yet_measured"].GetUint64(), 0u);
    EXPECT_GE(c["convergence"]["nodes_ms"]["count"].GetUint64(), ops["writes_ok"].GetUint64());
    // The router saw every acknowledged write reach every replica.
    ASSERT_TRUE(c["convergence"]["observed_ms"].IsObject());
    EXPECT_EQ(c["convergence"]["observed_ms"]["count"].GetUint64(), ops["writes_ok"].GetUint64());
    EXPECT_EQ(c["convergence"]["observed_never"].GetUint64(), 0u);
    // Each write's own figure (bench_figures) beside the router's: all of them, none earlier.
    const auto& per_write = c["convergence"]["per_write"];
    EXPECT_EQ(per_write["figures"].GetUint64(), c["convergence"]["nodes_ms"]["count"].GetUint64());
    EXPECT_EQ(per_write["compared"].GetUint64(), per_write["figures"].GetUint64());
    EXPECT_EQ(per_write["earlier_than_observed"].GetUint64(), 0u);
    EXPECT_EQ(lines_in(r.folder + "/" + condition + "/figures.tsv"), per_write["figures"].GetUint64() + 1);
    std::uint64_t per_second = 0;
    for (const auto& s : msgs["per_second"].GetArray()) per_second += s[0].GetUint64();
    EXPECT_GE(per_second, msgs["node_to_node"].GetUint64()) << "the series covers every counted message";
    EXPECT_EQ(lines_in(r.folder + "/" + condition + "/history.jsonl"), ops["invoked"].GetUint64());
  }
  const auto& normal = d["conditions"]["normal"];
  const auto& partition = d["conditions"]["partition"];
  EXPECT_TRUE(normal["faults"].Empty());
  EXPECT_EQ(normal["messages"]["dropped_by_faults"].GetUint64(), 0u);
  ASSERT_GE(partition["faults"].Size(), 3u) << "faults at 0.5, 1.5 and 2.5 s";
  EXPECT_STREQ(partition["faults"][2]["kind"].GetString(), "majorities-ring");
  EXPECT_GT(partition["messages"]["dropped_by_faults"].GetUint64(), 0u);
  for (const char* png : {"latency.png", "messages.png", "convergence.png", "timeline.png"}) {
    EXPECT_TRUE(is_png(r.folder + "/" + png)) << png << "\n" << slurp(r.folder + "/gnuplot.log");
  }
  EXPECT_NE(r.output.find("messages per write"), std::string::npos) << r.output;
}

std::uint64_t repair_messages(const rapidjson::Value& condition) {
  std::uint64_t n = 0;
  for (const auto& [type, count] : condition["messages"]["during_load_by_type"].GetObject()) {
    std::string t = type.GetString();
    if (t == "digest" || t.rfind("sync_", 0) == 0) n += count.GetUint64();
  }
  return n;
}

TEST(GossipBench, PauseLossAndDuplicateFaultsShowAndLoseNothing) {
  // 1 s faults at 1-2 s and 3-4 s; a 10 s request timeout, so requests to a paused node wait.
  BenchRun r = bench("faults", "--bin " GOSSIP_KV_NODE_BIN " --node-count 3 --time-limit 4 --nemesis-interval 1"
                               " --nemesis pause,loss,duplicate --loss 0.5 --duplicate 0.5 --quiet-period 60"
                               " --request-timeout 10 --rate 40 --no-plots");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << slurp(r.folder + "/results.json");
  const auto& conditions = d["conditions"];
  for (const char* condition : {"normal", "pause", "loss", "duplicate"}) {
    SCOPED_TRACE(condition);
    ASSERT_TRUE(conditions.HasMember(condition)) << r.output;
    const auto& c = conditions[condition];
    EXPECT_EQ(c["lost_writes"].GetUint64(), 0u);
    EXPECT_EQ(c["divergent_nodes"].GetInt(), 0);
    EXPECT_TRUE(c["messages"]["count_matches"].GetBool()) << "copies a fault made are not counted as sent";
    EXPECT_EQ(c["operations"]["answered"].GetUint64(), c["operations"]["invoked"].GetUint64());
    EXPECT_EQ(c["convergence"]["observed_never"].GetUint64(), 0u);
    EXPECT_EQ(c["convergence"]["writes_not_yet_measured"].GetUint64(), 0u);
    if (std::string(condition) != "normal") {
      ASSERT_EQ(c["faults"].Size(), 2u);
      EXPECT_STREQ(c["faults"][0]["kind"].GetString(), condition);
    }
  }
  // A write taken by a running node early in a pause reaches the paused node only when it
  // resumes, half the pause later or more; writes are taken every 75 ms or so.
  EXPECT_GE(conditions["pause"]["convergence"]["observed_ms"]["max"].GetDouble(), 500.0);
  EXPECT_GE(conditions["pause"]["convergence"]["nodes_ms"]["max"].GetInt64(), 500);
  EXPECT_EQ(conditions["pause"]["messages"]["dropped_by_faults"].GetUint64(), 0u) << "a pause loses nothing";
  // Lost pushes are found and asked for: more digests than on the normal network.
  EXPECT_GT(conditions["loss"]["messages"]["dropped_by_faults"].GetUint64(), 0u);
  EXPECT_GT(repair_messages(conditions["loss"]), repair_messages(conditions["normal"]));
  EXPECT_GT(conditions["duplicate"]["messages"]["duplicated_by_faults"].GetUint64(), 0u);
  EXPECT_EQ(conditions["duplicate"]["messages"]["dropped_by_faults"].GetUint64(), 0u);
}

TEST(GossipBench, KilledNodesComeBackRefilledAndCrashLossesAreAttributed) {
  // Kills at 1 s and 3 s, each restarted empty a second later. Pushes only every 1.5 s, so a
  // killed node has taken writes no one else holds yet (3 to 5 in a run).
  BenchRun r = bench("kill", "--bin " GOSSIP_KV_NODE_BIN " --node-count 3 --time-limit 4 --nemesis-interval 1"
                             " --nemesis kill --quiet-period 60 --rate 60 --no-plots"
                             " --node-args '--gossip-interval-ms 1500'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << slurp(r.folder + "/results.json");
  const auto& c = d["conditions"]["kill"];
  EXPECT_EQ(c["restarts"].GetUint64(), 2u);
  // The restarted nodes answer every final read and end identical to the others: refilled.
  EXPECT_TRUE(c["node_problems"].Empty()) << r.output;
  EXPECT_EQ(c["divergent_nodes"].GetInt(), 0);
  EXPECT_EQ(c["lost_writes"].GetUint64(), 0u) << "writes the protocol lost";
  EXPECT_TRUE(c["messages"]["count_matches"].GetBool());
  EXPECT_GT(c["messages"]["from_killed_lives"].GetUint64(), 0u);
  // Each killed node is asked for its figures just before its kill (here they have settled
  // none yet: their pushes wait 1.5 s; Checkers.AKilledLifesFiguresJoin... covers the merge).
  EXPECT_GE(c["convergence"]["killed_lives_reported"].GetUint64(), 1u);
  EXPECT_LE(c["convergence"]["killed_lives_reported"].GetUint64(), 2u);
  // No figure of any life is earlier than the router saw: a report of a life killed before
  // the write was everywhere does not count (docs/REPLICATION.md, "Figures wait for proof of
  // life").
  EXPECT_EQ(c["convergence"]["per_write"]["earlier_than_observed"].GetUint64(), 0u);
  EXPECT_GT(c["convergence"]["per_write"]["compared"].GetUint64(), 0u);
  // Every write counted lost with a crash was acknowledged by a node killed after that.
  std::ifstream history(r.folder + "/kill/history.jsonl");
  std::uint64_t flagged = 0;
  for (std::string line; std::getline(history, line);) {
    rapidjson::Document op;
    op.Parse(line.c_str());
    if (!op.HasMember("lost_with_crash")) continue;
    ++flagged;
    EXPECT_STREQ(op["outcome"].GetString(), "ok");
    bool killed_after = false;
    for (const auto& f : c["faults"].GetArray()) {
      std::string killed = f["description"].GetString();
      killed_after |= killed.rfind(std::string(op["node"].GetString()) + " ", 0) == 0 &&
                      f["start_s"].GetDouble() * 1e6 >= static_cast<double>(op["complete_us"].GetInt64());
    }
    EXPECT_TRUE(killed_after) << line;
  }
  EXPECT_EQ(flagged, c["lost_with_crash"].GetUint64());
  EXPECT_GT(flagged, 0u) << "the case this test is about did not occur";
}

TEST(GossipBench, FiguresEarlierThanTheRouterSawFailTheRun) {
  // gossip-kv behind a proxy that turns every figure bench_figures gives into 0 ms.
  BenchRun r = bench("early", "--bin /usr/bin/env --node-args 'python3 " EARLY_FIGURES_NODE " " GOSSIP_KV_NODE_BIN "'"
                              " --node-count 3 --time-limit 2 --nemesis none --quiet-period 60 --rate 40 --no-plots");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("convergence figures earlier than the router observed"), std::string::npos) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << slurp(r.folder + "/results.json");
  const auto& per_write = d["conditions"]["normal"]["convergence"]["per_write"];
  EXPECT_GT(per_write["compared"].GetUint64(), 0u);
  EXPECT_EQ(per_write["earlier_than_observed"].GetUint64(), per_write["compared"].GetUint64());
}

TEST(GossipBench, ClockSkewShowsAsWritesHiddenByOlderOnes) {
  BenchRun r = bench("skew", "--bin " GOSSIP_KV_NODE_BIN " --node-count 3 --time-limit 3 --nemesis clock-skew"
                             " --clock-skew 2000 --quiet-period 60 --rate 60 --no-plots");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << slurp(r.folder + "/results.json");
  const auto& normal = d["conditions"]["normal"];
  const auto& skew = d["conditions"]["clock-skew"];
  EXPECT_EQ(normal["overwritten_by_older"].GetUint64(), 0u) << "one clock: versions follow real time";
  EXPECT_GT(skew["overwritten_by_older"].GetUint64(), 0u) << r.output;
  EXPECT_EQ(skew["lost_writes"].GetUint64(), 0u);
  EXPECT_EQ(skew["divergent_nodes"].GetInt(), 0);
  ASSERT_EQ(skew["faults"].Size(), 1u);
  std::string offsets = skew["faults"][0]["description"].GetString();
  EXPECT_NE(offsets.find("n3 "), std::string::npos) << offsets;
}

TEST(GossipBench, BurstsReachEveryReplicaAndAreMeasuredEach) {
  // Bursts of 3,000 writes to new keys at 1 s and 3 s; the final reads cover those keys too.
  BenchRun r = bench("burst", "--bin " GOSSIP_KV_NODE_BIN " --node-count 3 --time-limit 4 --nemesis-interval 1"
                              " --nemesis burst --burst-writes 3000 --quiet-period 60 --rate 40 --no-plots");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << slurp(r.folder + "/results.json");
  const auto& c = d["conditions"]["burst"];
  ASSERT_EQ(c["bursts"].Size(), 2u);
  for (const auto& b : c["bursts"].GetArray()) {
    EXPECT_EQ(b["writes"].GetUint64(), 3000u);
    EXPECT_EQ(b["acked"].GetUint64(), 3000u);
    EXPECT_FALSE(b["spread_ms"].IsNull()) << "every acknowledged write of the burst got everywhere";
  }
  EXPECT_GE(c["operations"]["writes_ok"].GetUint64(), 6000u);
  EXPECT_EQ(c["lost_writes"].GetUint64(), 0u);
  EXPECT_EQ(c["divergent_nodes"].GetInt(), 0);
  EXPECT_TRUE(c["node_problems"].Empty()) << "every node answered the final reads of 6,020 keys";
  EXPECT_EQ(c["convergence"]["observed_never"].GetUint64(), 0u);
  EXPECT_TRUE(d["conditions"]["normal"]["bursts"].Empty());
}

TEST(GossipBench, ASweepRunsEachPointAndDrawsTheTradeOff) {
  BenchRun r = bench("sweep", "--bin " GOSSIP_KV_NODE_BIN " --node-count 2 --time-limit 1 --nemesis none"
                              " --quiet-period 30 --sweep node-count=2,3 --sweep-profiles default,frugal");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d;
  d.Parse(slurp(r.folder + "/sweep.json").c_str());
  ASSERT_FALSE(d.HasParseError()) << r.output;
  ASSERT_EQ(d["points"].Size(), 4u) << "2 profiles x 2 values x the normal condition";
  for (const auto& p : d["points"].GetArray()) {
    std::string folder = r.folder + "/" + p["folder"].GetString();
    rapidjson::Document point;
    point.Parse(slurp(folder + "/results.json").c_str());
    ASSERT_FALSE(point.HasParseError()) << folder;
    EXPECT_EQ(point["options"]["node_count"].GetInt(), p["node_count"].GetInt());
    EXPECT_NE(std::string(point["options"]["node_args"].GetString()).find(p["profile"].GetString()), std::string::npos);
    EXPECT_EQ(p["problems"].GetUint64(), 0u);
    EXPECT_GT(p["msgs_per_op"].GetDouble(), 0.0);
  }
  EXPECT_STREQ(d["points"][3]["folder"].GetString(), "frugal-node-count=3");
  for (const char* png : {"tradeoff.png", "scaling.png"}) {
    EXPECT_TRUE(is_png(r.folder + "/" + png)) << png << "\n" << slurp(r.folder + "/gnuplot.log");
  }
  EXPECT_NE(slurp(r.folder + "/sweep_published.dat").find("23.38"), std::string::npos) << "the reference points";
}

TEST(GossipBench, AForeignNodeIsMeasuredByPollingReads) {
  // An independent node (tests/gossip_bench/naive_gossip_node.py): no bench_stats, its own
  // peer format, one message per peer per write.
  BenchRun r = bench("foreign", "--bin /usr/bin/env --node-args 'python3 " NAIVE_NODE "' --node-count 3"
                                " --time-limit 3 --nemesis none --rate 30 --quiet-period 30 --no-plots");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << slurp(r.folder + "/results.json");
  const auto& c = d["conditions"]["normal"];
  EXPECT_FALSE(c["convergence"]["nodes_report_bench_stats"].GetBool());
  EXPECT_STREQ(c["convergence"]["observed_by"].GetString(), "polling reads");
  std::uint64_t writes = c["operations"]["writes_ok"].GetUint64();
  EXPECT_GT(writes, 10u);
  EXPECT_EQ(c["convergence"]["observed_ms"]["count"].GetUint64(), writes) << "every write seen on every node";
  EXPECT_GE(c["convergence"]["observed_ms"]["p50"].GetDouble(), 100.0) << "one 100 ms hop at least";
  EXPECT_EQ(c["lost_writes"].GetUint64(), 0u);
  EXPECT_EQ(c["divergent_nodes"].GetInt(), 0);
  EXPECT_TRUE(c["node_problems"].Empty()) << r.output;
  // The naive node sends a write to each of its 2 peers: msgs/write from the router is exact,
  // and the polling reads (client traffic) are not in it.
  EXPECT_NEAR(c["messages"]["per_write_during_load"].GetDouble(), 2.0, 0.1);
  EXPECT_EQ(c["messages"]["node_to_node"].GetUint64(), 2 * writes);
  EXPECT_EQ(c["messages"]["during_load_by_type"]["naive_gossip"].GetUint64(), c["messages"]["during_load"].GetUint64());
  EXPECT_NE(r.output.find("n/a"), std::string::npos) << "what only gossip-kv reports";
}

TEST(GossipBench, AForeignNodesLostWritesAreFoundWithoutReadingItsMessages) {
  // The naive node has no anti-entropy: what a partition cuts off stays lost. On 500 keys
  // few lost writes are overwritten before the final reads, which must find them.
  BenchRun r = bench("foreign-cut", "--bin /usr/bin/env --node-args 'python3 " NAIVE_NODE "' --node-count 3"
                                    " --time-limit 3 --nemesis-interval 1 --key-count 500 --rate 40"
                                    " --quiet-period 5 --no-plots");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << slurp(r.folder + "/results.json");
  EXPECT_EQ(d["conditions"]["normal"]["lost_writes"].GetUint64(), 0u);
  const auto& cut = d["conditions"]["partition"];
  EXPECT_GT(cut["lost_writes"].GetUint64(), 0u) << r.output;
  EXPECT_GT(cut["divergent_nodes"].GetInt(), 0);
  EXPECT_GT(cut["convergence"]["observed_never"].GetUint64(), 0u);
}

TEST(GossipBench, BenchWriteWorkloadLearnsVersionsFromReads) {
  BenchRun r = bench("bench-write", "--bin " GOSSIP_KV_NODE_BIN " --node-count 3 --time-limit 2 --rate 60"
                               " --key-count 5 --write-type bench_write --compare normal --no-plots");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError());
  const auto& c = d["conditions"]["normal"];
  std::uint64_t writes = c["operations"]["writes_ok"].GetUint64();
  EXPECT_GT(writes, 10u);
  EXPECT_LT(c["operations"]["writes_unversioned"].GetUint64(), writes)
      << "every key's final version, at least, is read back";
  EXPECT_EQ(c["lost_writes"].GetUint64(), 0u);
  EXPECT_TRUE(c["messages"]["count_matches"].GetBool());
  EXPECT_TRUE(c["convergence"]["observed_ms"].IsNull()) << "bench_write replies carry no version to follow";
  EXPECT_NE(slurp(r.folder + "/normal/history.jsonl").find(R"("type":"bench_write")"), std::string::npos)
      << "the writes went as bench_write";
  EXPECT_EQ(slurp(r.folder + "/normal/history.jsonl").find(R"("type":"write")"), std::string::npos);
}

TEST(GossipBench, NodesThatExitAreReportedAndTheRunFails) {
  BenchRun r = bench("exits", "--bin /bin/true --node-count 2 --time-limit 0.3 --quiet-period 0.3 --compare normal --no-plots");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("n1: output ended"), std::string::npos) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError());
  EXPECT_FALSE(d["conditions"]["normal"]["node_problems"].Empty());
}

// Processes whose command line contains `needle`.
int processes_running(const std::string& needle) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string cmdline = slurp(entry.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(needle) != std::string::npos) ++n;
  }
  return n;
}

TEST(GossipBench, NodesThatHangAreKilledAndReported) {
  // The shell does not exec: its sleep is a child of the node, and must die with it.
  // The sleep's argument names this test process, so that checkouts testing side by side do
  // not count each other's.
  std::string sleep = "sleep 613" + std::to_string(::getpid());
  std::string script = ::testing::TempDir() + "hanging-node-" + std::to_string(::getpid()) + ".sh";
  std::ofstream(script) << "#!/bin/sh\n" << sleep << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  BenchRun r = bench("hangs", "--bin " + script + " --node-count 2 --time-limit 0.3 --quiet-period 0.3"
                         " --request-timeout 0.2 --compare normal --no-plots");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("n2: no init_ok"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("n2: did not exit"), std::string::npos) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ(d["conditions"]["normal"]["operations"]["answered"].GetUint64(), 0u);
  // Killed, it may take a moment to die (the machine may be busy): wait up to 5 s.
  for (int i = 0; i < 50 && processes_running(sleep) > 0; ++i) ::usleep(100'000);
  EXPECT_EQ(processes_running(sleep), 0) << "the node's whole process group is killed";
}

// A node that answers the runner's final reads with errors: its final state is incomplete
// (reported, the run fails), not empty (no write is taken for lost).
TEST(GossipBench, FinalReadErrorsLeaveTheNodeUnjudged) {
  BenchRun r = bench("final-read-errors", "--bin /usr/bin/env --node-args 'python3 " FAKE_NODE
                                          " --final-read-error' --node-count 1 --time-limit 1 --key-count 5"
                                          " --compare normal --no-plots");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("n1: answered 0 of 5 final reads (5 answered with an error)"), std::string::npos) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << r.output;
  const auto& c = d["conditions"]["normal"];
  EXPECT_GT(c["operations"]["writes_ok"].GetUint64(), 5u);
  EXPECT_EQ(c["lost_writes"].GetUint64(), 0u);
}

TEST(GossipBench, ANodeThatExitsMidRunIsReportedWithItsStatus) {
  BenchRun r = bench("exit-midway", "--bin /usr/bin/env --node-args 'python3 " FAKE_NODE " --exit-after 20'"
                                    " --node-count 1 --time-limit 2 --rate 40 --request-timeout 2"
                                    " --quiet-period 0.5 --compare normal --no-plots");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("n1: output ended at"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(exited 3)"), std::string::npos) << r.output;
  rapidjson::Document d = results(r);
  ASSERT_FALSE(d.HasParseError()) << r.output;
  const auto& ops = d["conditions"]["normal"]["operations"];
  EXPECT_EQ(ops["answered"].GetUint64(), 18u)
      << "init, the bench_stats probe and 18 requests were read before it exited";
  EXPECT_GT(ops["timeouts"].GetUint64(), 0u);
}

TEST(GossipBench, AMissingNodeBinaryIsAUsageError) {
  BenchRun r = bench("no-bin", "--bin /nonexistent/gossip-kv --compare normal");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("cannot run the node binary"), std::string::npos) << r.output;
}

}  // namespace
