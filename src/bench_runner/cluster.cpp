#include "cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace gossip_bench {

// A node's output held before a newline arrives: a line can be at most this long.
constexpr std::size_t kLineBufferMax = 2u << 20;

std::int64_t Cluster::now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

Cluster::Cluster(const ClusterOptions& o)
    : opt_(o), procs_(static_cast<std::size_t>(o.nodes) + 1),
      routed_(static_cast<std::size_t>(o.nodes) + 1, 0), rng_(o.seed) {
  ::signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i <= o.nodes; ++i) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    std::string log = o.log_dir + "/n" + std::to_string(i) + ".stderr.log";
    int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (err >= 0) posix_spawn_file_actions_adddup2(&fa, err, 2);
    std::vector<std::string> args{o.bin};
    args.insert(args.end(), o.node_args.begin(), o.node_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    Proc& p = procs_[static_cast<std::size_t>(i)];
    int rc = ::posix_spawn(&p.pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    if (err >= 0) ::close(err);
    if (rc != 0) throw std::runtime_error("cannot start " + o.bin + ": " + std::strerror(rc));
    p.in_fd = in[1];
    p.out_fd = out[0];
    ::fcntl(p.out_fd, F_SETFL, O_NONBLOCK);
  }
}

Cluster::~Cluster() {
  for (std::size_t i = 1; i < procs_.size(); ++i) {
    Proc& p = procs_[i];
    if (p.in_fd >= 0) ::close(p.in_fd);
    if (p.pid > 0) ::kill(p.pid, SIGKILL);
    if (p.pid > 0) ::waitpid(p.pid, nullptr, 0);
    if (p.out_fd >= 0) ::close(p.out_fd);
  }
}

void Cluster::send(int node, const std::string& line) {
  Proc& p = procs_[static_cast<std::size_t>(node)];
  if (p.in_fd < 0) return;
  std::string buf = line + "\n";
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(p.in_fd, buf.data() + done, buf.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (errno != EINTR) {
      ::close(p.in_fd);  // the node is gone: reported by dead_nodes()
      p.in_fd = -1;
      return;
    }
  }
}

std::int64_t Cluster::delay_us() {
  double mean = opt_.latency_ms * 1000.0, d = mean;
  if (opt_.dist == LatencyDist::kUniform) {
    d = std::uniform_real_distribution<double>(0, 2 * mean)(rng_);
  } else if (opt_.dist == LatencyDist::kExponential) {
    d = std::exponential_distribution<double>(1.0 / std::max(mean, 1.0))(rng_);
  }
  return std::llround(d);
}

void Cluster::route(int from, std::string line, std::int64_t now, const ReplyFn& on_reply) {
  // The dest is the second member the node writes: {"src":"nX","dest":"..."}.
  std::size_t at = line.find("\"dest\":\"");
  if (at == std::string::npos) return;
  at += 8;
  if (line[at] != 'n') return on_reply(from, line, now);
  ++routed_[static_cast<std::size_t>(from)];
  int to = std::atoi(line.c_str() + at + 1);
  if (to < 1 || to > size()) return;
  bool cut = !group_.empty() && group_[static_cast<std::size_t>(from)] != group_[static_cast<std::size_t>(to)];
  if (cut) {
    ++dropped_;
    return;
  }
  inflight_.push({now + delay_us(), seq_++, to, std::move(line)});
}

void Cluster::run_until(std::int64_t deadline_us, const ReplyFn& on_reply) {
  std::vector<pollfd> fds(procs_.size() - 1);
  for (;;) {
    std::int64_t now = now_us();
    while (!inflight_.empty() && inflight_.top().at_us <= now) {
      send(inflight_.top().to, inflight_.top().line);
      inflight_.pop();
    }
    // Past the deadline the nodes' output is still read once, without waiting: a caller that
    // asks for no time at all must not starve the replies.
    bool last = now >= deadline_us;
    std::int64_t wake = deadline_us;
    if (!inflight_.empty()) wake = std::min(wake, inflight_.top().at_us);
    for (std::size_t i = 1; i < procs_.size(); ++i) {
      fds[i - 1] = {procs_[i].eof ? -1 : procs_[i].out_fd, POLLIN, 0};
    }
    int timeout_ms = last ? 0 : static_cast<int>(std::max<std::int64_t>(0, (wake - now + 999) / 1000));
    if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) {
      if (last) return;
      continue;
    }
    char chunk[65536];
    for (std::size_t i = 1; i < procs_.size(); ++i) {
      if (!(fds[i - 1].revents & (POLLIN | POLLHUP))) continue;
      Proc& p = procs_[i];
      ssize_t n = ::read(p.out_fd, chunk, sizeof chunk);
      if (n == 0) p.eof = true;
      if (n <= 0) continue;
      p.buf.append(chunk, static_cast<std::size_t>(n));
      std::size_t start = 0, nl;
      while ((nl = p.buf.find('\n', start)) != std::string::npos) {
        route(static_cast<int>(i), p.buf.substr(start, nl - start), now_us(), on_reply);
        start = nl + 1;
      }
      p.buf.erase(0, start);
      if (p.buf.size() > kLineBufferMax) p.buf.clear();  // a runaway line: drop it
    }
    if (last) return;
  }
}

std::uint64_t Cluster::routed_total() const {
  std::uint64_t n = 0;
  for (auto r : routed_) n += r;
  return n;
}

std::vector<int> Cluster::dead_nodes() const {
  std::vector<int> dead;
  for (std::size_t i = 1; i < procs_.size(); ++i) {
    if (procs_[i].eof || procs_[i].in_fd < 0) dead.push_back(static_cast<int>(i));
  }
  return dead;
}

}  // namespace gossip_bench
