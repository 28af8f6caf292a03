// A mutex that clang's thread-safety analysis (-Wthread-safety) understands, and the
// annotation macros (GOSSIP_KV_GUARDED_BY, ...; prefixed: absl defines the bare names) to
// declare what it guards. The macros expand to nothing on other
// compilers (GCC), so annotated code builds everywhere and is checked in the clang-tsa build.
//
// Why not std::mutex: libstdc++ declares no capability attributes, so clang cannot tell that
// std::lock_guard holds anything. Why not absl::Mutex (annotated): it would change the lock
// itself on the store's hot path (its own spinning and wait queues) for a compile-time check;
// this wrapper is std::mutex with attributes, the same code at run time.
//
// Thread safety: as std::mutex.
#pragma once

#include <mutex>

#if defined(__clang__)
#define GOSSIP_KV_TSA(x) __attribute__((x))
#else
#define GOSSIP_KV_TSA(x)
#endif

#define GOSSIP_KV_GUARDED_BY(x) GOSSIP_KV_TSA(guarded_by(x))
#define GOSSIP_KV_PT_GUARDED_BY(x) GOSSIP_KV_TSA(pt_guarded_by(x))
#define GOSSIP_KV_REQUIRES(...) GOSSIP_KV_TSA(requires_capability(__VA_ARGS__))
#define GOSSIP_KV_EXCLUDES(...) GOSSIP_KV_TSA(locks_excluded(__VA_ARGS__))
#define GOSSIP_KV_NO_THREAD_SAFETY_ANALYSIS GOSSIP_KV_TSA(no_thread_safety_analysis)

namespace gossip_kv {

class GOSSIP_KV_TSA(capability("mutex")) Mutex {
 public:
  void lock() GOSSIP_KV_TSA(acquire_capability()) { mu_.lock(); }
  void unlock() GOSSIP_KV_TSA(release_capability()) { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope (std::lock_guard, annotated).
class GOSSIP_KV_TSA(scoped_lockable) MutexLock {
 public:
  explicit MutexLock(Mutex& mu) GOSSIP_KV_TSA(acquire_capability(mu)) : mu_(mu) { mu_.lock(); }
  ~MutexLock() GOSSIP_KV_TSA(release_capability()) { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace gossip_kv
