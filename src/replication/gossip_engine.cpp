// GossipEngine's glue: construction, local writes in, the timers (tick), entries from peers into
// the store, and the factory. The concerns live next door: wire.cpp (the peer wire format),
// dissemination.cpp (pushes, relays and the chain of watermarks), anti_entropy.cpp (digests and
// their answers), convergence.cpp (acknowledgements and the convergence figure), stats.cpp.
#include "replication/gossip_engine.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <memory>
#include <tuple>
#include <utility>

#include "gossip_kv/limits.h"
#include "replication/wire.h"

namespace gossip_kv {

GossipEngine::GossipEngine(const GossipConfig& config, std::string self,
                           std::vector<std::string> node_ids, Store& store, std::uint64_t seed,
                           std::int64_t now_us)
    : config_(config),
      self_(std::move(self)),
      ids_(std::move(node_ids)),
      me_(static_cast<std::uint32_t>(
          std::lower_bound(ids_.begin(), ids_.end(), self_) - ids_.begin() + 1)),
      store_(store),
      rng_(seed),
      wm_(ids_.size() + 1, 0),
      own_floor_(std::max<std::int64_t>(now_us - 1, 0)),
      sent_wm_(ids_.size() + 1, std::max<std::int64_t>(now_us - 1, 0)),  // this life's floor
      superseded_(ids_.size() + 1),
      owed_acks_(ids_.size() + 1),
      held_steps_(ids_.size() + 1),
      recent_acks_(ids_.size() + 1),
      last_sent_to_us_(ids_.size() + 1, now_us),
      last_repair_us_(ids_.size() + 1, INT64_MIN / 2),
      spans_(ids_.size() + 1),
      offsets_(ids_.size(), 0),  // rebuilt with the relay below, once hub_ is known
      next_push_us_(now_us + config.gossip_interval_ms * 1000),
      next_ae_us_(now_us + config.anti_entropy_interval_ms * 1000),
      next_sync_us_(INT64_MAX),
      next_ack_check_us_(now_us + config.ack_delay_max_ms * 1000) {
  assert(me_ <= ids_.size() && ids_[me_ - 1] == self_);
  // A push must fit the receiver's line whatever the flags say (peer_wire.h).
  config_.batch_bytes_max = std::min(config_.batch_bytes_max, peer_wire::kBatchBytesLimit);
  by_origin_.reserve(ids_.size() + 1);
  for (std::size_t o = 0; o <= ids_.size(); ++o) by_origin_.emplace_back(ByIndexedTs{}, &index_pool_);
  digest_answers_.assign(ids_.size() + 1, 0);
  last_cut_answer_us_.assign(ids_.size() + 1, INT64_MIN / 2);
  last_push_us_.assign(ids_.size() + 1, now_us);
  silent_.assign(ids_.size() + 1, 0);
  last_heard_us_.assign(ids_.size() + 1, now_us);
  floor_.assign(ids_.size() + 1, 0);
  floor_[me_] = own_floor_;
  before_floor_.assign(ids_.size() + 1, INT64_MAX);
  knows_earlier_.assign(ids_.size() + 1, 0);
  overlap_top_.assign(ids_.size() + 1, 0);
  alive_us_.assign(ids_.size() + 1, 0);
  last_life_probe_us_.assign(ids_.size() + 1, INT64_MIN / 2);
  heard_us_.assign(ids_.size() + 1, now_us);
  floor_sweep_from_.assign(ids_.size() + 1, INT64_MAX);
  heartbeat_owed_.assign(ids_.size() + 1, 0);
  report_msgs_sent_.assign(ids_.size() + 1, 0);
  report_seq_.assign(ids_.size() + 1, ReportSeq{});
  last_message_to_us_.assign(ids_.size() + 1, now_us);
  heard_lives_.assign(ids_.size() + 1, HeardLife{});
  life_changed_.assign(ids_.size() + 1, 0);
  split_held_.assign(ids_.size() + 1, INT64_MAX);
  split_floor_.assign(ids_.size() + 1, 0);
  unconverged_max_ = std::min(kUnconvergedMax, kReachSlotsMax / (ids_.size() + 1));
  auto relays = static_cast<std::uint32_t>(std::max(config.relays, 0));
  if (relays > 0 && ids_.size() > 2) {
    relays = std::min<std::uint32_t>(relays, static_cast<std::uint32_t>(ids_.size()));
    is_relay_ = me_ <= relays;
    if (!is_relay_) hub_ = 1 + (me_ - 1) % relays;
    if (is_relay_) next_push_us_ = now_us + config.relay_interval_ms * 1000;
    if (is_relay_) forwarded_.resize(ids_.size() + 1);
  }
  offsets_ = ClockOffsets(ids_.size(), hub_);
  // Stagger the first anti-entropy round so a cluster started at once does not pulse.
  next_ae_us_ += static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(
                     config.anti_entropy_interval_ms * 1000 + 1));
  if (ids_.size() > 1) {
    ContentSyncConfig sync_config;
    sync_config.future_ts_us_max = limits::kVersionAheadMaxUs;  // the window peers are held to
    sync_ = std::make_unique<ContentSync>(store_, ids_, me_, sync_config);
    sync_answers_.assign(ids_.size() + 1, 0);
    next_sync_us_ = now_us + static_cast<std::int64_t>(
                                 rng_() % static_cast<std::uint64_t>(kFirstSyncDelayMaxMs * 1000 + 1));
  }
}

void GossipEngine::on_local_watermark(std::int64_t safe_us) {
  wm_[me_] = std::max(wm_[me_], safe_us);
  if (config_.push_on_write && safe_us >= held_back_min_ts_) {
    held_back_min_ts_ = INT64_MAX;
    next_push_us_ = 0;  // the writes the last push held back can go now
  }
}

std::size_t GossipEngine::delta_room() const {
  // Writes the last push held back do not count: they wait for the safe watermark, which may
  // wait for a worker that waits for this room (a deadlock if they counted).
  std::size_t counted = pending_.size() - std::min(held_back_count_, pending_.size());
  if (counted >= kPendingDeltasMax || pending_.size() >= kPendingHeldMax) return 0;
  return std::min(kPendingDeltasMax - counted, kPendingHeldMax - pending_.size());
}

void GossipEngine::on_local_delta(const LocalDelta& d, std::int64_t now_us) {
  if (peer_count() == 0) {  // a one-node cluster: nothing to send, every write is everywhere
    if (d.client_write) converged_alone_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  index(d.entry, d.version);
  record_held(d.entry, d.version, now_us);
  // The own watermark moves only with on_local_watermark: deltas from several workers arrive
  // out of timestamp order, and a push must never vouch for a write it has not seen.
  add_pending(d.entry, d.version);
  if (config_.push_on_write) next_push_us_ = std::min(next_push_us_, now_us);
  if (!d.client_write || d.version.origin != me_) return;
  if (unconverged_.size() >= unconverged_max_) {
    if (unconverged_.front().complete_us != 0) --converged_in_deque_;
    if (!unconverged_.front().recorded) unmeasured_.fetch_add(1, std::memory_order_relaxed);
    pop_unconverged();
  }
  Unconverged u{d.version.ts_us, d.taken_us, d.entry, 0, {}, 0};
  if (spare_reach_.empty()) {
    u.reach_us.assign(ids_.size() + 1, 0);
  } else {  // a settled write's array: no allocation per write once warm
    u.reach_us = std::move(spare_reach_.back());
    spare_reach_.pop_back();
    std::fill(u.reach_us.begin(), u.reach_us.end(), 0);
  }
  // Deltas from several workers can arrive slightly out of timestamp order.
  auto pos = unconverged_.end();
  while (pos != unconverged_.begin() && std::prev(pos)->ts_us > u.ts_us) --pos;
  ++unconverged_of_key_[d.entry];
  unconverged_.insert(pos, std::move(u));
  pending_count_.store(unconverged_.size() - converged_in_deque_, std::memory_order_relaxed);
}

void GossipEngine::pop_unconverged() {
  // Kept while the spares hold fewer than kSpareSlotsKept slots, or are fewer than the writes
  // still in flight: a steady load's settling writes serve the next ones, and after a burst
  // the spares shrink with what is in flight.
  std::size_t slots = (spare_reach_.size() + 1) * (ids_.size() + 1);
  if (slots <= kSpareSlotsKept || spare_reach_.size() < unconverged_.size()) {
    spare_reach_.push_back(std::move(unconverged_.front().reach_us));
  }
  auto of_key = unconverged_of_key_.find(unconverged_.front().entry);
  if (of_key != unconverged_of_key_.end() && --of_key->second == 0) unconverged_of_key_.erase(of_key);
  unconverged_.pop_front();
  // After a burst the table would keep its size for good (65,536 keys, about 1 MiB).
  if (unconverged_.empty() && unconverged_of_key_.capacity() > kOfKeyCapacityKept) {
    absl::flat_hash_map<const Entry*, std::uint32_t>().swap(unconverged_of_key_);
  }
}

void GossipEngine::PendingDelta::stand_for(Version v) {
  if (v.origin == 0) return;  // no origin to report to
  auto end = stands.begin() + stands_count;
  if (std::find(stands.begin(), end, v) != end) return;
  if (stands_count < stands.size()) {
    stands[stands_count++] = v;
    return;
  }
  // Full: v joins and the one to leave out first goes (listed_write_to_drop: every origin
  // keeps its newest while there is room for one each, else the newest are kept).
  std::array<Version, std::tuple_size_v<decltype(stands)> + 1> with_v;
  std::copy(stands.begin(), end, with_v.begin());
  with_v[stands_count] = v;
  std::size_t drop = listed_write_to_drop(with_v.data(), stands_count + 1, [](std::size_t) { return true; });
  if (drop != stands_count) stands[drop] = v;
}

GossipEngine::PendingDelta& GossipEngine::add_pending(const Entry* entry, Version v, bool relayed) {
  auto [it, inserted] = pending_.try_emplace(entry, PendingDelta{v});
  if (!inserted) it->second.newest = std::max(it->second.newest, v);
  it->second.relayed |= relayed;
  it->second.stand_for(v);
  if (v.origin == me_) {
    it->second.oldest_own_us = std::min(it->second.oldest_own_us, v.ts_us);
    it->second.newest_own_us = std::max(it->second.newest_own_us, v.ts_us);
  }
  return it->second;
}

std::int64_t GossipEngine::next_deadline_us() const {
  return std::min({next_push_us_, next_ae_us_, next_sync_us_, next_ack_check_us_});
}

void GossipEngine::tick(std::int64_t now_us, std::vector<OutMessage>& out) {
  send_now_us_ = now_us;
  if (now_us >= next_push_us_) {
    push_round(now_us, out);
    std::int64_t interval_ms = is_relay_ ? config_.relay_interval_ms : config_.gossip_interval_ms;
    // A backlog beyond one full message (a burst) goes out message after message: each one is
    // full, so waiting a round would buy no sharing, only delay.
    if (backlog_) interval_ms = std::min(interval_ms, kBacklogPushIntervalMs);
    next_push_us_ = now_us + interval_ms * 1000;
  }
  if (now_us >= next_ae_us_) {
    anti_entropy_round(out);
    next_ae_us_ = now_us + config_.anti_entropy_interval_ms * 1000;
  }
  if (now_us >= next_sync_us_) {
    sync_round(now_us, out);
    next_sync_us_ = now_us + config_.sync_interval_ms * 1000;
  }
  if (now_us >= next_ack_check_us_) {
    finalize(now_us, true);
    send_due_acks(now_us, out);
    ask_on_report_gaps(now_us, out);
    ask_for_proof_of_life(now_us, out);
    send_heartbeats(now_us, out);
    next_ack_check_us_ = now_us + config_.ack_delay_max_ms * 1000 / 4;
  }
}

bool GossipEngine::apply_entry(std::string_view key, std::string_view value, Version v,
                               std::int64_t now_us, Store::MergeResult* result) {
  if (key.empty() || key.size() > limits::kKeyBytesMax + 1 ||
      value.size() > limits::kValueBytesMax || v.origin > ids_.size()) {
    return false;
  }
  Store::MergeResult& r = *result;
  r = store_.merge(key, value, v, now_us);
  if (!r.applied) {
    deltas_ignored_.fetch_add(1, std::memory_order_relaxed);
    // Held here by a newer version whose local delta is still on its way (the index has not
    // seen it): until it has, a digest answer could not send that version, so it vouches for
    // nothing (answer_digest).
    if (r.entry != nullptr) {
      std::optional<Version> indexed = Store::index_mark(*r.entry);
      if (!indexed || *indexed < r.previous) {
        auto [slot, inserted] = unindexed_.try_emplace(r.entry, r.previous);
        if (!inserted) slot->second = std::max(slot->second, r.previous);
      }
    }
    return true;
  }
  deltas_applied_.fetch_add(1, std::memory_order_relaxed);
  on_taken(r, v, now_us);
  return true;
}

void GossipEngine::on_taken(const Store::MergeResult& r, Version v, std::int64_t now_us) {
  stale_reads_.fetch_add(r.stale_reads, std::memory_order_relaxed);
  index(r.entry, v);
  record_held(r.entry, v, now_us);
  if (v.origin != me_) {
    MutexLock lock(stats_mu_);
    lag_.add(ms_between(v.ts_us, now_us));
  }
}

std::unique_ptr<ReplicationEngine> make_gossip_engine(const GossipConfig& config, std::string self,
                                                      std::vector<std::string> node_ids,
                                                      Store& store, std::uint64_t seed,
                                                      std::int64_t now_us) {
  return std::make_unique<GossipEngine>(config, std::move(self), std::move(node_ids), store, seed,
                                        now_us);
}

}  // namespace gossip_kv
