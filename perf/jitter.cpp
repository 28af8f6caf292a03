// gossip-jitter: how long this machine leaves a runnable thread without the CPU. One thread
// reads the monotonic clock in a loop for the given seconds and counts the gaps between
// consecutive reads over 100 us, 500 us, 1 ms and 5 ms, with the longest. Nothing else runs in
// the process, so every gap is the machine's (hypervisor, interrupts, other tenants): a floor
// under any latency tail measured here (BENCHMARKS.md, "Where the tail comes from").
//
// usage: gossip-jitter [seconds]   (default 5; pin it with taskset -c N to watch one core)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
  if (!(seconds > 0)) {
    std::fprintf(stderr, "usage: %s [seconds > 0]\n", argv[0]);
    return 2;
  }
  using Clock = std::chrono::steady_clock;
  constexpr std::int64_t kBoundsNs[] = {100'000, 500'000, 1'000'000, 5'000'000};
  std::int64_t over[4] = {0, 0, 0, 0};
  std::int64_t longest_ns = 0;
  std::int64_t stalled_ns = 0;  // the sum of the gaps over 100 us
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  auto last = start;
  for (auto now = start; now < end; now = Clock::now()) {
    std::int64_t gap = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last).count();
    last = now;
    if (gap > longest_ns) longest_ns = gap;
    if (gap > kBoundsNs[0]) stalled_ns += gap;
    for (int i = 0; i < 4; ++i) over[i] += gap > kBoundsNs[i] ? 1 : 0;
  }
  std::printf("%.1f s: gaps over 100 us %lld, 500 us %lld, 1 ms %lld, 5 ms %lld; longest %lld us; "
              "%.3f%% of the time in gaps over 100 us\n",
              seconds, static_cast<long long>(over[0]), static_cast<long long>(over[1]),
              static_cast<long long>(over[2]), static_cast<long long>(over[3]),
              static_cast<long long>(longest_ns / 1000), 100.0 * static_cast<double>(stalled_ns) / (seconds * 1e9));
  return 0;
}
