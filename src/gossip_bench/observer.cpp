#include "observer.h"

#include <algorithm>
#include <charconv>
#include <string>

#include <rapidjson/document.h>

namespace gossip_bench {
namespace {

// gossip-kv's encoded integer key "i<digits>"; false for string keys (the workload has none).
bool int_key(const rapidjson::Value& v, std::int64_t* key) {
  if (!v.IsString() || v.GetStringLength() < 2 || v.GetString()[0] != 'i') return false;
  const char* s = v.GetString();
  auto [end, ec] = std::from_chars(s + 1, s + v.GetStringLength(), *key);
  return ec == std::errc() && end == s + v.GetStringLength();
}

}  // namespace

ConvergenceObserver::ConvergenceObserver(int nodes)
    : nodes_(nodes), held_(static_cast<std::size_t>(nodes) + 1), node_of_origin_(static_cast<std::size_t>(nodes) + 1, 0) {
  // gossip-kv numbers origins by the sorted node ids: n1, n10, n11, ..., n2, ...
  std::vector<std::string> ids;
  for (int n = 1; n <= nodes; ++n) ids.push_back("n" + std::to_string(n));
  std::sort(ids.begin(), ids.end());
  for (std::size_t i = 0; i < ids.size(); ++i) node_of_origin_[i + 1] = std::stoi(ids[i].substr(1));
}

void ConvergenceObserver::on_delivered(int to, std::string_view line, std::int64_t t_us) {
  // Entries ride in "e" (pushes, answers, sync_entries) and as items with a value in content
  // sync's "k" groups (sync_keys: [bucket, (after, through,) [[key, ts, origin, "value"]...]]).
  bool has_e = line.find("\"e\":[") != std::string_view::npos;
  bool has_k = line.find("\"k\":[") != std::string_view::npos;
  if (!has_e && !has_k) return;  // digests, acks, trees: no entries
  rapidjson::Document d;
  d.Parse(line.data(), line.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("body") || !d["body"].IsObject()) return;
  const rapidjson::Value& body = d["body"];
  auto take = [&](const rapidjson::Value& e, bool needs_value) {
    std::int64_t key = 0;
    if (!e.IsArray() || e.Size() < 2 || !int_key(e[0], &key) || !e[1].IsInt64()) return;
    if (needs_value && (e.Size() < 4 || !e[3].IsString())) return;  // a hash, not the entry
    ++entries_seen_;
    if (crash_candidates_ > 0 && e.Size() >= 3 && e[2].IsInt64()) rescue(key, e[1].GetInt64(), e[2].GetInt64());
    raise(to, key, e[1].GetInt64(), t_us);
  };
  if (body.HasMember("e") && body["e"].IsArray()) {
    for (const auto& e : body["e"].GetArray()) take(e, false);
  }
  if (body.HasMember("k") && body["k"].IsArray()) {
    for (const auto& group : body["k"].GetArray()) {
      if (!group.IsArray() || group.Empty() || !group[group.Size() - 1].IsArray()) continue;
      for (const auto& item : group[group.Size() - 1].GetArray()) take(item, true);
    }
  }
}

void ConvergenceObserver::on_write(int origin, std::int64_t key, std::int64_t ts_us, std::int64_t taken_us,
                                   std::int64_t /*now_us*/) {
  Pending p{taken_us, 0, origin, 0};
  // (A write whose version ties another origin's on the same key and microsecond is not
  // followed: versions also order by origin, which the replies do not carry. Neither is
  // registered, so a node's figure for either is not compared. Clocks skewed by seconds
  // made such ties: a hybrid clock that observed one version issues the next microsecond.)
  auto [first, fresh] = origin_of_version_.try_emplace({key, ts_us}, origin);
  if (!fresh) {
    tied_.insert({first->second, ts_us});
    tied_.insert({origin, ts_us});
    raise(origin, key, ts_us, taken_us);  // it holds a version that new all the same
    return;
  }
  auto& by_ts = pending_[key];
  registered_.insert({origin, ts_us});
  // Replicas that hold a newer version already: each since it came to hold that version at
  // the latest (perhaps earlier, through a version in between), and not before it was taken.
  p.last_us = taken_us;
  for (int n = 1; n <= nodes_; ++n) {
    auto it = held_[static_cast<std::size_t>(n)].find(key);
    if (it == held_[static_cast<std::size_t>(n)].end() || it->second.ts_us < ts_us) continue;
    ++p.reached;
    p.last_us = std::max(p.last_us, it->second.since_us);
  }
  if (p.reached == nodes_) {  // everyone had it before its acknowledgement was read
    converged(origin, key, ts_us, taken_us, p.last_us);
    return;
  }
  by_ts.emplace(ts_us, p);
  // The origin holds it from when it took it, not from when its acknowledgement was read: a
  // replica's own newer write of a key counts from then for the writes it supersedes, as the
  // replica itself reports (a 6 ms reply under load put the router's figure after the nodes').
  raise(origin, key, ts_us, taken_us);  // counts the origin unless it held it already
}

void ConvergenceObserver::raise(int node, std::int64_t key, std::int64_t ts_us, std::int64_t t_us) {
  Held& newest = held_[static_cast<std::size_t>(node)][key];
  std::int64_t old = newest.ts_us;
  if (ts_us <= old) return;
  newest = {ts_us, t_us};
  auto writes = pending_.find(key);
  if (writes == pending_.end()) return;
  auto& by_ts = writes->second;
  for (auto it = by_ts.upper_bound(old); it != by_ts.end() && it->first <= ts_us;) {
    // Not before any replica came to hold it: this one's time may be earlier than another's
    // (an origin's write counts from when it was taken, its acknowledgement read later).
    it->second.last_us = std::max(it->second.last_us, t_us);
    if (++it->second.reached < nodes_) {
      ++it;
      continue;
    }
    if (it->second.crashed_wall_us != 0) {  // held everywhere only as a newer version
      lost_with_crash_.push_back({it->second.origin, key, it->first});
      --crash_candidates_;
    } else {
      converged(it->second.origin, key, it->first, it->second.taken_us, it->second.last_us);
    }
    it = by_ts.erase(it);
  }
}

void ConvergenceObserver::converged(int origin, std::int64_t key, std::int64_t ts_us, std::int64_t taken_us,
                                    std::int64_t t_us) {
  converged_ms_.push_back((t_us - taken_us) / 1000);
  converged_ms_of_[{origin, ts_us}] = converged_ms_.back();
  converged_taken_us_.push_back(taken_us);
  if (key >= track_from_key_) converged_at_[{key, ts_us}] = t_us;
}

std::int64_t ConvergenceObserver::converged_ms_of(int origin, std::int64_t ts_us) const {
  if (tied_.contains({origin, ts_us})) return -1;
  auto it = converged_ms_of_.find({origin, ts_us});
  if (it != converged_ms_of_.end()) return it->second;
  return registered_.contains({origin, ts_us}) ? kNever : -1;
}

std::int64_t ConvergenceObserver::converged_at(std::int64_t key, std::int64_t ts_us) const {
  auto it = converged_at_.find({key, ts_us});
  return it == converged_at_.end() ? -1 : it->second;
}

void ConvergenceObserver::rescue(std::int64_t key, std::int64_t ts_us, std::int64_t origin) {
  if (origin < 1 || origin > nodes_) return;
  int node = node_of_origin_[static_cast<std::size_t>(origin)];
  auto writes = pending_.find(key);
  if (writes == pending_.end()) return;
  for (auto& [ts, p] : writes->second) {
    if (ts > ts_us) break;
    if (p.origin == node && p.crashed_wall_us != 0 && ts_us < p.crashed_wall_us) {
      p.crashed_wall_us = 0;  // an entry of its earlier life, still in flight at the kill
      --crash_candidates_;
    }
  }
}

void ConvergenceObserver::on_killed(const std::vector<int>& nodes, std::int64_t wall_us) {
  auto killed = [&nodes](int n) { return std::find(nodes.begin(), nodes.end(), n) != nodes.end(); };
  auto holds = [this](int n, std::int64_t key, std::int64_t ts) {
    const auto& held = held_[static_cast<std::size_t>(n)];
    auto it = held.find(key);
    return it != held.end() && it->second.ts_us >= ts;
  };
  for (auto& [key, by_ts] : pending_) {
    for (auto& [ts, p] : by_ts) {
      for (int k : nodes) {
        if (holds(k, key, ts)) --p.reached;
      }
      if (!killed(p.origin) || p.crashed_wall_us != 0) continue;
      bool elsewhere = false;
      for (int n = 1; n <= nodes_ && !elsewhere; ++n) elsewhere = !killed(n) && holds(n, key, ts);
      if (!elsewhere) {
        p.crashed_wall_us = wall_us;
        ++crash_candidates_;
      }
    }
  }
  for (int k : nodes) held_[static_cast<std::size_t>(k)].clear();
}

std::uint64_t ConvergenceObserver::unconverged() const {
  std::uint64_t n = 0;
  for (const auto& [key, writes] : pending_) n += writes.size();
  return n - crash_candidates_;
}

std::vector<std::array<std::int64_t, 3>> ConvergenceObserver::lost_with_crash() const {
  std::vector<std::array<std::int64_t, 3>> lost = lost_with_crash_;
  for (const auto& [key, writes] : pending_) {
    for (const auto& [ts, p] : writes) {
      if (p.crashed_wall_us != 0) lost.push_back({p.origin, key, ts});
    }
  }
  return lost;
}

}  // namespace gossip_bench
