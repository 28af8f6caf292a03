// The peer wire format: rendering a message (begin/send, entries) and decoding every message a
// peer sends, then handing each part to its concern (docs/REPLICATION.md lists the members).
#include "replication/gossip_engine.h"

#include <algorithm>

#include <rapidjson/document.h>

#include "replication/wire.h"

namespace gossip_kv {

void GossipEngine::begin(const char* type) {
  buf_.Clear();
  writer_.Reset(buf_);
  writer_.StartObject();
  writer_.Key("type");
  writer_.String(type);
}

void GossipEngine::send(std::uint32_t peer, PeerMsgKind kind, std::vector<OutMessage>& out) {
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
  if (ContentSync::is_sync_type(type)) {
    msgs_received_by_[kSync].fetch_add(1, std::memory_order_relaxed);
    bytes_received_by_[kSync].fetch_add(body_json.size(), std::memory_order_relaxed);
    return on_sync_message(peer, body_json, now_us, out);
  }
  for (int k = 0; k < kKinds; ++k) {
    if (type != kPeerMsgKindNames[k]) continue;
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

}  // namespace gossip_kv
