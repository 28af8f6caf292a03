#include "poll_observer.h"

#include <algorithm>

namespace gossip_bench {

PollObserver::PollObserver(int nodes, const std::vector<Op>* history) : nodes_(nodes), history_(history) {}

void PollObserver::on_issued(std::size_t op) { op_of_value_[(*history_)[op].value] = op; }

void PollObserver::on_acked(std::size_t op, std::int64_t now_us) {
  const Op& w = (*history_)[op];
  Tracked t{op, std::vector<bool>(static_cast<std::size_t>(nodes_) + 1, false), 0};
  see(t, w.node);  // its node acknowledged it
  if (t.seen_count == nodes_) return converge(t, now_us);  // a one-node cluster
  pending_[w.key].push_back(std::move(t));
  ++pending_count_;
}

void PollObserver::see(Tracked& t, int node) {
  if (node < 1 || node > nodes_ || t.seen[static_cast<std::size_t>(node)]) return;
  t.seen[static_cast<std::size_t>(node)] = true;
  ++t.seen_count;
}

void PollObserver::unsee(Tracked& t, int node) {
  if (node < 1 || node > nodes_ || !t.seen[static_cast<std::size_t>(node)]) return;
  t.seen[static_cast<std::size_t>(node)] = false;
  --t.seen_count;
}

void PollObserver::converge(const Tracked& t, std::int64_t now_us) {
  const Op& w = (*history_)[t.op];
  converged_ms_.push_back((now_us - w.invoke_us) / 1000);
  converged_taken_us_.push_back(w.invoke_us);
  converged_at_[t.op] = now_us;
}

std::vector<std::pair<int, std::int64_t>> PollObserver::polls_due() {
  std::vector<std::pair<int, std::int64_t>> due;
  for (const auto& [key, writes] : pending_) {
    for (int n = 1; n <= nodes_; ++n) {
      bool lacking = false;
      for (const Tracked& t : writes) lacking |= !t.seen[static_cast<std::size_t>(n)];
      if (lacking && in_flight_.insert({n, key}).second) due.emplace_back(n, key);
    }
  }
  return due;
}

bool PollObserver::superseded(const Tracked& t, std::int64_t key) const {
  auto it = last_shown_.find(key);
  if (it == last_shown_.end()) return false;
  std::size_t common = it->second[1];
  if (common == 0 || common - 1 == t.op) return false;
  for (int n = 2; n <= nodes_; ++n) {
    if (it->second[static_cast<std::size_t>(n)] != common) return false;
  }
  // Concurrent, not older: invoked before t's write was acknowledged, acknowledged (if ever)
  // after it was invoked.
  const Op& w = (*history_)[t.op];
  const Op& other = (*history_)[common - 1];
  return other.complete_us == kUnknown || other.complete_us >= w.invoke_us;
}

void PollObserver::on_answer(int node, std::int64_t key, std::int64_t value, std::int64_t now_us) {
  in_flight_.erase({node, key});
  auto writes = pending_.find(key);
  if (writes == pending_.end() || value == kUnknown || node < 1 || node > nodes_) return;
  auto read = op_of_value_.find(value);
  if (read == op_of_value_.end()) return;  // not a value this run wrote
  auto& shown_by = last_shown_[key];
  shown_by.resize(static_cast<std::size_t>(nodes_) + 1, 0);
  shown_by[static_cast<std::size_t>(node)] = read->second + 1;
  const Op& shown = (*history_)[read->second];
  auto& list = writes->second;
  for (auto it = list.begin(); it != list.end();) {
    const Op& w = (*history_)[it->op];
    // The write itself, or one invoked after it was acknowledged (so later in real time).
    bool holds = read->second == it->op || shown.invoke_us > w.complete_us;
    if (holds) see(*it, node);
    if (it->crash_candidate && read->second == it->op) {  // a message of the dead life delivered it
      it->crash_candidate = false;
      --crash_candidates_;
    }
    bool done = it->seen_count == nodes_ && !it->crash_candidate;
    if (!done && !superseded(*it, key)) {
      ++it;
      continue;
    }
    if (done) converge(*it, now_us);
    if (it->crash_candidate) {
      lost_with_crash_.push_back(it->op);
      --crash_candidates_;
    }
    --pending_count_;
    it = list.erase(it);
  }
  if (list.empty()) pending_.erase(writes);
}

void PollObserver::forget_polls_of(int node) {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    it = it->first == node ? in_flight_.erase(it) : std::next(it);
  }
}

void PollObserver::on_killed(const std::vector<int>& nodes) {
  for (auto& [key, writes] : pending_) {
    for (Tracked& t : writes) {
      for (int k : nodes) unsee(t, k);
      int origin = (*history_)[t.op].node;
      bool killed = std::find(nodes.begin(), nodes.end(), origin) != nodes.end();
      if (killed && t.seen_count == 0 && !t.crash_candidate) {
        t.crash_candidate = true;
        ++crash_candidates_;
      }
    }
  }
  for (auto& [key, shown_by] : last_shown_) {
    for (int k : nodes) {
      if (static_cast<std::size_t>(k) < shown_by.size()) shown_by[static_cast<std::size_t>(k)] = 0;
    }
  }
  for (int k : nodes) forget_polls_of(k);
}

std::vector<std::size_t> PollObserver::lost_with_crash() const {
  std::vector<std::size_t> lost = lost_with_crash_;
  for (const auto& [key, writes] : pending_) {
    for (const Tracked& t : writes) {
      if (t.crash_candidate) lost.push_back(t.op);
    }
  }
  return lost;
}

std::int64_t PollObserver::converged_at(std::size_t op) const {
  auto it = converged_at_.find(op);
  return it == converged_at_.end() ? -1 : it->second;
}

}  // namespace gossip_bench
