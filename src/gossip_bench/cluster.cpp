#include "cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "envelope.h"

extern char** environ;

namespace gossip_bench {
namespace {

std::int64_t steady_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// Bytes read from one node per wakeup before the others get their turn.
constexpr std::size_t kReadBurstBytes = 1u << 20;

// Every node's process group, for the signal handler: it kills them all if the runner is
// interrupted (each node has a group of its own, so the terminal's Ctrl-C does not reach them).
constexpr int kGroupsMax = 4096;
std::atomic<pid_t> g_groups[kGroupsMax];

void remember_group(pid_t pid) {
  for (auto& g : g_groups) {
    pid_t empty = 0;
    if (g.compare_exchange_strong(empty, pid)) return;
  }
}

void forget_group(pid_t pid) {
  for (auto& g : g_groups) {
    pid_t mine = pid;
    if (g.compare_exchange_strong(mine, 0)) return;
  }
}

extern "C" void kill_groups_and_exit(int sig) {
  for (auto& g : g_groups) {
    pid_t pid = g.load();
    if (pid > 0) ::kill(-pid, SIGKILL);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_signal_handlers() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  ::signal(SIGPIPE, SIG_IGN);  // a node's closed pipe is an error to handle, not a death
  ::signal(SIGINT, kill_groups_and_exit);
  ::signal(SIGTERM, kill_groups_and_exit);
}

}  // namespace

std::string NodeExit::describe() const {
  if (!reaped) return input_stuck ? "stopped reading its input" : "running";
  std::string s;
  if (WIFEXITED(wait_status)) s = "exited " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) s = "killed by signal " + std::to_string(WTERMSIG(wait_status));
  if (killed_at_shutdown) s += " (did not exit after its input closed)";
  if (input_stuck) s += " (had stopped reading its input)";
  return s;
}

Cluster::Cluster(const ClusterOptions& o)
    : opt_(o), start_us_(steady_us()), procs_(static_cast<std::size_t>(o.nodes) + 1),
      rng_(o.seed ^ 0x6c6174656e6379ull), fault_rng_(o.seed ^ 0x6c6f7373ull) {
  install_signal_handlers();
  try {
    for (int i = 1; i <= o.nodes; ++i) spawn(i);
  } catch (...) {
    kill_all();  // the destructor will not run: the nodes already started must not outlive us
    throw;
  }
}

void Cluster::spawn(int node, bool append_log) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  std::string log = opt_.log_dir + "/n" + std::to_string(node) + ".stderr.log";
  int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append_log ? O_APPEND : O_TRUNC), 0644);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  if (err >= 0) posix_spawn_file_actions_adddup2(&fa, err, 2);
  // A group of its own, and the signals the runner changed back to their defaults.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<std::string> args{opt_.bin};
  args.insert(args.end(), opt_.node_args.begin(), opt_.node_args.end());
  if (static_cast<std::size_t>(node) < opt_.args_of_node.size()) {
    const auto& own = opt_.args_of_node[static_cast<std::size_t>(node)];
    args.insert(args.end(), own.begin(), own.end());
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Proc& p = procs_[static_cast<std::size_t>(node)];
  int rc = ::posix_spawn(&p.pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc == 0) remember_group(p.pid);
  ::close(in[0]);
  ::close(out[1]);
  if (err >= 0) ::close(err);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    p.pid = -1;
    throw std::runtime_error("cannot start " + opt_.bin + ": " + std::strerror(rc));
  }
  p.in_fd = in[1];
  p.out_fd = out[0];
  ::fcntl(p.in_fd, F_SETFL, O_NONBLOCK);
  ::fcntl(p.out_fd, F_SETFL, O_NONBLOCK);
}

Cluster::~Cluster() { kill_all(); }

// Kills every node's group, reaps what is left, and closes every pipe.
void Cluster::kill_all() {
  for (std::size_t i = 1; i < procs_.size(); ++i) {
    Proc& p = procs_[i];
    if (p.pid > 0 && !p.exit.reaped) {  // a reaped leader's group id may be anyone's by now
      ::kill(-p.pid, SIGKILL);
      reap(p, true);
    }
    if (p.in_fd >= 0) ::close(p.in_fd);
    if (p.out_fd >= 0) ::close(p.out_fd);
    p.in_fd = p.out_fd = -1;
  }
}

std::int64_t Cluster::now_us() const { return steady_us() - start_us_; }

void Cluster::send(int node, std::string_view line) {
  if (node < 1 || node > size()) return;
  enqueue(procs_[static_cast<std::size_t>(node)], line);
}

bool Cluster::enqueue(Proc& p, std::string_view line) {
  if (p.in_fd < 0) {
    ++undeliverable_;
    return false;
  }
  if (p.outbox.size() - p.outbox_at + line.size() + 1 > kOutboxBytesMax) {
    p.exit.input_stuck = true;  // it stopped reading: drop, never block or grow without bound
    ++undeliverable_;
    return false;
  }
  p.outbox.append(line);
  p.outbox.push_back('\n');  // written by flush_all, once per loop pass: many lines per write()
  return true;
}

void Cluster::flush_all() {
  for (std::size_t i = 1; i < procs_.size(); ++i) flush(procs_[i]);
}

void Cluster::flush(Proc& p) {
  while (p.in_fd >= 0 && p.outbox_at < p.outbox.size()) {
    ssize_t n = ::write(p.in_fd, p.outbox.data() + p.outbox_at, p.outbox.size() - p.outbox_at);
    if (n > 0) {
      p.outbox_at += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      close_input(p);  // the node is gone (EPIPE): what it had not read is lost with it
    }
  }
  if (p.outbox_at == p.outbox.size()) {
    p.outbox.clear();
    p.outbox_at = 0;
  } else if (p.outbox_at > (1u << 20)) {
    p.outbox.erase(0, p.outbox_at);
    p.outbox_at = 0;
  }
}

void Cluster::close_input(Proc& p) {
  if (p.in_fd >= 0) ::close(p.in_fd);
  p.in_fd = -1;
  p.outbox.clear();
  p.outbox_at = 0;
}

std::int64_t Cluster::delay_us() {
  return std::llround(gossip_kv::sample_delay_us(opt_.dist, opt_.latency_ms * 1000.0, rng_));
}

SecondCounts& Cluster::second_at(std::int64_t t_us) {
  auto s = static_cast<std::size_t>(std::max<std::int64_t>(t_us, 0) / 1'000'000);
  if (s >= seconds_.size()) seconds_.resize(s + 1);
  return seconds_[s];
}

void Cluster::set_fault(std::optional<Fault> fault) {
  std::vector<bool> stop(procs_.size(), false);
  if (fault) {
    for (int node : fault->paused) {
      if (node >= 1 && node <= size()) stop[static_cast<std::size_t>(node)] = true;
    }
  }
  for (int i = 1; i <= size(); ++i) {
    if (stop[static_cast<std::size_t>(i)] != procs_[static_cast<std::size_t>(i)].paused) pause(i, stop[static_cast<std::size_t>(i)]);
  }
  fault_ = std::move(fault);
}

void Cluster::kill_node(int node) {
  Proc& p = procs_[static_cast<std::size_t>(node)];
  if (p.down) return;
  reap(p, false);
  if (p.exit.reaped || p.exit.output_ended || p.exit.input_stuck) {
    p.problems_before_kills.push_back("before the nemesis killed it: " + p.exit.describe());
  }
  if (p.pid > 0 && !p.exit.reaped) {
    ::kill(-p.pid, SIGKILL);
    reap(p, true);
  }
  close_input(p);
  if (p.out_fd >= 0) ::close(p.out_fd);
  p.out_fd = -1;
  p.inbuf.clear();  // a partial line dies with the process
  p.discarding = false;
  p.paused = false;
  p.delivered_paused.clear();
  p.routed_earlier += p.routed;
  p.routed = 0;
  p.down = true;
  p.exit.output_ended = true;  // not alive: nothing is sent to it, and nothing read from it
  p.exit.output_ended_us = now_us();
}

void Cluster::restart_node(int node) {
  Proc& p = procs_[static_cast<std::size_t>(node)];
  if (!p.down) return;
  p.exit = NodeExit{};
  p.pid = -1;
  spawn(node, true);
  p.down = false;
}

std::uint64_t Cluster::routed_by_earlier_lives() const {
  std::uint64_t n = 0;
  for (const Proc& p : procs_) n += p.routed_earlier;
  return n;
}

// Stops or resumes a node's whole process group. On resume, the messages handed to it while
// it was stopped count as delivered now.
void Cluster::pause(int node, bool stop) {
  Proc& p = procs_[static_cast<std::size_t>(node)];
  p.paused = stop;
  if (p.pid > 0 && !p.exit.reaped) ::kill(-p.pid, stop ? SIGSTOP : SIGCONT);
  if (stop) return;
  std::int64_t now = now_us();
  std::vector<std::string> lines = std::move(p.delivered_paused);
  p.delivered_paused.clear();
  if (on_delivery_) {
    for (const std::string& line : lines) on_delivery_(node, line, now);
  }
}

void Cluster::route(int from, std::string_view line, std::int64_t now, const ReplyFn& on_reply) {
  auto dest = top_level_string(line, "dest");
  if (!dest) {
    ++unroutable_;
    return;
  }
  int to = node_number(*dest);
  if (to == 0) return on_reply(from, line, now);  // a client: the caller's business
  if (to > size()) {
    ++unroutable_;
    return;
  }
  ++procs_[static_cast<std::size_t>(from)].routed;
  std::string_view type = body_type(line).value_or("?");
  auto counted = routed_by_type_.find(type);
  if (counted == routed_by_type_.end()) counted = routed_by_type_.emplace(std::string(type), 0).first;
  ++counted->second;
  ++second_at(now).sent;
  if (inflight_bytes_ + line.size() > kInflightBytesMax) {
    ++overflowed_;
    return;
  }
  inflight_bytes_ += line.size();
  inflight_.push({now + delay_us(), seq_++, from, to, std::string(line)});
  if (fault_ && fault_->duplicate > 0 && inflight_bytes_ + line.size() <= kInflightBytesMax &&
      std::bernoulli_distribution(fault_->duplicate)(fault_rng_)) {
    ++duplicated_;
    inflight_bytes_ += line.size();
    inflight_.push({now + delay_us(), seq_++, from, to, std::string(line)});
  }
}

void Cluster::deliver_due(std::int64_t now) {
  while (!inflight_.empty() && inflight_.top().at_us <= now) {
    const Delivery& d = inflight_.top();
    bool lost = procs_[static_cast<std::size_t>(d.to)].down ||
                (fault_ && (fault_->drops(d.from, d.to) ||
                            (fault_->loss > 0 && std::bernoulli_distribution(fault_->loss)(fault_rng_))));
    if (lost) {
      ++dropped_;
      ++second_at(now).dropped;
    } else {
      Proc& to = procs_[static_cast<std::size_t>(d.to)];
      if (enqueue(to, d.line)) {  // what a paused node keeps is bounded like its outbox
        if (to.paused) {
          to.delivered_paused.push_back(d.line);
        } else if (on_delivery_) {
          on_delivery_(d.to, d.line, now);
        }
      }
    }
    inflight_bytes_ -= d.line.size();
    inflight_.pop();
  }
}

void Cluster::read_output(int node, const ReplyFn* on_reply) {
  Proc& p = procs_[static_cast<std::size_t>(node)];
  char chunk[65536];
  std::size_t burst = 0;
  while (burst < kReadBurstBytes) {
    ssize_t n = ::read(p.out_fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      p.exit.output_ended = true;
      p.exit.output_ended_us = now_us();
      reap(p, false);
      return;
    }
    if (n < 0) return;
    burst += static_cast<std::size_t>(n);
    if (on_reply == nullptr) continue;  // shutting down: output is drained, not routed
    p.inbuf.append(chunk, static_cast<std::size_t>(n));
    take_lines(node, *on_reply);
  }
}

// Routes the whole lines in a node's input buffer. A line over kLineBytesMax is dropped, once,
// up to its newline; the node carries on.
void Cluster::take_lines(int node, const ReplyFn& on_reply) {
  Proc& p = procs_[static_cast<std::size_t>(node)];
  std::size_t start = 0, nl;
  while ((nl = p.inbuf.find('\n', start)) != std::string::npos) {
    if (!p.discarding) route(node, std::string_view(p.inbuf).substr(start, nl - start), now_us(), on_reply);
    p.discarding = false;
    start = nl + 1;
  }
  p.inbuf.erase(0, start);
  if (p.inbuf.size() > kLineBytesMax) {
    if (!p.discarding) ++unroutable_;
    p.discarding = true;
    p.inbuf.clear();
  }
}

void Cluster::reap(Proc& p, bool wait) {
  if (p.pid <= 0 || p.exit.reaped) return;
  int status = 0;
  if (::waitpid(p.pid, &status, wait ? 0 : WNOHANG) == p.pid) {
    p.exit.reaped = true;
    p.exit.wait_status = status;
    forget_group(p.pid);
  }
}

void Cluster::run_until(std::int64_t deadline_us, const ReplyFn& on_reply) {
  std::vector<pollfd> fds;
  std::vector<int> owner;
  for (;;) {
    std::int64_t now = now_us();
    deliver_due(now);
    flush_all();
    bool last = now >= deadline_us;
    std::int64_t wake = inflight_.empty() ? deadline_us : std::min(deadline_us, inflight_.top().at_us);
    fds.clear();
    owner.clear();
    for (int i = 1; i <= size(); ++i) {
      Proc& p = procs_[static_cast<std::size_t>(i)];
      if (!p.exit.output_ended) {
        fds.push_back({p.out_fd, POLLIN, 0});
        owner.push_back(i);
      }
      if (p.in_fd >= 0 && p.outbox_at < p.outbox.size()) {
        fds.push_back({p.in_fd, POLLOUT, 0});
        owner.push_back(-i);
      }
    }
    std::int64_t wait_us = last ? 0 : std::max<std::int64_t>(0, wake - now);
    timespec ts{static_cast<time_t>(wait_us / 1'000'000), static_cast<long>(wait_us % 1'000'000) * 1000};
    int ready = ::ppoll(fds.data(), fds.size(), &ts, nullptr);
    for (std::size_t k = 0; ready > 0 && k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      if (owner[k] > 0) {
        read_output(owner[k], &on_reply);
      } else {
        Proc& p = procs_[static_cast<std::size_t>(-owner[k])];
        if (fds[k].revents & (POLLERR | POLLHUP)) {
          close_input(p);
        } else {
          flush(p);
        }
      }
    }
    if (last) return;
  }
}

void Cluster::shutdown(std::int64_t grace_us) {
  if (shut_down_) return;
  shut_down_ = true;
  set_fault(std::nullopt);  // a stopped node would never exit
  for (int i = 1; i <= size(); ++i) close_input(procs_[static_cast<std::size_t>(i)]);
  std::int64_t until = now_us() + grace_us;
  for (;;) {
    bool running = false;
    for (int i = 1; i <= size(); ++i) {
      Proc& p = procs_[static_cast<std::size_t>(i)];
      if (!p.exit.output_ended) read_output(i, nullptr);  // a node blocked on output never ends
      reap(p, false);
      running |= p.pid > 0 && !p.exit.reaped;
    }
    if (!running || now_us() >= until) break;
    ::usleep(5'000);
  }
  for (int i = 1; i <= size(); ++i) {
    Proc& p = procs_[static_cast<std::size_t>(i)];
    if (p.pid <= 0 || p.exit.reaped) continue;
    p.exit.killed_at_shutdown = true;
    ::kill(-p.pid, SIGKILL);  // the group: also whatever the node started
    reap(p, true);
  }
}

std::uint64_t Cluster::routed_total() const {
  std::uint64_t n = 0;
  for (const Proc& p : procs_) n += p.routed + p.routed_earlier;
  return n;
}

}  // namespace gossip_bench
