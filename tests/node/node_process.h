// Test harness for end-to-end tests: runs the built node binary (GOSSIP_KV_NODE_BIN) as a child
// process, feeds it lines on stdin and collects its stdout lines, exit status and stderr text.
// Also JSON helpers for comparing output lines as JSON values (numbers by value).
//
// Header-only: tests/CMakeLists.txt globs *_test.cpp into one executable.
//
// Thread safety: NodeProcess::send() may be called from many threads at once (each line is
// written whole, under a mutex, so the node sees lines in the order send() took the mutex);
// read_line() must be called from one thread at a time; the rest from the owning thread.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

extern char** environ;

namespace gossip_kv::test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Exit status as the shell reports it: the exit code, or 128 + the signal that ended it.
inline constexpr int kStatusTimedOut = -1;

class NodeProcess {
 public:
  // Spawns `binary args...` with stdin/stdout on pipes and stderr in an unlinked temp file.
  explicit NodeProcess(const std::vector<std::string>& args = {},
                       std::string binary = GOSSIP_KV_NODE_BIN) {
    // A write to the pipe of a child that died must fail with EPIPE, not kill the test.
    ::signal(SIGPIPE, SIG_IGN);
    int in_pipe[2];
    int out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) {
      error_ = std::string("pipe2: ") + std::strerror(errno);
      return;
    }
    char tmpl[] = "/tmp/gossip-kv-test-stderr-XXXXXX";
    err_fd_ = ::mkostemp(tmpl, O_CLOEXEC);
    if (err_fd_ < 0) {
      error_ = std::string("mkostemp: ") + std::strerror(errno);
      return;
    }
    ::unlink(tmpl);

    std::vector<std::string> argv_store;
    argv_store.push_back(binary);
    argv_store.insert(argv_store.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // dup2 clears FD_CLOEXEC on the target; every other pipe end closes on exec.
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_fd_, 2);
    // The child starts with SIGPIPE at its default (the node sets its own handling).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    int rc = ::posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    in_fd_ = in_pipe[1];
    out_fd_ = out_pipe[0];
    if (rc != 0) {
      error_ = "posix_spawn " + binary + ": " + std::strerror(rc);
      pid_ = -1;
    }
  }

  ~NodeProcess() {
    close_stdin();
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // Empty when the child started; otherwise why it did not.
  [[nodiscard]] const std::string& start_error() const { return error_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // Writes line + '\n' whole. Returns false when the pipe is closed (the child is gone).
  bool send(std::string_view line) {
    std::lock_guard lock(send_mu_);
    return send_locked(line);
  }
  // Writes raw bytes as they are (no newline added): for lines split across writes.
  bool send_raw(std::string_view bytes) {
    std::lock_guard lock(send_mu_);
    return write_all(bytes);
  }
  // The mutex send() holds while it writes: hold it to pair an action with a line's position in
  // the node's input (then call send_locked()).
  std::mutex& send_mutex() { return send_mu_; }
  bool send_locked(std::string_view line) {
    std::string buf;
    buf.reserve(line.size() + 1);
    buf.append(line);
    buf.push_back('\n');
    return write_all(buf);
  }

  void close_stdin() {
    std::lock_guard lock(send_mu_);
    if (in_fd_ >= 0) {
      ::close(in_fd_);
      in_fd_ = -1;
    }
  }

  // The next stdout line (without its newline), or nullopt on timeout or end of output
  // (eof() tells which).
  std::optional<std::string> read_line(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      std::size_t nl = out_buf_.find('\n', scan_from_);
      if (nl != std::string::npos) {
        std::string line = out_buf_.substr(0, nl);
        out_buf_.erase(0, nl + 1);
        scan_from_ = 0;
        return line;
      }
      scan_from_ = out_buf_.size();
      if (eof_) {
        if (!out_buf_.empty()) {  // a last line without its newline
          std::string line;
          line.swap(out_buf_);
          scan_from_ = 0;
          return line;
        }
        return std::nullopt;
      }
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{out_fd_, POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) continue;  // the deadline check above ends the wait
      char chunk[65536];
      ssize_t got = ::read(out_fd_, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        eof_ = true;
        continue;
      }
      out_buf_.append(chunk, static_cast<std::size_t>(got));
    }
  }
  [[nodiscard]] bool eof() const { return eof_; }

  // Reads every remaining stdout line until end of output; false when the deadline passed first.
  bool read_all(std::vector<std::string>* lines, Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) left = milliseconds(0);
      std::optional<std::string> line = read_line(left);
      if (line) {
        lines->push_back(std::move(*line));
        continue;
      }
      if (eof_) return true;
      if (Clock::now() >= deadline) return false;
    }
  }

  // Waits for the child to exit; kills it when the timeout passes first. Returns its status
  // (exit code, or 128 + signal), or kStatusTimedOut when it had to be killed.
  int wait(milliseconds timeout) {
    if (pid_ <= 0) return kStatusTimedOut;
    if (exited_) return status_;
    auto deadline = Clock::now() + timeout;
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return status_;
      }
      if (Clock::now() >= deadline) {
        kill();
        return kStatusTimedOut;
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
  }

  void kill() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      exited_ = true;
      status_ = kStatusTimedOut;
    }
  }

  // Everything the child wrote to stderr so far.
  [[nodiscard]] std::string stderr_text() const {
    std::string text;
    char chunk[65536];
    off_t off = 0;
    for (;;) {
      ssize_t n = ::pread(err_fd_, chunk, sizeof chunk, off);
      if (n <= 0) break;
      text.append(chunk, static_cast<std::size_t>(n));
      off += n;
    }
    return text;
  }

 private:
  bool write_all(std::string_view bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      if (in_fd_ < 0) return false;
      ssize_t n = ::write(in_fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string error_;
  std::mutex send_mu_;
  std::string out_buf_;
  std::size_t scan_from_ = 0;
  bool eof_ = false;
  bool exited_ = false;
  int status_ = 0;
};

struct RunResult {
  std::vector<std::string> lines;  // stdout, one entry per line, without newlines
  int status = kStatusTimedOut;     // exit status, or kStatusTimedOut (the child was killed)
  bool timed_out = false;
  std::string stderr_text;
  std::string start_error;
};

// Batch mode: writes every input line (each followed by '\n'), closes stdin, and reads stdout to
// its end, all within `timeout`; kills the child when the timeout passes.
inline RunResult run_node(const std::vector<std::string>& input,
                          const std::vector<std::string>& args = {},
                          milliseconds timeout = milliseconds(60000)) {
  RunResult result;
  // GOSSIP_KV_DUMP_INPUT=<file>: every input line is appended to <file> (how the fuzz targets'
  // seed corpora are drawn from these tests: scripts/fuzz_corpus.sh).
  if (const char* dump = std::getenv("GOSSIP_KV_DUMP_INPUT"); dump != nullptr && *dump != 0) {
    if (FILE* f = std::fopen(dump, "ae"); f != nullptr) {
      for (const std::string& line : input) {
        std::fwrite(line.data(), 1, line.size(), f);
        std::fputc('\n', f);
      }
      std::fclose(f);
    }
  }
  NodeProcess node(args);
  result.start_error = node.start_error();
  if (!result.start_error.empty()) return result;
  auto deadline = Clock::now() + timeout;
  // Writing and reading at once: a large input must not block on a full stdout pipe.
  std::thread feeder([&] {
    std::string block;
    for (const std::string& line : input) {
      block.append(line);
      block.push_back('\n');
      if (block.size() >= 256 * 1024) {
        if (!node.send_raw(block)) break;
        block.clear();
      }
    }
    if (!block.empty()) node.send_raw(block);
    node.close_stdin();
  });
  bool complete = node.read_all(&result.lines, deadline);
  if (!complete) node.kill();
  feeder.join();
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  result.status = complete ? node.wait(std::max(left, milliseconds(100))) : kStatusTimedOut;
  result.timed_out = result.status == kStatusTimedOut;
  result.stderr_text = node.stderr_text();
  return result;
}

// ---- JSON helpers ------------------------------------------------------------------------

inline bool parse_json(std::string_view text, rapidjson::Document* doc) {
  doc->Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  return !doc->HasParseError();
}

// Deep equality of JSON values where numbers compare by value (0 == 0.0; integers exactly,
// otherwise as doubles), strings by bytes, objects regardless of member order.
template <class V>
bool json_equal(const V& a, const V& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.IsInt64() && b.IsInt64()) return a.GetInt64() == b.GetInt64();
    if (a.IsUint64() && b.IsUint64()) return a.GetUint64() == b.GetUint64();
    if ((a.IsInt64() || a.IsUint64()) && (b.IsInt64() || b.IsUint64())) return false;
    return a.GetDouble() == b.GetDouble();
  }
  if (a.GetType() != b.GetType()) return false;
  if (a.IsString()) {
    return a.GetStringLength() == b.GetStringLength() &&
           std::memcmp(a.GetString(), b.GetString(), a.GetStringLength()) == 0;
  }
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!json_equal(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) return false;
    for (auto m = a.MemberBegin(); m != a.MemberEnd(); ++m) {
      auto found = b.FindMember(m->name);
      if (found == b.MemberEnd() || !json_equal(m->value, found->value)) return false;
    }
    return true;
  }
  return true;  // null, true, false: the types matched
}

// True when both texts parse and denote the same JSON value.
inline bool json_text_equal(std::string_view a, std::string_view b) {
  rapidjson::Document da;
  rapidjson::Document db;
  if (!parse_json(a, &da) || !parse_json(b, &db)) return false;
  return json_equal(da, db);
}

// ---- Raw JSON text of a member -------------------------------------------------------------
// A small scanner independent of the node's codec, to check that values come back byte for
// byte: it returns the exact text span of a value inside a line. It assumes the text is valid
// JSON (check with parse_json first).

namespace raw_detail {

inline std::size_t skip_ws(std::string_view t, std::size_t i) {
  while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n')) ++i;
  return i;
}

// Returns the index just past the string starting at t[i] == '"'.
inline std::size_t skip_string(std::string_view t, std::size_t i) {
  ++i;
  while (i < t.size() && t[i] != '"') i += t[i] == '\\' ? 2 : 1;
  return i + 1;
}

// Returns the index just past the value starting at t[i].
inline std::size_t skip_value(std::string_view t, std::size_t i) {
  if (i >= t.size()) return i;
  if (t[i] == '"') return skip_string(t, i);
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    while (i < t.size()) {
      char c = t[i];
      if (c == '"') {
        i = skip_string(t, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return i;
  }
  while (i < t.size() && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' &&
         t[i] != '\t' && t[i] != '\r' && t[i] != '\n') {
    ++i;
  }
  return i;
}

// The raw text of member `name` of the object whose '{' is at t[i]; nullopt when absent.
inline std::optional<std::string_view> member(std::string_view t, std::size_t i,
                                              std::string_view name) {
  i = skip_ws(t, i);
  if (i >= t.size() || t[i] != '{') return std::nullopt;
  i = skip_ws(t, i + 1);
  while (i < t.size() && t[i] == '"') {
    std::size_t name_end = skip_string(t, i);
    std::string_view key = t.substr(i + 1, name_end - i - 2);  // names here carry no escapes
    i = skip_ws(t, name_end);
    i = skip_ws(t, i + 1);  // ':'
    std::size_t end = skip_value(t, i);
    if (key == name) return t.substr(i, end - i);
    i = skip_ws(t, end);
    if (i < t.size() && t[i] == ',') i = skip_ws(t, i + 1);
  }
  return std::nullopt;
}

}  // namespace raw_detail

// The raw text of body.<name> in a message line, or nullopt.
inline std::optional<std::string_view> raw_body_member(std::string_view line,
                                                       std::string_view name) {
  auto body = raw_detail::member(line, 0, "body");
  if (!body) return std::nullopt;
  return raw_detail::member(*body, 0, name);
}

}  // namespace gossip_kv::test
