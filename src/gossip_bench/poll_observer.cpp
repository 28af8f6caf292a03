#include "poll_observer.h"

namespace gossip_bench {

PollObserver::PollObserver(int nodes, const std::vector<Op>* history) : nodes_(nodes), history_(history) {}

void PollObserver::on_issued(std::size_t op) { op_of_value_[(*history_)[op].value] = op; }

void PollObserver::on_acked(std::size_t op, std::int64_t now_us) {
  const Op& w = (*history_)[op];
  Tracked t{op, std::vector<bool>(static_cast<std::size_t>(nodes_) + 1, false), 0};
  auto& writes = pending_[w.key];
  writes.push_back(std::move(t));
  see(writes.back(), w.node);
  if (writes.back().seen_count == nodes_) {  // a one-node cluster
    converged_ms_.push_back((now_us - w.invoke_us) / 1000);
    converged_taken_us_.push_back(w.invoke_us);
    writes.pop_back();
    if (writes.empty()) pending_.erase(w.key);
  }
}

void PollObserver::see(Tracked& t, int node) {
  if (node < 1 || node > nodes_ || t.seen[static_cast<std::size_t>(node)]) return;
  t.seen[static_cast<std::size_t>(node)] = true;
  ++t.seen_count;
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

void PollObserver::on_answer(int node, std::int64_t key, std::int64_t value, std::int64_t now_us) {
  in_flight_.erase({node, key});
  auto writes = pending_.find(key);
  if (writes == pending_.end() || value == kUnknown) return;
  auto read = op_of_value_.find(value);
  if (read == op_of_value_.end()) return;  // not a value this run wrote
  const Op& shown = (*history_)[read->second];
  auto& list = writes->second;
  for (auto it = list.begin(); it != list.end();) {
    const Op& w = (*history_)[it->op];
    // The write itself, or one invoked after it was acknowledged (so later in real time).
    if (read->second == it->op || shown.invoke_us > w.complete_us) see(*it, node);
    if (it->seen_count < nodes_) {
      ++it;
      continue;
    }
    converged_ms_.push_back((now_us - w.invoke_us) / 1000);
    converged_taken_us_.push_back(w.invoke_us);
    it = list.erase(it);
  }
  if (list.empty()) pending_.erase(writes);
}

void PollObserver::forget_polls_of(int node) {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    it = it->first == node ? in_flight_.erase(it) : std::next(it);
  }
}

std::uint64_t PollObserver::unconverged() const {
  std::uint64_t n = 0;
  for (const auto& [key, writes] : pending_) n += writes.size();
  return n;
}

}  // namespace gossip_bench
