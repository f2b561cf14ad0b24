// The simulator's only source of randomness: a splitmix64 generator, so a run is a pure function
// of its seed on every platform (the standard distributions are implementation-defined). Plain
// value; not thread-safe (each simulation owns one).
#pragma once

#include <cstdint>
#include <vector>

namespace cairn::raft::sim {

class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n must be > 0. The modulo bias is below 2^-40 for the ranges used here.
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  // Uniform in [lo, hi].
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  // True with probability p.
  bool chance(double p) { return p > 0 && static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
  // A generator for a sub-component, independent of this one's future draws.
  rng fork() { return rng(next()); }

 private:
  std::uint64_t state_;
};

}  // namespace cairn::raft::sim
