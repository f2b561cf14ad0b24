// Strong identifier types: a uint64 (or other integer) wrapped in a distinct type per meaning, so a
// raft term cannot be passed where a node id is expected. Header-only; values are immutable, so
// thread-safety is that of a plain integer.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace cairn::base {

// `Tag` only distinguishes the type; it is never defined. Construction from the raw value is
// explicit, reading it back is `value()`. Only comparison is provided: arithmetic on a term or an
// id is rare enough that spelling it out (`raft_term{t.value() + 1}`) is the point.
template <class Tag, class Rep = std::uint64_t>
class strong_id {
 public:
  using rep = Rep;

  constexpr strong_id() = default;
  constexpr explicit strong_id(Rep v) : value_(v) {}

  [[nodiscard]] constexpr Rep value() const { return value_; }
  // The zero value means "none" for every id Cairn uses (no leader, no vote, no term yet).
  [[nodiscard]] constexpr bool is_zero() const { return value_ == Rep{}; }

  friend constexpr bool operator==(strong_id, strong_id) = default;
  friend constexpr auto operator<=>(strong_id, strong_id) = default;

 private:
  Rep value_{};
};

}  // namespace cairn::base

template <class Tag, class Rep>
struct std::hash<cairn::base::strong_id<Tag, Rep>> {
  std::size_t operator()(cairn::base::strong_id<Tag, Rep> id) const noexcept {
    return std::hash<Rep>{}(id.value());
  }
};
