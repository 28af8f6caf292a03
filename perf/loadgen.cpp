// gossip-loadgen: one node's latency under an open-loop load, free of coordinated omission.
//
// The generator spawns the node with pipes on its stdin and stdout, initialises it as a one-node
// cluster, writes every key once, then offers requests at a fixed rate: request i is due at
// t0 + i / rate whatever became of the requests before it (open loop). A request's latency is
// the time its reply line is read minus that due time, not the time it was actually written, so
// a stall of the node (or of the generator) is charged to every request that waited behind it.
//
// Threads:
//   - the sender writes every due request in one write(), at most once per --slice-us, and
//     sleeps until the next one is due; when it is behind it writes the whole backlog at once and
//     never skips a request;
//   - the receiver reads the node's stdout in 1 MiB chunks, stamps each chunk with the clock as
//     it arrives, parses each line (RapidJSON SAX, in situ) and checks it against its request;
//   - main spawns the node, runs the setup (init, pre-population), waits for the drain, stops the
//     node and reports.
//
// Every request is a pure function of its global index i and the seed: client c(i % K + 1),
// msg_id i / K + 1, kv_read or write, its key, and for a write the value (i + 1) * keys + key
// (pre-population writes the value key itself). So a reply's (dest, in_reply_to) gives back i,
// its due time and what the reply must hold, and a value read names the write that stored it.
// The state kept per request is one 32-bit slot (RequestTable): whether it was answered and,
// for a read, the write it must see. 800 MB at the 200M request limit, 29 MB for 6 s at 1.2M/s.
//
// Thread safety:
//   1. The Workload is written by main only before the sender starts (start()), then read-only.
//      The receiver reads request i's due time only after an acquire load of `sent` shows i was
//      sent; the sender's release store of `sent` follows its own start, which follows start().
//   2. `sent` (requests handed to write(), published before the write so that no reply can
//      outrun it) is stored by the sender only. The sender fills request i's RequestTable slot
//      before it publishes i in `sent` and never touches it again; the receiver touches the slot
//      only after acquiring `sent` > i.
//   3. The receiver owns its checks, histogram and counters; main reads them after joining it.
//      While running it publishes progress (replies, eof) in atomics for main's waits.
//   4. The sender owns its report; main reads it after joining it.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>

#include "common/percentile.h"

extern char** environ;

namespace {

// ---- Limits (each with its reason) ----

// Requests per run (rate x (warmup + duration)): a 4-byte RequestTable slot each, 800 MB at the
// limit; the slot holds a request index in 31 bits.
constexpr std::uint64_t kRequestsMax = 200'000'000;
static_assert(kRequestsMax < (std::uint64_t{1} << 31));
// Keys: each is written once before the timed phase, and write values (i + 1) * keys + key must
// stay far inside 2^53 so that any JSON reader keeps them exact.
constexpr std::uint64_t kKeysMax = 10'000'000;
// Clients: one per-client order counter each.
constexpr std::uint64_t kClientsMax = 1'000'000;
// Bytes per write() to the node: a full batch when the sender keeps up; a backlog goes out in
// back-to-back writes of this size so that `sent` and the lag figures move while it drains.
constexpr std::size_t kWriteBytesMax = 256 << 10;
// The longest request line: fixed text plus a client id and three integers of at most 20 digits.
constexpr std::size_t kRequestBytesMax = 192;
// Bytes per read() of the node's stdout, and the longest reply line accepted.
constexpr std::size_t kReadBytes = 1 << 20;
constexpr std::size_t kLineBytesMax = 64 << 10;
// Pipe capacity asked for in both directions (Linux's default pipe-max-size): 64 KiB, the
// default, is under a millisecond of requests at 1M req/s.
constexpr int kPipeBytes = 1 << 20;
// How long the node may take to answer init, and to exit once its stdin is closed.
constexpr std::int64_t kInitTimeoutNs = 5'000'000'000;
constexpr std::int64_t kExitTimeoutNs = 3'000'000'000;
// A request sent more than this after its due time means the sender fell behind: twenty times
// the median send delay with the default slice. A shared machine crosses it whenever the sender
// is preempted for a scheduler tick; the report says for how many requests.
constexpr std::int64_t kBehindNs = 1'000'000;
// Main's polling interval while it waits for replies (setup, drain); no latency depends on it.
constexpr std::int64_t kPollNs = 1'000'000;

// ---- Clocks ----

std::int64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
std::int64_t now_ns() { return clock_ns(CLOCK_MONOTONIC); }
double thread_cpu_s() { return static_cast<double>(clock_ns(CLOCK_THREAD_CPUTIME_ID)) / 1e9; }

// Sleeps until the monotonic time target_ns, spinning for the last spin_ns of the wait.
// Returns the time it woke.
std::int64_t sleep_until(std::int64_t target_ns, std::int64_t spin_ns) {
  std::int64_t sleep_to = target_ns - spin_ns;
  if (sleep_to > now_ns()) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(sleep_to / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(sleep_to % 1'000'000'000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
  }
  std::int64_t now = now_ns();
  while (now < target_ns) now = now_ns();
  return now;
}

// ---- Options ----

struct Options {
  std::string bin;        // the node binary; default: gossip-kv next to this executable
  std::string node_args;  // passed to the node, split on spaces
  bool quiet = false;     // the node's stderr to /dev/null
  double rate = 100'000;  // offered requests per second
  double duration_s = 5;  // measured phase
  double warmup_s = 1;    // before it; replies checked, latencies discarded
  std::uint64_t clients = 16;
  std::uint64_t keys = 10'000;
  double read_fraction = 0.5;
  std::uint64_t seed = 1;
  // The sender writes at most once per slice. On the project's VMs a sleep and wake-up costs
  // about 20 us of CPU, so 20 us slices take half a core from a 2-core machine at 200k req/s;
  // 50 us takes a quarter and adds about 20 us to the median send delay (which is reported).
  double slice_us = 50;
  double spin_us = 0;            // and spins (instead of sleeping) for the last spin_us of a wait
  double drain_timeout_s = 5;    // give up when the node makes no progress for this long
  bool prepopulate = true;       // write every key before the timed phase
  std::string json_path;         // also write the figures here
};

std::string default_node_bin() {
  std::vector<char> path(4096);
  ssize_t n = readlink("/proc/self/exe", path.data(), path.size() - 1);
  if (n <= 0) return "gossip-kv";
  std::string self(path.data(), static_cast<std::size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + "gossip-kv";
}

void add_options(CLI::App& app, Options& o) {
  app.add_option("--bin", o.bin, "node binary (default: gossip-kv next to this executable)");
  app.add_option("--node-args", o.node_args, "arguments for the node, split on spaces");
  app.add_flag("--quiet", o.quiet, "send the node's stderr to /dev/null");
  app.add_option("--rate", o.rate, "offered requests per second")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--duration", o.duration_s, "measured seconds")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup_s, "seconds before the measured phase, not measured")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--clients", o.clients, "clients c1..cK, requests assigned round-robin")
      ->capture_default_str()->check(CLI::Range(std::uint64_t{1}, kClientsMax));
  app.add_option("--keys", o.keys, "integer keys 0..N-1")
      ->capture_default_str()->check(CLI::Range(std::uint64_t{1}, kKeysMax));
  app.add_option("--read-fraction", o.read_fraction, "share of kv_read (the rest are write)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", o.seed, "seed of the request stream")->capture_default_str();
  app.add_option("--slice-us", o.slice_us, "the sender writes at most once per slice, us")
      ->capture_default_str()->check(CLI::Range(0.0, 1e6));
  app.add_option("--spin-us", o.spin_us, "spin instead of sleeping for the last part of a wait, us")
      ->capture_default_str()->check(CLI::Range(0.0, 1e6));
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "seconds without progress after which unanswered requests count as lost")
      ->capture_default_str()->check(CLI::Range(0.001, 3600.0));
  app.add_flag("!--no-prepopulate", o.prepopulate,
               "do not write every key first (error 20 on a read is then not a failure)");
  app.add_option("--json", o.json_path, "also write the figures to this file as JSON");
}

std::vector<std::string> split_on_spaces(const std::string& s) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) words.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return words;
}

// ---- The request stream ----

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

char* append(char* out, std::string_view text) {
  std::memcpy(out, text.data(), text.size());
  return out + text.size();
}
char* append(char* out, std::uint64_t n) { return std::to_chars(out, out + 20, n).ptr; }

// Request i of the run, its due time and what its reply must hold: all derived from i.
class Workload {
 public:
  struct Op {
    bool read;
    std::uint64_t key;
  };

  explicit Workload(const Options& o)
      : clients_(o.clients), keys_(o.keys), seed_(o.seed), period_ns_(1e9 / o.rate),
        first_measured_(static_cast<std::uint64_t>(std::ceil(o.warmup_s * o.rate))),
        total_(first_measured_ + static_cast<std::uint64_t>(std::ceil(o.duration_s * o.rate))),
        read_threshold_(static_cast<std::uint64_t>(std::llround(o.read_fraction * 0x1p24))),
        prepopulated_(o.prepopulate) {}

  // Sets t0, the due time of request 0. REQUIRES: called once, before the sender starts.
  void start(std::int64_t t0_ns) { t0_ns_ = t0_ns; }

  [[nodiscard]] std::uint64_t total() const { return total_; }
  // Requests before this one are warmup: checked but not measured.
  [[nodiscard]] std::uint64_t first_measured() const { return first_measured_; }
  [[nodiscard]] std::uint64_t keys() const { return keys_; }
  [[nodiscard]] std::uint64_t clients() const { return clients_; }

  [[nodiscard]] Op op(std::uint64_t i) const {
    std::uint64_t h = splitmix64(seed_ ^ splitmix64(i));
    return {(h >> 40) < read_threshold_, (h & 0xffff'ffff) % keys_};
  }
  [[nodiscard]] std::int64_t due_ns(std::uint64_t i) const {
    return t0_ns_ + static_cast<std::int64_t>(static_cast<double>(i) * period_ns_);
  }
  // Request i goes from client i % K + 1 with msg_id i / K + 1.
  [[nodiscard]] std::uint64_t client_of(std::uint64_t i) const { return i % clients_ + 1; }
  [[nodiscard]] std::uint64_t msg_id_of(std::uint64_t i) const { return i / clients_ + 1; }
  // The request that client (1..K) sent with msg_id, or total() when it sent none.
  [[nodiscard]] std::uint64_t index_of(std::uint64_t client, std::uint64_t msg_id) const {
    if (client < 1 || client > clients_ || msg_id < 1 || msg_id - 1 > total_ / clients_) {
      return total_;
    }
    return std::min(total_, (msg_id - 1) * clients_ + (client - 1));
  }

  // Writes request i's line at out; returns its length (at most kRequestBytesMax).
  // REQUIRES: o == op(i).
  std::size_t format(std::uint64_t i, Op o, char* out) const {
    char* p = append(out, R"({"src":"c)");
    p = append(p, client_of(i));
    p = append(p, o.read ? R"(","dest":"n1","body":{"type":"kv_read","msg_id":)"
                         : R"(","dest":"n1","body":{"type":"write","msg_id":)");
    p = append(p, msg_id_of(i));
    p = append(p, R"(,"key":)");
    p = append(p, o.key);
    if (!o.read) {
      p = append(p, R"(,"value":)");
      p = append(p, (i + 1) * keys_ + o.key);
    }
    return static_cast<std::size_t>(append(p, "}}\n") - out);
  }
  // The write that stored value: 1 + its index, 0 for the pre-populated value.
  // REQUIRES: read_value_ok(..., value).
  [[nodiscard]] std::uint64_t writer_of(std::int64_t value) const {
    return static_cast<std::uint64_t>(value) / keys_;
  }
  // The pre-population write of key: from c0, msg_id key + 1, value key.
  std::size_t format_prepopulation(std::uint64_t key, char* out) const {
    char* p = append(out, R"({"src":"c0","dest":"n1","body":{"type":"write","msg_id":)");
    p = append(p, key + 1);
    p = append(p, R"(,"key":)");
    p = append(p, key);
    p = append(p, R"(,"value":)");
    p = append(p, key);
    return static_cast<std::size_t>(append(p, "}}\n") - out);
  }

  // Whether value, read by request `reader` from key, is one this run stored there before the
  // read arrived: the pre-populated value, or that of an earlier write to the key. (The node
  // applies one key's operations in arrival order, and requests arrive in index order.)
  [[nodiscard]] bool read_value_ok(std::uint64_t reader, std::uint64_t key,
                                   std::int64_t value) const {
    if (value < 0) return false;
    auto v = static_cast<std::uint64_t>(value);
    if (v % keys_ != key) return false;
    std::uint64_t writer_plus_one = v / keys_;
    if (writer_plus_one == 0) return prepopulated_;
    std::uint64_t writer = writer_plus_one - 1;
    if (writer >= reader) return false;
    Op w = op(writer);
    return !w.read && w.key == key;
  }

 private:
  std::uint64_t clients_;
  std::uint64_t keys_;
  std::uint64_t seed_;
  double period_ns_;
  std::uint64_t first_measured_;
  std::uint64_t total_;
  std::uint64_t read_threshold_;  // a request is a read when 24 bits of its hash fall below
  bool prepopulated_;
  std::int64_t t0_ns_ = 0;
};

// ---- What each request expects ----

// One 32-bit slot per request: whether it was answered and, for a read, the write it must see:
// the latest earlier write to its key (the node applies one key's operations in arrival order
// and gives them strictly increasing timestamps, so that write is the one stored).
class RequestTable {
 public:
  RequestTable(std::uint64_t requests, std::uint64_t keys) : slots_(requests), last_write_(keys) {}

  // Sender: request i is about to be sent. REQUIRES: called in index order, i < requests.
  void on_send(std::uint64_t i, Workload::Op op) {
    if (op.read) {
      slots_[i] = last_write_[op.key];
    } else {
      last_write_[op.key] = static_cast<std::uint32_t>(i + 1);
    }
  }
  // Receiver: the write read i must see, as 1 + its index; 0 for none since the pre-population.
  [[nodiscard]] std::uint64_t expected_writer(std::uint64_t i) const {
    return slots_[i] & ~kAnswered;
  }
  // Receiver: marks request i answered; false when it already was.
  bool mark_answered(std::uint64_t i) {
    if ((slots_[i] & kAnswered) != 0) return false;
    slots_[i] |= kAnswered;
    return true;
  }

 private:
  static constexpr std::uint32_t kAnswered = std::uint32_t{1} << 31;
  std::vector<std::uint32_t> slots_;
  std::vector<std::uint32_t> last_write_;  // per key, 1 + index of its latest write; sender's
};

// ---- Latency histogram ----

// Nanoseconds, log-linear: exact below 2,048 ns, then 1,024 buckets per power of two (a bucket
// is under 0.1% of its values wide: 1 us at 1 ms, 1 ms at 1 s) up to 2^44 ns (4.9 hours; larger
// samples land in the last bucket). The max and the mean are exact. 280 KB.
class Histogram {
 public:
  void add(std::int64_t ns) {
    auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
    ++buckets_[bucket_of(v)];
    ++count_;
    sum_ns_ += static_cast<double>(v);
    max_ns_ = std::max(max_ns_, v);
  }
  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] double max_us() const { return static_cast<double>(max_ns_) / 1e3; }
  [[nodiscard]] double mean_us() const {
    return count_ == 0 ? 0 : sum_ns_ / static_cast<double>(count_) / 1e3;
  }
  // The p-quantile by nearest rank (common/percentile.h): the upper bound of the bucket holding
  // it, never above the max; 0 when empty.
  [[nodiscard]] double percentile_us(double p) const {
    if (count_ == 0) return 0;
    std::uint64_t rank = gossip_kv::nearest_rank(p, count_);
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      seen += buckets_[b];
      if (seen >= rank) return static_cast<double>(std::min(upper_ns(b), max_ns_)) / 1e3;
    }
    return max_us();
  }

 private:
  static constexpr int kSubBits = 10;
  static constexpr std::uint64_t kSub = std::uint64_t{1} << kSubBits;
  static constexpr int kTopBits = 44;
  static constexpr std::size_t kBuckets = (kTopBits - kSubBits + 1) * kSub;

  static std::size_t bucket_of(std::uint64_t v) {
    v = std::min(v, (std::uint64_t{1} << kTopBits) - 1);
    if (v < 2 * kSub) return static_cast<std::size_t>(v);
    int shift = static_cast<int>(std::bit_width(v)) - (kSubBits + 1);
    return static_cast<std::size_t>(static_cast<std::uint64_t>(shift) * kSub + (v >> shift));
  }
  static std::uint64_t upper_ns(std::size_t bucket) {
    if (bucket < 2 * kSub) return bucket;
    std::uint64_t shift = bucket / kSub - 1;
    std::uint64_t mantissa = bucket - shift * kSub;
    return ((mantissa + 1) << shift) - 1;
  }

  std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(kBuckets);
  std::uint64_t count_ = 0;
  double sum_ns_ = 0;
  std::uint64_t max_ns_ = 0;
};

// ---- The node process ----

struct NodeProcess {
  pid_t pid = -1;
  int stdin_fd = -1;   // ours to write, non-blocking
  int stdout_fd = -1;  // ours to read, blocking
  std::int64_t started_ns = 0;
};

struct NodeExit {
  int status = 0;       // as from waitpid
  bool killed = false;  // by us, after kExitTimeoutNs
  double cpu_s = 0;     // user + system
  double wall_s = 0;
};

// Starts bin with args, its stdin and stdout on fresh pipes, its stderr inherited or /dev/null.
// Returns false with a message on failure.
bool spawn_node(const std::string& bin, const std::vector<std::string>& args, bool quiet,
                NodeProcess& node, std::string& error) {
  int to_node[2];
  int from_node[2];
  if (pipe2(to_node, O_CLOEXEC) != 0 || pipe2(from_node, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  // Best effort: a smaller pipe only means more, shorter writes.
  fcntl(to_node[1], F_SETPIPE_SZ, kPipeBytes);
  fcntl(from_node[0], F_SETPIPE_SZ, kPipeBytes);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_node[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, from_node[1], STDOUT_FILENO);
  if (quiet) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> argv_strings{bin};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  int rc = posix_spawnp(&node.pid, bin.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(to_node[0]);
  close(from_node[1]);
  if (rc != 0) {
    close(to_node[1]);
    close(from_node[0]);
    error = "cannot start " + bin + ": " + std::strerror(rc);
    return false;
  }
  node.stdin_fd = to_node[1];
  node.stdout_fd = from_node[0];
  node.started_ns = now_ns();
  fcntl(node.stdin_fd, F_SETFL, fcntl(node.stdin_fd, F_GETFL) | O_NONBLOCK);
  return true;
}

// Writes all of data to the non-blocking fd, waiting in poll() while the pipe is full. False
// when the reader is gone (EPIPE) or not one byte could be written for stall_ns.
bool write_all(int fd, const char* data, std::size_t len, std::int64_t stall_ns) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n > 0) {
      data += n;
      len -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    pollfd p{fd, POLLOUT, 0};
    int rc = poll(&p, 1, static_cast<int>(stall_ns / 1'000'000));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0 || (p.revents & (POLLERR | POLLHUP)) != 0) return false;
  }
  return true;
}

// Closes the node's stdin (its cue to finish) and reaps it, killing it when it has not exited
// within kExitTimeoutNs.
NodeExit stop_node(NodeProcess& node) {
  NodeExit result;
  close(node.stdin_fd);
  node.stdin_fd = -1;
  rusage usage{};
  std::int64_t deadline = now_ns() + kExitTimeoutNs;
  pid_t reaped = 0;
  while ((reaped = wait4(node.pid, &result.status, WNOHANG, &usage)) == 0 && now_ns() < deadline) {
    sleep_until(now_ns() + kPollNs, 0);
  }
  if (reaped == 0) {
    kill(node.pid, SIGKILL);
    result.killed = true;
    wait4(node.pid, &result.status, 0, &usage);
  }
  auto seconds = [](timeval t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  result.cpu_s = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  result.wall_s = static_cast<double>(now_ns() - node.started_ns) / 1e9;
  return result;
}

// ---- Parsing a reply ----

enum class Kind : std::uint8_t { kAbsent, kInteger, kOther };

// The fields of a reply line the checks look at; the views point into the read buffer.
struct Reply {
  std::string_view src;
  std::string_view dest;
  std::string_view type;
  Kind in_reply_to_kind = Kind::kAbsent;
  std::uint64_t in_reply_to = 0;
  Kind key_kind = Kind::kAbsent;
  std::int64_t key = 0;
  Kind value_kind = Kind::kAbsent;
  std::int64_t value = 0;
  std::int64_t code = -1;
  double ts_s = 0;  // the version's timestamp, wall-clock seconds; 0 when absent
};

// A RapidJSON SAX handler that fills a Reply: the top-level src and dest, and the body's type,
// in_reply_to, key, value and code. Anything else, at any depth, is parsed and ignored.
class ReplyHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ReplyHandler> {
 public:
  explicit ReplyHandler(Reply& reply) : reply_(reply) {}

  bool Default() {  // null, true, false, a double: not what any checked field may hold
    mark_other();
    return true;
  }
  bool Double(double d) {
    if (in_body() && field_ == Field::kTs) reply_.ts_s = d;
    return Default();
  }
  bool Int(int i) { return Int64(i); }
  bool Uint(unsigned u) { return Uint64(u); }
  bool Int64(std::int64_t i) {
    if (i < 0 && field_ == Field::kInReplyTo) return Default();
    return integer(static_cast<std::uint64_t>(i), i);
  }
  bool Uint64(std::uint64_t u) {
    if (u > static_cast<std::uint64_t>(INT64_MAX) && field_ != Field::kInReplyTo) return Default();
    return integer(u, static_cast<std::int64_t>(u));
  }
  bool String(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    std::string_view text(s, n);
    if (depth_ == 1 && top_ == Top::kSrc) reply_.src = text;
    if (depth_ == 1 && top_ == Top::kDest) reply_.dest = text;
    if (in_body() && field_ == Field::kType) reply_.type = text;
    mark_other();
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    std::string_view k(s, n);
    if (depth_ == 1) {
      top_ = k == "src" ? Top::kSrc : k == "dest" ? Top::kDest : k == "body" ? Top::kBody
                                                                              : Top::kNone;
    } else if (depth_ == 2 && top_ == Top::kBody) {
      field_ = k == "type"          ? Field::kType
               : k == "in_reply_to" ? Field::kInReplyTo
               : k == "key"         ? Field::kKey
               : k == "value"       ? Field::kValue
               : k == "code"        ? Field::kCode
               : k == "ts"          ? Field::kTs
                                    : Field::kNone;
    }
    return true;
  }
  bool StartObject() {
    mark_other();
    ++depth_;
    return true;
  }
  bool EndObject(rapidjson::SizeType /*members*/) {
    --depth_;
    return true;
  }
  bool StartArray() { return StartObject(); }
  bool EndArray(rapidjson::SizeType members) { return EndObject(members); }

 private:
  enum class Top : std::uint8_t { kNone, kSrc, kDest, kBody };
  enum class Field : std::uint8_t { kNone, kType, kInReplyTo, kKey, kValue, kCode, kTs };

  [[nodiscard]] bool in_body() const { return depth_ == 2 && top_ == Top::kBody; }
  // An integer field's value, as unsigned (in_reply_to) or signed (the others).
  bool integer(std::uint64_t u, std::int64_t i) {
    if (!in_body()) return true;
    if (field_ == Field::kInReplyTo) set(reply_.in_reply_to_kind, reply_.in_reply_to, u);
    if (field_ == Field::kKey) set(reply_.key_kind, reply_.key, i);
    if (field_ == Field::kValue) set(reply_.value_kind, reply_.value, i);
    if (field_ == Field::kCode) reply_.code = i;
    if (field_ == Field::kTs) reply_.ts_s = static_cast<double>(i);
    return true;
  }
  template <typename T>
  static void set(Kind& kind, T& field, T v) {
    kind = Kind::kInteger;
    field = v;
  }
  // The field being parsed holds something other than an integer.
  void mark_other() {
    if (!in_body()) return;
    if (field_ == Field::kInReplyTo) reply_.in_reply_to_kind = Kind::kOther;
    if (field_ == Field::kKey) reply_.key_kind = Kind::kOther;
    if (field_ == Field::kValue) reply_.value_kind = Kind::kOther;
  }

  Reply& reply_;
  int depth_ = 0;
  Top top_ = Top::kNone;
  Field field_ = Field::kNone;
};

// ---- The receiver ----

// Failed checks by kind; each reply counts at most once.
struct Checks {
  std::uint64_t malformed = 0;        // not JSON, or no src n1 / dest / type / in_reply_to
  std::uint64_t unknown_request = 0;  // in_reply_to names no request sent by that client
  std::uint64_t duplicate = 0;        // a second reply to one request
  std::uint64_t out_of_order = 0;     // answered after a later request of the same client
  std::uint64_t error_reply = 0;      // an error reply, other than code 20 to a read
  std::uint64_t not_found = 0;        // error 20 to a read of a key written before it
  std::uint64_t never_written = 0;    // error 20 to a read of a key never written: not a failure
  std::uint64_t wrong_type = 0;       // not write_ok / kv_read_ok as the request asks
  std::uint64_t bad_key = 0;          // kv_read_ok for another key
  std::uint64_t bad_value = 0;        // a value no earlier write to the key stored
  std::uint64_t stale_read = 0;       // an earlier write's value, but not the latest one
  std::uint64_t setup = 0;            // a wrong reply to init or to a pre-population write
};

// When a chunk of replies was read: on the monotonic clock (latency) and on the wall clock
// (to compare with the node's write timestamps).
struct Arrival {
  std::int64_t mono_ns;
  std::int64_t wall_ns;
};

class Receiver {
 public:
  Receiver(const Workload& workload, const Options& options, RequestTable& requests,
           const std::atomic<std::uint64_t>& sent)
      : workload_(workload), options_(options), requests_(requests), sent_(sent),
        last_msg_id_(workload.clients() + 1) {}

  // Reads the node's stdout until end of file. Runs in the receiver thread.
  void run(int fd);

  // Progress, for main's waits while run() goes on.
  [[nodiscard]] std::uint64_t answered() const { return answered_.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t setup_replies() const {
    return setup_replies_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint64_t setup_failures() const {
    return setup_failures_.load(std::memory_order_acquire);
  }
  [[nodiscard]] bool eof() const { return eof_.load(std::memory_order_acquire); }

  // Results: REQUIRES run() has returned (the thread is joined).
  [[nodiscard]] const Checks& checks() const { return checks_; }
  [[nodiscard]] const Histogram& latency() const { return latency_; }
  // A measured write's latency in two legs, cut at the node's write timestamp (wall clock):
  // from its due time until the node took it, and from then until its reply was read.
  [[nodiscard]] const Histogram& write_taken() const { return write_taken_; }
  [[nodiscard]] const Histogram& write_replied() const { return write_replied_; }
  [[nodiscard]] std::int64_t last_measured_reply_ns() const { return last_measured_reply_ns_; }
  [[nodiscard]] double cpu_s() const { return cpu_s_; }
  [[nodiscard]] std::uint64_t lines() const { return lines_; }

 private:
  void on_line(char* line, Arrival arrival);
  void on_setup_reply(const Reply& reply);
  void on_client_reply(std::uint64_t client, const Reply& reply, Arrival arrival);
  void split_write_latency(std::uint64_t i, const Reply& reply, Arrival arrival);
  void check_body(std::uint64_t i, const Reply& reply);
  void publish() {
    answered_.store(answered_count_, std::memory_order_release);
    setup_replies_.store(setup_count_, std::memory_order_release);
    setup_failures_.store(checks_.setup, std::memory_order_release);
  }

  const Workload& workload_;
  const Options& options_;
  RequestTable& requests_;
  const std::atomic<std::uint64_t>& sent_;
  rapidjson::Reader reader_;
  std::vector<std::uint64_t> last_msg_id_;    // per client: highest in_reply_to seen
  Checks checks_;
  Histogram latency_;
  Histogram write_taken_;
  Histogram write_replied_;
  std::uint64_t answered_count_ = 0;
  std::uint64_t setup_count_ = 0;
  std::uint64_t lines_ = 0;
  std::int64_t last_measured_reply_ns_ = 0;
  double cpu_s_ = 0;
  std::atomic<std::uint64_t> answered_{0};
  std::atomic<std::uint64_t> setup_replies_{0};
  std::atomic<std::uint64_t> setup_failures_{0};
  std::atomic<bool> eof_{false};
};

void Receiver::run(int fd) {
  // Room for one read plus the unfinished line carried over, and a NUL after it.
  std::vector<char> buffer(kReadBytes + kLineBytesMax + 1);
  std::size_t carried = 0;
  bool skipping = false;  // dropping the rest of an over-long line
  for (;;) {
    ssize_t n = read(fd, buffer.data() + carried, buffer.size() - 1 - carried);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // One stamp for the whole chunk: the time these lines reached us, before any parsing.
    Arrival arrival{now_ns(), clock_ns(CLOCK_REALTIME)};
    char* line = buffer.data();
    char* end = line + carried + static_cast<std::size_t>(n);
    while (void* found = std::memchr(line, '\n', static_cast<std::size_t>(end - line))) {
      char* newline = static_cast<char*>(found);
      *newline = '\0';  // in-situ parsing reads up to the NUL
      if (!skipping) on_line(line, arrival);
      skipping = false;
      line = newline + 1;
    }
    carried = static_cast<std::size_t>(end - line);
    if (carried > kLineBytesMax) {
      ++checks_.malformed;
      skipping = true;
      carried = 0;
    }
    std::memmove(buffer.data(), line, carried);
    publish();
  }
  if (carried > 0) ++checks_.malformed;  // a last line without its newline
  publish();
  cpu_s_ = thread_cpu_s();
  eof_.store(true, std::memory_order_release);
}

void Receiver::on_line(char* line, Arrival arrival) {
  ++lines_;
  Reply reply;
  ReplyHandler handler(reply);
  rapidjson::InsituStringStream stream(line);
  bool parsed = !reader_.Parse<rapidjson::kParseInsituFlag>(stream, handler).IsError();
  std::uint64_t client = 0;
  bool client_ok = reply.dest.size() >= 2 && reply.dest[0] == 'c' &&
                   std::from_chars(reply.dest.data() + 1, reply.dest.data() + reply.dest.size(),
                                   client).ptr == reply.dest.data() + reply.dest.size();
  if (!parsed || reply.src != "n1" || !client_ok || reply.type.empty() ||
      reply.in_reply_to_kind != Kind::kInteger) {
    ++checks_.malformed;
    return;
  }
  if (client == 0) {
    on_setup_reply(reply);
  } else {
    on_client_reply(client, reply, arrival);
  }
}

// c0 sent init (msg_id 0) and the pre-population writes (msg_id key + 1).
void Receiver::on_setup_reply(const Reply& reply) {
  ++setup_count_;
  bool ok = reply.in_reply_to == 0
                ? reply.type == "init_ok"
                : options_.prepopulate && reply.in_reply_to <= workload_.keys() &&
                      reply.type == "write_ok";
  if (!ok) ++checks_.setup;
}

void Receiver::on_client_reply(std::uint64_t client, const Reply& reply, Arrival arrival) {
  std::uint64_t i = workload_.index_of(client, reply.in_reply_to);
  // Acquire: a request counted in `sent` has its due time set (thread safety, 1).
  if (i >= sent_.load(std::memory_order_acquire)) {
    ++checks_.unknown_request;
    return;
  }
  if (!requests_.mark_answered(i)) {
    ++checks_.duplicate;
    return;
  }
  ++answered_count_;
  if (reply.in_reply_to < last_msg_id_[client]) ++checks_.out_of_order;
  last_msg_id_[client] = std::max(last_msg_id_[client], reply.in_reply_to);
  if (i >= workload_.first_measured()) {
    // From the DUE time, not the send time: no coordinated omission.
    latency_.add(arrival.mono_ns - workload_.due_ns(i));
    last_measured_reply_ns_ = arrival.mono_ns;
    split_write_latency(i, reply, arrival);
  }
  check_body(i, reply);
}

void Receiver::split_write_latency(std::uint64_t i, const Reply& reply, Arrival arrival) {
  if (reply.type != "write_ok" || reply.ts_s <= 0) return;
  // Whole seconds and the fraction apart: a double holds the fraction to the nanosecond.
  double whole_s = std::floor(reply.ts_s);
  std::int64_t taken_wall_ns = static_cast<std::int64_t>(whole_s) * 1'000'000'000 +
                               std::llround((reply.ts_s - whole_s) * 1e9);
  std::int64_t replied_ns = arrival.wall_ns - taken_wall_ns;
  std::int64_t total_ns = arrival.mono_ns - workload_.due_ns(i);
  write_replied_.add(replied_ns);
  write_taken_.add(total_ns - replied_ns);
}

void Receiver::check_body(std::uint64_t i, const Reply& reply) {
  Workload::Op op = workload_.op(i);
  std::uint64_t expected = op.read ? requests_.expected_writer(i) : 0;
  if (reply.type == "error" && op.read && reply.code == 20) {
    ++(expected == 0 && !options_.prepopulate ? checks_.never_written : checks_.not_found);
  } else if (reply.type == "error") {
    ++checks_.error_reply;
  } else if (reply.type != (op.read ? "kv_read_ok" : "write_ok")) {
    ++checks_.wrong_type;
  } else if (!op.read) {
    // write_ok carries only ts: nothing more to check.
  } else if (reply.key_kind != Kind::kInteger || static_cast<std::uint64_t>(reply.key) != op.key) {
    ++checks_.bad_key;
  } else if (reply.value_kind != Kind::kInteger ||
             !workload_.read_value_ok(i, op.key, reply.value)) {
    ++checks_.bad_value;
  } else if (workload_.writer_of(reply.value) != expected) {
    ++checks_.stale_read;
  }
}

// ---- The sender ----

struct SenderReport {
  std::uint64_t sent = 0;          // requests fully written
  std::uint64_t writes = 0;        // write() batches
  std::int64_t last_write_ns = 0;  // when the last batch's write returned
  // Per request: the start of its batch's write minus its due time. This much of each latency
  // is the generator's own (its wake-up and slice); the maximum is the sender's worst lag.
  Histogram send_delay;
  std::uint64_t late = 0;          // requests whose send delay was over kBehindNs
  double cpu_s = 0;
  bool failed = false;             // the node stopped reading (EPIPE, or stalled past the timeout)
};

// Writes every request when it is due, at most one write() per slice: a write wakes the node's
// reader, and a sender just behind its schedule would otherwise write a few requests at a time
// as fast as it can loop. A batch cut at kWriteBytesMax (a backlog) is followed at once.
// Runs in the sender thread.
void run_sender(const Workload& workload, const Options& options, int fd, RequestTable& requests,
                std::atomic<std::uint64_t>& sent, SenderReport& report) {
  prctl(PR_SET_TIMERSLACK, 1UL);  // the default 50 us slack would be as long as a slice
  const auto slice_ns = static_cast<std::int64_t>(options.slice_us * 1e3);
  const auto spin_ns = static_cast<std::int64_t>(options.spin_us * 1e3);
  const auto stall_ns = static_cast<std::int64_t>(options.drain_timeout_s * 1e9);
  std::vector<char> batch(kWriteBytesMax + kRequestBytesMax);
  std::uint64_t next = 0;
  std::int64_t next_write_ns = 0;  // not before: one slice after the last batch began
  while (next < workload.total()) {
    std::int64_t now = now_ns();
    if (std::int64_t at = std::max(workload.due_ns(next), next_write_ns); at > now) {
      sleep_until(at, spin_ns);
      continue;
    }
    std::size_t len = 0;
    std::uint64_t end = next;
    while (end < workload.total() && len < kWriteBytesMax) {
      std::int64_t delay = now - workload.due_ns(end);
      if (delay < 0) break;
      report.send_delay.add(delay);
      report.late += delay > kBehindNs ? 1 : 0;
      Workload::Op op = workload.op(end);
      requests.on_send(end, op);
      len += workload.format(end, op, batch.data() + len);
      ++end;
    }
    sent.store(end, std::memory_order_release);  // before the write: no reply can outrun it
    if (!write_all(fd, batch.data(), len, stall_ns)) {
      report.failed = true;
      break;
    }
    report.last_write_ns = now_ns();
    ++report.writes;
    next = end;
    next_write_ns = len >= kWriteBytesMax ? 0 : now + slice_ns;
  }
  report.sent = next;
  report.cpu_s = thread_cpu_s();
}

// ---- Setup and drain ----

// Polls until done() holds; false when progress() has not moved for stall_ns first.
template <typename Done, typename Progress>
bool wait_for(Done done, Progress progress, std::int64_t stall_ns) {
  std::uint64_t seen = progress();
  std::int64_t moved_ns = now_ns();
  while (!done()) {
    std::int64_t now = sleep_until(now_ns() + kPollNs, 0);
    if (progress() != seen) {
      seen = progress();
      moved_ns = now;
    } else if (now - moved_ns > stall_ns) {
      return false;
    }
  }
  return true;
}

// Sends init and waits for init_ok, then writes every key once and waits for every write_ok.
bool setup_node(const Workload& workload, const Options& options, int fd, const Receiver& rx,
                std::string& error) {
  const auto stall_ns = static_cast<std::int64_t>(options.drain_timeout_s * 1e9);
  std::string init = R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":0,)"
                     R"("node_id":"n1","node_ids":["n1"]}})"
                     "\n";
  if (!write_all(fd, init.data(), init.size(), stall_ns) ||
      !wait_for([&] { return rx.setup_replies() >= 1 || rx.eof(); },
                [] { return std::uint64_t{0}; }, kInitTimeoutNs) ||
      rx.setup_replies() < 1) {
    error = "no reply to init";
    return false;
  }
  std::uint64_t expected = 1;
  if (options.prepopulate) {
    std::vector<char> batch(kWriteBytesMax + kRequestBytesMax);
    for (std::uint64_t key = 0; key < workload.keys();) {
      std::size_t len = 0;
      while (key < workload.keys() && len < kWriteBytesMax) {
        len += workload.format_prepopulation(key++, batch.data() + len);
      }
      if (!write_all(fd, batch.data(), len, stall_ns)) {
        error = "the node stopped reading during pre-population";
        return false;
      }
    }
    expected += workload.keys();
  }
  bool all = wait_for([&] { return rx.setup_replies() >= expected || rx.eof(); },
                      [&] { return rx.setup_replies(); }, stall_ns);
  if (!all || rx.setup_replies() < expected) {
    error = "pre-population writes unanswered";
    return false;
  }
  if (rx.setup_failures() > 0) {
    error = "wrong replies to init or pre-population";
    return false;
  }
  return true;
}

// ---- Report ----

struct Summary {
  std::uint64_t measured = 0;  // requests in the measured phase
  std::uint64_t warmup = 0;
  double send_rate = 0;        // measured requests written per second
  double reply_rate = 0;       // replies to them per second
  std::uint64_t unanswered = 0;
  std::uint64_t unsent = 0;
  std::uint64_t failures = 0;  // every failed check, unanswered and unsent request
  bool node_exit_ok = false;
};

Summary summarize(const Workload& w, const SenderReport& tx,
                  const Receiver& rx, const NodeExit& node_exit) {
  Summary s;
  s.measured = w.total() - w.first_measured();
  s.warmup = w.first_measured();
  std::int64_t window_start = w.due_ns(w.first_measured());
  std::uint64_t measured_sent = tx.sent > w.first_measured() ? tx.sent - w.first_measured() : 0;
  if (tx.last_write_ns > window_start) {
    s.send_rate = static_cast<double>(measured_sent) * 1e9 /
                  static_cast<double>(tx.last_write_ns - window_start);
  }
  if (rx.last_measured_reply_ns() > window_start) {
    s.reply_rate = static_cast<double>(rx.latency().count()) * 1e9 /
                   static_cast<double>(rx.last_measured_reply_ns() - window_start);
  }
  const Checks& c = rx.checks();
  std::uint64_t answered = rx.answered();
  s.unanswered = tx.sent > answered ? tx.sent - answered : 0;
  s.unsent = w.total() - tx.sent;
  s.node_exit_ok = !node_exit.killed && WIFEXITED(node_exit.status) &&
                   WEXITSTATUS(node_exit.status) == 0;
  s.failures = c.malformed + c.unknown_request + c.duplicate + c.out_of_order + c.error_reply +
               c.not_found + c.wrong_type + c.bad_key + c.bad_value + c.stale_read +
               c.setup + s.unanswered + s.unsent + (s.node_exit_ok ? 0 : 1);
  return s;
}

// The checks by name, for both reports.
std::vector<std::pair<const char*, std::uint64_t>> check_list(const Checks& c, const Summary& s) {
  return {{"malformed", c.malformed},   {"unknown_request", c.unknown_request},
          {"duplicate", c.duplicate},   {"out_of_order", c.out_of_order},
          {"error_reply", c.error_reply}, {"not_found", c.not_found},
          {"never_written", c.never_written}, {"stale_read", c.stale_read},
          {"wrong_type", c.wrong_type}, {"bad_key", c.bad_key},
          {"bad_value", c.bad_value},   {"setup", c.setup},
          {"unanswered", s.unanswered}, {"unsent", s.unsent}};
}

// The sender fell behind when some request went out more than kBehindNs after its due time.
bool fell_behind(const SenderReport& tx) {
  return tx.send_delay.max_us() * 1e3 > static_cast<double>(kBehindNs);
}
double late_percent(const SenderReport& tx) {
  return tx.sent == 0 ? 0 : static_cast<double>(tx.late) * 100 / static_cast<double>(tx.sent);
}

void print_text(const Options& o, const Summary& s, const SenderReport& tx, const Receiver& rx,
                const NodeExit& node_exit) {
  const Histogram& h = rx.latency();
  std::printf("gossip-loadgen: %.0f req/s for %g s (+%g s warmup), %llu clients, %llu keys, "
              "%g%% reads\n", o.rate, o.duration_s, o.warmup_s,
              static_cast<unsigned long long>(o.clients), static_cast<unsigned long long>(o.keys),
              o.read_fraction * 100);
  std::printf("offered      %.0f req/s\n", o.rate);
  std::printf("sent         %.0f req/s  (%llu measured, %llu warmup)\n", s.send_rate,
              static_cast<unsigned long long>(s.measured),
              static_cast<unsigned long long>(s.warmup));
  std::printf("replies      %.0f req/s  (%llu measured)\n", s.reply_rate,
              static_cast<unsigned long long>(h.count()));
  std::printf("latency_us   p50 %.1f  p90 %.1f  p99 %.1f  p999 %.1f  max %.1f  mean %.1f\n",
              h.percentile_us(0.5), h.percentile_us(0.9), h.percentile_us(0.99),
              h.percentile_us(0.999), h.max_us(), h.mean_us());
  const Histogram& taken = rx.write_taken();
  const Histogram& replied = rx.write_replied();
  std::printf("write legs   due->taken p50 %.1f p99 %.1f max %.1f  taken->read p50 %.1f p99 %.1f "
              "max %.1f us  (at the node's ts)\n",
              taken.percentile_us(0.5), taken.percentile_us(0.99), taken.max_us(),
              replied.percentile_us(0.5), replied.percentile_us(0.99), replied.max_us());
  std::printf("send_delay   p50 %.1f  p99 %.1f  max %.1f us  (%llu writes; %.3f%% of requests "
              "over %.0f us late)  fell behind: %s\n",
              tx.send_delay.percentile_us(0.5), tx.send_delay.percentile_us(0.99),
              tx.send_delay.max_us(), static_cast<unsigned long long>(tx.writes),
              late_percent(tx), static_cast<double>(kBehindNs) / 1e3,
              fell_behind(tx) ? "yes" : "no");
  std::printf("cpu          sender %.2f s (%.0f ns/request)  receiver %.2f s (%.0f ns/reply)  "
              "node %.2f s (%.0f%% of one core)\n",
              tx.cpu_s, tx.sent ? tx.cpu_s * 1e9 / static_cast<double>(tx.sent) : 0.0, rx.cpu_s(),
              rx.lines() ? rx.cpu_s() * 1e9 / static_cast<double>(rx.lines()) : 0.0,
              node_exit.cpu_s,
              node_exit.wall_s > 0 ? node_exit.cpu_s * 100 / node_exit.wall_s : 0.0);
  if (tx.failed) {
    std::printf("sender       stopped after %llu requests: the node stopped reading its input\n",
                static_cast<unsigned long long>(tx.sent));
  }
  std::printf("errors       %llu", static_cast<unsigned long long>(s.failures));
  for (const auto& [name, n] : check_list(rx.checks(), s)) {
    if (n != 0) std::printf("  %s %llu", name, static_cast<unsigned long long>(n));
  }
  if (!s.node_exit_ok) std::printf("  node_exit %s", node_exit.killed ? "killed" : "abnormal");
  std::printf("\n");
}

bool write_json(const std::string& path, const Options& o, const Summary& s,
                const SenderReport& tx, const Receiver& rx, const NodeExit& node_exit) {
  const Histogram& h = rx.latency();
  rapidjson::StringBuffer out;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> j(out);
  j.StartObject();
  j.Key("offered_rate"); j.Double(o.rate);
  j.Key("duration_s"); j.Double(o.duration_s);
  j.Key("warmup_s"); j.Double(o.warmup_s);
  j.Key("clients"); j.Uint64(o.clients);
  j.Key("keys"); j.Uint64(o.keys);
  j.Key("read_fraction"); j.Double(o.read_fraction);
  j.Key("send_rate"); j.Double(std::round(s.send_rate));
  j.Key("reply_rate"); j.Double(std::round(s.reply_rate));
  j.Key("requests"); j.Uint64(s.measured);
  j.Key("replies"); j.Uint64(h.count());
  j.Key("warmup_requests"); j.Uint64(s.warmup);
  j.Key("p50_us"); j.Double(h.percentile_us(0.5));
  j.Key("p90_us"); j.Double(h.percentile_us(0.9));
  j.Key("p99_us"); j.Double(h.percentile_us(0.99));
  j.Key("p999_us"); j.Double(h.percentile_us(0.999));
  j.Key("max_us"); j.Double(h.max_us());
  j.Key("mean_us"); j.Double(h.mean_us());
  j.Key("write_taken_p50_us"); j.Double(rx.write_taken().percentile_us(0.5));
  j.Key("write_taken_p99_us"); j.Double(rx.write_taken().percentile_us(0.99));
  j.Key("write_taken_max_us"); j.Double(rx.write_taken().max_us());
  j.Key("write_replied_p50_us"); j.Double(rx.write_replied().percentile_us(0.5));
  j.Key("write_replied_p99_us"); j.Double(rx.write_replied().percentile_us(0.99));
  j.Key("write_replied_max_us"); j.Double(rx.write_replied().max_us());
  j.Key("send_delay_p50_us"); j.Double(tx.send_delay.percentile_us(0.5));
  j.Key("send_delay_p99_us"); j.Double(tx.send_delay.percentile_us(0.99));
  j.Key("send_delay_max_us"); j.Double(tx.send_delay.max_us());
  j.Key("late_percent"); j.Double(late_percent(tx));
  j.Key("sender_fell_behind"); j.Bool(fell_behind(tx));
  j.Key("sender_cpu_s"); j.Double(tx.cpu_s);
  j.Key("receiver_cpu_s"); j.Double(rx.cpu_s());
  j.Key("node_cpu_s"); j.Double(node_exit.cpu_s);
  j.Key("sender_stopped"); j.Bool(tx.failed);
  j.Key("node_exit_ok"); j.Bool(s.node_exit_ok);
  j.Key("errors"); j.Uint64(s.failures);
  j.Key("checks");
  j.StartObject();
  for (const auto& [name, n] : check_list(rx.checks(), s)) {
    j.Key(name);
    j.Uint64(n);
  }
  j.EndObject();
  j.EndObject();
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = std::fputs(out.GetString(), f) >= 0 && std::fputc('\n', f) != EOF;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gossip-loadgen: offers one gossip-kv node requests at a fixed rate (open loop) "
               "and reports reply latency measured from each request's due time."};
  Options options;
  add_options(app, options);
  CLI11_PARSE(app, argc, argv);
  if (options.bin.empty()) options.bin = default_node_bin();
  double request_count = std::ceil(options.rate * options.warmup_s) +
                         std::ceil(options.rate * options.duration_s);
  if (request_count > static_cast<double>(kRequestsMax)) {
    std::fprintf(stderr, "gossip-loadgen: %.0f requests is over the limit of %llu: lower --rate "
                 "or --duration\n", request_count, static_cast<unsigned long long>(kRequestsMax));
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a node that died shows as EPIPE from write()

  Workload workload(options);
  NodeProcess node;
  std::string error;
  if (!spawn_node(options.bin, split_on_spaces(options.node_args), options.quiet, node, error)) {
    std::fprintf(stderr, "gossip-loadgen: %s\n", error.c_str());
    return 2;
  }
  std::atomic<std::uint64_t> sent{0};
  RequestTable requests(workload.total(), workload.keys());
  Receiver rx(workload, options, requests, sent);
  std::thread receiver([&] { rx.run(node.stdout_fd); });

  SenderReport tx;
  bool setup_ok = setup_node(workload, options, node.stdin_fd, rx, error);
  if (setup_ok) {
    workload.start(now_ns() + kPollNs);  // t0 a moment ahead, so request 0 is not born late
    std::thread sender([&] { run_sender(workload, options, node.stdin_fd, requests, sent, tx); });
    sender.join();
    // The drain: every request answered, or the node silent for the drain timeout.
    wait_for([&] { return rx.answered() >= tx.sent || rx.eof(); }, [&] { return rx.answered(); },
             static_cast<std::int64_t>(options.drain_timeout_s * 1e9));
  }
  NodeExit node_exit = stop_node(node);
  receiver.join();
  close(node.stdout_fd);
  if (!setup_ok) {
    std::fprintf(stderr, "gossip-loadgen: setup failed: %s (%llu lines read, %llu malformed)\n",
                 error.c_str(), static_cast<unsigned long long>(rx.lines()),
                 static_cast<unsigned long long>(rx.checks().malformed));
    return 2;
  }

  Summary summary = summarize(workload, tx, rx, node_exit);
  print_text(options, summary, tx, rx, node_exit);
  if (!options.json_path.empty() &&
      !write_json(options.json_path, options, summary, tx, rx, node_exit)) {
    std::fprintf(stderr, "gossip-loadgen: cannot write %s\n", options.json_path.c_str());
    return 2;
  }
  return summary.failures == 0 ? 0 : 1;
}
