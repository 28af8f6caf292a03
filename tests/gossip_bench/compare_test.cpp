// `gossip-bench compare` on crafted results.json files: the differences and percentages it
// computes, n/a for what a run does not hold, the option warning, and its exit codes.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "compare.h"

namespace gossip_bench {
namespace {

namespace fs = std::filesystem;

// A results.json with one condition per entry of `conditions` (name -> condition object text).
std::string results_json(const std::string& options, const std::string& conditions, int problems = 0) {
  std::string problem_list;
  for (int i = 0; i < problems; ++i) problem_list += std::string(i ? "," : "") + "\"problem\"";
  return "{\"description\": \"crafted\", \"options\": " + options + ", \"conditions\": {" + conditions +
         "}, \"problems\": [" + problem_list + "]}";
}

const char* kOptions = "{\"bin\": \"/a/gossip-kv\", \"node_args\": \"--profile fast\", \"rate\": 50, \"seed\": 1}";

// A condition with every figure the comparison reads.
std::string full_condition(const std::string& name, double msgs_per_op, int p50, int lost, int later = 3) {
  return "\"" + name + "\": {"
         "\"operations\": {\"invoked\": 100, \"answered\": 98},"
         "\"client_latency_ms\": {\"count\": 98, \"p50\": 0.11, \"p99\": 0.2},"
         "\"convergence\": {\"nodes_ms\": {\"count\": 40, \"p50\": " + std::to_string(p50) +
         ", \"p95\": 200, \"max\": 250},"
         "\"observed_ms\": {\"count\": 40, \"p50\": 150.0, \"p95\": 199.0, \"max\": 249.0},"
         "\"per_write\": {\"earlier_than_observed\": 0, \"later_than_observed_by_10_percent\": " +
         std::to_string(later) + "},"
         "\"identical_after_load_ms\": 300, \"settled_after_load_ms\": 310},"
         "\"messages\": {\"per_operation_during_load\": " + std::to_string(msgs_per_op) +
         ", \"per_operation\": 1.5, \"per_write_during_load\": 2.8},"
         "\"stale_reads\": {\"history\": 1, \"fraction_of_reads\": 0.02},"
         "\"lost_writes\": " + std::to_string(lost) + ", \"divergent_nodes\": 0}";
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

const CompareRow& row(const Comparison& c, std::size_t condition, const std::string& figure) {
  for (const CompareRow& r : c.conditions.at(condition).rows)
    if (r.figure == figure) return r;
  ADD_FAILURE() << "no row " << figure;
  static CompareRow none;
  return none;
}

// A run folder under the test's temporary directory holding `text` as its results.json.
std::string write_run(const std::string& name, const std::string& text) {
  fs::path dir = fs::path(::testing::TempDir()) / ("compare_test_" + name);
  fs::create_directories(dir);
  std::ofstream(dir / "results.json") << text;
  return dir.string();
}

struct Output {
  int rc;
  std::string out, err;
};

Output run_compare(const std::string& a, const std::string& b) {
  std::FILE* out = std::tmpfile();
  testing::internal::CaptureStderr();
  int rc = compare_runs(a, b, out);
  std::string err = testing::internal::GetCapturedStderr();
  std::string text(static_cast<std::size_t>(std::ftell(out)), '\0');
  std::rewind(out);
  std::size_t n = std::fread(text.data(), 1, text.size(), out);
  std::fclose(out);
  text.resize(n);
  return {rc, text, err};
}

TEST(CompareRows, DifferenceIsBMinusAAndChangeIsRelativeToA) {
  Comparison c = compare_documents(parse(results_json(kOptions, full_condition("normal", 2.0, 160, 0))),
                                   parse(results_json(kOptions, full_condition("normal", 1.5, 200, 0))));
  const CompareRow& msgs = row(c, 0, "messages per operation, during load");
  EXPECT_DOUBLE_EQ(*difference(msgs), -0.5);
  EXPECT_DOUBLE_EQ(*relative_change_pct(msgs), -25.0);
  const CompareRow& p50 = row(c, 0, "convergence, nodes' own p50 (ms)");
  EXPECT_DOUBLE_EQ(*difference(p50), 40.0);
  EXPECT_DOUBLE_EQ(*relative_change_pct(p50), 25.0);
  const CompareRow& stale = row(c, 0, "stale reads, % of reads");
  EXPECT_DOUBLE_EQ(*stale.a, 2.0) << "a fraction is shown as a percentage";
}

// Runs from before bench_figures have no per-write counts: n/a (the sparse test above).
TEST(CompareRows, PerWriteFigureCountsAreCompared) {
  Comparison c = compare_documents(parse(results_json(kOptions, full_condition("kill", 1.0, 100, 0, 3))),
                                   parse(results_json(kOptions, full_condition("kill", 1.0, 100, 0, 10))));
  EXPECT_DOUBLE_EQ(*difference(row(c, 0, "figures later than observed by > 10 %")), 7.0);
  EXPECT_DOUBLE_EQ(*row(c, 0, "figures earlier than observed").a, 0.0);
}

TEST(CompareRows, ChangeIsBlankWhenAIsZero) {
  Comparison c = compare_documents(parse(results_json(kOptions, full_condition("normal", 1.0, 100, 0))),
                                   parse(results_json(kOptions, full_condition("normal", 1.0, 100, 3))));
  const CompareRow& lost = row(c, 0, "lost writes");
  EXPECT_DOUBLE_EQ(*difference(lost), 3.0);
  EXPECT_FALSE(relative_change_pct(lost).has_value());
}

TEST(CompareRows, MissingNullAndEmptySummaryFiguresAreNa) {
  std::string sparse = "\"normal\": {\"convergence\": {\"nodes_ms\": {\"count\": 0, \"p50\": 0, \"p95\": 0, "
                       "\"max\": 0}, \"observed_ms\": null, \"identical_after_load_ms\": null}}";
  Comparison c = compare_documents(parse(results_json(kOptions, sparse)),
                                   parse(results_json(kOptions, full_condition("normal", 1.0, 100, 0))));
  for (const char* figure : {"convergence, nodes' own p50 (ms)", "convergence, observed max (ms)",
                             "identical after load (ms)", "lost writes", "client latency p99 (ms)",
                             "figures later than observed by > 10 %"}) {
    const CompareRow& r = row(c, 0, figure);
    EXPECT_FALSE(r.a.has_value()) << figure;
    EXPECT_TRUE(r.b.has_value()) << figure;
    EXPECT_FALSE(difference(r).has_value()) << figure;
    EXPECT_FALSE(relative_change_pct(r).has_value()) << figure;
  }
  Output o = run_compare(write_run("sparse", results_json(kOptions, sparse)),
                         write_run("full", results_json(kOptions, full_condition("normal", 1.0, 100, 0))));
  EXPECT_NE(o.out.find("n/a"), std::string::npos) << o.out;
}

TEST(CompareRows, ConditionsInOnlyOneRunAreListedInAsOrderThenBs) {
  Comparison c = compare_documents(
      parse(results_json(kOptions, full_condition("partition", 1, 1, 0) + "," + full_condition("normal", 1, 1, 0))),
      parse(results_json(kOptions, full_condition("normal", 1, 1, 0) + "," + full_condition("pause", 1, 1, 0))));
  ASSERT_EQ(c.conditions.size(), 3u);
  EXPECT_EQ(c.conditions[0].condition, "partition");
  EXPECT_EQ(c.conditions[1].condition, "normal");
  EXPECT_EQ(c.conditions[2].condition, "pause");
  EXPECT_FALSE(c.conditions[0].in_b);
  EXPECT_FALSE(c.conditions[2].in_a);
  EXPECT_FALSE(row(c, 2, "lost writes").a.has_value());
  EXPECT_TRUE(row(c, 2, "lost writes").b.has_value());
}

TEST(CompareRows, ProblemsAreCountedPerRun) {
  Comparison c = compare_documents(parse(results_json(kOptions, "", 0)), parse(results_json(kOptions, "", 2)));
  EXPECT_DOUBLE_EQ(*c.problems.a, 0.0);
  EXPECT_DOUBLE_EQ(*c.problems.b, 2.0);
}

TEST(CompareRows, DifferingWorkloadOptionsAreListedApartFromTheNode) {
  std::string other = "{\"bin\": \"/b/gossip-kv\", \"node_args\": \"--profile fast\", \"rate\": 200, \"seed\": 1, "
                      "\"loss\": 0.3}";
  Comparison c = compare_documents(parse(results_json(kOptions, "")), parse(results_json(other, "")));
  EXPECT_EQ(c.workload_options_differ, (std::vector<std::string>{"rate", "loss (only in B)"}));
  EXPECT_EQ(c.node_options_differ, std::vector<std::string>{"bin"});
  Comparison same = compare_documents(parse(results_json(kOptions, "")), parse(results_json(kOptions, "")));
  EXPECT_TRUE(same.workload_options_differ.empty());
  EXPECT_TRUE(same.node_options_differ.empty());
}

TEST(CompareRuns, PrintsRowsWithDifferenceAndChange) {
  Output o = run_compare(write_run("print_a", results_json(kOptions, full_condition("normal", 2.0, 160, 0))),
                         write_run("print_b", results_json(kOptions, full_condition("normal", 1.5, 200, 0))));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("node args: --profile fast"), std::string::npos) << o.out;
  std::size_t at = o.out.find("messages per operation, during load");
  ASSERT_NE(at, std::string::npos) << o.out;
  std::string line = o.out.substr(at, o.out.find('\n', at) - at);
  EXPECT_NE(line.find("2.00"), std::string::npos) << line;
  EXPECT_NE(line.find("1.50"), std::string::npos) << line;
  EXPECT_NE(line.find("-0.50"), std::string::npos) << line;
  EXPECT_NE(line.find("-25.0%"), std::string::npos) << line;
  EXPECT_EQ(o.out.find("warning"), std::string::npos) << "same options: " << o.out;
}

TEST(CompareRuns, DifferingOptionsPrintAWarningNamingThem) {
  std::string other = "{\"bin\": \"/a/gossip-kv\", \"node_args\": \"--profile fast\", \"rate\": 200, \"seed\": 1}";
  Output o = run_compare(write_run("opts_a", results_json(kOptions, "")), write_run("opts_b", results_json(other, "")));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("warning: the runs' options differ (rate)"), std::string::npos) << o.out;
}

TEST(CompareRuns, AcceptsAResultsJsonPathAndASymlinkToARunFolder) {
  std::string run = write_run("forms", results_json(kOptions, full_condition("normal", 1, 1, 0)));
  fs::path link = fs::path(::testing::TempDir()) / "compare_test_latest";
  fs::remove(link);
  fs::create_directory_symlink(run, link);
  Output o = run_compare(link.string(), run + "/results.json");
  EXPECT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("condition normal"), std::string::npos) << o.out;
}

TEST(CompareRuns, MissingFolderExitsTwoNamingThePath) {
  std::string good = write_run("good", results_json(kOptions, ""));
  std::string missing = (fs::path(::testing::TempDir()) / "compare_test_no_such_run").string();
  Output o = run_compare(good, missing);
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.err.find(missing), std::string::npos) << o.err;
}

TEST(CompareRuns, FolderWithoutResultsJsonExitsTwoNamingThePath) {
  fs::path empty = fs::path(::testing::TempDir()) / "compare_test_empty_run";
  fs::create_directories(empty);
  fs::remove(empty / "results.json");
  Output o = run_compare(empty.string(), write_run("good2", results_json(kOptions, "")));
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.err.find((empty / "results.json").string()), std::string::npos) << o.err;
}

TEST(CompareRuns, UnparsableResultsJsonExitsTwoNamingThePath) {
  std::string broken = write_run("broken", "{\"conditions\": {");
  Output o = run_compare(write_run("good3", results_json(kOptions, "")), broken);
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.err.find(broken + "/results.json"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("not valid JSON"), std::string::npos) << o.err;
}

TEST(CompareCommand, HelpPrintsUsageAndWrongArgumentCountIsAUsageError) {
  std::string compare = "compare", help = "--help", one = "/tmp/x";
  char* help_argv[] = {compare.data(), help.data()};
  testing::internal::CaptureStdout();
  EXPECT_EQ(compare_main(2, help_argv), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("usage: gossip-bench compare RUN_A RUN_B"), std::string::npos);
  char* one_argv[] = {compare.data(), one.data()};
  testing::internal::CaptureStderr();
  EXPECT_EQ(compare_main(2, one_argv), 2);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("takes two runs"), std::string::npos);
}

}  // namespace
}  // namespace gossip_bench
