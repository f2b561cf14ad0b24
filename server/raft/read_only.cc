#include "raft/read_only.h"

#include <map>

#include "raft/quorum.h"

namespace cairn::raft {

const read_only::round* read_only::maybe_start(log_index commit, node_id self) {
  if (in_flight_ || queued_.empty()) return nullptr;
  round r;
  r.id = next_id_++;
  r.index = commit;
  r.acks.insert(self);  // the leader trivially confirms itself
  r.requests = std::move(queued_);
  queued_.clear();
  in_flight_ = std::move(r);
  return &*in_flight_;
}

std::optional<std::uint64_t> read_only::in_flight_id() const {
  if (!in_flight_) return std::nullopt;
  return in_flight_->id;
}

std::optional<read_only::round> read_only::ack(std::uint64_t id, node_id from,
                                               const std::set<node_id>& voters) {
  if (!in_flight_ || in_flight_->id != id) return std::nullopt;  // an old round's late answer
  in_flight_->acks.insert(from);
  std::map<node_id, bool> votes;
  for (node_id a : in_flight_->acks) votes[a] = true;
  if (tally(voters, votes) != vote_result::won) return std::nullopt;
  round done = std::move(*in_flight_);
  in_flight_.reset();
  return done;
}

std::vector<read_request> read_only::drain() {
  std::vector<read_request> out;
  if (in_flight_) out = std::move(in_flight_->requests);
  in_flight_.reset();
  for (auto& r : queued_) out.push_back(std::move(r));
  queued_.clear();
  return out;
}

std::size_t read_only::waiting() const {
  return queued_.size() + (in_flight_ ? in_flight_->requests.size() : 0);
}

std::string read_only::encode_context(std::uint64_t round_id) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(round_id & 0xff);
    round_id >>= 8;
  }
  return out;
}

std::optional<std::uint64_t> read_only::decode_context(std::string_view ctx) {
  if (ctx.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : ctx) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

}  // namespace cairn::raft
