#include "gossip_kv/gossip_engine.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <initializer_list>

#include <rapidjson/document.h>

#include "gossip_kv/limits.h"

namespace gossip_kv {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr const char* kKindNames[] = {"gossip", "digest", "ack"};

// Writes one small JSON array of integers: the shape of every span and acknowledgement.
void write_ints(Writer& w, std::initializer_list<std::int64_t> values) {
  w.StartArray();
  for (std::int64_t v : values) w.Int64(v);
  w.EndArray();
}

std::int64_t ms_between(std::int64_t from_us, std::int64_t to_us) {
  return to_us > from_us ? (to_us - from_us + 500) / 1000 : 0;
}

}  // namespace

void LatencyHistogram::add_zeros(std::uint64_t n) {
  buckets_[0] += static_cast<std::uint32_t>(n);
  count_ += n;
}

void LatencyHistogram::add(std::int64_t ms) {
  ms = std::max<std::int64_t>(ms, 0);
  auto fine = static_cast<std::int64_t>(kFineBuckets);
  std::size_t b = ms < fine ? static_cast<std::size_t>(ms)
                            : std::min(kBuckets - 1, kFineBuckets + static_cast<std::size_t>((ms - fine) / 10));
  ++buckets_[b];
  ++count_;
  max_ = std::max(max_, ms);
}

std::int64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  if (rank >= count_) return max_;
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen < rank) continue;
    return std::min(lower_ms(b), max_);
  }
  return max_;
}

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
      sent_wm_(ids_.size() + 1, 0),
      by_origin_(ids_.size() + 1),
      owed_acks_(ids_.size() + 1),
      last_ack_(ids_.size() + 1),
      last_sent_to_us_(ids_.size() + 1, now_us),
      last_repair_us_(ids_.size() + 1, INT64_MIN / 2),
      spans_(ids_.size() + 1),
      next_push_us_(now_us + config.gossip_interval_ms * 1000),
      next_ae_us_(now_us + config.anti_entropy_interval_ms * 1000),
      next_ack_check_us_(now_us + config.ack_delay_max_ms * 1000) {
  assert(me_ <= ids_.size() && ids_[me_ - 1] == self_);
  unconverged_max_ = std::min(kUnconvergedMax, kReachSlotsMax / (ids_.size() + 1));
  auto relays = static_cast<std::uint32_t>(std::max(config.relays, 0));
  if (relays > 0 && ids_.size() > 2) {
    relays = std::min<std::uint32_t>(relays, static_cast<std::uint32_t>(ids_.size()));
    is_relay_ = me_ <= relays;
    if (!is_relay_) hub_ = 1 + (me_ - 1) % relays;
    if (is_relay_) next_push_us_ = now_us + config.relay_interval_ms * 1000;
  }
  // Stagger the first anti-entropy round so a cluster started at once does not pulse.
  next_ae_us_ += static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(
                     config.anti_entropy_interval_ms * 1000 + 1));
}

// ---- local writes ----------------------------------------------------------------------

void GossipEngine::on_local_delta(const LocalDelta& d, std::int64_t now_us) {
  if (peer_count() == 0) {  // a one-node cluster: nothing to send, every write is everywhere
    if (d.client_write) converged_alone_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  index(d.entry, d.version);
  if (d.version.origin == me_) wm_[me_] = std::max(wm_[me_], d.version.ts_us);
  auto [it, inserted] = pending_.try_emplace(d.entry, d.version);
  if (!inserted) {
    it->second = std::max(it->second, d.version);  // a newer version replaces the pending one
  } else if (pending_.size() > kPendingDeltasMax) {
    pending_.erase(it);  // anti-entropy still carries it
    deltas_dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  if (config_.push_on_write) next_push_us_ = std::min(next_push_us_, now_us);
  if (!d.client_write || d.version.origin != me_) return;
  Unconverged u{d.version.ts_us, d.taken_us, 0, std::vector<std::int64_t>(ids_.size() + 1), 0};
  if (unconverged_.size() >= unconverged_max_) {
    if (unconverged_.front().complete_us != 0) --converged_in_deque_;
    unconverged_.pop_front();
    unmeasured_.fetch_add(1, std::memory_order_relaxed);
  }
  // Deltas from several workers can arrive slightly out of timestamp order.
  auto pos = unconverged_.end();
  while (pos != unconverged_.begin() && std::prev(pos)->ts_us > u.ts_us) --pos;
  unconverged_.insert(pos, u);
  pending_count_.store(unconverged_.size() - converged_in_deque_, std::memory_order_relaxed);
}

void GossipEngine::index(const Entry* e, Version v) {
  auto [it, inserted] = indexed_.try_emplace(e, v);
  if (!inserted) {
    if (!(it->second < v)) return;
    by_origin_[it->second.origin].erase({it->second.ts_us, e});
    it->second = v;
  }
  if (v.origin < by_origin_.size()) by_origin_[v.origin].insert({v.ts_us, e});
}

// ---- rounds ------------------------------------------------------------------------------

std::int64_t GossipEngine::next_deadline_us() const {
  return std::min({next_push_us_, next_ae_us_, next_ack_check_us_});
}

void GossipEngine::tick(std::int64_t now_us, std::vector<OutMessage>& out) {
  if (now_us >= next_push_us_) {
    push_round(now_us, out);
    next_push_us_ = now_us + (is_relay_ ? config_.relay_interval_ms : config_.gossip_interval_ms) * 1000;
  }
  if (now_us >= next_ae_us_) {
    anti_entropy_round(out);
    next_ae_us_ = now_us + config_.anti_entropy_interval_ms * 1000;
  }
  if (now_us >= next_ack_check_us_) {
    finalize(now_us);
    send_due_acks(now_us, out);
    next_ack_check_us_ = now_us + config_.ack_delay_max_ms * 1000 / 4;
  }
}

void GossipEngine::begin(const char* type) {
  buf_.Clear();
  writer_.Reset(buf_);
  writer_.StartObject();
  writer_.Key("type");
  writer_.String(type);
}

void GossipEngine::send(std::uint32_t peer, Kind kind, std::vector<OutMessage>& out) {
  writer_.EndObject();
  out.push_back({ids_[peer - 1], std::string(buf_.GetString(), buf_.GetSize())});
  msgs_sent_[kind].fetch_add(1, std::memory_order_relaxed);
  bytes_sent_.fetch_add(buf_.GetSize(), std::memory_order_relaxed);
  bytes_sent_by_[kind].fetch_add(buf_.GetSize(), std::memory_order_relaxed);
}

// Entries travel as [key, ts_us, origin, value-as-a-JSON-string]: the string keeps the value's
// exact text through any JSON parser. The entry's current version goes, whatever was pending.
void GossipEngine::write_entry(Writer& w, const Entry& entry) {
  Version v = store_.load(entry, &scratch_);
  std::string_view key = Store::key_of(entry);
  w.StartArray();
  w.String(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.Int64(v.ts_us);
  w.Uint(v.origin);
  w.String(scratch_.data(), static_cast<rapidjson::SizeType>(scratch_.size()));
  w.EndArray();
}

void GossipEngine::push_round(std::int64_t now_us, std::vector<OutMessage>& out) {
  bool relaying = is_relay_ && (!relay_spans_.empty() || !relay_acks_.empty());
  if ((pending_.empty() && !relaying) || peer_count() == 0) {
    pending_.clear();
    return;
  }
  rapidjson::StringBuffer entries;
  Writer ew(entries);
  ew.StartArray();
  std::int64_t first_unsent_own = INT64_MAX;
  std::size_t sent = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (entries.GetSize() >= config_.batch_bytes_max) {
      if (it->second.origin == me_) first_unsent_own = std::min(first_unsent_own, it->second.ts_us);
      ++it;
      continue;
    }
    write_entry(ew, *it->first);  // the newest version, whatever is pending
    ++sent;
    pending_.erase(it++);
  }
  ew.EndArray();
  bool truncated = !pending_.empty();
  // What a relay forwards is the same for every peer: render it once. Chains go only when
  // every entry they cover went too.
  rapidjson::StringBuffer relayed;
  if (relaying) {
    Writer rw(relayed);
    rw.StartObject();
    if (!truncated && !relay_spans_.empty()) {
      rw.Key("sp");
      rw.StartArray();
      for (const RelaySpan& r : relay_spans_) write_ints(rw, {r.origin, r.from, r.to});
      rw.EndArray();
      relay_spans_.clear();
    }
    rw.Key("fa");
    rw.StartArray();
    for (const RelayAck& a : relay_acks_) write_ints(rw, {a.acker, a.origin, a.lo, a.hi, a.at_us});
    rw.EndArray();
    rw.EndObject();
    relay_acks_.clear();
  }
  // The chain: this push covers every write of mine up to `to` not covered by earlier ones.
  std::int64_t to = first_unsent_own == INT64_MAX ? wm_[me_] : first_unsent_own - 1;
  for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
    if (p == me_ || (hub_ != 0 && p != hub_)) continue;
    begin("gossip");
    writer_.Key("from");
    writer_.Int64(sent_wm_[p]);
    writer_.Key("to");
    writer_.Int64(to);
    writer_.Key("e");
    writer_.RawValue(entries.GetString(), entries.GetSize(), rapidjson::kArrayType);
    if (relaying) {
      writer_.Key("r");
      writer_.RawValue(relayed.GetString(), relayed.GetSize(), rapidjson::kObjectType);
    }
    write_acks_for(p, false);
    if (hub_ != 0) write_acks_for_others(p);
    send(p, kGossip, out);
    sent_wm_[p] = std::max(sent_wm_[p], to);
    last_sent_to_us_[p] = now_us;
    deltas_sent_.fetch_add(sent, std::memory_order_relaxed);
  }
}

// "ra": [[origin, lo, hi, at_us], ...]: acknowledgements for other origins, for the relay to
// forward.
void GossipEngine::write_acks_for_others(std::uint32_t except) {
  writer_.Key("ra");
  writer_.StartArray();
  for (std::uint32_t o = 1; o < owed_acks_.size(); ++o) {
    if (o == except) continue;
    for (const AckSpan& a : owed_acks_[o]) write_ints(writer_, {o, a.lo, a.hi, a.at_us});
    owed_acks_[o].clear();
  }
  writer_.EndArray();
}

bool GossipEngine::owes_acks_older_than(std::int64_t cutoff_us) const {
  for (const auto& owed : owed_acks_) {
    if (!owed.empty() && owed.front().at_us < cutoff_us) return true;
  }
  return false;
}

void GossipEngine::anti_entropy_round(std::vector<OutMessage>& out) {
  if (peer_count() == 0) return;
  auto pick = static_cast<std::uint32_t>(rng_() % peer_count()) + 1;
  send_digest(pick >= me_ ? pick + 1 : pick, out);
}

void GossipEngine::send_digest(std::uint32_t peer, std::vector<OutMessage>& out) {
  begin("digest");
  writer_.Key("wm");
  writer_.StartArray();
  for (std::int64_t w : wm_) writer_.Int64(w);
  writer_.EndArray();
  write_acks_for(peer, true);
  send(peer, kDigest, out);
}

void GossipEngine::send_due_acks(std::int64_t now_us, std::vector<OutMessage>& out) {
  std::int64_t delay_us = config_.ack_delay_max_ms * 1000;
  // My oldest unacknowledged write: acknowledgements for it may have been lost, so ask each
  // silent peer with a digest; its reply re-sends how far it holds my writes.
  if (!unconverged_.empty() && now_us - unconverged_.front().taken_us > 4 * delay_us) {
    const Unconverged& oldest = unconverged_.front();
    for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
      if (p == me_ || oldest.reach_us[p] != 0 || now_us - last_repair_us_[p] < 4 * delay_us) {
        continue;
      }
      last_repair_us_[p] = now_us;
      send_digest(p, out);
    }
  }
  if (hub_ != 0) {  // everything goes by way of the relay
    if (!owes_acks_older_than(now_us - delay_us)) return;
    begin("ack");
    write_acks_for(hub_, false);
    write_acks_for_others(hub_);
    send(hub_, kAck, out);
    last_sent_to_us_[hub_] = now_us;
    return;
  }
  for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
    if (p == me_ || owed_acks_[p].empty()) continue;
    if (now_us - owed_acks_[p].front().at_us < delay_us) continue;
    begin("ack");
    write_acks_for(p, false);
    send(p, kAck, out);
    last_sent_to_us_[p] = now_us;
  }
}

// "a": [[lo, hi, at_us], ...]: spans of the recipient's writes this node holds, and since when.
void GossipEngine::write_acks_for(std::uint32_t peer, bool resend_last) {
  std::deque<AckSpan>& owed = owed_acks_[peer];
  if (owed.empty() && !(resend_last && last_ack_[peer].hi > 0)) return;
  writer_.Key("a");
  writer_.StartArray();
  if (owed.empty()) owed.push_back(last_ack_[peer]);
  for (const AckSpan& a : owed) write_ints(writer_, {a.lo, a.hi, a.at_us});
  writer_.EndArray();
  owed.clear();
}

void GossipEngine::owe_ack(std::uint32_t origin, const AckSpan& span) {
  if (origin == me_ || origin == 0 || origin > ids_.size() || span.hi <= span.lo) return;
  std::deque<AckSpan>& owed = owed_acks_[origin];
  owed.push_back(span);
  if (owed.size() > kAckSpansMax) owed.pop_front();  // the prefix re-sent on digests covers it
}

// ---- peer messages ------------------------------------------------------------------------

bool GossipEngine::apply_entry(std::string_view key, std::string_view value, Version v,
                               std::int64_t now_us, bool* applied) {
  if (key.empty() || key.size() > limits::kKeyBytesMax + 1 ||
      value.size() > limits::kValueBytesMax || v.origin > ids_.size()) {
    return false;
  }
  Store::MergeResult r = store_.merge(key, value, v, now_us);
  if (!r.applied) {
    deltas_ignored_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  *applied = true;
  deltas_applied_.fetch_add(1, std::memory_order_relaxed);
  stale_reads_.fetch_add(r.stale_reads, std::memory_order_relaxed);
  index(r.entry, v);
  if (v.origin != me_) {
    MutexLock lock(stats_mu_);
    lag_.add(ms_between(v.ts_us, now_us));
  }
  return true;
}

void GossipEngine::raise_watermark(std::uint32_t origin, std::int64_t wm, std::int64_t now_us) {
  if (origin == 0 || origin > ids_.size() || wm <= wm_[origin]) return;
  std::int64_t before = wm_[origin];
  wm_[origin] = wm;
  // Spans of pushes that arrived early were acknowledged when they arrived: acknowledge now
  // only the parts of (before, wm] none of them covered, then let them extend the chain.
  auto& spans = spans_[origin];
  std::sort(spans.begin(), spans.end());
  std::int64_t cursor = before;
  for (const auto& [from, to] : spans) {
    if (from >= wm || to <= cursor) continue;
    if (from > cursor) owe_ack(origin, {cursor, from, now_us});
    cursor = std::max(cursor, to);
  }
  if (cursor < wm) owe_ack(origin, {cursor, wm, now_us});
  for (bool grew = true; grew;) {
    grew = false;
    for (auto it = spans.begin(); it != spans.end();) {
      if (it->second <= wm_[origin]) {
        it = spans.erase(it);
      } else if (it->first <= wm_[origin]) {
        wm_[origin] = it->second;
        it = spans.erase(it);
        grew = true;
      } else {
        ++it;
      }
    }
  }
  last_ack_[origin] = {0, wm_[origin], now_us};
}

void GossipEngine::on_peer_message(std::string_view src, std::string_view body_json,
                                   std::int64_t now_us, std::vector<OutMessage>& out) {
  msgs_received_.fetch_add(1, std::memory_order_relaxed);
  bytes_received_.fetch_add(body_json.size(), std::memory_order_relaxed);
  auto it = std::lower_bound(ids_.begin(), ids_.end(), src);
  rapidjson::Document d;
  d.Parse(body_json.data(), body_json.size());
  if (it == ids_.end() || *it != src || d.HasParseError() || !d.IsObject() ||
      !d.HasMember("type") || !d["type"].IsString()) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto peer = static_cast<std::uint32_t>(it - ids_.begin() + 1);
  std::string_view type = d["type"].GetString();
  for (int k = 0; k < kKinds; ++k) {
    if (type != kKindNames[k]) continue;
    msgs_received_by_[k].fetch_add(1, std::memory_order_relaxed);
    bytes_received_by_[k].fetch_add(body_json.size(), std::memory_order_relaxed);
  }
  bool ok = true;
  // A push's chain covers the sender's own writes; everything else it carries (a relay's
  // forwarded entries, an anti-entropy reply) is acknowledged entry by entry.
  bool chained = d.HasMember("from") && d.HasMember("to");
  if (d.HasMember("e") && d["e"].IsArray()) {
    for (const auto& e : d["e"].GetArray()) {
      bool applied = false;
      ok = ok && e.IsArray() && e.Size() == 4 && e[0].IsString() && e[1].IsInt64() &&
           e[2].IsUint() && e[3].IsString() &&
           apply_entry(std::string_view(e[0].GetString(), e[0].GetStringLength()),
                       std::string_view(e[3].GetString(), e[3].GetStringLength()),
                       Version{e[1].GetInt64(), e[2].GetUint()}, now_us, &applied);
      // This write is held here from now on. A push's span already says so for the sender's
      // own writes; a write taken from anyone else is acknowledged on its own. (One held
      // already was acknowledged when it first arrived.)
      if (ok && applied && !(chained && e[2].GetUint() == peer)) {
        owe_ack(e[2].GetUint(), {e[1].GetInt64() - 1, e[1].GetInt64(), now_us});
      }
    }
  }
  if (ok && d.HasMember("from") && d["from"].IsInt64() && d.HasMember("to") &&
      d["to"].IsInt64()) {
    std::int64_t from = d["from"].GetInt64(), to = d["to"].GetInt64();
    if (is_relay_ && peer > 0 && !(peer <= static_cast<std::uint32_t>(config_.relays))) {
      // A push from a node this relay serves: forward its entries and its chain.
      for (const auto& e : d["e"].GetArray()) {
        const Entry* entry = store_.find(std::string_view(e[0].GetString(), e[0].GetStringLength()));
        if (entry != nullptr) {
          Version v{e[1].GetInt64(), e[2].GetUint()};
          auto [slot, inserted] = pending_.try_emplace(entry, v);
          if (!inserted) slot->second = std::max(slot->second, v);
        }
      }
      if (relay_spans_.size() < kRelayAcksMax) relay_spans_.push_back({peer, from, to});
    }
    on_span(peer, from, to, now_us, out);
  }
  if (ok && d.HasMember("r") && d["r"].IsObject()) read_relay_members(peer, d["r"], now_us, out);
  if (d.HasMember("ra") && d["ra"].IsArray() && is_relay_) {
    for (const auto& a : d["ra"].GetArray()) {
      if (!(a.IsArray() && a.Size() == 4 && a[0].IsUint() && a[1].IsInt64() && a[2].IsInt64() &&
            a[3].IsInt64())) {
        continue;
      }
      AckSpan span{a[1].GetInt64(), a[2].GetInt64(), a[3].GetInt64()};
      if (a[0].GetUint() == me_) {
        on_ack(peer, span, now_us);
      } else if (relay_acks_.size() < kRelayAcksMax) {
        relay_acks_.push_back({peer, a[0].GetUint(), span.lo, span.hi, span.at_us});
      }
    }
  }
  std::vector<std::int64_t> their_wm;
  if (d.HasMember("wm") && d["wm"].IsArray() && d["wm"].Size() == wm_.size()) {
    for (const auto& w : d["wm"].GetArray()) their_wm.push_back(w.IsInt64() ? w.GetInt64() : 0);
  }
  if (ok && type == "gossip") {
    for (std::uint32_t o = 1; o < their_wm.size(); ++o) raise_watermark(o, their_wm[o], now_us);
  }
  if (d.HasMember("a") && d["a"].IsArray()) {
    for (const auto& a : d["a"].GetArray()) {
      if (a.IsArray() && a.Size() == 3 && a[0].IsInt64() && a[1].IsInt64() && a[2].IsInt64()) {
        on_ack(peer, {a[0].GetInt64(), a[1].GetInt64(), a[2].GetInt64()}, now_us);
      }
    }
  }
  if (type == "digest" && their_wm.size() == wm_.size()) {
    answer_digest(peer, their_wm, out);
    // Push-pull: when the asker holds writes this node lacks, ask back in the same exchange.
    bool they_know_more = false;
    for (std::size_t o = 1; o < wm_.size(); ++o) they_know_more |= their_wm[o] > wm_[o];
    if (they_know_more && now_us - last_repair_us_[peer] >= repair_backoff_us()) {
      last_repair_us_[peer] = now_us;
      send_digest(peer, out);
    }
  }
  if (!ok) malformed_.fetch_add(1, std::memory_order_relaxed);
}

// A push span of origin's writes, (from, to], arrived with all its entries: acknowledge it,
// extend the chain, or keep it until the chain reaches it.
void GossipEngine::on_span(std::uint32_t origin, std::int64_t from, std::int64_t to,
                           std::int64_t now_us, std::vector<OutMessage>& out) {
  if (origin == 0 || origin > ids_.size() || origin == me_) return;
  owe_ack(origin, {from, to, now_us});  // the span's writes are held here from now on
  if (wm_[origin] >= from) {
    raise_watermark(origin, to, now_us);
    return;
  }
  // Ahead of a push still on its way (reordering) or lost: keep the span, it joins the chain
  // when the gap closes.
  auto& spans = spans_[origin];
  if (spans.size() >= kSpansMax) spans.erase(spans.begin());
  spans.emplace_back(from, to);
  std::uint32_t ask = hub_ != 0 ? hub_ : origin;  // who can fill the gap with one message
  if (now_us - last_repair_us_[ask] >= repair_backoff_us()) {
    // Ask at once for what is missing instead of waiting for the next anti-entropy round.
    last_repair_us_[ask] = now_us;
    send_digest(ask, out);
  }
}

// A relay's forwarded chains ("sp") and acknowledgements ("fa").
void GossipEngine::read_relay_members(std::uint32_t peer, const rapidjson::Value& r,
                                      std::int64_t now_us, std::vector<OutMessage>& out) {
  if (r.HasMember("sp") && r["sp"].IsArray()) {
    for (const auto& sp : r["sp"].GetArray()) {
      if (sp.IsArray() && sp.Size() == 3 && sp[0].IsUint() && sp[1].IsInt64() && sp[2].IsInt64()) {
        on_span(sp[0].GetUint(), sp[1].GetInt64(), sp[2].GetInt64(), now_us, out);
      }
    }
  }
  if (r.HasMember("fa") && r["fa"].IsArray()) {
    for (const auto& a : r["fa"].GetArray()) {
      if (a.IsArray() && a.Size() == 5 && a[0].IsUint() && a[1].IsUint() && a[2].IsInt64() &&
          a[3].IsInt64() && a[4].IsInt64() && a[1].GetUint() == me_ && a[0].GetUint() > 0 &&
          a[0].GetUint() <= ids_.size()) {
        on_ack(a[0].GetUint(), {a[2].GetInt64(), a[3].GetInt64(), a[4].GetInt64()}, now_us);
      }
    }
  }
  (void)peer;
}

// Sends the peer every entry it lacks by its watermarks, and the watermarks it may take.
void GossipEngine::answer_digest(std::uint32_t peer, const std::vector<std::int64_t>& their_wm,
                                 std::vector<OutMessage>& out) {
  begin("gossip");
  writer_.Key("e");
  writer_.StartArray();
  std::vector<std::int64_t> give(wm_.size(), 0);
  bool truncated = false;
  std::size_t sent = 0;
  for (std::uint32_t o = 1; o < wm_.size(); ++o) {
    const auto& idx = by_origin_[o];
    for (auto it = idx.upper_bound({their_wm[o], nullptr}); it != idx.end(); ++it) {
      if (buf_.GetSize() >= config_.batch_bytes_max) {
        truncated = true;
        break;
      }
      write_entry(writer_, *it->second);
      // Entries past this node's own watermark came by pushes beyond a gap: they are sent,
      // but the gap is not vouched for.
      give[o] = std::min(it->first, wm_[o]);
      ++sent;
    }
    if (truncated) break;
    give[o] = wm_[o];
  }
  writer_.EndArray();
  writer_.Key("wm");
  writer_.StartArray();
  for (std::int64_t w : give) writer_.Int64(w);
  writer_.EndArray();
  write_acks_for(peer, true);
  send(peer, kGossip, out);
  deltas_sent_.fetch_add(sent, std::memory_order_relaxed);
}

// ---- convergence ---------------------------------------------------------------------------

void GossipEngine::on_ack(std::uint32_t peer, const AckSpan& span, std::int64_t now_us) {
  auto first = std::upper_bound(unconverged_.begin(), unconverged_.end(), span.lo,
                                [](std::int64_t ts, const Unconverged& u) { return ts < u.ts_us; });
  for (auto it = first; it != unconverged_.end() && it->ts_us <= span.hi; ++it) {
    std::int64_t& reach = it->reach_us[peer];
    if (reach != 0) {  // spans overlap (duplicates, re-sent prefixes): keep the earliest
      reach = std::min(reach, span.at_us);
      continue;
    }
    reach = std::max<std::int64_t>(span.at_us, 1);
    if (++it->reached == peer_count()) {
      it->complete_us = now_us;
      ++converged_in_deque_;
    }
  }
  finalize(now_us);
}

// Takes the figure of complete writes at the front once no earlier report can still be on
// its way (a grace period of twice the acknowledgement delay).
void GossipEngine::finalize(std::int64_t now_us) {
  std::int64_t grace_us = 2 * config_.ack_delay_max_ms * 1000;
  while (!unconverged_.empty() && unconverged_.front().complete_us != 0 &&
         now_us - unconverged_.front().complete_us >= grace_us) {
    const Unconverged& u = unconverged_.front();
    std::int64_t last = u.taken_us;
    for (std::size_t p = 1; p < u.reach_us.size(); ++p) last = std::max(last, u.reach_us[p]);
    record_convergence(ms_between(u.taken_us, last));
    unconverged_.pop_front();
    --converged_in_deque_;
  }
  pending_count_.store(unconverged_.size() - converged_in_deque_, std::memory_order_relaxed);
}

void GossipEngine::record_convergence(std::int64_t ms) {
  MutexLock lock(stats_mu_);
  convergence_.add(ms);
}

// ---- stats ---------------------------------------------------------------------------------

std::uint64_t GossipEngine::total_gossip_msgs() const {
  std::uint64_t n = 0;
  for (const auto& m : msgs_sent_) n += m.load(std::memory_order_relaxed);
  return n;
}

std::uint64_t GossipEngine::stale_reads() const {
  return stale_reads_.load(std::memory_order_relaxed);
}

void GossipEngine::write_stats(Writer& w) const {
  auto u64 = [&](const char* k, const std::atomic<std::uint64_t>& v) {
    w.Key(k);
    w.Uint64(v.load(std::memory_order_relaxed));
  };
  {
    MutexLock lock(stats_mu_);
    // One-node clusters count their writes as converged in 0 ms without taking the lock.
    convergence_.add_zeros(converged_alone_.exchange(0, std::memory_order_relaxed));
    w.Key("convergence_ms");
    w.StartObject();
    w.Key("count");
    w.Uint64(convergence_.count());
    u64("pending", pending_count_);
    for (auto [name, p] : {std::pair{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}}) {
      w.Key(name);
      w.Int64(convergence_.percentile(p));
    }
    w.Key("max");
    w.Int64(convergence_.max());
    u64("unmeasured", unmeasured_);
    // [[lower_ms, count], ...] over non-empty buckets: lets a reader merge nodes exactly.
    w.Key("histogram");
    w.StartArray();
    convergence_.for_each_bucket([&w](std::int64_t lower_ms, std::uint32_t n) {
      w.StartArray();
      w.Int64(lower_ms);
      w.Uint(n);
      w.EndArray();
    });
    w.EndArray();
    w.EndObject();
    w.Key("replication_lag_ms");
    w.StartObject();
    w.Key("count");
    w.Uint64(lag_.count());
    w.Key("p50");
    w.Int64(lag_.percentile(0.5));
    w.Key("p99");
    w.Int64(lag_.percentile(0.99));
    w.Key("max");
    w.Int64(lag_.max());
    w.EndObject();
  }
  // By kind: {"gossip": [messages, bytes], "digest": [...], "ack": [...]}.
  auto by_kind = [&](const char* name, const std::atomic<std::uint64_t>* msgs,
                     const std::atomic<std::uint64_t>* bytes) {
    w.Key(name);
    w.StartObject();
    for (int k = 0; k < kKinds; ++k) {
      w.Key(kKindNames[k]);
      w.StartArray();
      w.Uint64(msgs[k].load(std::memory_order_relaxed));
      w.Uint64(bytes[k].load(std::memory_order_relaxed));
      w.EndArray();
    }
    w.EndObject();
  };
  by_kind("gossip_sent_by_kind", msgs_sent_, bytes_sent_by_);
  by_kind("gossip_received_by_kind", msgs_received_by_, bytes_received_by_);
  u64("gossip_bytes_sent", bytes_sent_);
  u64("gossip_msgs_received", msgs_received_);
  u64("gossip_bytes_received", bytes_received_);
  u64("gossip_msgs_malformed", malformed_);
  u64("deltas_sent", deltas_sent_);
  u64("deltas_applied", deltas_applied_);
  u64("deltas_ignored", deltas_ignored_);
  u64("deltas_dropped_pending", deltas_dropped_);
}

}  // namespace gossip_kv
