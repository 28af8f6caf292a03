#include "content_sync.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <optional>

namespace gossip_kv {
namespace {

// A reply buffer or scratch string larger than this is given back after the reply
// (Reply::~Reply, release_large_scratch), and a bucket copy of more entries than this.
constexpr std::size_t kReplyBufferKeptBytes = 64 * 1024;
constexpr std::size_t kScratchEntriesKept = 1024;
// Room kept in every message for the closing brackets and a trailing ,"m":1.
constexpr std::size_t kTailBytes = 16;
// The most bytes a key takes as a JSON string (every byte escaped as \u00XX, plus quotes).
constexpr std::size_t kQuotedKeyBytesMax = 6 * (limits::kKeyBytesMax + 1) + 2;

}  // namespace

// The answer to one message: sync_tree, sync_keys and sync_entries messages for one peer,
// at most reply_messages_max of them, each at most message_bytes_max bytes. Once a bound
// stops it, capped() is true and finish() marks the last message sent with "m".
class ContentSync::Reply {
 public:
  // The buffers are the ContentSync's, kept between replies so that a reply's parts stop
  // allocating once warm (one Reply at a time is open: on_message closes its own before
  // start_round opens one); each message sent is copied into a string of its own.
  Reply(ContentSync& cs, std::uint32_t peer, std::vector<OutMessage>& out)
      : cs_(cs), dest_(cs.ids_[peer - 1]), out_(out), b_(cs.reply_buffers_) {
    for (std::string* s : b_.all()) s->clear();
  }
  // A large repair's buffers go back once answered: kept, they would hold up to a few
  // message budgets per replica for good.
  ~Reply() {
    for (std::string* s : b_.all()) {
      if (s->capacity() > kReplyBufferKeptBytes) std::string().swap(*s);
    }
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  [[nodiscard]] bool capped() const { return capped_; }

  // Sends `nodes` (at `level`) with this replica's child digests, in as many messages as
  // needed. False when the budget ran out first.
  bool tree(std::uint32_t level, const std::vector<std::uint32_t>& nodes) {
    std::size_t per_message =
        std::min(sync::kTreeNodesPerMessageMax,
                 (cs_.config_.message_bytes_max - 64) / (Store::kTreeFanout * 16 + 8));
    for (std::size_t first = 0; first < nodes.size(); first += per_message) {
      if (!reserve()) return false;
      std::string& body = b_.body;
      std::string& hex = b_.hex;
      body.assign(R"({"type":"sync_tree","l":)");
      append_number(level, body);
      body.append(R"(,"n":[)");
      hex.clear();
      std::uint64_t children[Store::kTreeFanout];
      for (std::size_t i = first; i < std::min(nodes.size(), first + per_message); ++i) {
        if (i > first) body.push_back(',');
        append_number(nodes[i], body);
        cs_.store_.tree_children(level, nodes[i], children);
        for (std::uint64_t d : children) sync::append_hex64(d, hex);
      }
      body.append(R"(],"d":")").append(hex).append("\"}");
      emit(body);
    }
    return true;
  }

  // A sync_keys group: begin_group, add_group_item per entry in key order, end_group. A
  // group that does not fit is split at an item boundary, each part stating its key range.
  bool begin_group(std::uint32_t bucket) {
    bool full = keys_open_ && (keys_groups_ >= sync::kGroupsPerMessageMax ||
                               !keys_fit(group_header_bytes(std::nullopt)));
    if (full) flush_keys();
    if (!keys_open_ && !open_keys()) return false;
    group_bucket_ = bucket;
    group_after_.reset();
    group_items_.clear();
    group_count_ = 0;
    return true;
  }
  bool add_group_item(std::string_view key, const std::string& item) {
    bool fits = keys_items_ < sync::kItemsPerMessageMax &&
                keys_fit(group_header_bytes(group_after_) + group_items_.size() + item.size() + 1);
    if (!fits) {
      if (group_count_ > 0) {
        close_group(group_last_key_);
        group_after_ = group_last_key_;
      }
      flush_keys();
      if (!open_keys()) return false;
    }
    if (group_count_ > 0) group_items_.push_back(',');
    group_items_.append(item);
    group_last_key_.assign(key);
    ++group_count_;
    ++keys_items_;
    return true;
  }
  void end_group() { close_group(std::nullopt); }

  // sync_entries: an entry to push (rendered by sync::append_item with its value), a key to ask for.
  bool add_entry(const std::string& item) { return add_to_entries(item, &b_.entries, &entry_count_); }
  bool add_want(std::string_view key) {
    b_.quoted.clear();
    sync::append_string(key, b_.quoted);
    return add_to_entries(b_.quoted, &b_.wants, &want_count_);
  }

  // Sends what is still open; marks the last message sent with "m" when a bound stopped us.
  void finish() {
    flush_keys();
    flush_entries();
    if (!capped_ || last_ == SIZE_MAX) return;
    std::string& body = out_[last_].body;
    assert(!body.empty() && body.back() == '}');
    body.insert(body.size() - 1, R"(,"m":1)");
    cs_.stats_.bytes_sent += 6;
    cs_.stats_.largest_msg_bytes = std::max(cs_.stats_.largest_msg_bytes, body.size());
    ++cs_.stats_.capped;
  }

 private:
  bool reserve() {
    if (used_ >= cs_.config_.reply_messages_max) {
      capped_ = true;
      return false;
    }
    ++used_;
    return true;
  }
  static void append_number(std::uint32_t x, std::string& out) {
    std::array<char, 12> digits;
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), x);
    out.append(digits.data(), end);
  }
  void emit(std::string_view body) {
    assert(body.size() + kTailBytes <= cs_.config_.message_bytes_max);
    cs_.stats_.msgs_sent += 1;
    cs_.stats_.bytes_sent += body.size();
    cs_.stats_.largest_msg_bytes = std::max(cs_.stats_.largest_msg_bytes, body.size());
    last_ = out_.size();
    out_.push_back({dest_, std::string(body)});
  }

  static std::size_t group_header_bytes(const std::optional<std::string>& after) {
    // [bucket,after,through,[ ... ]] with `through` at its largest.
    return 24 + (after ? after->size() * 6 + 2 : 4) + kQuotedKeyBytesMax;
  }
  bool keys_fit(std::size_t extra) const {
    return keys_msg_.size() + extra + kTailBytes <= cs_.config_.message_bytes_max;
  }
  bool open_keys() {
    if (!reserve()) return false;
    keys_msg_ = R"({"type":"sync_keys","k":[)";
    keys_open_ = true;
    keys_groups_ = 0;
    keys_items_ = 0;
    return true;
  }
  void close_group(const std::optional<std::string>& through) {
    assert(keys_open_);
    if (keys_groups_ > 0) keys_msg_.push_back(',');
    keys_msg_.push_back('[');
    append_number(group_bucket_, keys_msg_);
    if (group_after_ || through) {  // a part of a split bucket states its range
      keys_msg_.push_back(',');
      if (group_after_) sync::append_string(*group_after_, keys_msg_); else keys_msg_.append("null");
      keys_msg_.push_back(',');
      if (through) sync::append_string(*through, keys_msg_); else keys_msg_.append("null");
    }
    keys_msg_.append(",[").append(group_items_).append("]]");
    ++keys_groups_;
    group_items_.clear();
    group_count_ = 0;
  }
  void flush_keys() {
    if (!keys_open_) return;
    keys_open_ = false;
    keys_msg_.append("]}");
    emit(keys_msg_);
    keys_msg_.clear();
  }

  bool add_to_entries(const std::string& piece, std::string* part, std::size_t* count) {
    bool fits = entries_open_ && entry_count_ + want_count_ < sync::kItemsPerMessageMax &&
                kEntriesOverhead + b_.entries.size() + b_.wants.size() + piece.size() + 1 +
                        kTailBytes <= cs_.config_.message_bytes_max;
    if (!fits) {
      flush_entries();
      if (!reserve()) return false;
      entries_open_ = true;
    }
    if (*count > 0) part->push_back(',');
    part->append(piece);
    ++*count;
    return true;
  }
  void flush_entries() {
    if (!entries_open_) return;
    entries_open_ = false;
    std::string& body = b_.body;
    body.assign(R"({"type":"sync_entries","e":[)");
    body.append(b_.entries).append(R"(],"w":[)").append(b_.wants).append("]}");
    emit(body);
    b_.entries.clear();
    b_.wants.clear();
    entry_count_ = want_count_ = 0;
  }
  static constexpr std::size_t kEntriesOverhead = 48;

  ContentSync& cs_;
  const std::string& dest_;
  std::vector<OutMessage>& out_;
  ReplyBuffers& b_;
  std::string& keys_msg_ = b_.keys_msg;
  std::string& group_items_ = b_.group_items;
  std::string& group_last_key_ = b_.group_last_key;
  std::size_t used_ = 0;        // messages of the budget taken
  bool capped_ = false;
  std::size_t last_ = SIZE_MAX;  // out_ index of the last message sent

  bool keys_open_ = false;
  std::size_t keys_groups_ = 0, keys_items_ = 0;
  std::uint32_t group_bucket_ = 0;
  std::optional<std::string> group_after_;
  std::size_t group_count_ = 0;

  bool entries_open_ = false;
  std::size_t entry_count_ = 0, want_count_ = 0;
};

ContentSync::ContentSync(Store& store, std::vector<std::string> node_ids, std::uint32_t self,
                         ContentSyncConfig config)
    : store_(store), ids_(std::move(node_ids)), self_(self), config_(config) {
  assert(self_ >= 1 && self_ <= ids_.size());
  assert(config_.message_bytes_max >= ContentSyncConfig::kMessageBytesMin &&
         config_.message_bytes_max <= ContentSyncConfig::kMessageBytesMax);
  assert(config_.reply_messages_max >= 1);
}

bool ContentSync::is_sync_type(std::string_view type) {
  return type == sync::kTreeType || type == sync::kKeysType || type == sync::kEntriesType;
}

std::uint32_t ContentSync::pick_peer(std::uint64_t random) const {
  assert(ids_.size() >= 2);
  auto p = static_cast<std::uint32_t>(random % (ids_.size() - 1)) + 1;
  return p >= self_ ? p + 1 : p;
}

void ContentSync::start_round(std::uint32_t peer, std::vector<OutMessage>& out) {
  assert(peer >= 1 && peer <= ids_.size() && peer != self_);
  ++stats_.rounds;
  Reply reply(*this, peer, out);
  reply.tree(0, {0});
  reply.finish();
}

ContentSync::Outcome ContentSync::on_message(std::uint32_t peer, std::string_view body,
                                             std::int64_t now_us, std::vector<OutMessage>& out,
                                             const AppliedFn& applied, std::string* error) {
  ++stats_.msgs_received;
  stats_.bytes_received += body.size();
  sync::Message& m = message_;
  std::string why;
  if (peer == 0 || peer > ids_.size() || peer == self_) {
    why = "unknown peer";
  } else {
    std::int64_t ts_max = now_us > INT64_MAX - config_.future_ts_us_max
                              ? INT64_MAX
                              : now_us + config_.future_ts_us_max;
    sync::DecodeLimits limits{static_cast<std::uint32_t>(ids_.size()), ts_max};
    why = sync::decode(body, limits, &m);
  }
  if (!why.empty()) {
    m.recycle();
    ++stats_.malformed;
    if (error != nullptr) *error = std::move(why);
    return Outcome::kMalformed;
  }
  {
    Reply reply(*this, peer, out);
    switch (m.kind) {
      case sync::Kind::kTree:
        answer_tree(m, reply);
        break;
      case sync::Kind::kKeys:
        answer_keys(m, now_us, applied, reply);
        break;
      case sync::Kind::kEntries:
        answer_entries(m, now_us, applied, reply);
        break;
    }
    reply.finish();
  }  // (closed before start_round opens another on the same buffers)
  bool more = m.more;
  m.recycle();  // down to its spares' bounds now, not when the next sync message comes
  release_large_scratch();
  // The peer stopped at a bound: continue at once with a new exchange, which skips whatever
  // this one already made equal.
  if (more) start_round(peer, out);
  return Outcome::kHandled;
}

// A large bucket's copy (a client can fill one bucket with large values) or a large value is
// not kept once answered.
void ContentSync::release_large_scratch() {
  if (scratch_.bytes.capacity() > kReplyBufferKeptBytes) std::string().swap(scratch_.bytes);
  if (scratch_.entries.capacity() > kScratchEntriesKept) {
    std::vector<Store::BucketEntry>().swap(scratch_.entries);
  }
  for (std::string* s : {&item_, &value_}) {
    if (s->capacity() > kReplyBufferKeptBytes) std::string().swap(*s);
  }
}

// Differing children: inner ones are answered with this side's digests one level down,
// buckets with this side's key list, and subtrees the peer holds nothing of with every entry.
void ContentSync::answer_tree(const sync::Message& m, Reply& reply) {
  std::uint32_t child_level = m.level + 1;
  std::vector<std::uint32_t>& inner = inner_;
  inner.clear();
  // Differing buckets (child_level == kTreeDepth) or subtrees the peer holds nothing of, in
  // ascending order, so that the groups they become come by ascending bucket.
  std::vector<std::pair<std::uint32_t, bool>>& listed = listed_;  // (child, empty_there)
  listed.clear();
  std::uint64_t mine[Store::kTreeFanout];
  for (std::size_t p = 0; p < m.nodes.size(); ++p) {
    store_.tree_children(m.level, m.nodes[p], mine);
    const std::uint64_t* theirs = &m.child_digests[p * Store::kTreeFanout];
    for (std::uint32_t c = 0; c < Store::kTreeFanout; ++c) {
      if (mine[c] == theirs[c]) continue;
      std::uint32_t child = m.nodes[p] * Store::kTreeFanout + c;
      // A sum of 0 over entries (odds 2^-64) only costs extra bytes: the peer answers with
      // what it holds.
      bool empty_there = theirs[c] == 0;
      if (empty_there || child_level == Store::kTreeDepth) {
        listed.emplace_back(child, empty_there);
      } else {
        inner.push_back(child);
      }
    }
  }
  if (!inner.empty() && !reply.tree(child_level, inner)) return;
  std::uint32_t span = Store::tree_width(Store::kTreeDepth - child_level);
  for (auto [node, empty_there] : listed) {
    for (std::uint32_t b = node * span; b < (node + 1) * span; ++b) {
      bool empty_here = store_.tree_digest(Store::kTreeDepth, b) == 0;
      if (empty_there && empty_here) continue;
      if (!write_bucket(b, empty_there, reply)) return;
    }
  }
}

// This side's entries of one bucket as a group (split over messages when large): keys with
// versions and hashes, values inline when small or when all_values.
bool ContentSync::write_bucket(std::uint32_t bucket, bool all_values, Reply& reply) {
  store_.bucket_entries(bucket, &scratch_);
  if (!reply.begin_group(bucket)) return false;
  std::string& item = item_;
  for (const Store::BucketEntry& e : scratch_) {
    bool with_value = all_values || e.value.size() <= config_.inline_value_bytes_max;
    item.clear();
    sync::append_item(e.key, e.version, with_value, e.hash, e.value, item);
    if (!reply.add_group_item(e.key, item)) return false;
    stats_.entries_sent += with_value ? 1 : 0;
  }
  reply.end_group();
  return true;
}

void ContentSync::answer_keys(const sync::Message& m, std::int64_t now_us,
                              const AppliedFn& applied, Reply& reply) {
  // Groups come by bucket: merge the inline entries of a bucket's groups, read the bucket
  // once, then compare each group's range.
  for (std::size_t first = 0; first < m.groups.size();) {
    std::size_t end = first;
    while (end < m.groups.size() && m.groups[end].bucket == m.groups[first].bucket) ++end;
    for (std::size_t g = first; g < end; ++g) {
      for (const sync::Item& item : m.groups[g].items) {
        if (item.has_value) apply(item, now_us, applied);
      }
    }
    store_.bucket_entries(m.groups[first].bucket, &scratch_);
    for (std::size_t g = first; g < end; ++g) {
      if (!compare_group(m.groups[g], scratch_, reply)) return;
    }
    first = end;
  }
}

// Pushes what this side holds newer or the peer lacks; asks for what the peer holds newer or
// this side lacks. Equal versions with different values go both ways (the tie-break settles).
bool ContentSync::compare_group(const sync::Group& g, const Store::BucketEntries& mine,
                                Reply& reply) {
  auto key_after = [](const std::string& k, const Store::BucketEntry& e) { return k < e.key; };
  auto j = g.after ? std::upper_bound(mine.begin(), mine.end(), *g.after, key_after) : mine.begin();
  auto j_end = g.through ? std::upper_bound(j, mine.end(), *g.through, key_after) : mine.end();
  auto push = [&](const Store::BucketEntry& e) {
    ++stats_.entries_sent;
    item_.clear();
    sync::append_item(e.key, e.version, true, 0, e.value, item_);
    return reply.add_entry(item_);
  };
  std::size_t i = 0;
  const auto& theirs = g.items;
  while (i < theirs.size() || j != j_end) {
    bool only_theirs = j == j_end || (i < theirs.size() && theirs[i].key < j->key);
    bool only_mine = !only_theirs && (i == theirs.size() || j->key < theirs[i].key);
    bool ok = true;
    if (only_theirs) {
      // An inline entry was merged above and is missing here only if a write raced it.
      if (!theirs[i].has_value) ok = reply.add_want(theirs[i].key);
      ++i;
    } else if (only_mine) {
      ok = push(*j);
      ++j;
    } else {
      const sync::Item& t = theirs[i];
      std::uint64_t their_hash =
          t.has_value ? Store::entry_hash(t.key, t.version, t.value) : t.hash;
      if (j->version > t.version || (j->version == t.version && j->hash != their_hash)) {
        ok = push(*j);  // newer here, or a tie this side won (or must settle, see below)
      }
      if (ok && !t.has_value &&
          (j->version < t.version || (j->version == t.version && j->hash != their_hash))) {
        ok = reply.add_want(t.key);
      }
      ++i;
      ++j;
    }
    if (!ok) return false;
  }
  return true;
}

void ContentSync::answer_entries(const sync::Message& m, std::int64_t now_us,
                                 const AppliedFn& applied, Reply& reply) {
  for (const sync::Item& item : m.entries) apply(item, now_us, applied);
  for (const std::string& key : m.wants) {
    const Entry* e = store_.find(key);
    if (e == nullptr) continue;
    Version v = store_.load(*e, &value_);
    ++stats_.entries_sent;
    item_.clear();
    sync::append_item(key, v, true, 0, value_, item_);
    if (!reply.add_entry(item_)) return;
  }
}

void ContentSync::apply(const sync::Item& item, std::int64_t now_us, const AppliedFn& applied) {
  Store::MergeResult r = store_.merge(item.key, item.value, item.version, now_us);
  if (!r.applied) return;
  ++stats_.entries_applied;
  if (applied) applied(r, item.key, item.version);
}

}  // namespace gossip_kv
