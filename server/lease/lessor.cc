// The lease bucket (schema::lease), written by the lessor only:
//
//   key    the lease id, 8 bytes big-endian (two's complement), as etcd keys it
//   value  u8 format (= 1) | i64 ttl | i64 remaining_ttl, integers 8 bytes big-endian
//
// ttl is the granted TTL in seconds (after raising it to the minimum); remaining_ttl is the last
// checkpointed remaining TTL in seconds, 0 if none (etcd's leasepb.Lease {ID, TTL,
// RemainingTTL}; our own encoding). A record is written at grant, rewritten by a checkpoint when
// checkpoints persist, and deleted at revoke; always on the writer thread inside the batch of the
// raft entry that caused it.
#include "lease/lessor.h"

#include <algorithm>
#include <cmath>

#include "schema/schema.h"
#include "spdlog/spdlog.h"

namespace cairn::lease {
namespace {

constexpr std::uint8_t record_format = 1;

void put_i64(std::string& out, std::int64_t v) {
  out += schema::encode_u64(static_cast<std::uint64_t>(v));
}

// What a secondary answers for a lease that never expires: int64(MaxInt64 ns in seconds).
constexpr std::int64_t forever_seconds = 9223372036;

}  // namespace

std::int64_t min_ttl_seconds(std::chrono::milliseconds election,
                             std::chrono::milliseconds heartbeat) {
  const std::int64_t hb = std::max<std::int64_t>(1, heartbeat.count());
  const std::int64_t ticks = election.count() / hb;
  const std::int64_t ms = (3 * ticks / 2) * hb;
  return std::max<std::int64_t>(1, (ms + 999) / 1000);
}

std::string encode_lease_key(lease_id id) {
  return schema::encode_u64(static_cast<std::uint64_t>(id.value()));
}

std::string encode_lease_value(std::int64_t ttl, std::int64_t remaining_ttl) {
  std::string out(1, static_cast<char>(record_format));
  put_i64(out, ttl);
  put_i64(out, remaining_ttl);
  return out;
}

std::optional<persisted_lease> decode_lease(std::string_view key, std::string_view value) {
  auto id = schema::decode_u64(key);
  if (!id || value.size() != 17 || static_cast<std::uint8_t>(value[0]) != record_format) {
    return std::nullopt;
  }
  auto ttl = schema::decode_u64(value.substr(1, 8));
  auto rem = schema::decode_u64(value.substr(9, 8));
  return persisted_lease{lease_id{static_cast<std::int64_t>(*id)}, static_cast<std::int64_t>(*ttl),
                         static_cast<std::int64_t>(*rem)};
}

lessor::lessor(backend::backend* be, lessor_config cfg) : be_(be), cfg_(std::move(cfg)) {}

void lessor::recover() {
  if (be_ == nullptr) return;
  std::vector<persisted_lease> found;
  auto view = be_->read();
  view.scan(schema::lease, "", "", [&](std::string_view k, std::string_view v) {
    auto l = decode_lease(k, v);
    if (!l) {
      spdlog::critical("lessor: malformed record in the lease bucket");
      std::abort();
    }
    found.push_back(*l);
    return true;
  });
  std::lock_guard lock(mu_);
  // What was known before goes (a snapshot from the leader replaced the backend).
  leases_.clear();
  key_lease_.clear();
  expiry_.clear();
  checkpoints_.clear();
  const auto now = cfg_.now();
  for (const auto& l : found) {
    entry e;
    e.ttl = l.ttl;
    e.remaining_ttl = l.remaining_ttl;
    auto& slot = leases_[l.id] = std::move(e);
    // A primary's leases run from now (a fresh start gets them at promote()).
    if (primary_) set_expiry(l.id, slot, now + std::chrono::seconds(refresh_ttl(slot)));
  }
}

void lessor::persist(lease_id id, std::int64_t ttl, std::int64_t remaining) {
  if (be_ != nullptr)
    be_->put(schema::lease, encode_lease_key(id), encode_lease_value(ttl, remaining));
}

void lessor::set_expiry(lease_id id, entry& e, clock::time_point t) {
  if (e.expiry != clock::time_point::max()) expiry_.erase({e.expiry, id});
  e.expiry = t;
  e.reported = {};
  if (t != clock::time_point::max()) expiry_.insert({t, id});
}

void lessor::schedule_checkpoint(lease_id id, const entry& e, clock::time_point now) {
  if (!cfg_.checkpoint || !primary_ || cfg_.checkpoint_interval.count() <= 0) return;
  if (refresh_ttl(e) * 1000 > cfg_.checkpoint_interval.count()) {
    checkpoints_.insert({now + cfg_.checkpoint_interval, id});
  }
}

cairn::expected<lease_status, base::errc> lessor::grant(lease_id id, std::int64_t ttl) {
  if (id.is_zero()) return cairn::unexpected(base::errc::lease_not_found);
  if (ttl > max_ttl_seconds) return cairn::unexpected(base::errc::lease_ttl_too_large);
  lease_status out;
  {
    std::lock_guard lock(mu_);
    if (leases_.contains(id)) return cairn::unexpected(base::errc::lease_exist);
    entry& e = leases_[id];
    e.ttl = std::max(ttl, cfg_.min_ttl);
    if (primary_) {
      auto now = cfg_.now();
      set_expiry(id, e, now + std::chrono::seconds(e.ttl));
      schedule_checkpoint(id, e, now);
    }
    out.id = id;
    out.granted_ttl = e.ttl;
    out.ttl = e.ttl;
  }
  persist(id, out.granted_ttl, 0);
  return out;
}

cairn::expected<void, base::errc> lessor::revoke(lease_id id) {
  {
    std::lock_guard lock(mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) return cairn::unexpected(base::errc::lease_not_found);
    for (const auto& k : it->second.keys) key_lease_.erase(k);
    set_expiry(id, it->second, clock::time_point::max());
    leases_.erase(it);
  }
  if (be_ != nullptr) be_->del(schema::lease, encode_lease_key(id));
  return {};
}

void lessor::apply_checkpoints(const std::vector<checkpoint>& cps) {
  std::vector<std::pair<checkpoint, std::int64_t>> to_persist;
  {
    std::lock_guard lock(mu_);
    auto now = cfg_.now();
    for (const auto& cp : cps) {
      auto it = leases_.find(cp.id);
      if (it == leases_.end()) continue;
      it->second.remaining_ttl = cp.remaining_ttl;
      if (cfg_.checkpoint_persist) to_persist.push_back({cp, it->second.ttl});
      schedule_checkpoint(cp.id, it->second, now);
    }
  }
  for (const auto& [cp, ttl] : to_persist) persist(cp.id, ttl, cp.remaining_ttl);
}

bool lessor::lease_exists(std::int64_t lease) { return exists(lease_id{lease}); }

void lessor::on_put(std::string_view key, std::int64_t lease) {
  std::lock_guard lock(mu_);
  if (lease == 0 && key_lease_.empty()) return;  // the common case without leases
  auto it = key_lease_.find(absl::string_view(key.data(), key.size()));
  if (it != key_lease_.end()) {
    if (it->second.value() == lease) return;
    if (auto l = leases_.find(it->second); l != leases_.end()) l->second.keys.erase(it->first);
    key_lease_.erase(it);
  }
  if (lease == 0) return;
  auto l = leases_.find(lease_id{lease});
  if (l == leases_.end()) {
    // Only at recovery, for a key whose lease record is gone (the store checks puts).
    spdlog::warn("lessor: key attached to unknown lease {:x}", lease);
    return;
  }
  l->second.keys.emplace(key);
  key_lease_.emplace(std::string(key), lease_id{lease});
}

void lessor::on_delete(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = key_lease_.find(absl::string_view(key.data(), key.size()));
  if (it == key_lease_.end()) return;
  if (auto l = leases_.find(it->second); l != leases_.end()) l->second.keys.erase(it->first);
  key_lease_.erase(it);
}

cairn::expected<renew_result, base::errc> lessor::renew(lease_id id) {
  std::lock_guard lock(mu_);
  if (!primary_) return cairn::unexpected(base::errc::not_leader);
  auto it = leases_.find(id);
  if (it == leases_.end()) return cairn::unexpected(base::errc::lease_not_found);
  auto now = cfg_.now();
  entry& e = it->second;
  // An expired lease is as good as revoked: its revoke is on its way.
  if (e.expiry <= now) return cairn::unexpected(base::errc::lease_not_found);
  renew_result out;
  out.clear_checkpoint = cfg_.checkpoint && e.remaining_ttl > 0;
  e.remaining_ttl = 0;
#ifndef CAIRN_PLANTED_BUG_LEASE_RENEW_NOOP
  set_expiry(id, e, now + std::chrono::seconds(e.ttl));
#endif
  out.ttl = e.ttl;
  return out;
}

std::optional<lease_status> lessor::time_to_live(lease_id id, bool with_keys) const {
  std::lock_guard lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  const entry& e = it->second;
  lease_status s;
  s.id = id;
  s.granted_ttl = e.ttl;
  if (e.expiry == clock::time_point::max()) {
    s.ttl = forever_seconds;
  } else {
    s.ttl = std::chrono::duration_cast<std::chrono::seconds>(e.expiry - cfg_.now()).count();
  }
  if (with_keys) s.keys.assign(e.keys.begin(), e.keys.end());
  return s;
}

std::vector<lease_id> lessor::leases() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<clock::time_point, lease_id>> all;
  all.reserve(leases_.size());
  for (const auto& [id, e] : leases_) all.emplace_back(e.expiry, id);
  std::sort(all.begin(), all.end());
  std::vector<lease_id> out;
  out.reserve(all.size());
  for (const auto& [t, id] : all) out.push_back(id);
  return out;
}

std::vector<std::string> lessor::keys(lease_id id) const {
  std::lock_guard lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return {};
  return {it->second.keys.begin(), it->second.keys.end()};
}

bool lessor::exists(lease_id id) const {
  std::lock_guard lock(mu_);
  return leases_.contains(id);
}

void lessor::promote(std::chrono::milliseconds extend) {
  std::lock_guard lock(mu_);
  primary_ = true;
  checkpoints_.clear();
  auto now = cfg_.now();
  for (auto& [id, e] : leases_) {
#ifdef CAIRN_PLANTED_BUG_LEASE_RESTART_RESETS_TTL
    // Planted bug: recovery forgets the checkpointed remaining TTL and starts over at the full
    // TTL (etcd before LeaseCheckpoint); caught by LessorTest.PromoteCountsFromCheckpoint and
    // LeaseServerTest.RestartKeepsRemainingTtl.
    set_expiry(id, e, now + extend + std::chrono::seconds(e.ttl));
#else
    set_expiry(id, e, now + extend + std::chrono::seconds(refresh_ttl(e)));
#endif
    schedule_checkpoint(id, e, now);
  }
  spread_expiries();
}

void lessor::spread_expiries() {
  // Leases recovered together (a restart, a new leader) tend to expire together. Let at most
  // three quarters of the revoke rate expire in any one second, so that the revoke loop keeps
  // up and leases expiring later are not revoked late: walk the leases in expiry order, and
  // when a one-second window is full, move each further lease back to the time its turn comes
  // at that rate.
  const std::int64_t per_second = std::max<std::int64_t>(1, 3 * cfg_.revoke_per_second / 4);
  std::vector<std::pair<clock::time_point, lease_id>> order(expiry_.begin(), expiry_.end());
  clock::time_point window_start{};
  clock::time_point window_end{};
  std::int64_t in_window = 0;
  for (const auto& [t, id] : order) {
    if (in_window == 0 || t >= window_end) {
      window_start = t;
      window_end = t + std::chrono::seconds(1);
      in_window = 1;
      continue;
    }
    ++in_window;
    if (in_window <= per_second) continue;
    auto turn =
        window_start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
                           static_cast<double>(in_window) / static_cast<double>(per_second)));
    if (turn > t) {
      set_expiry(id, leases_.at(id), turn);
      window_end = std::max(window_end, turn);
    }
  }
}

void lessor::demote() {
  std::lock_guard lock(mu_);
  primary_ = false;
  checkpoints_.clear();
  for (auto& [id, e] : leases_) set_expiry(id, e, clock::time_point::max());
}

bool lessor::is_primary() const {
  std::lock_guard lock(mu_);
  return primary_;
}

std::vector<lease_id> lessor::expired(std::size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<lease_id> out;
  if (!primary_) return out;
  auto now = cfg_.now();
  for (auto it = expiry_.begin(); it != expiry_.end() && out.size() < limit; ++it) {
    if (it->first > now) break;
    entry& e = leases_.at(it->second);
    if (e.reported != clock::time_point{} && now - e.reported < cfg_.expired_retry) continue;
    e.reported = now;
    out.push_back(it->second);
  }
  return out;
}

std::vector<checkpoint> lessor::due_checkpoints(std::size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<checkpoint> out;
  if (!primary_ || !cfg_.checkpoint) return out;
  auto now = cfg_.now();
  while (!checkpoints_.empty() && out.size() < limit) {
    auto it = checkpoints_.begin();
    if (it->first > now) break;
    lease_id id = it->second;
    checkpoints_.erase(it);
    auto l = leases_.find(id);
    if (l == leases_.end() || l->second.expiry <= now) continue;
    auto left = std::chrono::duration<double>(l->second.expiry - now).count();
    auto remaining = static_cast<std::int64_t>(std::ceil(left));
    if (remaining >= l->second.ttl) {
      // Renewed since it was scheduled: nothing to record yet, but keep it on the schedule
      // (etcd drops it here until the next checkpoint or promotion).
      schedule_checkpoint(id, l->second, now);
      continue;
    }
    out.push_back({id, remaining});
  }
  return out;
}

}  // namespace cairn::lease
