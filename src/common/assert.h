// GOSSIP_KV_ASSERT: an invariant check that stays on in every build type, Release included
// (TigerBeetle style: a broken invariant stops the node before it corrupts state or output).
// Use it for cheap checks only (a comparison or two) on paths where a violation means a bug in
// the node, never for input validation: bad input is answered, not asserted.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace gossip_kv::detail {
[[noreturn, gnu::cold, gnu::noinline]] inline void assert_failed(const char* expr,
                                                                   const char* file, int line) {
  std::fprintf(stderr, "gossip-kv: assertion failed: %s (%s:%d)\n", expr, file, line);
  std::abort();
}
}  // namespace gossip_kv::detail

#define GOSSIP_KV_ASSERT(cond)                                                   \
  do {                                                                           \
    if (__builtin_expect(!(cond), 0)) {                                          \
      ::gossip_kv::detail::assert_failed(#cond, __FILE__, __LINE__);             \
    }                                                                            \
  } while (false)
