// cairn::expected<T, E>: std::expected where the standard library has it (g++ 12 with
// -std=c++23), and a small stand-in with the same interface where it does not (clang 14 with
// libstdc++ 12, used only for the libFuzzer preset: its concepts level hides <expected>).
// Always write `cairn::expected` / `cairn::unexpected`, never `std::expected`, in code that a
// fuzz target compiles.
#pragma once

#include <version>

#if defined(__cpp_lib_expected)

#include <expected>

namespace cairn {
template <class T, class E>
using expected = std::expected<T, E>;
using std::unexpected;
}  // namespace cairn

#else

#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

namespace cairn {

template <class E>
class unexpected {
 public:
  constexpr explicit unexpected(E e) : error_(std::move(e)) {}
  constexpr const E& error() const& { return error_; }
  constexpr E& error() & { return error_; }
  constexpr E&& error() && { return std::move(error_); }

 private:
  E error_;
};

template <class E>
unexpected(E) -> unexpected<E>;

namespace detail {
// Stands in for std::bad_expected_access: the fuzz build aborts instead of throwing.
[[noreturn]] inline void bad_expected_access() { std::abort(); }
}  // namespace detail

template <class T, class E>
class expected {
 public:
  using value_type = T;
  using error_type = E;

  constexpr expected() requires std::is_default_constructible_v<T>
      : state_(std::in_place_index<0>) {}
  template <class U = T>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, expected> &&
           !std::is_same_v<std::remove_cvref_t<U>, unexpected<E> >) constexpr expected(U&& v)
      : state_(std::in_place_index<0>, std::forward<U>(v)) {}
  template <class G>
  constexpr expected(const unexpected<G>& u) : state_(std::in_place_index<1>, u.error()) {}
  template <class G>
  constexpr expected(unexpected<G>&& u) : state_(std::in_place_index<1>, std::move(u).error()) {}

  constexpr bool has_value() const { return state_.index() == 0; }
  constexpr explicit operator bool() const { return has_value(); }

  constexpr T& value() & { return check(), std::get<0>(state_); }
  constexpr const T& value() const& { return check(), std::get<0>(state_); }
  constexpr T&& value() && { return check(), std::move(std::get<0>(state_)); }
  constexpr T& operator*() & { return std::get<0>(state_); }
  constexpr const T& operator*() const& { return std::get<0>(state_); }
  constexpr T&& operator*() && { return std::move(std::get<0>(state_)); }
  constexpr T* operator->() { return &std::get<0>(state_); }
  constexpr const T* operator->() const { return &std::get<0>(state_); }
  template <class U>
  constexpr T value_or(U&& other) const& {
    return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(other));
  }

  constexpr E& error() & { return std::get<1>(state_); }
  constexpr const E& error() const& { return std::get<1>(state_); }
  constexpr E&& error() && { return std::move(std::get<1>(state_)); }

 private:
  constexpr void check() const {
    if (!has_value()) detail::bad_expected_access();
  }
  std::variant<T, E> state_;
};

template <class E>
class expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  constexpr expected() = default;
  template <class G>
  constexpr expected(const unexpected<G>& u) : error_(u.error()), has_error_(true) {}
  template <class G>
  constexpr expected(unexpected<G>&& u) : error_(std::move(u).error()), has_error_(true) {}

  constexpr bool has_value() const { return !has_error_; }
  constexpr explicit operator bool() const { return has_value(); }
  constexpr void value() const {
    if (has_error_) detail::bad_expected_access();
  }
  constexpr void operator*() const {}
  constexpr E& error() & { return error_; }
  constexpr const E& error() const& { return error_; }
  constexpr E&& error() && { return std::move(error_); }

 private:
  E error_{};
  bool has_error_ = false;
};

}  // namespace cairn

#endif
