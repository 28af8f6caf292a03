#include "simulator.h"

#include <algorithm>
#include <cmath>

namespace gossip_kv::sim {

Simulator::Simulator(int nodes, const GossipConfig& gossip, const NetConfig& net,
                     std::uint64_t seed)
    : nodes_(static_cast<std::size_t>(nodes) + 1), net_(net), rng_(seed),
      group_(static_cast<std::size_t>(nodes) + 1, 0) {
  for (int i = 1; i <= nodes; ++i) ids_.push_back("n" + std::to_string(i));
  std::sort(ids_.begin(), ids_.end());
  for (int i = 1; i <= nodes; ++i) {
    Node& n = nodes_[i];
    n.store = std::make_unique<Store>(1);
    n.engine = std::make_unique<GossipEngine>(gossip, "n" + std::to_string(i), ids_, *n.store,
                                              rng_(), now_us_);
    reschedule(i);
  }
}

std::int64_t Simulator::delay_us() {
  double d = sample_delay_us(net_.dist, net_.latency_ms * 1000.0, rng_);
  return std::max<std::int64_t>(1, std::llround(d));
}

void Simulator::route(int from, std::vector<OutMessage>& out) {
  for (OutMessage& m : out) {
    ++messages_sent_;
    int to = std::stoi(m.dest.substr(1));
    std::uniform_real_distribution<double> u(0, 1);
    if (group_[from] != group_[to] || u(rng_) < net_.loss) {
      ++messages_dropped_;
      continue;
    }
    int copies = u(rng_) < net_.duplicate ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      inflight_.push({now_us_ + delay_us(), seq_++, to, from, c + 1 < copies ? m.body : std::move(m.body)});
    }
  }
  out.clear();
}

void Simulator::reschedule(int node) {
  nodes_[node].deadline_us = nodes_[node].engine->next_deadline_us();
  timers_.push({nodes_[node].deadline_us, node});
}

Version Simulator::write(int node, const std::string& key, const std::string& value) {
  Node& n = nodes_[node];
  auto origin = static_cast<std::uint32_t>(
      std::lower_bound(ids_.begin(), ids_.end(), "n" + std::to_string(node)) - ids_.begin() + 1);
  Store::WriteResult w = n.store->write(key, value, now_us_, origin, n.clock);
  n.engine->on_local_delta({w.entry, w.version, now_us_, true}, now_us_);
  n.engine->on_local_watermark(w.version.ts_us);  // one thread: every write is handed over
  reschedule(node);
  WriteRecord r{key, w.version, now_us_, -1, 0, std::vector<bool>(nodes_.size(), false)};
  writes_.push_back(std::move(r));
  unconverged_.push_back(writes_.size() - 1);
  auto& best = newest_[key];
  if (best.first < w.version) best = {w.version, value};
  observe_holders(node);
  return w.version;
}

std::optional<std::string> Simulator::read(int node, const std::string& key) {
  std::string v;
  if (!nodes_[node].store->read(key, now_us_, &v, nullptr)) return std::nullopt;
  return v;
}

void Simulator::partition(std::vector<int> group_of_node) { group_ = std::move(group_of_node); }
void Simulator::heal() { std::fill(group_.begin(), group_.end(), 0); }

// Marks the writes `node` now holds (that version or a newer one of its key).
void Simulator::observe_holders(int node) {
  Store& s = *nodes_[node].store;
  auto keep = unconverged_.begin();
  for (std::size_t idx : unconverged_) {
    WriteRecord& w = writes_[idx];
    if (!w.held[static_cast<std::size_t>(node)]) {
      const Entry* e = s.find(w.key);
      if (e != nullptr && !(s.load(*e, nullptr) < w.version)) {
        w.held[static_cast<std::size_t>(node)] = true;
        if (++w.holders == static_cast<std::uint32_t>(size())) w.everywhere_us = now_us_;
      }
    }
    if (w.everywhere_us < 0) *keep++ = idx;
  }
  unconverged_.erase(keep, unconverged_.end());
}

void Simulator::run_until(std::int64_t t_us) {
  std::int64_t end = kEpochUs + t_us;
  for (;;) {
    while (!timers_.empty() && timers_.top().first != nodes_[timers_.top().second].deadline_us) {
      timers_.pop();  // superseded
    }
    std::int64_t next_msg = inflight_.empty() ? INT64_MAX : inflight_.top().at_us;
    std::int64_t next_timer = timers_.empty() ? INT64_MAX : timers_.top().first;
    std::int64_t next = std::min(next_msg, next_timer);
    if (next > end) break;
    now_us_ = std::max(now_us_, next);
    if (next_msg <= next_timer) {
      Message m = inflight_.top();
      inflight_.pop();
      nodes_[m.to].engine->on_peer_message("n" + std::to_string(m.from),
                                           m.body, now_us_, out_);
      observe_holders(m.to);
      route(m.to, out_);
      reschedule(m.to);
    } else {
      int node = timers_.top().second;
      timers_.pop();
      nodes_[node].engine->tick(now_us_, out_);
      route(node, out_);
      reschedule(node);
    }
  }
  now_us_ = std::max(now_us_, end);
}

bool Simulator::all_digests_equal() const {
  std::uint64_t d = nodes_[1].store->digest();
  for (std::size_t i = 2; i < nodes_.size(); ++i) {
    if (nodes_[i].store->digest() != d) return false;
  }
  return true;
}

}  // namespace gossip_kv::sim
